"""Running the student's code inside a checker.

:func:`call` runs a student's function and turns their exception into a CheckError that
points at their own line. :func:`using_references` grades one exercise on its own: while
it is active, the exercises a function builds on (the student's layers, say) are replaced in
the notebook's namespace by coursekit's versions, so a mistake in an earlier exercise is not
charged twice. :func:`seconds_per_step` times a function on a small and a large input, to
tell a vectorised function from one that loops over every output row or position.
"""
from __future__ import annotations

import linecache
import os
import time
import traceback
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from . import CheckError
from ..reference import LockedAnswer, stand_in, student_call_site


#: Where a class run's judge finds the files handed in beside the notebook (a read-only copy).
SUBMITTED_ENV = "COURSEKIT_SUBMITTED"


def submitted_file(name: str) -> Path:
    """The file ``name`` the student hands in beside the notebook: the judge's copy while graded
    by a class run (``$COURSEKIT_SUBMITTED``), else the one in the working folder."""
    folder = os.environ.get(SUBMITTED_ENV)
    return (Path(folder) if folder else Path.cwd()) / name


def student_line(exc: BaseException) -> str:
    """'line N: source' of the student's code where ``exc`` was raised (not coursekit's, not a
    library's), or ''."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if "site-packages" not in frame.filename and "/coursekit/" not in frame.filename:
            line = frame.line or linecache.getline(frame.filename, frame.lineno).strip()
            return f"line {frame.lineno}" + (f": {line}" if line else "")
    return ""


@student_call_site
def call(name: str, fn, *args, _hint: str = "", **kwargs):
    """Run the student's function; turn an exception into a CheckError that shows their line
    (and ``_hint``, the likely cause)."""
    if not callable(fn):
        raise CheckError(f"{name} should be a function, got {type(fn).__name__}.")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise CheckError(f"{name} is not implemented yet (it raises NotImplementedError).") from None
    except CheckError:
        raise
    except Exception as exc:  # the student's bug: say where it happened in their code
        if getattr(exc, "unsent", False):  # graded: what it returned could not reach the judge
            raise CheckError(f"what {name} returned could not be sent to the grader: {exc}") from None
        line = getattr(exc, "where", "") or student_line(exc)
        where = f"\n  in your code, {line}" if line else ""
        shapes = ", ".join(f"{np.shape(a)}" for a in args if isinstance(a, np.ndarray))
        with_shapes = f" (array arguments of shapes {shapes})" if shapes else ""
        hint = f"\n  {_hint}" if _hint else ""
        error = CheckError(f"{name} raised {type(exc).__name__}: {exc}{with_shapes}{where}{hint}")
        error.raised = type(exc)  # what the student's function raised, for the checker to tell apart
        raise error from None


def unpack(name: str, result, count: int):
    """``result`` as a tuple of ``count`` values, or a CheckError saying what came back."""
    if not isinstance(result, tuple) or len(result) != count:
        got = f"a tuple of {len(result)}" if isinstance(result, tuple) else type(result).__name__
        raise CheckError(f"{name} should return a tuple of {count} values, got {got}.")
    return result


@contextmanager
def forward_for_backward(name: str, forward, ours: Callable, args: tuple, layout: str):
    """The (out, cache, forward) a backward check runs on, so that a mistake in the forward
    exercise is not charged again to the backward one.

    The student's ``forward`` is used if it runs and computes coursekit's output on ``args``;
    otherwise coursekit's (``ours``, whose cache is ``layout``, e.g. "(x, w, b, stride, pad)"),
    and a CheckError raised inside the block then says so. Arguments are copied for each call.
    """
    import copy

    from .diagnose import close

    exp_out, exp_cache = ours(*copy.deepcopy(args))
    try:
        out, cache = unpack(name, call(name, forward, *copy.deepcopy(args)), 2)
        own = close(out, exp_out)
    except CheckError:
        own = False
    if own:
        yield out, cache, forward
        return
    try:
        yield exp_out, exp_cache, ours
    except CheckError as exc:
        raise CheckError(f"{exc}\n  (your {name} is not right yet, so this ran on the cache of "
                         f"coursekit's {name}, {layout}: fix {name} first, or use that cache)") from None


_MISSING = object()


class Judged:
    """A function, class or object that lives in the student's kernel while a notebook is
    graded (the grader's judge kernel holds only a handle to it). A checker asks it what it
    needs through these methods and never needs to know how the answer is obtained."""

    def judged_type(self) -> str:
        """What ``type(obj).__name__`` says in the student's kernel: its class's name (a
        student's model: the student's class), 'type' for a class, 'function' for a function."""
        raise NotImplementedError

    def judged_seconds(self, args: tuple, kwargs: dict) -> tuple[float, object]:
        """Call it: (seconds its code ran, by the caller's clock less the time the caller spent
        sending and reading the messages and running what was called back, its value)."""
        raise NotImplementedError

    def judged_references(self, names: Mapping[str, str], extra: Mapping[str, object]):
        """A context manager: while active, calls of it run with ``names`` (notebook name ->
        reference name) bound to coursekit's references and ``extra`` to the given objects.
        (An object with no namespace of its own, a model, has nothing to swap.)"""
        return nullcontext()


def coursekit_class(cls, *ours: type) -> str:
    """The name of the class among ``ours`` (coursekit's networks) that the student's ``cls`` is
    or is built on, or ''. Graded by the judge, the student's kernel holds none of them (their
    modules are locked in its coursekit) and a class's ancestry there is whatever the student's
    code says, so the answer comes from the submitted source: which of them it imports
    (:mod:`coursekit.grading.judge.own_work`). In one kernel (a self-check), from the ancestry."""
    from .. import reference

    if reference.judged_elsewhere():
        used = reference.references_used([f"models.{c.__name__}" for c in ours])
        return next(iter(used), "").rpartition(".")[2]
    if isinstance(cls, type):
        return next((c.__name__ for c in ours if issubclass(cls, c)), "")
    return ""


def type_name(obj) -> str:
    """The class name of ``obj``, also for an object in the student's kernel."""
    if isinstance(obj, Judged):
        return obj.judged_type()
    return type(obj).__name__


@contextmanager
def using_references(fn: Callable, names: Mapping[str, str], extra: Mapping[str, object] = {}):
    """While active, each global name of ``fn``'s namespace in ``names`` (notebook name ->
    reference name, e.g. ``"affine_forward": "layers.affine_forward"``) is coursekit's
    reference, and each name in ``extra`` is the given object. Everything is restored after.

    The references are stand-ins (:func:`coursekit.reference.stand_in`): the reference's body,
    so the student's code calling them is not recorded as using the reference, and in a
    students' coursekit, the values recorded at release.
    """
    if isinstance(fn, Judged):  # the student's function is in the student's kernel: swap there
        with fn.judged_references(names, extra):
            yield
        return
    namespace = getattr(fn, "__globals__", None)
    if namespace is None:
        yield
        return
    replacements = {name: stand_in(ref) for name, ref in names.items()}
    replacements.update(extra)
    saved = {name: namespace.get(name, _MISSING) for name in replacements}
    namespace.update(replacements)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is _MISSING:
                namespace.pop(name, None)
            else:
                namespace[name] = value


def seconds_per_step(name: str, fn: Callable, small: tuple, large: tuple, steps: int,
                     repeats: int = 3) -> tuple[float, object]:
    """How much longer ``fn(*large)`` takes than ``fn(*small)``, per one of the ``steps`` more
    (rows, columns, positions) that ``large`` has: each time the least of ``repeats`` runs on
    fresh copies, on this process's clock. Graded, that is the judge's clock around a call
    into the student's kernel, less the judge's own time on the messages and on what the
    student's code calls back: measured by the grader, not said by the student's code.
    Returns (seconds per step, fn's value on ``large``)."""
    import copy

    def timed(args):
        if isinstance(fn, Judged):  # the messages to the student's kernel are not its time
            return call(name, lambda *a: fn.judged_seconds(a, {}), *args)
        start = time.perf_counter()
        value = call(name, fn, *args)
        return time.perf_counter() - start, value

    def best(args):
        least, value = float("inf"), None
        for _ in range(repeats):
            seconds, value = timed(copy.deepcopy(args))
            least = min(least, seconds)
        return least, value

    small_seconds, _ = best(small)
    large_seconds, value = best(large)
    return max(0.0, large_seconds - small_seconds) / steps, value


def graded_alone(name: str, run: Callable[[], None], fn: Callable, isolate: bool,
                 names: Mapping[str, str], extra: Mapping[str, object] = {}) -> None:
    """Run the check ``run`` on the student's ``fn``.

    isolate (the graded tests): with the exercises ``fn`` builds on replaced by coursekit's
    (see :func:`using_references`), so only ``fn``'s own code is graded. Otherwise (the
    self-check) with the student's own functions; if that fails but the isolated run
    passes, the CheckError says that ``fn`` is right and an exercise it calls is not.
    """
    if isolate:
        try:
            with using_references(fn, names, extra):
                return run()
        except CheckError as exc:
            if not issubclass(getattr(exc, "raised", type(None)), LockedAnswer):
                raise
        # a students' coursekit whose stand-ins recorded nothing for what fn asked: as it is
        return run()
    try:
        return run()
    except CheckError as own:
        try:
            with using_references(fn, names, extra):
                run()
        except CheckError:
            raise own from None
        raise CheckError(f"your {name} is right, but a function it calls is not ({own}). Fix "
                         f"the exercise whose self-check fails above; graded, {name} counts "
                         "as right.") from None
