"""Pictures of training: loss curves and a classifier's decision regions on 2-D data."""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np


def plot_history(histories: Mapping[str, Sequence[float]], ax=None, title: str = "training loss",
                 logy: bool = True):
    """One loss curve per entry of ``histories`` (label -> loss per epoch). Returns the axes."""
    ax = ax or plt.gca()
    for label, history in histories.items():
        ax.plot(np.arange(1, len(history) + 1), history, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.legend()
    return ax


def plot_decision_boundary(predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray,
                           y: np.ndarray, ax=None, title: str | None = None, steps: int = 200):
    """Colour the plane by ``predict`` (X (M, 2) -> scores (M, C)) and scatter (X, y) on top.

    X: (N, 2) points, y: (N,) integer labels. Returns the axes.
    """
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary draws 2-D data: X should be (N, 2), got {X.shape}")
    ax = ax or plt.gca()
    pad = 0.1 * (X.max(axis=0) - X.min(axis=0))
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], steps), np.linspace(lo[1], hi[1], steps))
    grid = np.c_[xx.ravel(), yy.ravel()]
    regions = np.argmax(np.asarray(predict(grid)), axis=1).reshape(xx.shape)
    classes = int(max(regions.max(), np.max(y))) + 1
    cmap = plt.get_cmap("tab10", 10)
    ax.contourf(xx, yy, regions, levels=np.arange(classes + 1) - 0.5, cmap=cmap, vmin=-0.5,
                vmax=9.5, alpha=0.3)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap=cmap, vmin=-0.5, vmax=9.5, s=12, edgecolors="k",
               linewidths=0.3)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def plot_curves(history, axes=None, title: str = "", eval_label: str = "test"):
    """Loss and accuracy per epoch, training and evaluation (``eval_label``: what the second
    split is), side by side, from a :class:`coursekit.training.History`. Returns the two axes.
    A history loaded from a weights file (not trained here) says so in the title."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    if getattr(history, "loaded_from", ""):
        title = f"{title} (loaded from {history.loaded_from}: not trained in this run)".strip()
    epochs = np.asarray(history.epoch)
    for ax, what in zip(axes, ("loss", "acc")):
        train = np.asarray(getattr(history, f"train_{what}"), dtype=float)
        test = np.asarray(getattr(history, f"test_{what}"), dtype=float)
        ax.plot(epochs, train, "-o", ms=3, label="train")
        shown = ~np.isnan(test)
        if shown.any():
            ax.plot(epochs[shown], test[shown], "-o", ms=3, label=eval_label)
        ax.set_xlabel("epoch")
        ax.set_ylabel("cross-entropy" if what == "loss" else "accuracy")
        ax.set_title(f"{title} {'loss' if what == 'loss' else 'accuracy'}".strip())
        ax.legend()
    return axes
