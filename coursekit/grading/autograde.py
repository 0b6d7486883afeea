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

import csv
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from tqdm.auto import tqdm

from .course import CourseError, assignments, generate_assignments, nbgrader_api
from .execute import KERNEL_DIED, KERNEL_RESTARTED, TIMED_OUT

# zip_collect matches this against each extracted file's full path. File names are
# "<student>_<notebook>.ipynb" or "<student>_<anything>_<notebook>.ipynb" (Moodle, Canvas, ...);
# student ids are letters, digits, '.' and '-'.
ZIP_NAME_REGEXP = r".*/(?P<student_id>[A-Za-z0-9.-]+)_(?:.*_)?(?P<file_id>\d\d_[A-Za-z0-9_]+\.ipynb)$"


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


@dataclass
class ClassResult:
    results: list[NotebookResult]
    out: Path
    notes: list[str] = field(default_factory=list)

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


def collect_folder(submissions: Path, names: list[str]) -> tuple[dict[str, dict[str, Path]], list[str]]:
    """Map student -> {notebook name: path} from a folder of student folders."""
    students: dict[str, dict[str, Path]] = {}
    notes: list[str] = []
    for folder in sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found: dict[str, Path] = {}
        for nb in sorted(folder.rglob("*.ipynb")):
            if ".ipynb_checkpoints" in nb.parts:
                continue
            if nb.stem not in names:
                notes.append(f"{folder.name}: ignored {nb.relative_to(folder)} (not a course notebook: "
                             f"expected one of {', '.join(n + '.ipynb' for n in names)})")
            elif nb.stem in found:
                notes.append(f"{folder.name}: two copies of {nb.name}; graded {found[nb.stem].relative_to(folder)}")
            else:
                found[nb.stem] = nb
        students[folder.name] = found
    return students, notes


def collect_zip(archive: Path, names: list[str], coursedir: Path, api) -> dict[str, dict[str, Path]]:
    """Collect an LMS zip with nbgrader's zip_collect into the course's submitted/ folder."""
    import zipfile

    from nbgrader.apps import ZipCollectApp

    if not zipfile.is_zipfile(archive):
        raise CourseError(f"{archive} is not a valid zip archive (truncated or corrupt?): expected "
                          "a zip of notebooks named like <student>_<notebook>.ipynb")
    students: dict[str, dict[str, Path]] = {}
    for name in names:
        downloaded = coursedir / "downloaded" / name / "archive"
        downloaded.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(archive, downloaded / archive.name)
        app = ZipCollectApp(config=api.config, coursedir=api.coursedir)
        app.config.FileNameCollectorPlugin.named_regexp = ZIP_NAME_REGEXP
        app.config.FileNameCollectorPlugin.valid_ext = [".ipynb"]
        app.coursedir.assignment_id = name
        app.force = True
        app.log_level = "WARN"  # say what was skipped, not every file it read
        try:
            app.start()
        except SystemExit as exc:  # nbgrader apps exit on failure
            if exc.code:
                raise CourseError(f"zip_collect could not read {archive}") from None
        except Exception as exc:
            raise CourseError(f"zip_collect could not read {archive}: {exc}") from None
        for nb in sorted((coursedir / "submitted").glob(f"*/{name}/{name}.ipynb")):
            students.setdefault(nb.parts[-3], {})[name] = nb
    if not students:
        raise CourseError(f"{archive} holds no notebook named like <student>_<notebook>.ipynb "
                          f"for the notebooks {', '.join(names)}")
    return students


def _unreadable(path: Path) -> str:
    """Why a submitted file is not a notebook nbgrader can grade ('' if it is one)."""
    try:
        nbformat.read(path, as_version=4)
    except Exception as exc:  # invalid JSON, not a notebook, unknown nbformat
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"not a valid notebook ({first[:120]}): scored 0"
    return ""


def _problems(autograded: Path, timeout: float) -> list[str]:
    """What went wrong while running a submission, read from its autograded notebook."""
    if not autograded.exists():
        return []
    problems = []
    for index, cell in enumerate(nbformat.read(autograded, as_version=4).cells):
        where = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index}"
        for out in cell.get("outputs", []):
            if out.output_type != "error":
                continue
            if out.ename == TIMED_OUT:
                problems.append(f"{where}: stopped after the {timeout:g} s cell time limit")
            elif out.ename == KERNEL_RESTARTED:
                problems.append(f"{where}: ignored the interrupt (kernel restarted, grading went on)")
            elif out.ename == KERNEL_DIED:
                problems.append(f"{where}: killed its kernel (restarted, grading went on)")
            elif out.ename == "ReferenceUsedError":
                problems.append(f"{where}: calls the reference implementation (0 points)")
    return problems


