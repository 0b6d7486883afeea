"""What a class run produces: a result per (student, notebook) it was about, the table, and the
term's CSVs, written from the gradebook (every student and every notebook graded so far)."""
from __future__ import annotations

import csv
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ExerciseScore:
    grade_id: str
    score: float
    max_score: float
    graded_by: str = "grader"   # "grader", "hand" (a score given in formgrader), or PENDING

    @property
    def lost(self) -> bool:
        """Points were lost here (a written answer nobody has graded yet has lost none)."""
        return self.score < self.max_score and self.graded_by != PENDING


#: what ``graded_by`` says of a written answer nobody has graded yet (it scores 0 until then)
PENDING = "waiting for hand grading"


def graded_by(grade) -> str:
    """Who gave nbgrader's ``grade`` its score: a person in formgrader (a manual score), the
    grader, or nobody yet (a written answer: no automatic score and no manual one)."""
    if grade.manual_score is not None:
        return "hand"
    return PENDING if grade.auto_score is None else "grader"


def awaiting(exercises: list[ExerciseScore]) -> tuple[int, float]:
    """(how many answers, how many points) of ``exercises`` wait for grading by hand."""
    waiting = [e for e in exercises if e.graded_by == PENDING]
    return len(waiting), sum(e.max_score for e in waiting)


@dataclass
class NotebookResult:
    student: str
    notebook: str
    score: float               # after the late penalty
    max_score: float
    seconds: float = 0.0
    exercises: list[ExerciseScore] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    feedback: Path | None = None
    failed: bool = False      # the grader could not grade it (not the student's doing)
    skipped: bool = False     # unchanged since it was graded: its grade was kept
    missing: bool = False     # nothing handed in (0, "no submission")
    submitted: str = ""       # when it was handed in (UTC), "" if the submission carried no time
    late_penalty: float = 0.0  # points taken for lateness (nbgrader's late_submission_penalty)
    phases: dict[str, float] = field(default_factory=dict)  # where grading it took its time (s)
    worker: str = ""          # the Dask worker that graded it ("" on this machine)
    sandbox: dict[str, bool] = field(default_factory=dict)  # what its grading machine enforced

    @property
    def awaiting(self) -> float:
        """Points of written answers that wait for grading by hand (not in ``score`` yet)."""
        return awaiting(self.exercises)[1]

    @property
    def full_marks(self) -> bool:
        """Every point the grader gives (the written answers that wait for people aside)."""
        return self.score + self.awaiting == self.max_score


@dataclass
class ClassResult:
    results: list[NotebookResult]
    out: Path
    notes: list[str] = field(default_factory=list)
    leaderboard: dict[str, list[tuple[str, float]]] = field(default_factory=dict)   # model -> best first

    @property
    def failed(self) -> list[NotebookResult]:
        """The submissions the grader could not grade (a run with any is not done)."""
        return [r for r in self.results if r.failed]

    @property
    def skipped(self) -> list[NotebookResult]:
        return [r for r in self.results if r.skipped]

    @property
    def handed_in(self) -> list[NotebookResult]:
        """The results of notebooks someone handed in (not "no submission")."""
        return [r for r in self.results if not r.missing]

    def get(self, student: str, notebook: str) -> NotebookResult:
        for r in self.results:
            if r.student == student and r.notebook == notebook:
                return r
        raise KeyError(f"no result for {student} / {notebook}")

    def table(self) -> str:
        rows = [("student", "notebook", "score", "max", "seconds", "notes")]
        rows += [(r.student, r.notebook, f"{r.score:g}", f"{r.max_score:g}",
                  "-" if r.skipped or r.missing else f"{r.seconds:.1f}", "; ".join(_notes(r))) for r in self.results]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths)) + "  " + row[5]
                 for row in rows]
        lines.insert(1, "-" * len(lines[0]))
        return "\n".join(line.rstrip() for line in lines + [f"  note: {n}" for n in self.notes])


def _notes(r: NotebookResult) -> list[str]:
    count, points = awaiting(r.exercises)
    if not count or r.failed:
        return r.problems
    return [*r.problems, f"{points:g} points of written answers to grade by hand"]


