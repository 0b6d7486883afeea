"""The reference network, optimiser and spirals data of notebook 02."""
import numpy as np
import pytest

from coursekit.data import make_spirals
from coursekit.reference.backprop import numerical_gradient, rel_error
from coursekit.data import make_bars
from coursekit.reference.networks import (accuracy, convnet_loss, init_convnet, init_mlp, mlp_loss,
                                           train, two_layer_loss)
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
        assert rel_error(grads[name], num) < 1e-7, name


def test_two_layer_loss_is_the_two_layer_mlp():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((6, 3)), rng.integers(0, 3, 6)
    params = init_mlp([3, 5, 3], seed=2)
    loss, grads = two_layer_loss(params, X, y)
    ref_loss, ref_grads = mlp_loss(params, X, y)
    assert loss == ref_loss and all(np.array_equal(grads[k], ref_grads[k]) for k in params)
    assert np.array_equal(two_layer_loss(params, X), mlp_loss(params, X))


@pytest.mark.parametrize("dims", [[2, 100, 3], [2, 64, 64, 3]])
def test_networks_learn_the_spirals(dims):
    # the accuracies notebook 02 states: >= 95% on training spirals, >= 90% on held-out ones
    X, y = make_spirals(100, 3, seed=0)
    Xv, yv = make_spirals(100, 3, seed=1)
    params = init_mlp(dims, seed=0)
    history = train(params, mlp_loss, X, y, epochs=300, lr=0.5)
    assert history[-1] < history[0] / 5
    assert accuracy(mlp_loss, params, X, y) >= 0.95
    assert accuracy(mlp_loss, params, Xv, yv) >= 0.90


def test_unknown_activation_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        mlp_loss(init_mlp([2, 3]), np.zeros((1, 2)), activation="swish")


def test_convnet_gradients_and_learning():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((3, 2, 6, 6)), rng.integers(0, 3, 3)
    params = init_convnet(2, 6, 4, 3, seed=1)
    _, grads = convnet_loss(params, X, y)
    for name, value in params.items():
        num = numerical_gradient(lambda v: convnet_loss({**params, name: v}, X, y)[0], value.copy())
        assert rel_error(grads[name], num) < 1e-7, name
    X, y = make_bars(75, seed=0)     # what notebook 03 trains on: >= 90% on held-out bars
    Xv, yv = make_bars(100, seed=1)
    params = init_convnet(1, X.shape[-1], 8, 4, seed=0)
    train(params, convnet_loss, X, y, epochs=60, lr=0.1)
    assert accuracy(convnet_loss, params, Xv, yv) >= 0.9
