"""`coursekit autograde SUBMISSIONS`: grade a class with nbgrader, into the term's course.

SUBMISSIONS is either a folder with one folder per student, each holding that student's
notebooks (``alice/01_backprop.ipynb``, or nbgrader's ``alice/01_backprop/01_backprop.ipynb``,
with nbgrader's ``timestamp.txt`` where the submission time is known), or an LMS-style zip of
notebooks whose file names start with the student id (``alice_01_backprop.ipynb``), collected
with nbgrader's zip_collect.

Everything is written under OUT, which holds the whole term: ``course/`` (the nbgrader course
directory with its gradebook, created by the first run and added to by every later one:
:mod:`..course.term`), ``feedback/<student>/<notebook>.html``, and the CSVs of every student
and notebook graded so far: ``grades.csv``, ``submissions.csv``, ``grades_by_exercise.csv``.
Only what is new or changed is graded (:mod:`.plan`); a submission that hangs, raises or kills
its kernel keeps the points it earned and never stops the run; a run killed at any point
leaves the gradebook consistent, and the next run grades what it did not record.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..course.directory import CourseError
from ..kernel.scratch import remove_tree
from .gradebook import Recorder, class_gradebook, refresh_hand_graded_pages
from .plan import plan_class
from .pool import run_workers
from .results import ClassResult, write_csvs, write_run_csv


def autograde(root: Path, submissions: Path | None, out: Path, *, timeout: int | None = None,
              jobs: int | None = None, limits: dict | None = None, progress: bool = True,
              regrade: list[str] | tuple = (), regrade_outdated: bool = False,
              roster: Path | None = None, cluster: str | None = None, data: Path | None = None) -> ClassResult:
    """Grade what is new or changed under ``submissions`` (and what ``regrade`` names:
    ``STUDENT`` or ``STUDENT/NOTEBOOK``; every submission graded against an older notebook with
    ``regrade_outdated``) into the term's course under ``out``; write the term's CSVs.

    ``jobs`` submissions are graded at a time (default: the number of cores, at most 8), each
    in its own sandbox under ``limits`` (fields of :class:`coursekit.grading.kernel.sandbox.Limits`).
    ``roster`` (a CSV, :mod:`..course.roster`) gives the students' names to the gradebook.
    The workers' folders (``OUT/work``: job, report, worker.log) are removed afterwards unless
    ``$COURSEKIT_KEEP_WORK`` is set, for looking into a submission the grader failed on.
    With ``cluster`` (a Dask scheduler's address, or ``local:N``) the submissions are graded on
    its workers (:mod:`.cluster`); the scheduler is reached before anything is written.
    ``data``: the 15-Scene dataset whose test split grades 07's saved models
    (:mod:`..course.held_out`).
    """
    if data is not None and cluster:
        raise CourseError("--data with --cluster: each worker prepares the held-out images itself, from "
                          "the course configuration: set c.HeldOutData.data in autograder/nbgrader_config.py "
                          "to a path every worker can read")
    grid = None
    if cluster:
        from .cluster import Cluster

        grid = Cluster(cluster)
    try:
        plan = plan_class(root, submissions, out, timeout=timeout, jobs=jobs, limits=limits,
                          regrade=regrade, regrade_outdated=regrade_outdated, roster=roster,
                          graded_here=grid is None, data=data)
        try:
            _grade(plan, progress, grid)
        finally:
            plan.lock.close()
    finally:
        if grid is not None:
            grid.close()
    ordered = [plan.results[key] for key in sorted(plan.results)]
    return ClassResult(ordered, plan.out, plan.notes, plan.leaderboard)


def where_graded(results) -> list[str]:
    """A line per Dask worker: how many submissions it graded, and what its sandbox enforced
    (each worker reports the machine it really ran on)."""
    workers: dict[str, list] = {}
    for result in results:
        if result.worker:
            workers.setdefault(result.worker, []).append(result)
    lines = []
    for worker, graded in sorted(workers.items()):
        lacking = sorted({k for r in graded for k, v in r.sandbox.items() if not v})
        lines.append(f"graded on {worker}: {len(graded)} submission(s); its sandbox "
                     + (f"could not enforce: {', '.join(lacking)}" if lacking else "enforced every limit"))
    return lines


def _grade(plan, progress: bool, grid) -> None:
    try:
        with class_gradebook(plan) as gb:
            recorder = Recorder(plan, gb)
            recorder.refusals()
            failed = {}   # the grader's own failures (a kernel that would not start, a worker lost): why

            def on_report(key, report):
                recorder.report(key, report)
                if report.retry:
                    failed.setdefault(key, report.problems[-1] if report.problems else "unknown error")

            def grade(jobs, desc):
                if grid is None:
                    run_workers(jobs, plan.concurrency, plan.wall, progress, on_report=on_report, desc=desc)
                else:
                    grid.run_jobs(plan, progress, on_report=on_report, jobs=jobs, desc=desc)

            grade(plan.jobs, "grading")
            if failed:  # once more, after the others: the grader's trouble never costs a grade
                grade([job for job in plan.jobs if (job[0], job[1]) in failed], "grading again")
                for (student, name), why in failed.items():   # (a second failure keeps the first why)
                    done = "" if plan.results[(student, name)].failed else ", and graded the second time"
                    plan.notes.append(f"{student}/{name}: the grader failed on it ({why[:200]}){done}")
            if grid is not None:
                plan.notes += where_graded(plan.results.values())
            recorder.finish()
            plan.notes += refresh_hand_graded_pages(plan, gb)
            plan.leaderboard = write_csvs(plan.out, gb, plan.releases, {k: v.content for k, v in plan.stored.items()})
    except Exception as exc:  # the gradebook as a whole: every submission is marked
        plan.notes.append(f"the class gradebook could not be written: {type(exc).__name__}: {exc}; "
                          "grades.csv holds this run's results only")
        for result in plan.results.values():
            result.failed = True
            result.problems.append("not recorded: the class gradebook could not be written")
        write_run_csv(plan.out, list(plan.results.values()))
    if not os.environ.get("COURSEKIT_KEEP_WORK"):
        remove_tree(plan.work)
