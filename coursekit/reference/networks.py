"""Networks built from the reference layers, and the training loop (notebooks 02 and 03).

Every network is a loss function with the cs231n convention
``loss_fn(params, X, y=None) -> scores (N, C)`` when y is None, else ``(loss, grads)``,
with ``params`` and ``grads`` dicts keyed alike (W1, b1, ...). :func:`train` trains any of
them with SGD with momentum.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import conv
from . import layers as L
from . import normalisation as norm
from . import reference
from .optim import sgd_momentum

ACTIVATIONS = {
    "relu": (L.relu_forward, L.relu_backward),
    "leaky_relu": (L.leaky_relu_forward, L.leaky_relu_backward),
    "sigmoid": (L.sigmoid_forward, L.sigmoid_backward),
    "tanh": (L.tanh_forward, L.tanh_backward),
    "elu": (L.elu_forward, L.elu_backward),
}


def init_mlp(dims: list[int], seed: int = 0, scale: float | None = None) -> dict[str, np.ndarray]:
    """Weights and zero biases for layer sizes dims = [D, H1, ..., C]; W_i: (d_{i-1}, d_i).

    scale: the weights' standard deviation; None for He initialisation, sqrt(2 / d_{i-1}).
    """
    if len(dims) < 2:
        raise ValueError(f"init_mlp needs at least an input and an output size, got dims={dims}")
    rng = np.random.default_rng(seed)
    params = {}
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:]), start=1):
        std = np.sqrt(2.0 / d_in) if scale is None else scale
        params[f"W{i}"] = rng.standard_normal((d_in, d_out)) * std
        params[f"b{i}"] = np.zeros(d_out)
    return params


@reference("networks.two_layer_loss")
def two_layer_loss(params, X, y=None):
    """affine - ReLU - affine - softmax. params: W1 (D, H), b1 (H,), W2 (H, C), b2 (C,).

    X: (N, D). Returns scores (N, C) if y is None, else (loss, grads).
    """
    h, cache1 = L.affine_forward(X, params["W1"], params["b1"])
    a, cache_relu = L.relu_forward(h)
    scores, cache2 = L.affine_forward(a, params["W2"], params["b2"])
    if y is None:
        return scores
    loss, dscores = L.softmax_loss(scores, y)
    grads = {}
    da, grads["W2"], grads["b2"] = L.affine_backward(dscores, cache2)
    dh = L.relu_backward(da, cache_relu)
    _, grads["W1"], grads["b1"] = L.affine_backward(dh, cache1)
    return loss, grads


@reference("networks.mlp_loss")
def mlp_loss(params, X, y=None, activation="relu"):
    """A fully connected net of any depth: (affine - activation) x (L-1), affine, softmax.

    params: W1, b1, ..., WL, bL. Returns scores (N, C) if y is None, else (loss, grads).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: expected one of {sorted(ACTIVATIONS)}")
    forward, backward = ACTIVATIONS[activation]
    depth = len(params) // 2
    caches, h = [], X
    for i in range(1, depth + 1):
        h, affine_cache = L.affine_forward(h, params[f"W{i}"], params[f"b{i}"])
        act_cache = None
        if i < depth:
            h, act_cache = forward(h)
        caches.append((affine_cache, act_cache))
    if y is None:
        return h
    loss, dh = L.softmax_loss(h, y)
    grads = {}
    for i in range(depth, 0, -1):
        affine_cache, act_cache = caches[i - 1]
        if act_cache is not None:
            dh = backward(dh, act_cache)
        dh, grads[f"W{i}"], grads[f"b{i}"] = L.affine_backward(dh, affine_cache)
    return loss, grads


@reference("networks.train")
def train(params, loss_fn: Callable, X, y, *, epochs=300, lr=0.5, momentum=0.9):
    """Full-batch SGD with momentum: each epoch one gradient of the whole of (X, y) and one
    :func:`sgd_momentum` step per parameter. Updates ``params`` in place.

    Returns the loss before each step (a list of ``epochs`` floats).
    """
    states = {name: None for name in params}
    history = []
    for _ in range(epochs):
        loss, grads = loss_fn(params, X, y)
        history.append(float(loss))
        for name in params:
            params[name], states[name] = sgd_momentum(params[name], grads[name], states[name],
                                                      lr=lr, momentum=momentum)
    return history


def accuracy(loss_fn: Callable, params, X, y) -> float:
    """The fraction of samples whose highest score is their label."""
    return float(np.mean(np.argmax(loss_fn(params, X), axis=1) == y))


# --- a tiny convnet (notebook 03) -----------------------------------------------------------

def init_convnet(in_channels: int, size: int, filters: int, classes: int, seed: int = 0):
    """He-initialised weights of :func:`convnet_loss` for (in_channels, size, size) inputs:
    W1 (F, C, 3, 3), b1 (F,), W2 (F * size/2 * size/2, classes), b2 (classes,)."""
    rng = np.random.default_rng(seed)
    hidden = filters * (size // 2) ** 2
    return dict(W1=rng.standard_normal((filters, in_channels, 3, 3)) * np.sqrt(2 / (9 * in_channels)),
                b1=np.zeros(filters),
                W2=rng.standard_normal((hidden, classes)) * np.sqrt(2 / hidden),
                b2=np.zeros(classes))


@reference("networks.convnet_loss")
def convnet_loss(params, X, y=None):
    """conv 3x3 (stride 1, pad 1) - ReLU - 2x2 max pool - affine - softmax.

    X: (N, C, H, W) with even H and W. Returns scores (N, classes) if y is None, else
    (loss, grads).
    """
    h, conv_cache = conv.conv_forward_im2col(X, params["W1"], params["b1"], stride=1, pad=1)
    a, relu_cache = L.relu_forward(h)
    p, pool_cache = conv.max_pool_forward(a, size=2, stride=2)
    scores, affine_cache = L.affine_forward(p, params["W2"], params["b2"])
    if y is None:
        return scores
    loss, dscores = L.softmax_loss(scores, y)
    grads = {}
    dp, grads["W2"], grads["b2"] = L.affine_backward(dscores, affine_cache)
    da = conv.max_pool_backward(dp, pool_cache)
    dh = L.relu_backward(da, relu_cache)
    _, grads["W1"], grads["b1"] = conv.conv_backward_im2col(dh, conv_cache)
    return loss, grads


# --- a fully connected net with batch norm (notebook 04) ------------------------------------

def init_bn_mlp(dims: list[int], seed: int = 0, scale: float | None = None) -> dict[str, np.ndarray]:
    """:func:`init_mlp`'s weights plus gamma_i = 1 and beta_i = 0 for each hidden layer i."""
    params = init_mlp(dims, seed, scale)
    for i, width in enumerate(dims[1:-1], start=1):
        params[f"gamma{i}"], params[f"beta{i}"] = np.ones(width), np.zeros(width)
    return params


@reference("networks.bn_mlp_loss")
def bn_mlp_loss(params, X, y=None, *, state, mode=None, momentum=0.9):
    """(affine - batch norm - ReLU) x (L-1), affine, softmax.

    params: W1, b1, gamma1, beta1, ..., WL, bL. state: a dict holding each hidden layer's
    running statistics (filled on the first training call). mode: "train" (batch statistics,
    running ones updated) or "test" (running statistics); by default "train" when y is given
    and "test" when it is not, so ``loss_fn(params, X)`` predicts like a deployed net.
    Returns scores (N, C) if y is None, else (loss, grads).
    """
    return _bn_mlp(params, X, y, state, mode, momentum, norm.batchnorm_forward, norm.batchnorm_backward_alt)


def bn_mlp_training_loss(batchnorm_forward: Callable, batchnorm_backward: Callable) -> Callable:
    """The training loss of :func:`bn_mlp_loss` built on the batch norm layer given (notebook
    04 gives the student's own, so their batch norm trains the net):
    ``loss_fn(params, X, y, *, state, momentum=0.9) -> (loss, grads)``, in train mode. It gives
    no scores: predicting with the net is exercise 7."""
    def loss_fn(params, X, y, *, state, momentum=0.9):
        if y is None:
            raise ValueError("bn_mlp_training_loss trains: give it the labels y (it returns (loss, grads), "
                             "not scores; predict with your own bn_mlp_forward)")
        return _bn_mlp(params, X, y, state, "train", momentum, batchnorm_forward, batchnorm_backward)
    return loss_fn


def _bn_mlp(params, X, y, state, mode, momentum, bn_forward, bn_backward):
    mode = mode or ("test" if y is None else "train")
    depth = sum(1 for name in params if name.startswith("W"))
    caches, h = [], X
    for i in range(1, depth + 1):
        h, affine_cache = L.affine_forward(h, params[f"W{i}"], params[f"b{i}"])
        bn_cache = relu_cache = None
        if i < depth:
            h, bn_cache = bn_forward(h, params[f"gamma{i}"], params[f"beta{i}"],
                                     state.setdefault(i, {}), mode, momentum)
            h, relu_cache = L.relu_forward(h)
        caches.append((affine_cache, bn_cache, relu_cache))
    if y is None:
        return h
    loss, dh = L.softmax_loss(h, y)
    grads = {}
    for i in range(depth, 0, -1):
        affine_cache, bn_cache, relu_cache = caches[i - 1]
        if bn_cache is not None:
            dh = L.relu_backward(dh, relu_cache)
            dh, grads[f"gamma{i}"], grads[f"beta{i}"] = bn_backward(dh, bn_cache)
        dh, grads[f"W{i}"], grads[f"b{i}"] = L.affine_backward(dh, affine_cache)
    return loss, grads
