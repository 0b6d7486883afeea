"""The references this copy of coursekit holds without their bodies: none in the instructor's
copy; a students' wheel (``coursekit release --wheel``) replaces this file with its list."""
LOCKED: frozenset[str] = frozenset()
