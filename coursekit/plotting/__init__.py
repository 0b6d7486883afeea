"""Figures the notebooks draw: computational graphs, loss curves, decision regions, which axes
each normalisation averages over, activations layer by layer, and what a trained CNN has learned."""
from .explain import plot_activations, plot_embedding, plot_filters, plot_fooled, plot_maps
from .graphs import draw_graph
from .layers import norm_mask, plot_layer_histograms, plot_layer_stats, plot_norm_axes
from .images import plot_confusion, plot_gallery, show_images
from .training import plot_curves, plot_decision_boundary, plot_history

__all__ = ["plot_activations", "plot_embedding", "plot_filters", "plot_fooled", "plot_maps", "plot_confusion", "plot_gallery", "show_images", "draw_graph", "norm_mask", "plot_curves", "plot_decision_boundary", "plot_history",
           "plot_layer_histograms", "plot_layer_stats", "plot_norm_axes"]
