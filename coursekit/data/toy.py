"""Small 2-D datasets generated in the notebooks, so they run anywhere without downloads."""
from __future__ import annotations

import numpy as np


def make_spirals(n_per_class: int = 100, classes: int = 3, noise: float = 0.2,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one per class: not linearly separable.

    Returns X (N, 2) float64 in about [-1, 1]^2 and y (N,) int64 labels, N = n_per_class * classes.
    """
    if n_per_class < 1 or classes < 2:
        raise ValueError(f"make_spirals needs n_per_class >= 1 and classes >= 2, got "
                         f"{n_per_class} and {classes}")
    rng = np.random.default_rng(seed)
    X = np.zeros((n_per_class * classes, 2))
    y = np.zeros(n_per_class * classes, dtype=np.int64)
    for k in range(classes):
        idx = slice(n_per_class * k, n_per_class * (k + 1))
        radius = np.linspace(0.0, 1.0, n_per_class)
        angle = np.linspace(k * 4.0, (k + 1) * 4.0, n_per_class) + rng.standard_normal(n_per_class) * noise
        X[idx] = np.c_[radius * np.sin(angle), radius * np.cos(angle)]
        y[idx] = k
    return X, y


BAR_CLASSES = ("horizontal", "vertical", "diagonal", "anti-diagonal")


def make_bars(n_per_class: int = 100, size: int = 12, noise: float = 0.2, bars: int = 3,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Small greyscale images of ``bars`` short bars at random places, all in one direction,
    labelled by that direction
    (:data:`BAR_CLASSES`): a task a convnet solves by learning oriented edge filters.

    Returns X (N, 1, size, size) float64 and y (N,) int64 labels, N = 4 * n_per_class,
    the classes interleaved.
    """
    if n_per_class < 1 or size < 6:
        raise ValueError(f"make_bars needs n_per_class >= 1 and size >= 6, got {n_per_class} and {size}")
    rng = np.random.default_rng(seed)
    n = n_per_class * len(BAR_CLASSES)
    X = rng.standard_normal((n, 1, size, size)) * noise
    y = np.arange(n) % len(BAR_CLASSES)
    steps = {0: (0, 1), 1: (1, 0), 2: (1, 1), 3: (1, -1)}
    for k in range(n):
        di, dj = steps[int(y[k])]
        for _ in range(bars):
            length = int(rng.integers(size // 3, size // 2 + 1))
            i0 = int(rng.integers(0, size - di * (length - 1)))
            lo, hi = (length - 1, size) if dj < 0 else (0, size - dj * (length - 1))
            j0 = int(rng.integers(lo, hi))
            for t in range(length):
                X[k, 0, i0 + di * t, j0 + dj * t] = 1.0
    return X, y.astype(np.int64)
