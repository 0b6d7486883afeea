"""The reference normalisation layers of notebook 04: numerical gradients, the running
statistics rule, agreement with PyTorch, and test-time fusion into the layer before."""
import numpy as np
import pytest

from coursekit.checks.gradcheck import numerical_gradient_array
from coursekit.reference import conv as C
from coursekit.reference import normalisation as norm
from coursekit.reference.backprop import rel_error

THRESHOLD = 1e-7


def _bn_case(seed=0, n=6, d=4):
    rng = np.random.default_rng(seed)
    return 3 + 2 * rng.standard_normal((n, d)), 1 + rng.random(d), rng.standard_normal(d), rng


@pytest.mark.parametrize("backward", [norm.batchnorm_backward, norm.batchnorm_backward_alt])
@pytest.mark.parametrize("mode", ["train", "test"])
def test_batchnorm_gradients(backward, mode):
    x, gamma, beta, rng = _bn_case()
    state = {"running_mean": rng.standard_normal(4), "running_var": 1 + rng.random(4)}

    def forward(x, gamma, beta):
        return norm.batchnorm_forward(x, gamma, beta, dict(state), mode)
    out, cache = forward(x, gamma, beta)
    dout = rng.standard_normal(out.shape)
    grads = backward(dout, cache)
    for value, grad, i in zip((x, gamma, beta), grads, range(3)):
        def f(v, i=i):
            args = [x, gamma, beta]
            args[i] = v
            return forward(*args)[0]
        assert rel_error(grad, numerical_gradient_array(f, value.copy(), dout)) < THRESHOLD


def test_batchnorm_train_statistics_and_running_update():
    x, gamma, beta, _ = _bn_case(1, n=50)
    state = {}
    out, _ = norm.batchnorm_forward(x, gamma, beta, state, "train", momentum=0.99)
    assert np.allclose(out.mean(axis=0), beta) and np.allclose(out.std(axis=0), gamma, rtol=1e-4)
    # lecture rule: running <- 0.99 running + 0.01 batch, from zeros and ones
    assert np.allclose(state["running_mean"], 0.01 * x.mean(axis=0))
    assert np.allclose(state["running_var"], 0.99 + 0.01 * x.var(axis=0))
    out_test, _ = norm.batchnorm_forward(x[:1], gamma, beta, state, "test")
    expected = gamma * (x[:1] - state["running_mean"]) / np.sqrt(state["running_var"] + 1e-5) + beta
    assert np.allclose(out_test, expected)


def test_batchnorm_matches_torch():
    torch = pytest.importorskip("torch")
    x, gamma, beta, _ = _bn_case(2, n=8, d=5)
    bn = torch.nn.BatchNorm1d(5, momentum=0.1, eps=1e-5).double()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(gamma)), bn.bias.copy_(torch.tensor(beta))
    state = {}
    ours, _ = norm.batchnorm_forward(x, gamma, beta, state, "train", momentum=0.9)
    theirs = bn(torch.tensor(x))
    assert rel_error(ours, theirs.detach().numpy()) < 1e-12
    assert np.allclose(state["running_mean"], bn.running_mean.numpy())
    # torch's running variance uses the unbiased batch variance (N / (N - 1)); ours the biased one
    assert np.allclose(0.9 + 0.1 * x.var(axis=0, ddof=1), bn.running_var.numpy())


@pytest.mark.parametrize("layer, groups", [("spatial", None), ("layer", 1), ("instance", 6), ("group", 3)])
def test_image_norms_match_torch_and_numerical_gradients(layer, groups):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = 2 + 3 * rng.standard_normal((4, 6, 3, 5))
    gamma, beta = 1 + rng.random(6), rng.standard_normal(6)
    tx = torch.tensor(x)
    if layer == "spatial":
        def forward(x, gamma, beta):
            return norm.spatial_batchnorm_forward(x, gamma, beta, {}, "train")
        backward = norm.spatial_batchnorm_backward
        expected = torch.nn.functional.batch_norm(tx, None, None, torch.tensor(gamma), torch.tensor(beta), training=True)
    else:
        fwd = {"layer": norm.layernorm_forward, "instance": norm.instancenorm_forward}.get(layer)
        backward = getattr(norm, f"{layer}norm_backward")

        def forward(x, gamma, beta):
            return fwd(x, gamma, beta) if fwd else norm.groupnorm_forward(x, gamma, beta, groups)
        expected = torch.nn.functional.group_norm(tx, groups, torch.tensor(gamma), torch.tensor(beta))
    out, cache = forward(x, gamma, beta)
    assert rel_error(out, expected.numpy()) < 1e-10
    dout = rng.standard_normal(out.shape)
    grads = backward(dout, cache)
    for i, (value, grad) in enumerate(zip((x, gamma, beta), grads)):
        def f(v, i=i):
            args = [x, gamma, beta]
            args[i] = v
            return forward(*args)[0]
        assert rel_error(grad, numerical_gradient_array(f, value.copy(), dout)) < THRESHOLD


def test_fused_conv_and_linear_reproduce_batchnorm():
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((3, 2, 6, 6)), rng.standard_normal((5, 2, 3, 3)), rng.standard_normal(5)
    gamma, beta = 1 + rng.random(5), rng.standard_normal(5)
    mean, var = rng.standard_normal(5), 0.5 + rng.random(5)
    state = {"running_mean": mean, "running_var": var}
    conv_out, _ = C.conv_forward_im2col(x, w, b, 1, 1)
    unfused, _ = norm.spatial_batchnorm_forward(conv_out, gamma, beta, dict(state), "test")
    wf, bf = norm.fuse_batchnorm(w, b, gamma, beta, mean, var)
    fused, _ = C.conv_forward_im2col(x, wf, bf, 1, 1)
    assert np.max(np.abs(fused - unfused)) < 1e-5
    xl, wl, bl = rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), rng.standard_normal(5)
    unfused, _ = norm.batchnorm_forward(xl @ wl + bl, gamma, beta, dict(state), "test")
    wf, bf = norm.fuse_batchnorm(wl, bl, gamma, beta, mean, var)
    assert np.max(np.abs(xl @ wf + bf - unfused)) < 1e-5


@pytest.mark.parametrize("call, message", [
    (lambda: norm.batchnorm_forward(np.ones((2, 3, 4)), np.ones(3), np.ones(3), {}), r"x should be \(N, D\)"),
    (lambda: norm.batchnorm_forward(np.ones((2, 3)), np.ones(4), np.ones(4), {}), r"shape \(3,\)"),
    (lambda: norm.batchnorm_forward(np.ones((2, 3)), np.ones(3), np.ones(3), {}, mode="eval"), "'train' or 'test'"),
    (lambda: norm.groupnorm_forward(np.ones((2, 6, 2, 2)), np.ones(6), np.ones(6), 4), "4 equal groups"),
    (lambda: norm.fuse_batchnorm(np.ones(3), np.ones(3), *[np.ones(3)] * 4), "conv .* or linear"),
])
def test_bad_input_gets_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
