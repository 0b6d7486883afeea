"""Benchmarks: scripts that measure, run as ``python -m coursekit.benchmarks.<name>``."""
