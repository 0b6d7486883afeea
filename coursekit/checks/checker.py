"""The one way a checker is made: :func:`checker`.

A checker is a check body (the student's functions or values in, a success message out, or
(message, value) for a checker that also measures; a CheckError with the likely mistake
otherwise) that knows

* its **exercise**: the reference functions an answer must not call (``exercise=``), checked
  when the checker grades, and the given functions that would compute it too (``forbids=``:
  04 gives ``bn_mlp_training_loss`` to train with, which holds a forward pass of exercise 7);
* what the exercise **builds on**: the earlier exercises its function calls, as notebook name
  -> reference name (``builds_on=``, plus ``extra()`` objects), so that graded, the function is
  checked with coursekit's versions of those and a mistake there costs only its own points;
* how it is **graded**: ``check.im2col(im2col, graded=3818)`` runs the body on the hidden seed
  3818, quietly, with the function graded alone, then asserts the student's own work.
  ``graded=True`` does the same on the self-check's seed (the line validate runs).

A self-check is the plain call, ``check.im2col(im2col)``: seed 0, the student's own functions
all the way down, and if the function is right but one it calls is not, the message says so.
Because a body depends only on its inputs and seed, what it expects can be computed once (at
release) from the same seed.
"""
from __future__ import annotations

import functools
import inspect
from typing import Callable, Mapping, Sequence

from . import assert_own_work, passed
from ..reference import recorded
from .student import graded_alone


class Checker:
    """A checker made by :func:`checker` (see the module docstring); call it like its body,
    plus ``seed``, ``quiet``, ``isolate`` and ``graded``."""

    def __init__(self, body: Callable[..., str], label: str, exercise: Sequence[str],
                 builds_on: Mapping[str, str] | None, extra: Callable[[], Mapping[str, object]],
                 forbids: Sequence[str] = ()):
        self.body, self.label = body, label
        self.exercise, self.forbids = tuple(exercise), tuple(forbids)
        self.builds_on = None if builds_on is None else dict(builds_on)
        self.extra = extra
        self._takes_seed = "seed" in inspect.signature(body).parameters
        functools.update_wrapper(self, body)

    def __call__(self, *args, seed: int = 0, quiet: bool = False, isolate: bool = False,
                 graded: int | bool | None = None, **values):
        if graded is not None and graded is not False:
            seed, quiet, isolate = (0 if graded is True else int(graded)), True, True
        if self._takes_seed:
            values["seed"] = seed
        graded_work = graded is not None and graded is not False and self.exercise
        if graded_work:  # first: an answer built on the reference fails for that, whatever else
            assert_own_work(*self.exercise, *self.forbids)
        run = lambda: self.body(*args, **values)  # noqa: E731
        with recorded.checking():  # what the release records for the students' coursekit
            if self.builds_on is None or not args or not callable(args[-1]):
                message = run()
            else:  # the last function passed is the one graded alone
                # never the exercise's own references: the function graded could reach them
                builds_on = {k: ref for k, ref in self.builds_on.items() if ref not in self.exercise}
                message = graded_alone(self.label, run, args[-1], isolate, builds_on, self.extra())
        if graded_work:  # and after: in one kernel, the calls the check made are counted
            assert_own_work(*self.exercise, *self.forbids)
        message, value = message if isinstance(message, tuple) else (message, None)
        passed(message, quiet)
        return value

    def __repr__(self) -> str:
        return f"<checker {self.__name__} of {', '.join(self.exercise) or 'no exercise'}>"


def checker(label: str, *, exercise: Sequence[str] = (), builds_on: Mapping[str, str] | None = None,
            extra: Callable[[], Mapping[str, object]] = dict,
            forbids: Sequence[str] = ()) -> Callable[[Callable[..., str]], Checker]:
    """Make the decorated body (``body(*functions, seed=0, **values) -> message``) a checker of
    ``exercise`` that builds on ``builds_on`` (None: the body calls no earlier exercise) and
    whose answer may not use the given functions ``forbids`` either."""
    return lambda body: Checker(body, label, exercise, builds_on, extra, forbids)
