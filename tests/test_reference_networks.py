"""The reference network, optimiser and spirals data of notebook 02."""
import numpy as np
import pytest

from coursekit.data import make_spirals
from coursekit.reference.backprop import numerical_gradient, rel_error
from coursekit.reference.networks import init_mlp, mlp_loss, mlp_scores, train_mlp
from coursekit.reference.optim import sgd_momentum


def test_spirals_shape_labels_and_determinism():
    X, y = make_spirals(50, 3, seed=1)
    assert X.shape == (150, 2) and y.shape == (150,) and set(np.unique(y)) == {0, 1, 2}
    assert np.array_equal(X, make_spirals(50, 3, seed=1)[0])
    assert not np.array_equal(X, make_spirals(50, 3, seed=2)[0])
    with pytest.raises(ValueError, match="classes >= 2"):
        make_spirals(10, 1)


def test_momentum_follows_the_lecture_rule():
    w, dw = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    w1, state = sgd_momentum(w, dw, None, lr=0.1, momentum=0.9)
    assert np.allclose(w1, w - 0.1 * dw)                        # delta = dw on the first step
    w2, state = sgd_momentum(w1, dw, state, lr=0.1, momentum=0.9)
    assert np.allclose(state["delta"], 0.9 * dw + dw)           # delta <- 0.9 delta + dw
    assert np.allclose(w2, w1 - 0.1 * (0.9 * dw + dw))


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "elu", "leaky_relu"])
def test_three_layer_gradients_match_numerical(activation):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((5, 3)), rng.integers(0, 4, 5)
    params = init_mlp([3, 6, 5, 4], seed=1)
    _, grads = mlp_loss(params, X, y, activation)
    for name, value in params.items():
        num = numerical_gradient(lambda v: mlp_loss({**params, name: v}, X, y, activation)[0], value.copy())
        assert rel_error(grads[name], num) < 1e-6, name


def test_two_layer_net_learns_the_spirals():
    X, y = make_spirals(100, 3, seed=0)
    params, history = train_mlp(init_mlp([2, 100, 3], seed=0), X, y, epochs=300, lr=0.5)
    accuracy = np.mean(mlp_scores(params, X)[0].argmax(axis=1) == y)
    assert history[-1] < history[0] / 5
    assert accuracy >= 0.95, accuracy


def test_unknown_activation_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        mlp_scores(init_mlp([2, 3]), np.zeros((1, 2)), activation="swish")
