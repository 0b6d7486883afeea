"""Checkers that the notebooks' self-check and graded cells call.

A checker either prints a short confirmation or raises :class:`CheckError` whose message
names the likely mistake ("dW has shape (3, 4), expected (4, 3): a missing transpose?").
In Jupyter a CheckError shows only that message, not a traceback through coursekit.
"""
from __future__ import annotations

from .. import reference as _reference


class CheckError(AssertionError):
    """A self-check or graded check failed; the message says what is wrong."""

    def _render_traceback_(self):  # IPython shows this instead of the full traceback
        return [f"\x1b[0;31m✗ {type(self).__name__}\x1b[0m: {line}" if i == 0 else f"  {line}"
                for i, line in enumerate(str(self).splitlines())]


class ReferenceUsedError(CheckError):
    """The answer calls coursekit's reference implementation of the exercise being graded."""


def passed(message: str, quiet: bool = False) -> None:
    if not quiet:
        print(f"✓ {message}")


def assert_own_work(*names: str) -> None:
    """Fail if the student's code uses coursekit's reference for any of the exercises ``names``."""
    used = _reference.references_used(names)
    if used:
        listed = ", ".join(f"coursekit.reference.{name} ({how})" for name, how in used.items())
        raise ReferenceUsedError(
            f"your answer uses {listed}, the reference implementation of this exercise. "
            "Write it yourself: an answer that uses the reference scores 0.")


__all__ = ["CheckError", "ReferenceUsedError", "assert_own_work", "passed"]
