"""Datasets: small ones generated on the spot, and (later) the 15-Scene download."""
from .toy import make_spirals

__all__ = ["make_spirals"]
