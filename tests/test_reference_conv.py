"""The reference convolution and pooling of notebook 03: shape rule, gradients, and the
im2col version agreeing with the naive one."""
import numpy as np
import pytest

from coursekit.checks.gradcheck import numerical_gradient_array
from coursekit.reference import conv as C
from coursekit.reference.backprop import rel_error

THRESHOLD = 1e-7


def test_output_size_and_the_lecture_example():
    # 10 filters 5x5, stride 1, pad 2 on 3x32x32 -> 10x32x32, 760 parameters, 768,000 multiply-adds
    assert C.output_size(32, 5, 1, 2) == 32
    assert (C.conv_params(3, 10, 5), C.conv_macs(3, 32, 10, 5, 1, 2)) == (760, 768_000)
    assert C.output_size(7, 3, 2, 0) == 3
    with pytest.raises(ValueError, match="does not fit"):
        C.output_size(3, 5)
    with pytest.raises(ValueError, match="not a whole number"):
        C.output_size(7, 3, 3)


@pytest.mark.parametrize("stride, pad", [(1, 0), (1, 1), (2, 1)])
def test_conv_naive_gradients(stride, pad):
    rng = np.random.default_rng(stride + 10 * pad)
    x, w, b = rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    out, cache = C.conv_forward_naive(x, w, b, stride, pad)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = C.conv_backward_naive(dout, cache)
    assert rel_error(dx, numerical_gradient_array(lambda v: C.conv_forward_naive(v, w, b, stride, pad)[0], x.copy(), dout)) < THRESHOLD
    assert rel_error(dw, numerical_gradient_array(lambda v: C.conv_forward_naive(x, v, b, stride, pad)[0], w.copy(), dout)) < THRESHOLD
    assert rel_error(db, numerical_gradient_array(lambda v: C.conv_forward_naive(x, w, v, stride, pad)[0], b.copy(), dout)) < THRESHOLD


@pytest.mark.parametrize("stride, pad, kernel", [(1, 1, 3), (2, 0, 2), (1, 2, 5), (2, 1, 4)])
def test_im2col_matches_naive(stride, pad, kernel):
    rng = np.random.default_rng(kernel)
    x, w, b = rng.standard_normal((3, 2, 8, 8)), rng.standard_normal((5, 2, kernel, kernel)), rng.standard_normal(5)
    naive, ncache = C.conv_forward_naive(x, w, b, stride, pad)
    fast, fcache = C.conv_forward_im2col(x, w, b, stride, pad)
    assert rel_error(naive, fast) < 1e-10
    dout = rng.standard_normal(naive.shape)
    for slow_grad, fast_grad in zip(C.conv_backward_naive(dout, ncache), C.conv_backward_im2col(dout, fcache)):
        assert rel_error(slow_grad, fast_grad) < 1e-10


def test_pooling_values_and_gradients():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    assert np.array_equal(C.max_pool_forward(x)[0][0, 0], [[5, 7], [13, 15]])
    assert np.array_equal(C.avg_pool_forward(x)[0][0, 0], [[2.5, 4.5], [10.5, 12.5]])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 6))  # distinct values: no ties in a window
    for forward, backward in [(C.max_pool_forward, C.max_pool_backward), (C.avg_pool_forward, C.avg_pool_backward)]:
        out, cache = forward(x)
        dout = rng.standard_normal(out.shape)
        assert rel_error(backward(dout, cache), numerical_gradient_array(lambda v: forward(v)[0], x.copy(), dout)) < THRESHOLD


