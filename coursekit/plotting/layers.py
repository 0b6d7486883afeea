"""Pictures of what happens inside a network: which values each normalisation averages over
(notebook 04), and the distribution of activations layer by layer (notebook 05)."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

NORM_SETS = ("batch norm", "layer norm", "instance norm", "group norm")


def norm_mask(kind: str, n: int = 6, c: int = 8, groups: int = 4, sample: int = 2,
              channel: int = 3) -> np.ndarray:
    """(N, C) boolean mask of the (sample, channel) cells that share one set of statistics
    with cell (sample, channel); each cell stands for all H x W values of that channel."""
    mask = np.zeros((n, c), dtype=bool)
    if kind == "batch norm":
        mask[:, channel] = True
    elif kind == "layer norm":
        mask[sample, :] = True
    elif kind == "instance norm":
        mask[sample, channel] = True
    elif kind == "group norm":
        size = c // groups
        start = channel // size * size
        mask[sample, start:start + size] = True
    else:
        raise ValueError(f"unknown normalisation {kind!r}: expected one of {NORM_SETS}")
    return mask


def plot_norm_axes(n: int = 6, c: int = 8, groups: int = 4):
    """Four panels, one per normalisation: an N x C grid (each cell = one channel's H x W
    values of one sample) with one set of shared statistics coloured. Returns the figure."""
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
    for ax, kind in zip(axes, NORM_SETS):
        ax.imshow(norm_mask(kind, n, c, groups).T, cmap="Blues", vmin=-0.3, vmax=1.2,
                  origin="lower")
        ax.set_xticks(np.arange(-0.5, n), minor=True)
        ax.set_yticks(np.arange(-0.5, c), minor=True)
        ax.grid(which="minor", color="grey", linewidth=0.5)
        ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        ax.set_xlabel("N (samples)")
        ax.set_ylabel("C (channels)")
        title = f"{kind} (G = {groups})" if kind == "group norm" else kind
        ax.set_title(title + "\none mean and variance over\nthe blue cells x H x W", fontsize=9)
    fig.tight_layout()
    return fig


def plot_layer_histograms(activations: Sequence[np.ndarray], title: str = "", bins: int = 50,
                          value_range: tuple[float, float] | None = None):
    """One histogram per layer of the values in ``activations`` (a list of arrays, layer 1
    first). Returns the figure."""
    layers = len(activations)
    fig, axes = plt.subplots(1, layers, figsize=(1.6 * layers, 1.8), sharey=True)
    axes = np.atleast_1d(axes)
    if value_range is None:
        top = max(float(np.abs(a).max()) for a in activations) or 1.0
        value_range = (-top, top)
    for i, (ax, a) in enumerate(zip(axes, activations), start=1):
        counts, edges = np.histogram(np.ravel(a), bins=bins, range=value_range)
        ax.stairs(counts, edges, fill=True, color="C0")   # one artist, not one bar per bin
        ax.set_title(f"layer {i}", fontsize=8)
        ax.tick_params(labelsize=6)
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_layer_stats(stats: Mapping[str, Sequence[tuple[float, float]]], logy: bool = False):
    """Per-layer mean (left) and standard deviation (right), one line per entry of ``stats``
    (label -> [(mean, std) per layer]). Returns the figure."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    for label, rows in stats.items():
        layers = np.arange(1, len(rows) + 1)
        left.plot(layers, [m for m, _ in rows], marker="o", label=label)
        right.plot(layers, [s for _, s in rows], marker="o", label=label)
    left.set_title("mean of each layer's activations")
    right.set_title("standard deviation")
    for ax in (left, right):
        ax.set_xlabel("layer")
    if logy:
        right.set_yscale("log")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig
