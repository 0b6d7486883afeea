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
    """Fail if notebook code called coursekit's reference for any of the exercises ``names``."""
    used = [name for name in names if _reference.recorded_calls(name)]
    if used:
        listed = ", ".join(f"coursekit.reference.{name}" for name in used)
        raise ReferenceUsedError(
            f"your answer calls {listed}, the reference implementation of this exercise. "
            "Write it yourself: an answer that calls the reference scores 0.")


__all__ = ["CheckError", "ReferenceUsedError", "assert_own_work", "passed"]
