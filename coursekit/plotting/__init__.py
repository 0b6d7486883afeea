"""Figures the notebooks draw: computational graphs, loss curves, decision regions."""
from .graphs import draw_graph
from .training import plot_decision_boundary, plot_history

__all__ = ["draw_graph", "plot_decision_boundary", "plot_history"]
