"""Running the student's code inside a checker.

:func:`call` runs a student's function and turns their exception into a CheckError that
points at their own line. :func:`using_references` grades one exercise on its own: while
it is active, the exercises a function builds on (the student's layers, say) are replaced in
the notebook's namespace by coursekit's versions, so a mistake in an earlier exercise is not
charged twice. :func:`busiest_line` counts how often each notebook line runs, to tell a
vectorised function from one that loops over every output position.
"""
from __future__ import annotations

import linecache
import sys
import traceback
from contextlib import contextmanager, nullcontext
from typing import Callable, Mapping

import numpy as np

from . import CheckError
from ..reference import _original, is_locked, student_call_site


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
        raise CheckError(f"{name} raised {type(exc).__name__}: {exc}{with_shapes}{where}{hint}") from None


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

    def judged_mro(self) -> tuple[str, ...]:
        """For a class: 'module.qualname' of each class in its MRO; else ()."""
        return ()

    def judged_references(self, names: Mapping[str, str], extra: Mapping[str, object]):
        """A context manager: while active, calls of it run with ``names`` (notebook name ->
        reference name) bound to coursekit's references and ``extra`` to the given objects.
        (An object with no namespace of its own, a model, has nothing to swap.)"""
        return nullcontext()

    def judged_count_lines(self, args: tuple, kwargs: dict):
        """Run it and count its notebook lines, as :func:`busiest_line` does; None if the
        student's code raised, or it cannot be counted (the checker then runs it with
        :func:`call`)."""
        return None


def subclass_of(cls, *classes: type) -> bool:
    """Whether ``cls`` is a class built on one of ``classes``; for a class in the student's
    kernel (graded by the judge), by the class names of its bases."""
    if isinstance(cls, Judged):
        mro = set(cls.judged_mro())
        return any(f"{c.__module__}.{c.__qualname__}" in mro for c in classes)
    return isinstance(cls, type) and issubclass(cls, classes)


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

    The references are the unwrapped originals, so the student's code calling them is not
    recorded as using the reference.
    """
    if isinstance(fn, Judged):  # the student's function is in the student's kernel: swap there
        with fn.judged_references(names, extra):
            yield
        return
    namespace = getattr(fn, "__globals__", None)
    if namespace is None:
        yield
        return
    replacements = {name: _original(ref) for name, ref in names.items()}
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


def busiest_line(fn: Callable, *args, **kwargs) -> tuple[int, str, object]:
    """Run ``fn`` and count the executions of each line of notebook code (code whose module
    namespace is ``fn``'s). Returns (count, "line N `source`" of the busiest line, fn's result)."""
    if isinstance(fn, Judged):  # count in the student's kernel, where the function runs
        counted = fn.judged_count_lines(args, kwargs)
        if counted is None:  # the student's code raised: say it the way `call` does
            return 0, "", call(fn.__name__, fn, *args, **kwargs)
        return tuple(counted)
    namespace = fn.__globals__
    counts: dict[tuple[str, int], int] = {}

    def local(frame, event, arg):
        if event == "line":
            key = (frame.f_code.co_filename, frame.f_lineno)
            counts[key] = counts.get(key, 0) + 1
        return local

    def tracer(frame, event, arg):
        return local if frame.f_globals is namespace else None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        result = call(fn.__name__, fn, *args, **kwargs)
    finally:
        sys.settrace(previous)
    if not counts:
        return 0, "", result
    (filename, lineno), count = max(counts.items(), key=lambda item: item[1])
    text = linecache.getline(filename, lineno).strip()
    return count, f"line {lineno}" + (f" `{text}`" if text else ""), result


def graded_alone(name: str, run: Callable[[], None], fn: Callable, isolate: bool,
                 names: Mapping[str, str], extra: Mapping[str, object] = {}) -> None:
    """Run the check ``run`` on the student's ``fn``.

    isolate (the graded tests): with the exercises ``fn`` builds on replaced by coursekit's
    (see :func:`using_references`), so only ``fn``'s own code is graded. Otherwise (the
    self-check) with the student's own functions; if that fails but the isolated run
    passes, the CheckError says that ``fn`` is right and an exercise it calls is not.
    """
    if any(is_locked(ref) for ref in names.values()):  # a students' coursekit: nothing to swap in
        return run()
    if isolate:
        with using_references(fn, names, extra):
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
