"""Numerical gradients for checking layers: the tool the checkers use on array functions.

For a layer ``out = f(x)`` and an upstream gradient ``dout``, the gradient of
``sum(out * dout)`` with respect to x is exactly what ``backward(dout, cache)`` returns.
Differencing that scalar sum loses precision on small entries (cancellation in a large sum),
so :func:`numerical_gradient_array` differences the output arrays first and contracts with
``dout`` afterwards.
"""
from __future__ import annotations

import numpy as np

GRAD_THRESHOLD = 1e-7  # rel_error below which an analytic gradient counts as right (float64)

#: the entries of each input :func:`check_gradients` differences (all of a smaller input). The
#: checkers compare every entry of a gradient with the reference's already; the numerical
#: gradient shows that the student's gradient is the one of the student's *own* forward, and
#: each entry costs two calls of it (through the judge, about a millisecond each).
NUMERICAL_ENTRIES = 12


def numerical_gradient_array(f, x: np.ndarray, dout: np.ndarray, h: float = 1e-5,
                             entries: list[tuple[int, ...]] | None = None) -> np.ndarray:
    """Centred-difference gradient of sum(f(x) * dout) with respect to x (float64, any shape).

    x is perturbed in place and restored. Returns an array shaped like x; with ``entries``
    (indices into x), only those entries are computed and the others are 0.
    """
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"numerical_gradient_array needs a float array x, got dtype {x.dtype}")
    grad = np.zeros_like(x, dtype=float)
    for i in (np.ndindex(x.shape) if entries is None else entries):
        old = x[i]
        x[i] = old + h
        plus = np.array(f(x), dtype=float)
        x[i] = old - h
        minus = np.array(f(x), dtype=float)
        x[i] = old
        grad[i] = np.sum((plus - minus) * dout) / (2 * h)
    return grad


def sample_entries(shape: tuple[int, ...], most: int, rng) -> list[tuple[int, ...]]:
    """Indices of at most ``most`` distinct entries of an array of ``shape`` (all of them, in
    order, if it has no more), drawn with ``rng``."""
    size = int(np.prod(shape))
    flat = range(size) if size <= most else sorted(rng.choice(size, most, replace=False))
    return [tuple(int(k) for k in np.unravel_index(i, shape)) for i in flat]


def check_gradients(layer: str, forward, inputs: dict, grads: dict, dout,
                    threshold: float = GRAD_THRESHOLD) -> float:
    """Compare each of a student's gradients with a numerical gradient of their forward, on
    :data:`NUMERICAL_ENTRIES` entries of each input (all of a smaller one).

    forward(**inputs) -> (out, cache); grads: input name -> the student's gradient; dout:
    the upstream gradient used. Raises CheckError naming the first gradient whose rel_error
    is not below ``threshold``; returns the largest rel_error.
    """
    from . import CheckError
    from ..reference.backprop import rel_error

    from .diagnose import _low_precision

    worst = 0.0
    low = _low_precision(forward(**inputs)[0])
    rng = np.random.default_rng(len(inputs))   # the same entries every time
    for name, value in inputs.items():
        def f(v, name=name):
            return np.asarray(forward(**{**inputs, name: v})[0], dtype=float)
        x, got = np.array(value, dtype=float), np.asarray(grads[name], dtype=float)
        if got.shape != x.shape:   # before the numerical gradient's calls of the forward
            raise CheckError(f"{layer}: d{name} has shape {got.shape}; it should have {name}'s shape {x.shape}.")
        entries = sample_entries(x.shape, NUMERICAL_ENTRIES, rng)
        with np.errstate(all="ignore"):
            num = numerical_gradient_array(f, x, dout, entries=entries)
        picked = tuple(np.array(entries).T) if entries else ()
        err = rel_error(got[picked], num[picked])
        if not err < threshold:
            why = (f" Your forward computes in {low}: a numerical gradient's small steps need "
                   "float64, numpy's default (no .astype(np.float32))." if low else "")
            raise CheckError(f"{layer}: d{name} disagrees with the numerical gradient of your "
                             f"forward (rel_error {err:.2g}, should be < {threshold:g}).{why}")
        worst = max(worst, err)
    return worst