def _grade_one(api, student: str, name: str, submitted: Path | None, feedback_root: Path,
               cell_timeout: float) -> NotebookResult:
    """Autograde one student's notebook in the course, with its feedback. Scores come later,
    from the gradebook."""
    start = time.perf_counter()
    result = NotebookResult(student, name, 0.0, 0.0)
    if submitted is None:
        result.problems.append("no submission")
        return result
    coursedir = Path(api.coursedir.root)
    dest = coursedir / "submitted" / student / name / f"{name}.ipynb"
    if submitted.resolve() != dest.resolve():  # zip_collect already put it there
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(submitted, dest)
    unreadable = _unreadable(dest)
    if unreadable:
        result.problems.append(unreadable)
        return result
    graded = api.autograde(name, student, force=True, create=True)
    if not graded["success"]:
        last = (graded.get("error") or graded.get("log") or "").strip().splitlines()[-1:]
        result.problems.append("could not be graded: " + (last[0] if last else "unknown error"))
    result.problems += _problems(coursedir / "autograded" / student / name / f"{name}.ipynb",
                                 cell_timeout)
    if graded["success"] and api.generate_feedback(name, student, force=True)["success"]:
        result.feedback = feedback_root / student / f"{name}.html"
        result.feedback.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(coursedir / "feedback" / student / name / f"{name}.html", result.feedback)
    result.seconds = time.perf_counter() - start
    return result


def autograde(root: Path, submissions: Path, out: Path, *, timeout: int | None = None,
              progress: bool = True) -> ClassResult:
    """Grade every submission under ``submissions``; write grades and feedback under ``out``."""
    from nbgrader.api import Gradebook, MissingEntry

    submissions = Path(submissions)
    if not submissions.exists():
        raise CourseError(f"no submissions at {submissions}")
    names = assignments(root)
    out.mkdir(parents=True, exist_ok=True)
    coursedir = out / "course"
    if coursedir.exists():
        shutil.rmtree(coursedir)
    coursedir.mkdir()
    api = nbgrader_api(root, coursedir, timeout=timeout)
    cell_timeout = api.config.Execute.timeout

    if submissions.is_file() and submissions.suffix == ".zip":
        generate_assignments(root, coursedir, names, api)  # zip_collect files into assignments
        students, notes = collect_zip(submissions, names, coursedir, api), []
    elif submissions.is_dir():
        students, notes = collect_folder(submissions, names)
    else:
        raise CourseError(f"{submissions} is neither a folder of student folders nor a .zip")
    if not students:
        raise CourseError(f"no student folders in {submissions}")
    # Grade the assignments that were handed in (by anyone): a class collected for notebook 01
    # is not graded as missing every later notebook.
    names = [name for name in names if any(name in nbs for nbs in students.values())] or names
    if not submissions.is_file():
        generate_assignments(root, coursedir, names, api)

    results: list[NotebookResult] = []
    feedback_root = out / "feedback"
    shutil.rmtree(feedback_root, ignore_errors=True)
    with warnings.catch_warnings():
        # nbgrader's gradebook code trips SQLAlchemy warnings that say nothing about the grades.
        warnings.filterwarnings("ignore", module="nbgrader")
        warnings.filterwarnings("ignore", message=".*not in session.*")
        for student, notebooks in tqdm(sorted(students.items()), desc="grading", unit="student",
                                       disable=not progress):
            for name in names:
                results.append(_grade_one(api, student, name, notebooks.get(name),
                                          feedback_root, cell_timeout))

        with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
            max_scores = {name: gb.find_notebook(name, name).max_score for name in names}
            for r in results:
                r.max_score = max_scores[r.notebook]
                try:
                    nb = gb.find_submission_notebook(r.notebook, r.notebook, r.student)
                except MissingEntry:
                    continue
                r.score = float(nb.score or 0.0)
                r.exercises = [ExerciseScore(g.name, float(g.score or 0.0), float(g.max_score))
                               for g in sorted(nb.grades, key=lambda g: g.name)]
    _write_csvs(out, results)
    return ClassResult(results, out, notes)


def _write_csvs(out: Path, results: list[NotebookResult]) -> None:
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