@pytest.mark.parametrize("call, message", [
    (lambda: C.conv_forward_naive(np.ones((1, 3, 5, 5)), np.ones((2, 4, 3, 3)), np.ones(2)), "x has 3 channels"),
    (lambda: C.conv_forward_im2col(np.ones((3, 5, 5)), np.ones((2, 3, 3, 3)), np.ones(2)), r"x should be \(N, C, H, W\)"),
    (lambda: C.conv_forward_naive(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3)), np.ones(3)), "one bias per filter"),
    (lambda: C.conv_forward_im2col(np.ones((1, 3, 2, 2)), np.ones((2, 3, 3, 3)), np.ones(2)), "does not fit"),
    (lambda: C.max_pool_forward(np.ones((4, 4))), r"x should be \(N, C, H, W\)"),
    (lambda: C.im2col(np.ones((3, 5, 5)), 3, 3), r"im2col: x should be \(N, C, H, W\)"),
    (lambda: C.conv1x1_as_matmul(np.ones((1, 3, 2, 2)), np.ones((4, 2)), np.ones(4)), r"w \(F, C\)"),
])
def test_bad_shapes_get_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_receptive_field_rule():
    for layers, kernel in [(1, 3), (3, 3), (5, 5)]:   # L stacked K x K convs: 1 + L (K - 1)
        assert C.receptive_field([(kernel, 1)] * layers) == 1 + layers * (kernel - 1)
    assert C.receptive_field([(3, 1), (3, 1), (3, 1)]) == C.receptive_field([(7, 1)]) == 7
    # conv3 - pool2 - conv3: the second conv sees 3 pooled pixels, each 2 input pixels apart
    assert C.receptive_field([(3, 1), (2, 2), (3, 1)]) == 3 + 1 + 2 * 2


def test_col2im_is_the_adjoint_of_im2col():
    # <im2col(x), c> == <x, col2im(c)> for every x and c: the definition of an adjoint
    rng = np.random.default_rng(3)
    for stride, pad, k in [(1, 1, 3), (2, 0, 2), (2, 1, 2)]:
        x = rng.standard_normal((2, 3, 6, 6))
        cols = C.im2col(x, k, k, stride, pad)
        c = rng.standard_normal(cols.shape)
        assert np.isclose(np.sum(cols * c), np.sum(x * C.col2im(c, x.shape, k, k, stride, pad)))


def test_conv1x1_is_a_per_pixel_linear_layer():
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((2, 5, 4, 3)), rng.standard_normal((7, 5)), rng.standard_normal(7)
    conv, _ = C.conv_forward_naive(x, w.reshape(7, 5, 1, 1), b)
    assert rel_error(C.conv1x1_as_matmul(x, w, b), conv) < 1e-12


@pytest.mark.parametrize("stride, pad, kernel", [(1, 1, 3), (2, 0, 2), (1, 2, 5)])
def test_reference_conv_and_pooling_agree_with_torch(stride, pad, kernel):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((3, 2, 8, 8)), rng.standard_normal((4, 2, kernel, kernel)), rng.standard_normal(4)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = F.conv2d(tx, tw, tb, stride=stride, padding=pad)
    out, cache = C.conv_forward_im2col(x, w, b, stride, pad)
    assert rel_error(out, tout.detach().numpy()) < 1e-12
    dout = rng.standard_normal(out.shape)
    tout.backward(torch.tensor(dout))
    for mine, theirs in zip(C.conv_backward_im2col(dout, cache), (tx.grad, tw.grad, tb.grad)):
        # to 1e-12 of the gradient's scale: an elementwise relative error on near-zero sums
        # depends on torch's summation order (its thread count), 1.3e-12 once
        theirs = theirs.numpy()
        assert np.abs(mine - theirs).max() < 1e-12 * np.abs(theirs).max()
    px = rng.standard_normal((2, 3, 6, 6))
    tpx = torch.tensor(px, requires_grad=True)
    tpool = F.max_pool2d(tpx, 2, 2)
    pooled, pcache = C.max_pool_forward(px)
    assert np.array_equal(pooled, tpool.detach().numpy())
    dpool = rng.standard_normal(pooled.shape)
    tpool.backward(torch.tensor(dpool))
    assert np.allclose(C.max_pool_backward(dpool, pcache), tpx.grad.numpy())
    assert np.allclose(C.avg_pool_forward(px)[0], F.avg_pool2d(torch.tensor(px), 2, 2).numpy())


def test_benchmark_script_runs_and_checks_agreement():
    # the numbers for the closing note come from `python -m coursekit.benchmarks.conv`; here
    # only that it runs, compares the three implementations and prints the table
    pytest.importorskip("torch")
    from coursekit.benchmarks.conv import main, run

    lines = []
    times = run(batch=2, size=6, filters=2, repeats=1, out=lines.append)
    assert set(times) == {"naive", "im2col", "torch"} and all(t > 0 for t in times.values())
    assert any(line.startswith("im2col is") and "target >= 100x" in line for line in lines)
    with pytest.raises(SystemExit):
        main(["--batch", "0"])
