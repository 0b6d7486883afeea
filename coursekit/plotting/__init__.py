"""Figures the notebooks draw: computational graphs, error curves."""
from .graphs import draw_graph

__all__ = ["draw_graph"]
