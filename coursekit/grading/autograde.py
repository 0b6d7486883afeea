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
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from tqdm.auto import tqdm

from .course import CourseError, assignments, generate_assignments, nbgrader_api
from .execute import DISK_LIMIT, KERNEL_DIED, KERNEL_RESTARTED, LEFT_RUNNING, NOTEBOOK_TIME, OUTPUT_CUT, TIMED_OUT
from .intake import intake
from .sandbox import Limits, capabilities
from .worker import Job

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


def problems_in(autograded: Path, timeout: float) -> list[str]:
    """What went wrong while running a submission, read from its autograded notebook."""
    if not autograded.exists():
        return []
    problems = []
    for index, cell in enumerate(nbformat.read(autograded, as_version=4).cells):
        where = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index}"
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and OUTPUT_CUT in out.get("text", ""):
                problems.append(f"{where}: printed too much; the rest of the output was dropped")
            if out.output_type != "error":
                continue
            if out.ename == TIMED_OUT:
                problems.append(f"{where}: stopped after the {timeout:g} s cell time limit")
            elif out.ename == KERNEL_RESTARTED:
                problems.append(f"{where}: ignored the interrupt (kernel restarted, grading went on)")
            elif out.ename == LEFT_RUNNING:
                problems.append(f"{where}: left threads running after the interrupt (kernel restarted, "
                                f"grading went on)")
            elif out.ename == KERNEL_DIED:
                problems.append(f"{where}: killed its kernel (restarted, grading went on)")
            elif out.ename == NOTEBOOK_TIME:
                problems.append(f"{where}: not run, the notebook's time budget was spent")
            elif out.ename == DISK_LIMIT:
                problems.append(f"{where}: {out.evalue}")
            elif out.ename == "MemoryError":
                problems.append(f"{where}: ran out of its memory limit")
            elif out.ename == "BlockingIOError" and "fork" in "".join(out.get("traceback", [])):
                problems.append(f"{where}: ran into the limit on processes")
            elif out.ename == "ReferenceUsedError":
                problems.append(f"{where}: calls the reference implementation (0 points)")
    return problems


def _jobs_default() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _prepare_sandbox(out: Path, names: list[str]) -> tuple[list[str], dict[str, str]]:
    """Read-only things every kernel may use: a matplotlib config with its font cache built,
    and (for notebook 07) the generated dataset decoded once. Returns (paths, environment)."""
    shared = out / "work" / "shared"
    mpl = shared / "matplotlib"
    mpl.mkdir(parents=True, exist_ok=True)
    env = {"MPLCONFIGDIR": str(mpl), "MPLBACKEND": "agg", "PYTHONWARNINGS": "ignore"}
    subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], env={**os.environ, **env},
                   check=False, capture_output=True)
    paths = [str(mpl)]
    if any(name.startswith("07") for name in names):
        from ..data.scenes import open_scenes

        data = shared / "data"
        open_scenes(size=64, home=data, real=False, progress=False)
        env["COURSEKIT_DATA"] = str(data)
        paths.append(str(data))
    return paths, env


