"""The reference layers of notebook 02: every backward agrees with numerical gradients in
float64 (rel_error < 1e-7), and bad shapes get an error that says what was expected."""
import numpy as np
import pytest

from coursekit.checks.gradcheck import numerical_gradient_array
from coursekit.reference import layers as L
from coursekit.reference.backprop import numerical_gradient, rel_error

THRESHOLD = 1e-7


def away_from_kinks(x):
    """Keep inputs off 0, where ReLU-like functions have no derivative."""
    x[np.abs(x) < 1e-2] = 0.5
    return x


def num_grad(forward, x, dout):
    """Numerical gradient of sum(forward(x) * dout) with respect to x."""
    return numerical_gradient_array(forward, x, dout)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_affine_gradients(rng):
    x, w, b = rng.standard_normal((4, 2, 3)), rng.standard_normal((6, 5)), rng.standard_normal(5)
    out, cache = L.affine_forward(x, w, b)
    assert out.shape == (4, 5)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = L.affine_backward(dout, cache)
    assert rel_error(dx, num_grad(lambda v: L.affine_forward(v, w, b)[0], x.copy(), dout)) < THRESHOLD
    assert rel_error(dw, num_grad(lambda v: L.affine_forward(x, v, b)[0], w.copy(), dout)) < THRESHOLD
    assert rel_error(db, num_grad(lambda v: L.affine_forward(x, w, v)[0], b.copy(), dout)) < THRESHOLD


@pytest.mark.parametrize("forward, backward, kwargs", [
    (L.relu_forward, L.relu_backward, {}),
    (L.leaky_relu_forward, L.leaky_relu_backward, {"alpha": 0.1}),
    (L.sigmoid_forward, L.sigmoid_backward, {}),
    (L.tanh_forward, L.tanh_backward, {}),
    (L.elu_forward, L.elu_backward, {"alpha": 0.7}),
])
def test_activation_gradients(rng, forward, backward, kwargs):
    x = away_from_kinks(rng.standard_normal((5, 7)))
    out, cache = forward(x, **kwargs)
    dout = rng.standard_normal(out.shape)
    dx = backward(dout, cache)
    assert dx.shape == x.shape
    assert rel_error(dx, num_grad(lambda v: forward(v, **kwargs)[0], x.copy(), dout)) < THRESHOLD


def test_prelu_gradients_include_alpha(rng):
    x, alpha = away_from_kinks(rng.standard_normal((6, 4))), rng.uniform(0.05, 0.5, 4)
    out, cache = L.prelu_forward(x, alpha)
    dout = rng.standard_normal(out.shape)
    dx, dalpha = L.prelu_backward(dout, cache)
    assert rel_error(dx, num_grad(lambda v: L.prelu_forward(v, alpha)[0], x.copy(), dout)) < THRESHOLD
    assert rel_error(dalpha, num_grad(lambda v: L.prelu_forward(x, v)[0], alpha.copy(), dout)) < THRESHOLD


def test_sigmoid_and_elu_do_not_overflow():
    x = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        s, _ = L.sigmoid_forward(x)
        e, _ = L.elu_forward(x)
    assert np.allclose(s, [0, 1 / (1 + np.exp(30)), 0.5, 1 / (1 + np.exp(-30)), 1])
    assert np.allclose(e, [-1, np.expm1(-30), 0, 30, 1000])


@pytest.mark.parametrize("loss", [L.euclidean_loss, L.softmax_loss])
def test_loss_gradients(rng, loss):
    x = rng.standard_normal((6, 4))
    y = rng.integers(0, 4, 6) if loss is L.softmax_loss else rng.standard_normal((6, 4))
    value, dx = loss(x, y)
    assert rel_error(dx, numerical_gradient(lambda v: loss(v, y)[0], x.copy())) < THRESHOLD


def test_softmax_loss_is_stable_and_averaged():
    scores = np.array([[1000.0, 0.0], [0.0, 1000.0]])
    loss, d = L.softmax_loss(scores, np.array([0, 1]))
    assert loss == pytest.approx(0.0, abs=1e-12) and np.all(np.isfinite(d))
    loss_uniform, _ = L.softmax_loss(np.zeros((3, 10)), np.array([0, 4, 9]))
    assert loss_uniform == pytest.approx(np.log(10))


@pytest.mark.parametrize("call, message", [
    (lambda: L.affine_forward(np.ones((4, 3)), np.ones((4, 2)), np.ones(2)), r"w should be \(3, M\)"),
    (lambda: L.affine_forward(np.ones(3), np.ones((3, 2)), np.ones(2)), r"x should be \(N, D\)"),
    (lambda: L.affine_forward(np.ones((4, 3)), np.ones((3, 2)), np.ones(3)), r"b should have shape \(2,\)"),
    (lambda: L.prelu_forward(np.ones((4, 3)), np.ones(4)), r"alpha should have shape \(3,\)"),
    (lambda: L.softmax_loss(np.ones((4, 3)), np.array([0, 1, 2])), r"y should have shape \(4,\)"),
    (lambda: L.softmax_loss(np.ones((2, 3)), np.array([0, 3])), r"integer labels in \[0, 3\)"),
    (lambda: L.softmax_loss(np.ones((2, 3)), np.array([0.0, 1.0])), r"integer labels"),
    (lambda: L.euclidean_loss(np.ones((2, 3)), np.ones((3, 2))), "should have the same shape"),
])
def test_bad_shapes_get_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_array_gradient_is_accurate_and_needs_float_input(rng):
    """numerical_gradient_array meets the float64 threshold on a layer with many outputs, and
    refuses an integer array (whose perturbation by h would be truncated away)."""
    x, w, b = rng.standard_normal((4, 6)), rng.standard_normal((6, 5)), rng.standard_normal(5)
    out, cache = L.affine_forward(x, w, b)
    dout = rng.standard_normal(out.shape)
    _, dw, _ = L.affine_backward(dout, cache)
    f = lambda v: L.affine_forward(x, v, b)[0]  # noqa: E731
    assert rel_error(dw, numerical_gradient_array(f, w.copy(), dout)) < THRESHOLD
    with pytest.raises(TypeError, match="float array"):
        numerical_gradient_array(f, np.ones((6, 5), dtype=int), dout)
