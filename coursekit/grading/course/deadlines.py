"""Due dates and late penalties, set in ``autograder/nbgrader_config.py``.

``c.Deadlines.due`` maps a notebook to its due date (``"2026-10-09 17:00:00 Europe/London"``,
anything nbgrader's ``parse_utc`` reads; a date without a zone is UTC). A submission's time is
nbgrader's: ``timestamp.txt`` beside the notebook in the student's folder (the folder nbgrader's
collect writes), or the time an LMS zip puts in the file name (see
:mod:`coursekit.grading.pipeline.collect`). No due date or no time: never late.

The penalty is nbgrader's late-submission plugin mechanism (``AssignLatePenalties.plugin_class``)
with :class:`LatePenalty`: ``none``, ``zero`` (nbgrader's two) or ``per_day``: ``percent_per_day``
of the score for each day or part of a day late, never taking more than ``100 - floor_percent``
percent of it (10 and 50: a day late keeps 90%, five days or more keep 50%).
"""
from __future__ import annotations

import math
import re
from datetime import datetime

from nbgrader.plugins import LateSubmissionPlugin
from nbgrader.utils import parse_utc
from traitlets import Dict, Enum, Float, Unicode
from traitlets.config import Configurable

from .directory import CourseError


class Deadlines(Configurable):
    due = Dict(Unicode(), {}, help="notebook -> due date, e.g. {'01_backprop': "
               "'2026-10-09 17:00:00 UTC'}; a notebook without one is never late").tag(config=True)


def parse_time(text: str) -> datetime:
    """A time as nbgrader writes and reads it (``"2026-10-09 17:00:00 Europe/London"``, an ISO
    time with an offset, or a time without a zone, taken as UTC), as a naive UTC datetime; a
    ValueError says what is wrong (nbgrader's ``parse_utc`` would read an unknown zone as UTC)."""
    import dateutil.tz

    text = str(text).strip()
    parts = text.split(" ")
    if len(parts) == 3 and not re.fullmatch(r"[+-]?\d{1,4}", parts[2]) and dateutil.tz.gettz(parts[2]) is None:
        raise ValueError(f"unknown time zone {parts[2]!r}")
    try:
        return parse_utc(text)
    except (ValueError, OverflowError) as exc:
        raise ValueError(str(exc)) from None


def due_dates(config, names: list[str]) -> dict[str, datetime]:
    """The due date (UTC) of each of the course's notebooks ``names`` that has one, or a
    CourseError naming the bad entry."""
    due = Deadlines(config=config).due
    unknown = sorted(set(due) - set(names))
    if unknown:
        raise CourseError(f"c.Deadlines.due names {', '.join(unknown)}, not a notebook of the course "
                          f"(expected one of {', '.join(names)})")
    dates = {}
    for name, text in due.items():
        try:
            dates[name] = parse_time(text)
        except ValueError as exc:
            raise CourseError(f"c.Deadlines.due[{name!r}] = {text!r} is not a date "
                              f"(expected e.g. '2026-10-09 17:00:00 UTC'): {exc}") from None
    return dates


class LatePenalty(LateSubmissionPlugin):
    """nbgrader's late-submission plugin with a third method, ``per_day`` (see the module docstring)."""

    penalty_method = Enum(("none", "zero", "per_day"), default_value="none",
                          help="none, zero, or per_day (percent_per_day, floor_percent)").tag(config=True)
    percent_per_day = Float(10.0, help="per_day: percent of the score taken per day (or part) late").tag(config=True)
    floor_percent = Float(50.0, help="per_day: the least percent of the score a late submission keeps").tag(config=True)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float):
        if self.penalty_method != "per_day":
            return super().late_submission_penalty(student_id, score, total_seconds_late)
        return penalty_per_day(score, total_seconds_late, self.percent_per_day, self.floor_percent)


def penalty_per_day(score: float, seconds_late: float, percent_per_day: float, floor_percent: float) -> float:
    """Points taken from ``score`` for ``seconds_late``: ``percent_per_day`` per started day, at most
    ``100 - floor_percent`` percent."""
    if seconds_late <= 0 or not score:
        return 0.0
    days = math.ceil(seconds_late / 86400)
    taken = min(percent_per_day * days, 100.0 - floor_percent)
    return round(score * max(taken, 0.0) / 100.0, 6)