def hand_grading_note(results: list[NotebookResult], coursedir: Path) -> str:
    """What the class run says when written answers wait for people: how many, and where."""
    waiting = [awaiting(r.exercises) for r in results if not r.failed]
    answers, points = sum(count for count, _ in waiting), sum(p for _, p in waiting)
    if not answers:
        return ""
    submissions = sum(1 for count, _ in waiting if count)
    return (f"{answers} written answer(s) ({points:g} points) in {submissions} submission(s) wait for "
            f"grading by hand, in formgrader: cd {coursedir} && jupyter lab, then open /formgrader, "
            f"Manual Grading (`coursekit rubrics` prints the rubrics). They count 0 until graded; afterwards "
            f"`coursekit autograde` on the same submissions (nothing is graded again) writes the scores "
            f"into grades.csv, and `coursekit export` into the LMS files")


def measurements(notebook: Path) -> dict[str, dict]:
    """grade_id -> the measurement its graded cell published (07's held-out accuracy:
    :data:`coursekit.checks.scenes.MEASURE`) in an autograded notebook; {} when it has none or
    cannot be read. Only graded cells count: they run in the judge, not the student's code."""
    import nbformat

    from ...checks.scenes import MEASURE

    try:
        raw = notebook.read_bytes()
        if MEASURE.encode() not in raw:   # most notebooks measure nothing: no JSON parse for them
            return {}
        nb = nbformat.reads(raw.decode(), as_version=4)
    except Exception:  # missing or unreadable: no measurements, the grades stand
        return {}
    found = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") != "code" or not meta.get("grade"):
            continue
        for output in cell.get("outputs", []):
            record = output.get("data", {}).get(MEASURE) if output.get("output_type") == "display_data" else None
            if isinstance(record, dict) and isinstance(record.get("accuracy"), (int, float)):
                found[meta.get("grade_id")] = dict(record)
    return found


def leaderboard(rows: dict) -> dict[str, list[tuple[str, float]]]:
    """model -> [(student, held-out accuracy)], best first, from the rows of :func:`term_rows`."""
    board: dict[str, list[tuple[str, float]]] = {}
    for (student, notebook), row in sorted(rows.items()):
        if not row.measures:
            continue
        for record in row.measures.values():
            board.setdefault(str(record.get("model", "?")), []).append((student, float(record["accuracy"])))
    return {model: sorted(entries, key=lambda e: (-e[1], e[0])) for model, entries in board.items()}


def leaderboard_text(board: dict[str, list[tuple[str, float]]], top: int = 10) -> str:
    """The top ``top`` of each model, as the class run's summary prints it."""
    lines = []
    for model, entries in board.items():
        lines.append(f"leaderboard, {model} (held-out accuracy, top {min(top, len(entries))} of {len(entries)}):")
        lines += [f"  {i:>2}. {student:<20} {acc:.1%}" for i, (student, acc) in enumerate(entries[:top], 1)]
    return "\n".join(lines)


def gradebook_scores(out: Path) -> dict[tuple[str, str, str], tuple]:
    """(student, notebook, grade_id) -> (auto_score, needs_manual_grade) from the class
    gradebook that :func:`autograde` wrote under ``out``: to compare two grading runs."""
    from nbgrader.api import Gradebook

    scores = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="nbgrader")
        with Gradebook(f"sqlite:///{out / 'course' / 'gradebook.db'}", "coursekit") as gb:
            for assignment in gb.assignments:
                for submission in gb.assignment_submissions(assignment.name):
                    for nb in submission.notebooks:
                        for grade in nb.grades:
                            scores[(submission.student.id, nb.name, grade.name)] = (
                                grade.auto_score, grade.needs_manual_grade)
    return scores


