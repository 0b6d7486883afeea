"""Graded cells in a kernel of their own that never runs the student's code (protocol.py lists every message)."""
