"""`coursekit autograde SUBMISSIONS`: grade a class with nbgrader.

SUBMISSIONS is either a folder with one folder per student, each holding that student's
notebooks (``alice/01_backprop.ipynb``, or nbgrader's ``alice/01_backprop/01_backprop.ipynb``),
or an LMS-style zip of notebooks whose file names start with the student id
(``alice_01_backprop.ipynb``), collected with nbgrader's zip_collect.

Everything is written under OUT: ``course/`` (the nbgrader course directory with its
gradebook, created fresh), ``feedback/<student>/<notebook>.html``, ``grades.csv`` (student,
notebook, score, max_score) and ``grades_by_exercise.csv``. A submission that hangs, raises
or kills its kernel keeps the points it earned and never stops the run.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..kernel.scratch import remove_tree

from .gradebook import merge
from .plan import plan_class
from .pool import run_workers
from .results import ClassResult, write_csvs


def autograde(root: Path, submissions: Path, out: Path, *, timeout: int | None = None,
              jobs: int | None = None, limits: dict | None = None,
              progress: bool = True) -> ClassResult:
    """Grade every submission under ``submissions``; write grades and feedback under ``out``.

    ``jobs`` submissions are graded at a time (default: the number of cores, at most 8), each
    in its own sandbox under ``limits`` (fields of :class:`coursekit.grading.kernel.sandbox.Limits`).
    The workers' folders (``OUT/work``: job, report, worker.log) are removed afterwards unless
    ``$COURSEKIT_KEEP_WORK`` is set, for looking into a submission the grader failed on.
    """
    plan = plan_class(root, submissions, out, timeout=timeout, jobs=jobs, limits=limits)
    reports = run_workers(plan.jobs, plan.concurrency, plan.wall, progress)
    try:
        merge(plan, reports)
    except Exception as exc:  # the gradebook as a whole: every submission is marked, the CSVs still written
        plan.notes.append(f"the class gradebook could not be written: {type(exc).__name__}: {exc}")
        for result in plan.results.values():
            result.failed = True
            result.problems.append("not recorded: the class gradebook could not be written")
    if not os.environ.get("COURSEKIT_KEEP_WORK"):
        remove_tree(plan.work)
    ordered = [plan.results[key] for key in sorted(plan.results)]
    write_csvs(plan.out, ordered)
    return ClassResult(ordered, plan.out, plan.notes)
