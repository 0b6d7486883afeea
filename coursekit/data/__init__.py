"""Datasets: small ones generated on the spot, and (later) the 15-Scene download."""
from .toy import BAR_CLASSES, make_bars, make_spirals

__all__ = ["BAR_CLASSES", "make_bars", "make_spirals"]
