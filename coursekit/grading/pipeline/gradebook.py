"""Recording the workers' reports in the term's gradebook, which only the class run writes.

Each report is recorded as soon as its worker ends (a run killed half-way keeps what it
recorded), in this order: the autograded notebook and feedback page copied into place, the
submission's ledger row removed (committed), its grades written, and its ledger row written in
the same commit as the last grade (:mod:`.ledger`). After the last report, the late penalties
of every submission are worked out again (nbgrader's late-submission plugin, from the due
dates and submission times in the gradebook), and the results read back from the gradebook.
"""
from __future__ import annotations

import contextlib
import shutil
import warnings

from . import ledger
from .jobs import Report
from .plan import Plan, now
from .results import ExerciseScore


@contextlib.contextmanager
def class_gradebook(plan: Plan):
    """The term's gradebook, open for the run (nbgrader's SQLAlchemy warnings silenced)."""
    from nbgrader.api import Gradebook

    with warnings.catch_warnings():
        # nbgrader's gradebook code trips SQLAlchemy warnings that say nothing about the grades.
        warnings.filterwarnings("ignore", module="nbgrader")
        warnings.filterwarnings("ignore", message=".*not in session.*")
        with Gradebook(plan.api.coursedir.db_url, plan.api.coursedir.course_id) as gb:
            yield gb


class Recorder:
    """Writes what grading found into the gradebook ``gb`` and fills ``plan.results``."""

    def __init__(self, plan: Plan, gb):
        self.plan, self.gb = plan, gb
        self.recorded: set[tuple[str, str]] = set()

    @property
    def feedback_root(self):
        return self.plan.out / "feedback"

    def refusals(self) -> None:
        """Record what intake refused (not a notebook, ...): the submission scores 0 and says why;
        a grade of an earlier version of it is removed (the last thing handed in counts)."""
        for (student, name), why in sorted(self.plan.refused.items()):
            try:
                self._forget(student, name)
                (self.feedback_root / student / f"{name}.html").unlink(missing_ok=True)
                self.gb.update_or_create_student(student)
                ledger.write(self.gb, self._entry(student, name, status=f"refused: {why}"))
                self.gb.db.commit()
            except Exception as exc:
                self._failed(student, name, exc)

    def report(self, key: tuple[str, str], report: Report) -> None:
        """One worker's report, recorded at once (see the module docstring)."""
        student, name = key
        result = self.plan.results[key]
        result.problems = self.plan.found.get(key, []) + report.problems
        result.seconds = report.seconds
        if not report.graded:  # the grader's failure: the ledger still says "grade it again"
            result.failed = True
            return
        try:
            self._copy_files(student, name, report, result)
            ledger.forget(self.gb, student, name)
            self._write_grades(student, name, report)
            ledger.write(self.gb, self._entry(student, name, notes="\n".join(result.problems)))
            self.gb.db.commit()
            self.recorded.add(key)
        except Exception as exc:  # this submission only: the others are still recorded
            self._failed(student, name, exc)

    def finish(self) -> None:
        """Late penalties for the whole term again, then every result read back."""
        penalties_error = None
        try:
            apply_late_penalties(self.gb, self.plan.api.config)
        except Exception as exc:
            self.gb.db.rollback()
            penalties_error = f"{type(exc).__name__}: {str(exc)[:200]}"
            self.plan.notes.append(f"the late penalties could not be worked out: {penalties_error}")
        entries = ledger.entries(self.gb)
        for (student, name), result in self.plan.results.items():
            try:
                self._read_back(student, name, result, entries.get((student, name)))
            except Exception as exc:
                result.failed = True
                result.problems.append(f"its grades could not be read back from the gradebook: "
                                       f"{type(exc).__name__}: {str(exc)[:200]}")

    # --- helpers ----------------------------------------------------------------------------------

    def _entry(self, student: str, name: str, status: str = ledger.GRADED, notes: str = "") -> ledger.Entry:
        stored = self.plan.stored[(student, name)]
        return ledger.Entry(student, name, stored.content, self.plan.releases[name], stored.submitted,
                            status, now(), notes)

    def _copy_files(self, student: str, name: str, report: Report, result) -> None:
        dest = self.plan.coursedir / "autograded" / student / name / f"{name}.ipynb"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.unlink(missing_ok=True)  # nbgrader leaves the files it writes read-only
        shutil.copyfile(report.autograded, dest)
        page = self.feedback_root / student / f"{name}.html"
        if report.feedback:
            page.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(report.feedback, page)
            result.feedback = page
        else:
            page.unlink(missing_ok=True)

    def _write_grades(self, student: str, name: str, report: Report) -> None:
        """One worker's grades, as the submission of ``name`` by ``student`` (any earlier one removed)."""
        from nbgrader.api import MissingEntry

        gb = self.gb
        try:
            gb.find_student(student)
        except MissingEntry:
            gb.add_student(student)
        try:
            gb.remove_submission(name, student)
        except MissingEntry:
            pass
        submitted = self.plan.stored[(student, name)].submitted
        gb.add_submission(name, student, **({"timestamp": submitted} if submitted else {}))
        for grade_id, (score, _) in report.grades.items():
            grade = gb.find_grade(grade_id, name, name, student)
            grade.auto_score = score
            grade.needs_manual_grade = score is None
        for grade_id, text in report.comments.items():
            gb.find_comment(grade_id, name, name, student).auto_comment = text

    def _forget(self, student: str, name: str) -> None:
        """Leave no half-written submission in the gradebook (nbgrader commits as it goes)."""
        from nbgrader.api import MissingEntry

        self.gb.db.rollback()
        ledger.forget(self.gb, student, name)
        try:
            self.gb.remove_submission(name, student)
        except MissingEntry:
            pass

    def _failed(self, student: str, name: str, exc: Exception) -> None:
        result = self.plan.results[(student, name)]
        try:
            self._forget(student, name)
        except Exception:  # the gradebook itself is unwell: the class run reports that
            self.gb.db.rollback()
        result.failed, result.feedback = True, None
        result.problems.append(f"the grader could not record this submission: "
                               f"{type(exc).__name__}: {str(exc)[:200]}")

    def _read_back(self, student: str, name: str, result, entry) -> None:
        from nbgrader.api import MissingEntry

        gb = self.gb
        result.max_score = float(gb.find_notebook(name, name).max_score)
        if result.failed or entry is None or (student, name) not in self.plan.stored:
            return
        if entry.status != ledger.GRADED:  # refused, now or when it was first handed in
            if (student, name) in self.plan.skipped:
                result.skipped = True
                result.problems = [entry.status.removeprefix("refused: "), "unchanged: not graded again"]
            return
        try:
            nb = gb.find_submission_notebook(name, name, student)
        except MissingEntry:
            return
        result.late_penalty = float(nb.late_submission_penalty or 0.0)
        result.score = float(nb.score or 0.0) - result.late_penalty
        result.exercises = [ExerciseScore(g.name, float(g.score or 0.0), float(g.max_score))
                            for g in sorted(nb.grades, key=lambda g: g.name)]
        page = self.feedback_root / student / f"{name}.html"
        result.feedback = page if page.is_file() else None
        if (student, name) in self.plan.skipped:
            result.skipped = True
            result.problems = [f"unchanged since graded {entry.graded_at} UTC: grade kept",
                               *filter(None, entry.notes.splitlines())]
        seconds = float(nb.assignment.total_seconds_late or 0.0)
        if seconds > 0:
            result.problems.append(f"handed in {late_by(seconds)} late: "
                                   + (f"-{result.late_penalty:g} points" if result.late_penalty else "no penalty"))


