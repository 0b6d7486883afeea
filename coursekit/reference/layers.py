"""Reference layers for notebook 02 (modular layers in numpy).

One contract everywhere: ``*_forward(x, ...) -> (out, cache)`` and
``*_backward(dout, cache) -> gradients`` (dx alone, or a tuple dx, dparam, ...). Losses
return ``(loss, dx)`` together. Shapes are stated in each docstring; N is the batch size.
"""
from __future__ import annotations

import numpy as np

from . import reference
from .backprop import softmax_nll


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


# --- linear (affine) ------------------------------------------------------------------------

@reference("layers.affine_forward")
def affine_forward(x, w, b):
    """out = x w + b. x: (N, d1, ..., dk), flattened to (N, D); w: (D, M); b: (M,).

    Returns (out, cache): out (N, M), cache = (x, w, b).
    """
    x, w, b = np.asarray(x), np.asarray(w), np.asarray(b)
    _require(x.ndim >= 2, f"affine_forward: x should be (N, D) or (N, d1, ..., dk), got shape {x.shape}")
    d = int(np.prod(x.shape[1:]))
    _require(w.ndim == 2 and w.shape[0] == d,
             f"affine_forward: x has {d} features per sample (shape {x.shape}), so w should be "
             f"({d}, M); got w of shape {w.shape}")
    _require(b.shape == (w.shape[1],),
             f"affine_forward: b should have shape ({w.shape[1]},) to match w {w.shape}, got {b.shape}")
    out = x.reshape(x.shape[0], d) @ w + b
    return out, (x, w, b)


@reference("layers.affine_backward")
def affine_backward(dout, cache):
    """dout: (N, M). Returns (dx, dw, db) with the shapes of x, w and b."""
    x, w, b = cache
    n = x.shape[0]
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(n, -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


# --- activations ----------------------------------------------------------------------------

@reference("layers.relu_forward")
def relu_forward(x):
    """out = max(0, x), elementwise, any shape. Returns (out, cache = x)."""
    return np.maximum(0, x), x


@reference("layers.relu_backward")
def relu_backward(dout, cache):
    """dx = dout where x > 0, else 0."""
    return dout * (cache > 0)


@reference("layers.leaky_relu_forward")
def leaky_relu_forward(x, alpha=0.01):
    """out = x if x > 0 else alpha * x. Returns (out, cache = (x, alpha))."""
    return np.where(x > 0, x, alpha * x), (x, alpha)


@reference("layers.leaky_relu_backward")
def leaky_relu_backward(dout, cache):
    """dx = dout if x > 0 else alpha * dout."""
    x, alpha = cache
    return np.where(x > 0, dout, alpha * dout)


@reference("layers.prelu_forward")
def prelu_forward(x, alpha):
    """Leaky ReLU with a learned slope: one alpha per feature. x: (N, D), alpha: (D,).

    Returns (out, cache = (x, alpha)).
    """
    x, alpha = np.asarray(x), np.asarray(alpha)
    _require(alpha.shape == x.shape[1:],
             f"prelu_forward: alpha should have shape {x.shape[1:]} (one slope per feature of x "
             f"{x.shape}), got {alpha.shape}")
    return np.where(x > 0, x, alpha * x), (x, alpha)


@reference("layers.prelu_backward")
def prelu_backward(dout, cache):
    """Returns (dx, dalpha): dalpha sums dout * x over the batch where x <= 0, shape of alpha."""
    x, alpha = cache
    dx = np.where(x > 0, dout, alpha * dout)
    dalpha = np.sum(np.where(x > 0, 0.0, dout * x), axis=0)
    return dx, dalpha


@reference("layers.sigmoid_forward")
def sigmoid_forward(x):
    """out = 1 / (1 + exp(-x)), computed without overflow. Returns (out, cache = out)."""
    out = np.empty_like(x, dtype=float)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out, out


@reference("layers.sigmoid_backward")
def sigmoid_backward(dout, cache):
    """dx = dout * s * (1 - s), with s the forward output."""
    return dout * cache * (1 - cache)


@reference("layers.tanh_forward")
def tanh_forward(x):
    """out = tanh(x). Returns (out, cache = out)."""
    out = np.tanh(x)
    return out, out


@reference("layers.tanh_backward")
def tanh_backward(dout, cache):
    """dx = dout * (1 - tanh(x)^2)."""
    return dout * (1 - cache ** 2)


@reference("layers.elu_forward")
def elu_forward(x, alpha=1.0):
    """out = x if x > 0 else alpha * (exp(x) - 1). Returns (out, cache = (x, alpha))."""
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))), (x, alpha)


@reference("layers.elu_backward")
def elu_backward(dout, cache):
    """dx = dout if x > 0 else dout * alpha * exp(x)."""
    x, alpha = cache
    return np.where(x > 0, dout, dout * alpha * np.exp(np.minimum(x, 0)))


# --- losses ---------------------------------------------------------------------------------

@reference("layers.euclidean_loss")
def euclidean_loss(x, y):
    """L = 1/(2N) * sum ||x_n - y_n||^2 over the batch. x, y: (N, D).

    Returns (loss, dx) with dx = (x - y) / N.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    _require(x.shape == y.shape, f"euclidean_loss: x {x.shape} and y {y.shape} should have the same shape")
    n = x.shape[0]
    diff = x - y
    return 0.5 * float(np.sum(diff ** 2)) / n, diff / n


@reference("layers.softmax_loss")
def softmax_loss(scores, y):
    """Mean softmax cross-entropy. scores: (N, C); y: (N,) integer labels in [0, C).

    Returns (loss, dscores) with dscores = (softmax(scores) - onehot(y)) / N.
    """
    scores, y = np.asarray(scores, dtype=float), np.asarray(y)
    _require(scores.ndim == 2, f"softmax_loss: scores should be (N, C), got shape {scores.shape}")
    n, c = scores.shape
    _require(y.shape == (n,), f"softmax_loss: y should have shape ({n},), one label per row of "
                              f"scores {scores.shape}, got {y.shape}")
    _require(np.issubdtype(y.dtype, np.integer) and (n == 0 or (y.min() >= 0 and y.max() < c)),
             f"softmax_loss: y should hold integer labels in [0, {c}), got dtype {y.dtype} "
             f"and values {np.unique(y)[:10]}")
    return softmax_nll(scores, y)  # notebook 01's softmax + NLL, with checked inputs


# --- diagnostics ----------------------------------------------------------------------------

@reference("layers.dead_fraction")
def dead_fraction(h):
    """The fraction of units that output 0 for every sample of the batch. h: (N, D) the
    outputs of one layer's activation. Returns a float in [0, 1]."""
    h = np.asarray(h)
    _require(h.ndim == 2, f"dead_fraction: h should be (N, D), one row per sample, got shape {h.shape}")
    return float(np.mean(np.all(h == 0, axis=0)))