@dataclass
class Row:
    """One (student, notebook) of the term, as the CSVs show it."""
    student: str
    notebook: str
    score: float = 0.0          # raw_score - late_penalty
    raw_score: float = 0.0
    late_penalty: float = 0.0
    max_score: float = 0.0
    submitted: str = ""
    due: str = ""
    seconds_late: float = 0.0
    status: str = "no submission"   # graded, or why not (refused: ..., no submission)
    graded_against: str = ""        # current, or older (solutions/ changed since)
    graded_at: str = ""
    exercises: list[ExerciseScore] = field(default_factory=list)
    measures: dict[str, dict] = field(default_factory=dict)   # grade_id -> measurement (07's accuracies)

    @property
    def awaiting(self) -> float:
        return awaiting(self.exercises)[1]


#: the status of a submission that has no complete grade yet (the next run grades it)
WAITING = "not graded yet: the grader failed on it or its run was interrupted; the next run grades it"
NEWER_WAITING = ("graded; a newer submission is not graded yet: the grader failed on it or its run "
                 "was interrupted; the next run grades it")


def term_rows(gb, releases: dict[str, str], stored: dict[tuple[str, str], str] | None = None,
              course: Path | None = None) -> tuple[list[str], list[str], dict[tuple[str, str], Row]]:
    """(notebooks, students, rows) of everything the gradebook ``gb`` holds: every notebook graded
    so far (in course order), every student it knows, and a Row for each pair. Grades count only
    where coursekit's ledger says they are whole (a submission a killed run left half-written
    scores 0 and says so). ``stored`` (the sha256 of each submission the course holds) marks those
    not graded in their last version. With ``course`` (the term's nbgrader course), each row also
    gets the measurements its autograded notebook holds (:func:`measurements`)."""
    from . import ledger

    notebooks = sorted(a.name for a in gb.assignments)
    entries = ledger.entries(gb)
    stored = {k: v for k, v in (stored or {}).items() if k[1] in notebooks}
    students = sorted({s.id for s in gb.students} | {s for s, _ in entries} | {s for s, _ in stored})
    maxima = {a.name: float(a.max_score or 0.0) for a in gb.assignments}
    due = {a.name: a.duedate for a in gb.assignments}
    rows = {(s, n): Row(s, n, max_score=maxima[n], due=_time(due[n])) for s in students for n in notebooks}
    for name in notebooks:
        for submission in gb.assignment_submissions(name):
            key = (submission.student.id, name)
            row, entry = rows[key], entries.get(key)
            row.submitted = _time(submission.timestamp)
            if entry is None or entry.status not in ledger.COMPLETE:
                row.status = WAITING
                continue
            row.seconds_late = float(submission.total_seconds_late or 0.0)
            for nb in submission.notebooks:
                row.raw_score += float(nb.score or 0.0)
                row.late_penalty += float(nb.late_submission_penalty or 0.0)
                row.exercises += [ExerciseScore(g.name, float(g.score or 0.0), float(g.max_score), graded_by(g))
                                  for g in sorted(nb.grades, key=lambda g: g.name)]
            row.score = row.raw_score - row.late_penalty
            row.status = "graded" if entry.status == ledger.GRADED else NEWER_WAITING
            if course is not None:
                row.measures = measurements(course / "autograded" / key[0] / name / f"{name}.ipynb")
    for (student, name), entry in entries.items():
        row = rows.get((student, name))
        if row is None:
            continue
        row.graded_at = entry.graded_at
        if entry.status not in ledger.COMPLETE:
            row.status = entry.status
            row.submitted = row.submitted or entry.submitted
        elif name in releases:
            row.graded_against = "current" if entry.release == releases[name] else "older"
    for key, content in stored.items():
        entry = entries.get(key)
        if entry is None or entry.content != content:
            rows[key].status = NEWER_WAITING if rows[key].status == "graded" else WAITING
    return notebooks, students, rows


def _time(value) -> str:
    return value.isoformat(" ", timespec="seconds") if value is not None else ""


