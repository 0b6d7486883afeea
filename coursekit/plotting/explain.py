"""Pictures of what a CNN has learned (notebook 08): filter grids, activation maps, heat maps over
images (saliency, Grad-CAM, occlusion), a 2-D embedding coloured by class, fooling images."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _rgb(img) -> np.ndarray:
    """One image (3, H, W), uint8 or float in [0, 1] -> (H, W, 3) floats in [0, 1]."""
    arr = _np(img)
    arr = arr.astype(np.float32) / 255 if arr.dtype == np.uint8 else arr.astype(np.float32)
    return np.clip(arr.transpose(1, 2, 0), 0, 1)


def _grid(n: int, ncols: int, size: float):
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes


def plot_filters(filters, title: str = "", ncols: int = 16, size: float = 0.6):
    """Filters as images (F, kh, kw, 3) in [0, 1] (:func:`normalise_filters`), one small tile each."""
    f = _np(filters)
    fig, axes = _grid(len(f), min(ncols, len(f)), size)
    for ax, tile in zip(axes.flat, f):
        ax.imshow(np.clip(tile, 0, 1), interpolation="nearest")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_activations(image, maps, title: str = "", count: int = 15, ncols: int = 8, size: float = 1.3):
    """The image (3, H, W) and the first ``count`` channels of one image's activations (C, h, w)."""
    maps = _np(maps)[:count]
    fig, axes = _grid(len(maps) + 1, ncols, size)
    axes.flat[0].imshow(_rgb(image))
    axes.flat[0].set_title("input", fontsize=8)
    for k, (ax, m) in enumerate(zip(axes.flat[1:], maps)):
        ax.imshow(m, cmap="viridis")
        ax.set_title(f"channel {k}", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_maps(images, rows: dict, titles=None, size: float = 1.9, alpha: float = 0.5):
    """Images (N, 3, H, W) on the first row, then one row per entry of ``rows`` (name -> maps (N, H,
    W)): each map drawn over its image (jet, each scaled to its own max). Returns the figure."""
    images = [_rgb(im) for im in images]
    fig, axes = plt.subplots(1 + len(rows), len(images), figsize=(len(images) * size, (1 + len(rows)) * size),
                             squeeze=False)
    for j, img in enumerate(images):
        axes[0, j].imshow(img)
        if titles is not None:
            axes[0, j].set_title(titles[j], fontsize=7)
        for i, (name, maps) in enumerate(rows.items(), start=1):
            m = _np(maps[j]).astype(np.float32)
            if m.shape != img.shape[:2]:   # an occlusion map: stretched over the whole image
                extent = (-0.5, img.shape[1] - 0.5, img.shape[0] - 0.5, -0.5)
            else:
                extent = None
            axes[i, j].imshow(img)
            axes[i, j].imshow(m / max(float(np.abs(m).max()), 1e-12), cmap="jet", alpha=alpha, extent=extent,
                              vmin=0, vmax=1, interpolation="bilinear")
            if j == 0:
                axes[i, j].set_ylabel(name, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_embedding(points, labels, classes, title: str = "t-SNE of the pooled features", ax=None):
    """A scatter of 2-D points (N, 2), one colour per class, with a legend."""
    points, labels = _np(points), _np(labels)
    ax = ax or plt.subplots(figsize=(8, 6.5))[1]
    cmap = plt.get_cmap("tab20")
    for k, name in enumerate(classes):
        mine = labels == k
        if mine.any():
            ax.scatter(points[mine, 0], points[mine, 1], s=12, color=cmap(k % 20), label=name)
    ax.legend(fontsize=7, markerscale=1.5, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    return ax


def plot_fooled(x, adv, before, after, magnify: float = 20.0, size: float = 1.9):
    """Each image (N, 3, H, W) in [0, 1], its perturbation (magnified ``magnify`` times around grey)
    and the perturbed image, titled with the predictions ``before`` and ``after`` (strings)."""
    fig, axes = plt.subplots(3, len(x), figsize=(len(x) * size, 3 * size + 0.3), squeeze=False)
    for j in range(len(x)):
        delta = _np(adv[j]) - _np(x[j])
        panels = ((_rgb(x[j]), before[j]), (np.clip(0.5 + magnify * delta.transpose(1, 2, 0), 0, 1),
                                          f"x{magnify:g}, L∞ {np.abs(delta).max() * 255:.1f}/255"),
                  (_rgb(adv[j]), after[j]))
        for i, (img, title) in enumerate(panels):
            axes[i, j].imshow(img)
            axes[i, j].set_title(title, fontsize=7)
            axes[i, j].axis("off")
    fig.tight_layout()
    return fig
