"""Where a submission's grading time goes: named phases, timed exclusively.

``with phase("judge start"): ...`` adds the seconds spent in the block, minus those of phases
opened inside it, to that phase's total in this process; :func:`taken` hands the totals over
(and starts afresh). A worker grades one submission at a time, so the totals are that
submission's; `coursekit bench grading --profile` prints them per notebook.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

_totals: dict[str, float] = {}
_open: list[float] = []   # per open phase: seconds taken by phases opened inside it


@contextmanager
def phase(name: str):
    start = time.perf_counter()
    _open.append(0.0)
    try:
        yield
    finally:
        inner = _open.pop()
        elapsed = time.perf_counter() - start
        _totals[name] = _totals.get(name, 0.0) + elapsed - inner
        if _open:
            _open[-1] += elapsed


def taken() -> dict[str, float]:
    """The phases timed since the last call: name -> seconds."""
    totals = dict(_totals)
    _totals.clear()
    return totals
