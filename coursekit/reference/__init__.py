"""Reference implementations of the course's exercises.

Later notebooks build on earlier exercises through these functions, and the checkers use
them to compute expected answers. They must not be a way around an exercise, so every
public reference function is wrapped by :func:`reference`: a call made *directly from
notebook code* (an answer cell, or a function the student wrote) is recorded under the
exercise's name. Calls made by coursekit itself (a checker computing the expected value)
are not recorded, except from the call sites where a checker runs the *student's* function
(registered with :func:`student_call_site`): there a reference passed off as the student's
own function, ``softmax_nll = coursekit.reference.backprop.softmax_nll``, is recorded too.

The graded test of an exercise ends with :func:`coursekit.checks.assert_own_work`, which
fails, and so scores 0, when the answer uses the reference for that exercise. Graded by
``coursekit autograde`` the references are not in the student's kernel at all, and the judge
reads the use from the submitted source (:mod:`coursekit.grading.judge.own_work`); in a
student's own kernel the calls recorded here say it.
"""
from __future__ import annotations

import sys
from collections import Counter
from typing import Callable

from . import recorded

__all__ = ["LockedAnswer", "locked_answer", "reference", "recorded_calls", "reset_recorded_calls",
           "stand_in", "student_call_site"]

_CALLS: Counter[str] = Counter()
_STUDENT_CALL_SITES: set = set()
_ORIGINALS: dict[str, Callable] = {}


def student_call_site(func: Callable) -> Callable:
    """Register ``func`` as a coursekit function whose calls run student code."""
    _STUDENT_CALL_SITES.add(func.__code__)
    return func


def _called_from_coursekit(frame) -> bool:
    module = frame.f_globals.get("__name__", "") if frame is not None else ""
    trusted = module == "coursekit" or module.startswith("coursekit.")
    return trusted and frame.f_code not in _STUDENT_CALL_SITES


def reference(name: str) -> Callable[[Callable], Callable]:
    """Mark ``func`` as the reference implementation of exercise ``name``.

    The wrapper keeps the function's name, signature text and docstring, but deliberately
    does not expose the unwrapped function (no ``__wrapped__``).
    """

    def decorate(func: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            if not _called_from_coursekit(sys._getframe(1)):
                _CALLS[name] += 1
            if recorded.recording():  # the release, recording what self-checks compute
                return recorded.record(name, func, args, kwargs, lambda: func(*args, **kwargs))
            return func(*args, **kwargs)

        wrapper.__name__ = func.__name__
        wrapper.__qualname__ = func.__qualname__
        wrapper.__doc__ = func.__doc__
        wrapper.__module__ = func.__module__
        wrapper.reference_name = name
        _ORIGINALS[name] = func
        return wrapper

    return decorate


from ._locked import LOCKED  # noqa: E402  (the students' coursekit: references without their bodies)


def is_locked(name: str) -> bool:
    """Whether the reference ``name`` is locked in this copy of coursekit (a students' wheel)."""
    return name in LOCKED


class LockedAnswer(RuntimeError):
    """A reference whose notebook the instructor has not unlocked yet: in the students'
    coursekit (built by ``coursekit release --wheel``) its body is not there."""

    def _render_traceback_(self):  # IPython shows this message, not a traceback into coursekit
        return [f"\x1b[0;31m✗ {type(self).__name__}\x1b[0m: {self}"]


def locked_answer(name: str, notebook: str, arguments: dict | None = None):
    """The body of the locked reference ``name`` in the students' coursekit: what it computed
    on ``arguments`` (its parameters) when the release ran the self-checks, if it did."""
    if arguments is not None:
        try:
            return recorded.replay(name, arguments)
        except KeyError:
            pass
    where = name if name.startswith("coursekit.") else f"coursekit.reference.{name}"  # a network: its module
    raise LockedAnswer(
        f"{where} is the answer to an exercise of notebook {notebook}, which "
        "is not unlocked in this copy of coursekit: write it yourself (or, if your instructor "
        f"has published it, install the coursekit they released with {notebook} unlocked).")


_USES: Callable[[tuple], dict] | None = None


def set_uses(uses: Callable[[tuple], dict] | None) -> None:
    """Decide elsewhere whether the student's code uses a reference: the grader's judge reads
    the submitted source (:mod:`coursekit.grading.judge.own_work`), and asks the student's
    kernel nothing."""
    global _USES
    _USES = uses


def judged_elsewhere() -> bool:
    """Whether this kernel is a grader's judge (the student's code runs in another kernel)."""
    return _USES is not None


def references_used(names) -> dict[str, str]:
    """{name: how} for each reference in ``names`` the student's code uses: graded by the
    judge, from the submitted source; in one kernel (a self-check), by the calls recorded."""
    if _USES is not None:
        return dict(_USES(tuple(names)))
    return {name: f"called {_CALLS[name]} times" for name in names if _CALLS[name]}


def recorded_calls(name: str) -> int:
    """How many times the reference ``name`` was called from notebook code (in this kernel)."""
    return _CALLS[name]


def reset_recorded_calls() -> None:
    _CALLS.clear()


def stand_in(name: str) -> Callable:
    """What a check of one exercise on its own puts in place of the earlier exercise ``name``
    that the student's function calls: the reference's body, not counted as a call of notebook
    code, and recorded while the release records the self-checks, so that in a students'
    coursekit, where ``name`` is locked, it answers what it answered then."""
    original = _ORIGINALS[name]

    def stand_in(*args, **kwargs):
        if recorded.recording():
            return recorded.record(name, original, args, kwargs, lambda: original(*args, **kwargs))
        return original(*args, **kwargs)

    stand_in.__name__, stand_in.__qualname__, stand_in.__doc__ = original.__name__, original.__qualname__, original.__doc__
    return stand_in


def _original(name: str) -> Callable:
    """The unwrapped reference ``name``, for checkers that grade one exercise on its own by
    running the student's code with coursekit's versions of the exercises it builds on."""
    return _ORIGINALS[name]
