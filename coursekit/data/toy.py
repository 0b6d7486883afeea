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
