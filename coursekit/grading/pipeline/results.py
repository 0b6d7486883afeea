"""What a class run produces: a result per (student, notebook), the table, the CSVs."""
from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ExerciseScore:
    grade_id: str
    score: float
    max_score: float


@dataclass
class NotebookResult:
    student: str
    notebook: str
    score: float
    max_score: float
    seconds: float = 0.0
    exercises: list[ExerciseScore] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    feedback: Path | None = None
    failed: bool = False      # the grader could not grade it (not the student's doing)


@dataclass
class ClassResult:
    results: list[NotebookResult]
    out: Path
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[NotebookResult]:
        """The submissions the grader could not grade (a run with any is not done)."""
        return [r for r in self.results if r.failed]

    def get(self, student: str, notebook: str) -> NotebookResult:
        for r in self.results:
            if r.student == student and r.notebook == notebook:
                return r
        raise KeyError(f"no result for {student} / {notebook}")

    def table(self) -> str:
        rows = [("student", "notebook", "score", "max", "seconds", "notes")]
        rows += [(r.student, r.notebook, f"{r.score:g}", f"{r.max_score:g}", f"{r.seconds:.1f}",
                  "; ".join(r.problems)) for r in self.results]
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths)) + "  " + row[5]
                 for row in rows]
        lines.insert(1, "-" * len(lines[0]))
        return "\n".join(line.rstrip() for line in lines + [f"  note: {n}" for n in self.notes])


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


def write_csvs(out: Path, results: list[NotebookResult]) -> None:
    with open(out / "grades.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", "notebook", "score", "max_score"])
        for r in results:
            writer.writerow([r.student, r.notebook, f"{r.score:g}", f"{r.max_score:g}"])
    with open(out / "grades_by_exercise.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", "notebook", "exercise", "score", "max_score"])
        for r in results:
            for e in r.exercises:
                writer.writerow([r.student, r.notebook, e.grade_id, f"{e.score:g}", f"{e.max_score:g}"])

