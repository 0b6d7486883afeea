"""Compare a student's value with the expected one and say what the likely mistake is.

:func:`compare` runs the diagnoses in order and raises :class:`CheckError` with the first
that fits: missing value, wrong type, NaN, a shape that is the transpose or misses an axis,
values that are transposed, of the wrong sign, or off by a factor of N or 2, and any
exercise-specific wrong variants the caller passes in ``mistakes``.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from . import CheckError

RTOL = 1e-6
ATOL = 1e-9


def close(a, b, rtol: float = RTOL, atol: float = ATOL) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def _as_array(name: str, value) -> np.ndarray:
    if value is None:
        raise CheckError(f"{name} is None: you have not computed it yet (or forgot to return it).")
    if value is Ellipsis:
        raise CheckError(f"{name} is still the placeholder `...`: replace it with your answer.")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise CheckError(
            f"{name} should be a number or an array of numbers, got {type(value).__name__}: "
            f"{value!r:.80}") from None
    if arr.dtype == object:
        raise CheckError(f"{name} should be numeric, got an object array.")
    return arr


def _is_subsequence(short: tuple, long: tuple) -> bool:
    it = iter(long)
    return all(any(d == e for e in it) for d in short)


def _shape_hint(name: str, got: tuple, want: tuple, n: int | None) -> str:
    msg = f"{name} has shape {got}, expected {want}"
    if len(got) == len(want) == 2 and got == want[::-1]:
        return msg + ": a missing transpose?"
    if len(got) + 1 == len(want) and any(want[:i] + want[i + 1:] == got for i in range(len(want))):
        return msg + ": did you sum or average over an axis you should have kept?"
    if len(got) > len(want) and _is_subsequence(want, got):
        return msg + ": did you forget to sum over an axis (the batch axis, for a bias)?"
    if len(got) == len(want) and sorted(got) != sorted(want) and n is not None and n in got:
        return msg + ": did you sum over the wrong axis?"
    if int(np.prod(got)) == int(np.prod(want)):
        return msg + ": the right number of values in the wrong arrangement (reshape, or a transpose?)"
    return msg + "."


def _constant_ratio(got: np.ndarray, want: np.ndarray) -> float | None:
    mask = np.abs(want) > 1e-12
    if not mask.any() or np.any(np.abs(got[~mask]) > 1e-9):
        return None
    ratios = got[mask] / want[mask]
    r = float(np.median(ratios))
    return r if np.allclose(ratios, r, rtol=1e-4) else None


#: how close a value computed in float32 gets: enough to tell "right, but in float32"
FLOAT32_RTOL = 1e-4


def _low_precision(value) -> str:
    """'float32' (or 'float16', ...) when ``value`` is an array, scalar or tensor of a float
    type below float64, else ''."""
    dtype = getattr(value, "dtype", None)
    text = str(dtype).replace("torch.", "") if dtype is not None else ""
    return text if text in ("float32", "float16", "bfloat16") else ""


def compare(name: str, got, expected, *, n: int | None = None,
            mistakes: Iterable[tuple[object, str]] = (), rtol: float = RTOL,
            atol: float = ATOL) -> None:
    """Raise CheckError unless ``got`` equals ``expected`` (to rtol/atol).

    n: the batch size, if the value is a batch average or sum (diagnoses a factor of N).
    mistakes: (wrong_value, message) pairs: if ``got`` matches a known wrong variant, its
    message is the diagnosis.
    """
    want = np.asarray(expected, dtype=float)
    got_arr = _as_array(name, got)
    if got_arr.shape != want.shape and got_arr.size == want.size == 1:
        got_arr = got_arr.reshape(want.shape)
    if got_arr.shape != want.shape:
        raise CheckError(_shape_hint(name, got_arr.shape, want.shape, n))
    if not np.all(np.isfinite(got_arr)):
        raise CheckError(
            f"{name} contains NaN or inf: an overflow (exp of a large number?) or a division by zero.")
    if close(got_arr, want, rtol, atol):
        return
    low = _low_precision(got)
    if low and close(got_arr, want, FLOAT32_RTOL, max(atol, 1e-6)):
        raise CheckError(f"{name} is right only to {low} precision: it was computed in {low}, which "
                         f"keeps about 7 digits, and the checks compare to rtol {rtol:g}. Compute in "
                         "float64, numpy's default (no .astype(np.float32) or dtype=np.float32).")
    for wrong, message in mistakes:
        if close(got_arr, wrong, rtol, atol):
            raise CheckError(f"{name}: {message}")
    if want.ndim == 2 and want.shape[0] == want.shape[1] and close(got_arr, want.T, rtol, atol):
        raise CheckError(f"{name} holds the transposed values: swap the order of the outer product "
                         "(or transpose).")
    if close(got_arr, -want, rtol, atol):
        raise CheckError(f"{name} has the wrong sign: y - p instead of p - y, or + instead of -?")
    ratio = _constant_ratio(got_arr, want)
    if ratio is not None and n is not None and n > 1:
        if np.isclose(ratio, n, rtol=1e-3):
            raise CheckError(f"{name} is off by a factor of N = {n}: did you sum instead of "
                             "averaging over the batch (a missing 1/N)?")
        if np.isclose(ratio, 1 / n, rtol=1e-3):
            raise CheckError(f"{name} is off by a factor of 1/N = 1/{n}: did you average instead "
                             "of summing (or divide by N twice)?")
    if ratio is not None and np.isclose(abs(ratio), 2, rtol=1e-3):
        raise CheckError(f"{name} is twice the expected value: a stray factor of 2?")
    if ratio is not None and np.isclose(abs(ratio), 0.5, rtol=1e-3):
        raise CheckError(f"{name} is half the expected value: a missing factor of 2 "
                         "(the derivative of a square, or the 2h of a centred difference)?")
    floored = np.floor(want)
    if not close(want, floored, rtol, atol) and close(got_arr, floored, rtol, atol):
        raise CheckError(f"{name} holds whole numbers where fractions were expected: an integer "
                         "(floor) division // where / was meant, or an integer array (np.zeros(..., "
                         "dtype=int), or an int input) that stored the results rounded down?")
    # the measure the check tests: |got - expected| against atol + rtol * |expected|
    excess = np.abs(got_arr - want) / (atol + rtol * np.abs(want))
    where = np.unravel_index(int(np.argmax(excess)), excess.shape) if excess.ndim else ()
    g, w = float(got_arr[where]), float(want[where])
    relative = abs(g - w) / abs(w) if w else abs(g - w)
    at = f" at index {tuple(int(i) for i in where)}" if where else ""
    dtype = f" (your values are {low}: compute in float64)" if low else ""
    raise CheckError(f"{name} is wrong{at}: {g:.6g}, expected {w:.6g} (relative error {relative:.2g}; "
                     f"the check allows {rtol:g}){dtype}.")


def compare_dict(name: str, got, expected: dict, *, keys: Sequence[str] | None = None,
                 **kwargs) -> None:
    """Compare each entry of a dict of arrays (gradients keyed by parameter name)."""
    if not isinstance(got, dict):
        raise CheckError(f"{name} should be a dict with keys {sorted(expected)}, "
                         f"got {type(got).__name__}.")
    missing = sorted(set(keys or expected) - set(got))
    if missing:
        raise CheckError(f"{name} is missing the keys {missing}.")
    for key in keys or expected:
        compare(f"{name}[{key!r}]", got[key], expected[key], **kwargs)
