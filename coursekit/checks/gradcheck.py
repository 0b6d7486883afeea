"""Numerical gradients for checking layers: the tool the checkers use on array functions.

For a layer ``out = f(x)`` and an upstream gradient ``dout``, the gradient of
``sum(out * dout)`` with respect to x is exactly what ``backward(dout, cache)`` returns.
Differencing that scalar sum loses precision on small entries (cancellation in a large sum),
so :func:`numerical_gradient_array` differences the output arrays first and contracts with
``dout`` afterwards.
"""
from __future__ import annotations

import numpy as np


def numerical_gradient_array(f, x: np.ndarray, dout: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Centred-difference gradient of sum(f(x) * dout) with respect to x (float64, any shape).

    x is perturbed in place and restored. Returns an array shaped like x.
    """
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"numerical_gradient_array needs a float array x, got dtype {x.dtype}")
    grad = np.zeros_like(x, dtype=float)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        plus = np.array(f(x), dtype=float)
        x[i] = old - h
        minus = np.array(f(x), dtype=float)
        x[i] = old
        grad[i] = np.sum((plus - minus) * dout) / (2 * h)
    return grad
