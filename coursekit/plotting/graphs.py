"""Draw a small computational graph with forward values and gradients on it."""
from __future__ import annotations

import matplotlib.pyplot as plt


def draw_graph(nodes: dict[str, tuple[float, float]], edges: list[tuple[str, str]], *,
               forward: dict[str, float] | None = None, backward: dict[str, float] | None = None,
               title: str = "", ax=None):
    """Draw nodes (name -> (x, y) position) joined by directed edges (src, dst).

    ``forward`` values are written in green above a node, ``backward`` gradients in red
    below it. Operation nodes are named like "+", "*", "max" (anything that is not a
    variable in ``forward``) and drawn as circles. Returns the matplotlib Axes.
    """
    forward, backward = forward or {}, backward or {}
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    for src, dst in edges:
        (x0, y0), (x1, y1) = nodes[src], nodes[dst]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="->", color="0.4", shrinkA=14, shrinkB=14))
    for name, (x, y) in nodes.items():
        op = name.split("#")[0]
        is_op = name not in forward
        ax.text(x, y, op, ha="center", va="center", fontsize=12,
                bbox=dict(boxstyle="circle" if is_op else "round", fc="0.93" if is_op else "white",
                          ec="0.3"))
        if name in forward:
            ax.text(x, y + 0.28, f"{forward[name]:g}", ha="center", color="tab:green", fontsize=11)
        if name in backward:
            ax.text(x, y - 0.42, f"{backward[name]:g}", ha="center", color="tab:red", fontsize=11)
    xs = [p[0] for p in nodes.values()]
    ys = [p[1] for p in nodes.values()]
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    ax.set_ylim(min(ys) - 0.7, max(ys) + 0.7)
    ax.set_axis_off()
    if title:
        ax.set_title(title + "  (green: forward value, red: gradient of the output)")
    return ax
