"""A fully connected network of any depth built from the reference layers (notebook 02).

affine - activation - ... - affine, with a softmax cross-entropy loss. Parameters live in a
dict: W1, b1, ..., WL, bL; W_i has shape (d_{i-1}, d_i).
"""
from __future__ import annotations

import numpy as np

from . import layers as L
from .optim import sgd_momentum

ACTIVATIONS = {
    "relu": (L.relu_forward, L.relu_backward),
    "leaky_relu": (L.leaky_relu_forward, L.leaky_relu_backward),
    "sigmoid": (L.sigmoid_forward, L.sigmoid_backward),
    "tanh": (L.tanh_forward, L.tanh_backward),
    "elu": (L.elu_forward, L.elu_backward),
}


def init_mlp(dims: list[int], seed: int = 0) -> dict[str, np.ndarray]:
    """He-initialised weights and zero biases for layer sizes dims = [D, H1, ..., C]."""
    if len(dims) < 2:
        raise ValueError(f"init_mlp needs at least an input and an output size, got dims={dims}")
    rng = np.random.default_rng(seed)
    params = {}
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:]), start=1):
        params[f"W{i}"] = rng.standard_normal((d_in, d_out)) * np.sqrt(2.0 / d_in)
        params[f"b{i}"] = np.zeros(d_out)
    return params


def mlp_scores(params, X, activation="relu"):
    """Forward pass. X: (N, D). Returns (scores (N, C), caches)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: expected one of {sorted(ACTIVATIONS)}")
    forward = ACTIVATIONS[activation][0]
    depth = len(params) // 2
    caches, h = [], X
    for i in range(1, depth + 1):
        h, affine_cache = L.affine_forward(h, params[f"W{i}"], params[f"b{i}"])
        act_cache = None
        if i < depth:
            h, act_cache = forward(h)
        caches.append((affine_cache, act_cache))
    return h, caches


def mlp_loss(params, X, y, activation="relu"):
    """Mean softmax cross-entropy and the gradients of every parameter. Returns (loss, grads)."""
    scores, caches = mlp_scores(params, X, activation)
    loss, dh = L.softmax_loss(scores, y)
    backward = ACTIVATIONS[activation][1]
    grads = {}
    for i in range(len(caches), 0, -1):
        affine_cache, act_cache = caches[i - 1]
        if act_cache is not None:
            dh = backward(dh, act_cache)
        dh, grads[f"W{i}"], grads[f"b{i}"] = L.affine_backward(dh, affine_cache)
    return loss, grads


def train_mlp(params, X, y, *, activation="relu", epochs=300, lr=0.5, momentum=0.9):
    """Full-batch SGD with momentum. Returns (params, loss history)."""
    states = {name: None for name in params}
    history = []
    for _ in range(epochs):
        loss, grads = mlp_loss(params, X, y, activation)
        history.append(loss)
        for name in params:
            params[name], states[name] = sgd_momentum(params[name], grads[name], states[name],
                                                      lr=lr, momentum=momentum)
    return params, history
