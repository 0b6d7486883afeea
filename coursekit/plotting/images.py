"""Pictures of image classification: sample grids, confusion matrices, galleries of mistakes."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def _hwc(img) -> np.ndarray:
    arr = np.asarray(img)
    return arr.transpose(1, 2, 0) if arr.ndim == 3 and arr.shape[0] in (1, 3) else arr


def show_images(x, titles, ncols: int = 8, size: float = 1.6):
    """A grid of uint8 images x (N, 3, H, W) with one title each. Returns the figure."""
    n = len(x)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * (size + 0.25)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, title in zip(axes.flat, x, titles):
        ax.imshow(_hwc(img))
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def plot_confusion(cm, classes, ax=None, title: str = "confusion matrix (rows: true class)"):
    """A confusion matrix (C, C), rows = true class, shaded by the fraction of each row."""
    cm = np.asarray(cm)
    ax = ax or plt.subplots(figsize=(7, 6))[1]
    frac = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if frac[i, j] > 0.5 else "black")
    ax.set_title(title)
    return ax


def plot_gallery(x, y_true, y_pred, classes, indices, ncols: int = 6):
    """The images ``indices`` of x (N, 3, H, W) uint8, titled 'true -> predicted'."""
    titles = [f"{classes[int(y_true[i])]} → {classes[int(y_pred[i])]}" for i in indices]
    return show_images([x[int(i)] for i in indices], titles, ncols=ncols, size=2.0)