def late_by(seconds: float) -> str:
    """'2 d 3 h', '5 h 10 min', '40 min' (rounded up to the minute)."""
    minutes = int(-(-seconds // 60))
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def apply_late_penalties(gb, config) -> int:
    """Set every submitted notebook's late penalty from the gradebook's due dates and submission
    times with nbgrader's configured late-submission plugin (``c.AssignLatePenalties.plugin_class``,
    as nbgrader's own AssignLatePenalties preprocessor does, in one transaction for the term
    instead of one database connection per notebook). Returns how many carry a penalty."""
    from nbgrader.preprocessors import AssignLatePenalties

    assigner = AssignLatePenalties(config=config)
    assigner.init_plugin()
    penalised = 0
    for assignment in gb.assignments:
        for submission in gb.assignment_submissions(assignment.name):
            seconds = float(submission.total_seconds_late or 0.0)
            for nb in submission.notebooks:
                penalty = None
                if seconds > 0:
                    penalty = assigner.plugin_inst.late_submission_penalty(
                        submission.student.id, nb.score, seconds)
                    if penalty is not None:  # as nbgrader does: never below 0 nor above the score
                        penalty = min(max(float(penalty), 0.0), float(nb.score or 0.0))
                if nb.late_submission_penalty != penalty:
                    nb.late_submission_penalty = penalty
                penalised += bool(penalty)
    gb.db.commit()
    return penalised
