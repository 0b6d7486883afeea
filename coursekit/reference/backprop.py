"""Reference answers for notebook 01, backpropagation by hand.

Layer-style functions follow one contract throughout the course:
``forward(...) -> (out, cache)`` and ``backward(dout, cache) -> gradients``.
"""
from __future__ import annotations

import numpy as np

from . import reference


# --- 1. the scalar graph f(x, y, z) = (x + y) * z ------------------------------------------

@reference("backprop.scalar_graph")
def scalar_graph(x: float, y: float, z: float) -> dict[str, float]:
    """Forward values, local gradients and upstream gradients of f = (x + y) * z.

    Returns a dict with keys q, f (forward), dq_dx, dq_dy (local gradients of the add),
    df_dq, df_dz (local gradients of the multiply, which are also the upstream gradients
    that reach q and z), df_dx, df_dy (chain rule: upstream times local).
    """
    q = x + y
    f = q * z
    dq_dx, dq_dy = 1.0, 1.0
    df_dq, df_dz = z, q
    return dict(q=q, f=f, dq_dx=dq_dx, dq_dy=dq_dy, df_dq=df_dq, df_dz=df_dz,
                df_dx=df_dq * dq_dx, df_dy=df_dq * dq_dy)


# --- 2. gate patterns ----------------------------------------------------------------------

def add_forward(x, y):
    """out = x + y (elementwise, any matching shapes). Returns (out, cache)."""
    return x + y, None


def mul_forward(x, y):
    """out = x * y (elementwise). Returns (out, cache) with cache = (x, y)."""
    return x * y, (x, y)


def max_forward(x, y):
    """out = max(x, y) (elementwise). Returns (out, cache) with cache = (x, y)."""
    return np.maximum(x, y), (x, y)


@reference("backprop.add_backward")
def add_backward(dout, cache):
    """The add gate distributes: dx = dout, dy = dout. Returns (dx, dy)."""
    return dout * 1.0, dout * 1.0


@reference("backprop.mul_backward")
def mul_backward(dout, cache):
    """The multiply gate switches: dx = y * dout, dy = x * dout. Returns (dx, dy)."""
    x, y = cache
    return y * dout, x * dout


@reference("backprop.max_backward")
def max_backward(dout, cache):
    """The max gate routes dout to the larger input (to x on ties). Returns (dx, dy)."""
    x, y = cache
    x_wins = np.asarray(x) >= np.asarray(y)
    return dout * x_wins, dout * ~x_wins


@reference("backprop.gate_graph")
def gate_graph(x: float, y: float, z: float, w: float) -> dict[str, float]:
    """Gradients of f = 2 * (x * y + max(z, w)) with respect to every input.

    Intermediate names: a = x * y, b = max(z, w), c = a + b, f = 2 * c.
    Returns df_dc, df_da, df_db, df_dx, df_dy, df_dz, df_dw.
    """
    df_dc = 2.0
    df_da = df_db = df_dc
    df_dx, df_dy = y * df_da, x * df_da
    df_dz, df_dw = (df_db, 0.0) if z >= w else (0.0, df_db)
    return dict(df_dc=df_dc, df_da=df_da, df_db=df_db, df_dx=df_dx, df_dy=df_dy,
                df_dz=df_dz, df_dw=df_dw)


# --- 3. one step of backprop on a 2-2-1 network ---------------------------------------------

def sigmoid(x):
    """The logistic function 1 / (1 + exp(-x)), elementwise."""
    return 1.0 / (1.0 + np.exp(-x))


@reference("backprop.two_layer_forward")
def two_layer_forward(x, params):
    """Forward pass of a 2-2-1 network: sigmoid hidden units, one linear output unit.

    x: (2,) input. params: W1 (2, 2) [row j = weights into hidden unit j], b1 (2,),
    W2 (1, 2), b2 (1,). Returns (y, cache): y (1,) output, cache = (x, h, y, params)
    with h (2,) the hidden activations.
    """
    h = sigmoid(params["W1"] @ x + params["b1"])
    y = params["W2"] @ h + params["b2"]
    return y, (x, h, y, params)


@reference("backprop.euclidean_loss")
def euclidean_loss(y, t):
    """C = 1/2 * ||y - t||^2 and its gradient dC/dy = y - t. Returns (C, dy)."""
    diff = np.asarray(y, dtype=float) - t
    return 0.5 * float(np.sum(diff ** 2)), diff


@reference("backprop.two_layer_backward")
def two_layer_backward(dy, cache):
    """Backward pass of :func:`two_layer_forward`. dy: (1,) upstream dC/dy.

    Returns a dict of gradients with the shapes of the parameters: W1 (2, 2), b1 (2,),
    W2 (1, 2), b2 (1,).
    """
    x, h, y, params = cache
    dW2 = np.outer(dy, h)                     # (1, 2)
    db2 = dy                                  # (1,)
    dh = params["W2"].T @ dy                  # (2,)
    dz = dh * h * (1 - h)                     # through the hidden sigmoids, (2,)
    dW1 = np.outer(dz, x)                     # (2, 2)
    db1 = dz                                  # (2,)
    return dict(W1=dW1, b1=db1, W2=dW2, b2=db2)


@reference("backprop.sgd_step")
def sgd_step(params, grads, lr):
    """One step of gradient descent: theta <- theta - lr * dC/dtheta. Returns new params."""
    return {name: params[name] - lr * grads[name] for name in params}


# --- 4. the vectorised example f(x, W) = ||W x||^2 ------------------------------------------

@reference("backprop.norm_sq_forward")
def norm_sq_forward(x, W):
    """f = ||W x||^2 for x (D,), W (M, D). Returns (f, cache) with cache = (x, W, q), q = W x."""
    q = W @ x
    return float(q @ q), (x, W, q)


@reference("backprop.norm_sq_backward")
def norm_sq_backward(df, cache):
    """Gradients of f = ||W x||^2: dW = 2 q x^T (M, D) and dx = 2 W^T q (D,). Returns (dx, dW)."""
    x, W, q = cache
    return 2.0 * W.T @ q * df, 2.0 * np.outer(q, x) * df


# --- 5. softmax + negative log-likelihood ---------------------------------------------------

@reference("backprop.softmax_nll")
def softmax_nll(scores, y):
    """Mean negative log-likelihood of softmax(scores) and its gradient.

    scores: (N, C) class scores; y: (N,) integer labels in [0, C).
    Returns (loss, dscores) with dscores = (p - onehot(y)) / N, shape (N, C).
    """
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = scores.shape[0]
    loss = -log_p[np.arange(n), y].mean()
    dscores = np.exp(log_p)
    dscores[np.arange(n), y] -= 1.0
    return float(loss), dscores / n


# --- 6. numerical gradient checking ---------------------------------------------------------

@reference("backprop.numerical_gradient")
def numerical_gradient(f, x, h=1e-5):
    """Centred-difference gradient of a scalar function f at x (any shape, float).

    grad[i] = (f(x + h e_i) - f(x - h e_i)) / (2h). x is perturbed in place and restored.
    Returns an array with the shape of x.
    """
    grad = np.zeros_like(x, dtype=float)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        f_plus = f(x)
        x[i] = old - h
        f_minus = f(x)
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


@reference("backprop.rel_error")
def rel_error(a, b):
    """Largest elementwise relative error max |a - b| / max(1e-8, |a| + |b|)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