def _run_workers(jobs: list[tuple[str, str, Path]], concurrency: int, wall: float,
                 progress: bool) -> dict[tuple[str, str], "Report"]:
    """Run each job file with `python -m coursekit.grading.worker`, ``concurrency`` at a time;
    a worker past ``wall`` seconds is killed with everything it started."""
    from .worker import Report

    reports: dict[tuple[str, str], Report] = {}
    pending = list(jobs)
    running: dict[tuple[str, str], tuple[subprocess.Popen, float, Path]] = {}
    bar = tqdm(total=len(jobs), desc="grading", unit="notebook", disable=not progress)
    while pending or running:
        while pending and len(running) < concurrency:
            student, name, job_file = pending.pop(0)
            log = open(job_file.with_name("worker.log"), "wb")
            proc = subprocess.Popen([sys.executable, "-m", "coursekit.grading.worker", str(job_file)],
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            running[(student, name)] = (proc, time.monotonic(), job_file)
        time.sleep(0.05)
        for key, (proc, started, job_file) in list(running.items()):
            overdue = time.monotonic() - started > wall
            if proc.poll() is None and not overdue:
                continue
            if proc.poll() is None:
                _kill_group(proc)
            del running[key]
            reports[key] = _read_report(job_file, proc.returncode, overdue, wall)
            bar.update(1)
    bar.close()
    return reports


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.wait()


def _read_report(job_file: Path, returncode: int | None, overdue: bool, wall: float) -> "Report":
    from .worker import Report

    path = job_file.with_name("report.json")
    if overdue:
        return Report(problems=[f"grading this notebook took more than {wall:g} s and was stopped"])
    try:
        return Report(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        log = job_file.with_name("worker.log")
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        return Report(problems=[f"the grader's worker stopped (exit status {returncode})"
                                + (f": {tail[0][:200]}" if tail else "")])


def _merge(gb, student: str, name: str, report) -> None:
    """Write one worker's grades into the class gradebook (the parent's alone)."""
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


def autograde(root: Path, submissions: Path, out: Path, *, timeout: int | None = None,
              jobs: int | None = None, limits: dict | None = None,
              progress: bool = True) -> ClassResult:
    """Grade every submission under ``submissions``; write grades and feedback under ``out``.

    ``jobs`` submissions are graded at a time (default: the number of cores, at most 8), each
    in its own sandbox under ``limits`` (fields of :class:`coursekit.grading.sandbox.Limits`).
    The workers' folders (``OUT/work``: job, report, worker.log) are removed afterwards unless
    ``$COURSEKIT_KEEP_WORK`` is set, for looking into a submission the grader failed on.
    """
    from nbgrader.api import Gradebook

    # Every path is made absolute here: the workers and kernels run in other folders.
    root, submissions, out = Path(root).resolve(), Path(submissions).resolve(), Path(out).resolve()
    if not submissions.exists():
        raise CourseError(f"no submissions at {submissions}")
    names = assignments(root)
    out.mkdir(parents=True, exist_ok=True)
    coursedir = out / "course"
    for stale in (coursedir, out / "work"):
        if stale.exists():
            shutil.rmtree(stale)
    coursedir.mkdir()
    api = nbgrader_api(root, coursedir, timeout=timeout)
    cell_timeout = api.config.Execute.timeout
    limits = asdict(Limits(**(limits or {})))

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
    missing = [k for k, v in capabilities().items() if not v]
    if missing:
        notes.append("this machine cannot shut submissions in for: " + ", ".join(missing) +
                     " (see coursekit.grading.sandbox); the other limits apply")

    work = out / "work"
    template = work / "template"
    template.mkdir(parents=True)
    shutil.copytree(coursedir / "source", template / "source")
    shutil.copyfile(coursedir / "gradebook.db", template / "gradebook.db")
    read, env = _prepare_sandbox(out, names)
    jobs = jobs or _jobs_default()
    # Share the cores between the kernels graded at once instead of oversubscribing them.
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)

    results: dict[tuple[str, str], NotebookResult] = {}
    found: dict[tuple[str, str], list[str]] = {}
    job_files = []
    for student, notebooks in sorted(students.items()):
        for name in names:
            result = results[(student, name)] = NotebookResult(student, name, 0.0, 0.0)
            if name not in notebooks:
                result.problems.append("no submission")
                continue
            taken = intake(notebooks[name], coursedir / "release" / name / f"{name}.ipynb")
            if taken.notebook is None:
                result.problems.append(taken.refused)
                continue
            found[(student, name)] = taken.found
            folder = work / "jobs" / student / name
            folder.mkdir(parents=True)
            nbformat.write(taken.notebook, folder / f"{name}.ipynb")
            job = Job(str(root), str(template), student, name, str(folder / f"{name}.ipynb"),
                      str(folder), timeout, limits, read, env)
            (folder / "job.json").write_text(json.dumps(asdict(job)))
            job_files.append((student, name, folder / "job.json"))

    wall = limits["notebook_seconds"] + 120
    reports = _run_workers(job_files, jobs, wall, progress)

    feedback_root = out / "feedback"
    shutil.rmtree(feedback_root, ignore_errors=True)
    with warnings.catch_warnings():
        # nbgrader's gradebook code trips SQLAlchemy warnings that say nothing about the grades.
        warnings.filterwarnings("ignore", module="nbgrader")
        warnings.filterwarnings("ignore", message=".*not in session.*")
        with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
            max_scores = {name: gb.find_notebook(name, name).max_score for name in names}
            for key in sorted(reports):
                student, name = key
                report, result = reports[key], results[key]
                result.problems = found.get(key, []) + report.problems
                result.seconds = report.seconds
                if not report.graded:
                    result.failed = True
                    continue
                _merge(gb, student, name, report)
                dest = coursedir / "autograded" / student / name / f"{name}.ipynb"
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(report.autograded, dest)
                if report.feedback:
                    result.feedback = feedback_root / student / f"{name}.html"
                    result.feedback.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(report.feedback, result.feedback)
            for (student, name), result in results.items():
                result.max_score = max_scores[name]
                if (student, name) not in reports or not reports[(student, name)].graded:
                    continue
                nb = gb.find_submission_notebook(name, name, student)
                result.score = float(nb.score or 0.0)
                result.exercises = [ExerciseScore(g.name, float(g.score or 0.0), float(g.max_score))
                                    for g in sorted(nb.grades, key=lambda g: g.name)]
    if not os.environ.get('COURSEKIT_KEEP_WORK'):
        shutil.rmtree(work, ignore_errors=True)
    ordered = [results[key] for key in sorted(results)]
    _write_csvs(out, ordered)
    return ClassResult(ordered, out, notes)


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

