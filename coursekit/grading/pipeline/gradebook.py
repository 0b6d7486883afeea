"""Merging the workers' reports into the class gradebook, which only the class run writes."""
from __future__ import annotations

import shutil
import warnings

from .jobs import Report
from .plan import Plan
from .results import ExerciseScore


def merge(plan: Plan, reports: dict[tuple[str, str], Report]) -> None:
    """Write each graded report into the gradebook, copy its autograded notebook and feedback
    into place, and fill the plan's results from the gradebook."""
    from nbgrader.api import Gradebook

    feedback_root = plan.out / "feedback"
    shutil.rmtree(feedback_root, ignore_errors=True)
    with warnings.catch_warnings():
        # nbgrader's gradebook code trips SQLAlchemy warnings that say nothing about the grades.
        warnings.filterwarnings("ignore", module="nbgrader")
        warnings.filterwarnings("ignore", message=".*not in session.*")
        with Gradebook(plan.api.coursedir.db_url, plan.api.coursedir.course_id) as gb:
            recorded = set()
            for (student, name), report in sorted(reports.items()):
                result = plan.results[(student, name)]
                result.problems = plan.found.get((student, name), []) + report.problems
                result.seconds = report.seconds
                if not report.graded:
                    result.failed = True
                    continue
                try:
                    _record(gb, plan, student, name, report, result, feedback_root)
                    recorded.add((student, name))
                except Exception as exc:  # this submission only: the others are still recorded
                    _forget(gb, student, name)
                    result.failed, result.feedback = True, None
                    result.problems.append(f"the grader could not record this submission: "
                                           f"{type(exc).__name__}: {str(exc)[:200]}")
            for (student, name), result in plan.results.items():
                try:
                    result.max_score = gb.find_notebook(name, name).max_score
                    if (student, name) in recorded:
                        nb = gb.find_submission_notebook(name, name, student)
                        result.score = float(nb.score or 0.0)
                        result.exercises = [ExerciseScore(g.name, float(g.score or 0.0), float(g.max_score))
                                            for g in sorted(nb.grades, key=lambda g: g.name)]
                except Exception as exc:
                    result.failed = True
                    result.problems.append(f"its grades could not be read back from the gradebook: "
                                           f"{type(exc).__name__}: {str(exc)[:200]}")


def _forget(gb, student: str, name: str) -> None:
    """Leave no half-written submission in the gradebook (nbgrader commits as it goes)."""
    from nbgrader.api import MissingEntry

    try:
        gb.db.rollback()
        gb.remove_submission(name, student)
    except MissingEntry:
        pass
    except Exception:  # the gradebook itself is unwell: the class run reports that
        gb.db.rollback()


def _record(gb, plan: Plan, student: str, name: str, report: Report, result, feedback_root) -> None:
    """One graded report: its notebook and feedback into place, then its grades into the
    gradebook (the last step, so that a failure before it leaves the gradebook as it was)."""
    dest = plan.coursedir / "autograded" / student / name / f"{name}.ipynb"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(report.autograded, dest)
    if report.feedback:
        result.feedback = feedback_root / student / f"{name}.html"
        result.feedback.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(report.feedback, result.feedback)
    _write_grades(gb, student, name, report)


def _write_grades(gb, student: str, name: str, report: Report) -> None:
    """One worker's grades, as its own submission of ``name`` by ``student``."""
    from nbgrader.api import MissingEntry

    gb.update_or_create_student(student)
    try:
        gb.remove_submission(name, student)
    except MissingEntry:
        pass
    gb.add_submission(name, student)
    for grade_id, (score, _) in report.grades.items():
        grade = gb.find_grade(grade_id, name, name, student)
        grade.auto_score = score
        grade.needs_manual_grade = score is None
    for grade_id, text in report.comments.items():
        gb.find_comment(grade_id, name, name, student).auto_comment = text
    gb.db.commit()