def write_csvs(out: Path, gb, releases: dict[str, str], stored: dict[tuple[str, str], str] | None = None
               ) -> dict[str, list[tuple[str, float]]]:
    """The term's CSVs under ``out``, from the gradebook ``gb``:

    * ``grades.csv``: a row per student, a column per notebook graded so far (the score after any
      late penalty; 0 where nothing was handed in), then ``total`` and ``max_total``;
    * ``submissions.csv``: a row per student and notebook: score, raw score, late penalty,
      when it was handed in, its due date, how late, its status, whether it was graded against
      the current notebook, and when, and the points of its written answers that nobody has
      graded yet (``to_grade_by_hand``: they count 0 until a person grades them in formgrader);
    * ``grades_by_exercise.csv``: a row per graded exercise, with the measurement its cell made
      (07's saved models: their held-out ``accuracy``) and who graded it (``graded_by``: the
      grader, a person by ``hand``, or nobody yet);
    * ``leaderboard.csv``: each measured model's students, best first.

    ``stored`` (see :func:`term_rows`) keeps a student whose submission could not be graded in
    the files, with that status. Each file is written whole and then renamed into place."""
    notebooks, students, rows = term_rows(gb, releases, stored, out / "course")
    maxima = {n: rows[(students[0], n)].max_score if students else 0.0 for n in notebooks}
    with whole_file(out / "grades.csv") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", *notebooks, "total", "max_total"])
        for s in students:
            scores = [rows[(s, n)].score for n in notebooks]
            writer.writerow([s, *(f"{x:g}" for x in scores), f"{sum(scores):g}", f"{sum(maxima.values()):g}"])
    with whole_file(out / "submissions.csv") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", "notebook", "score", "raw_score", "late_penalty", "max_score",
                         "submitted_utc", "due_utc", "days_late", "status", "graded_against", "graded_at_utc",
                         "to_grade_by_hand"])
        for s in students:
            for n in notebooks:
                r = rows[(s, n)]
                writer.writerow([s, n, f"{r.score:g}", f"{r.raw_score:g}", f"{r.late_penalty:g}",
                                 f"{r.max_score:g}", r.submitted, r.due,
                                 f"{r.seconds_late / 86400:.2f}" if r.seconds_late else "",
                                 r.status, r.graded_against, r.graded_at, f"{r.awaiting:g}"])
    with whole_file(out / "grades_by_exercise.csv") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", "notebook", "exercise", "score", "max_score", "accuracy", "graded_by"])
        for s in students:
            for n in notebooks:
                measures = rows[(s, n)].measures
                for e in rows[(s, n)].exercises:
                    acc = measures.get(e.grade_id, {}).get("accuracy")
                    writer.writerow([s, n, e.grade_id, f"{e.score:g}", f"{e.max_score:g}",
                                     "" if acc is None else f"{acc:.4f}", e.graded_by])
    board = leaderboard(rows)
    with whole_file(out / "leaderboard.csv") as fh:
        writer = csv.writer(fh)
        writer.writerow(["model", "rank", "student", "accuracy"])
        for model, entries in board.items():
            for rank, (student, acc) in enumerate(entries, 1):
                writer.writerow([model, rank, student, f"{acc:.4f}"])
    return board


def write_run_csv(out: Path, results: list[NotebookResult]) -> None:
    """``grades.csv`` from one run's results alone (when the gradebook cannot be read), in the
    same columns as :func:`write_csvs` writes."""
    notebooks = sorted({r.notebook for r in results})
    table = {(r.student, r.notebook): r for r in results}
    with whole_file(out / "grades.csv") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", *notebooks, "total", "max_total"])
        for s in sorted({r.student for r in results}):
            mine = [table.get((s, n)) for n in notebooks]
            scores = [r.score if r else 0.0 for r in mine]
            top = sum(r.max_score for r in mine if r)
            writer.writerow([s, *(f"{x:g}" for x in scores), f"{sum(scores):g}", f"{top:g}"])


class whole_file:  # noqa: N801 (used as a function: with whole_file(path) as fh)
    """Write ``path`` through a temporary file renamed over it at the end (never half a CSV)."""

    def __init__(self, path: Path):
        self.path, self.tmp = path, path.with_name(f".{path.name}.tmp")

    def __enter__(self):
        self.fh = open(self.tmp, "w", newline="")
        return self.fh

    def __exit__(self, kind, *_):
        self.fh.close()
        if kind is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
