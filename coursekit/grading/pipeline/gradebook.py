"""Recording the workers' reports in the term's gradebook, which only the class run writes.

Each report is recorded as soon as its worker ends (a run killed half-way keeps what it
recorded). A submission that was completely graded before is first marked REGRADING in the
ledger (committed); then its autograded notebook and feedback page are copied into place; then
its grades are updated in place (nbgrader's submission kept: an extension granted, and, for
the same file graded again, formgrader's manual scores and comments stay), its late penalty set
with nbgrader's late-submission plugin, and its ledger row written, all in one commit
(:mod:`.ledger`). A kill at any point leaves either the old grades (row REGRADING: graded again
next run) or the new ones, complete. After the last report every late penalty of the term is
worked out again (the due dates or the penalty may have changed), and the results read back.
"""
from __future__ import annotations

import contextlib
import shutil
import warnings

from nbgrader.utils import parse_utc

from . import ledger
from .jobs import Report
from .plan import Plan, now
from .results import ExerciseScore, graded_by


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
        self.assigner = late_penalty_assigner(plan.api.config)

    @property
    def feedback_root(self):
        return self.plan.out / "feedback"

    def refusals(self) -> None:
        """Record what intake refused (not a notebook, ...): the submission scores 0 and says why;
        a grade of an earlier version of it is removed (the last thing handed in counts)."""
        from nbgrader.api import MissingEntry

        for (student, name), why in sorted(self.plan.refused.items()):
            try:
                ledger.forget(self.gb, student, name)
                for old in (self.feedback_root / student / f"{name}.html",
                            self.plan.coursedir / "autograded" / student / name / f"{name}.ipynb"):
                    old.unlink(missing_ok=True)
                try:
                    self.gb.remove_submission(name, student)
                except MissingEntry:
                    pass
                self._student(student)
                ledger.write(self.gb, self._entry(student, name, status=f"{ledger.REFUSED}{why}"))
                self.gb.db.commit()
            except Exception as exc:
                self._failed(student, name, exc)

    def report(self, key: tuple[str, str], report: Report) -> None:
        """One worker's report, recorded at once (see the module docstring)."""
        student, name = key
        result = self.plan.results[key]
        result.problems = self.plan.found.get(key, []) + report.problems
        result.failed = False   # a second try of what the grader failed on the first time
        result.seconds = report.seconds
        result.phases = dict(report.phases)
        result.worker, result.sandbox = report.worker, dict(report.sandbox)
        lacking = [k for k, v in report.sandbox.items() if not v]
        if report.worker and lacking:
            result.problems.append(f"graded on {report.worker}, whose sandbox could not enforce: "
                                   + ", ".join(lacking))
        if not report.graded:  # the grader's failure: the ledger still says "grade it again"
            result.failed = True
            return
        try:
            before = ledger.entries(self.gb, student, name).get(key)
            if before is not None and before.status == ledger.GRADED:
                ledger.mark(self.gb, student, name, ledger.REGRADING)   # committed
            self._copy_files(student, name, report, result)
            same_file = before is not None and before.content == self.plan.stored[key].content
            self._write_grades(student, name, report, keep_manual=same_file)
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

    def _student(self, student: str) -> None:
        from nbgrader.api import MissingEntry

        try:
            self.gb.find_student(student)
        except MissingEntry:
            self.gb.add_student(student)

    def _write_grades(self, student: str, name: str, report: Report, keep_manual: bool) -> None:
        """One worker's grades into the submission of ``name`` by ``student``, updated in place
        (made if there is none); not committed. A changed file loses the manual scores, comments
        and extra credit given to the earlier one; the same file graded again keeps them."""
        from nbgrader.api import MissingEntry

        gb = self.gb
        self._student(student)
        submitted = self.plan.stored[(student, name)].submitted
        try:
            submission = gb.find_submission(name, student)
        except MissingEntry:  # commits an empty submission: without its ledger row, repair removes it
            submission = gb.add_submission(name, student)
        submission.timestamp = parse_utc(submitted) if submitted else None
        for grade_id, (score, _) in report.grades.items():
            grade = gb.find_grade(grade_id, name, name, student)
            grade.auto_score = score
            if not keep_manual:
                grade.manual_score = grade.extra_credit = None
            # a written answer waits for a person, unless one has graded this same file already
            grade.needs_manual_grade = score is None and grade.manual_score is None
        for grade_id, text in report.comments.items():
            comment = gb.find_comment(grade_id, name, name, student)
            comment.auto_comment = text
            if not keep_manual:
                comment.manual_comment = None
        gb.db.flush()
        for nb in submission.notebooks:
            gb.db.refresh(nb)   # its score is computed by the database: read it after the new grades
            penalise(nb, submission, self.assigner)

    def _failed(self, student: str, name: str, exc: Exception) -> None:
        """Leave no half-written submission in the gradebook: what was not committed is rolled
        back, and a submission without a complete or REGRADING ledger row is removed."""
        result = self.plan.results[(student, name)]
        try:
            self.gb.db.rollback()
            ledger.repair(self.gb, only=(student, name))
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
        if entry.status not in ledger.COMPLETE:  # refused, now or when it was first handed in
            if (student, name) in self.plan.skipped:
                result.skipped = True
                result.problems = [entry.status.removeprefix(ledger.REFUSED), "unchanged: not graded again"]
            return
        try:
            nb = gb.find_submission_notebook(name, name, student)
        except MissingEntry:
            return
        result.late_penalty = float(nb.late_submission_penalty or 0.0)
        result.score = float(nb.score or 0.0) - result.late_penalty
        result.exercises = [ExerciseScore(g.name, float(g.score or 0.0), float(g.max_score), graded_by(g))
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


def refresh_hand_graded_pages(plan: Plan, gb) -> list[str]:
    """Make the feedback page of every submission that people graded in formgrader (a manual
    score, extra credit or a comment) again when it was made before that, with nbgrader's
    generate_feedback on the term's course, and put it in ``OUT/feedback``. Returns notes: how
    many were made again, and any that could not be."""
    from ..course.feedback import page_is_current

    entries = ledger.entries(gb)
    stale = []
    for assignment in gb.assignments:
        for submission in gb.assignment_submissions(assignment.name):
            key = (submission.student.id, assignment.name)
            entry = entries.get(key)
            if entry is None or entry.status not in ledger.COMPLETE:
                continue
            for nb in submission.notebooks:
                by_hand = any(g.manual_score is not None or g.extra_credit for g in nb.grades) or \
                    any(c.manual_comment for c in nb.comments)
                if by_hand and not page_is_current(plan.out / "feedback" / key[0] / f"{nb.name}.html", nb):
                    stale.append(key)
    failed = []
    for student, name in stale:
        done = plan.api.generate_feedback(name, student, force=True)
        made = plan.coursedir / "feedback" / student / name / f"{name}.html"
        if not done.get("success") or not made.is_file():
            failed.append(f"{student}/{name}")
            continue
        page = plan.out / "feedback" / student / f"{name}.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        tmp = page.with_name(f".{page.name}.tmp")
        shutil.copyfile(made, tmp)
        tmp.replace(page)
    notes = []
    if len(stale) > len(failed):
        notes.append(f"made {len(stale) - len(failed)} feedback page(s) again, with the scores and comments "
                     "given by hand in formgrader")
    if failed:
        notes.append(f"could not make the feedback page again of {', '.join(failed)} (graded by hand): "
                     "use formgrader's Generate Feedback")
    return notes


def late_by(seconds: float) -> str:
    """'2 d 3 h', '5 h 10 min', '40 min' (rounded up to the minute)."""
    minutes = int(-(-seconds // 60))
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def late_penalty_assigner(config):
    """nbgrader's AssignLatePenalties with its configured plugin (``c.AssignLatePenalties.plugin_class``)."""
    from nbgrader.preprocessors import AssignLatePenalties

    assigner = AssignLatePenalties(config=config)
    assigner.init_plugin()
    return assigner


def penalise(nb, submission, assigner) -> float | None:
    """Set the late penalty of the submitted notebook ``nb`` (of ``submission``) as nbgrader's
    AssignLatePenalties does: none when on time (or within an extension), else the plugin's,
    never below 0 nor above the score. Not committed."""
    seconds = float(submission.total_seconds_late or 0.0)
    penalty = None
    if seconds > 0:
        penalty = assigner.plugin_inst.late_submission_penalty(submission.student.id, nb.score, seconds)
        if penalty is not None:
            penalty = min(max(float(penalty), 0.0), float(nb.score or 0.0))
    if nb.late_submission_penalty != penalty:
        nb.late_submission_penalty = penalty
    return penalty


def apply_late_penalties(gb, config) -> int:
    """Every submitted notebook's late penalty from the gradebook's due dates, extensions and
    submission times with nbgrader's configured plugin, in one transaction for the whole term
    (the due dates or the penalty may have changed since a submission was graded: the term
    always follows the configuration). Returns how many carry a penalty."""
    assigner = late_penalty_assigner(config)
    penalised = 0
    for assignment in gb.assignments:
        for submission in gb.assignment_submissions(assignment.name):
            for nb in submission.notebooks:
                penalised += bool(penalise(nb, submission, assigner))
    gb.db.commit()
    return penalised
