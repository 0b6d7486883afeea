"""Planning a class run: a fresh course directory, the submissions read and checked, one job
per (student, notebook) written for a worker, and a result per (student, notebook) to fill."""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from ..course.directory import CourseError, assignments, generate_assignments, nbgrader_api
from ..course.distribution import grading_copy
from ..kernel.sandbox import Limits, capabilities
from ..kernel.scratch import remove_tree
from .collect import collect_folder, collect_zip
from .intake import intake
from .jobs import Job
from .prepare import prepare
from .results import NotebookResult


@dataclass
class Plan:
    root: Path
    out: Path
    api: object                  # the NbGraderAPI of the class's course directory
    names: list[str]             # the notebooks graded
    results: dict[tuple[str, str], NotebookResult]
    jobs: list[tuple[str, str, Path]] = field(default_factory=list)   # (student, notebook, job.json)
    found: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # what intake found
    notes: list[str] = field(default_factory=list)
    concurrency: int = 1
    wall: float = 0.0            # seconds before a worker is stopped

    @property
    def coursedir(self) -> Path:
        return self.out / "course"

    @property
    def work(self) -> Path:
        return self.out / "work"


def jobs_default() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def plan_class(root: Path, submissions: Path, out: Path, *, timeout: int | None, jobs: int | None,
               limits: dict | None) -> Plan:
    """Everything up to grading: see the module docstring."""
    # Every path is made absolute here: the workers and kernels run in other folders.
    root, submissions, out = Path(root).resolve(), Path(submissions).resolve(), Path(out).resolve()
    if not submissions.exists():
        raise CourseError(f"no submissions at {submissions}")
    names = assignments(root)
    out.mkdir(parents=True, exist_ok=True)
    for stale in (out / "course", out / "work"):  # work/ may hold what a submission wrote
        if not remove_tree(stale):
            raise CourseError(f"could not remove {stale} left by an earlier run: remove it and retry")
    (out / "course").mkdir()
    api = nbgrader_api(root, out / "course", timeout=timeout)
    students, notes = _collect(root, submissions, out / "course", names, api)
    # Grade the assignments that were handed in (by anyone): a class collected for notebook 01
    # is not graded as missing every later notebook.
    names = [name for name in names if any(name in nbs for nbs in students.values())] or names
    if not submissions.is_file():
        generate_assignments(root, out / "course", names, api)
    missing = [k for k, v in capabilities().items() if not v]
    if missing:
        notes.append("this machine cannot shut submissions in for: " + ", ".join(missing) +
                     " (see coursekit.grading.kernel.sandbox); the other limits apply")
    plan = Plan(root, out, api, names, {}, notes=notes, concurrency=jobs or jobs_default())
    limits = asdict(Limits(**(limits or {})))
    plan.wall = limits["notebook_seconds"] + 120
    _write_jobs(plan, students, timeout, limits)
    return plan


def _collect(root: Path, submissions: Path, coursedir: Path, names: list[str], api):
    if submissions.is_file() and submissions.suffix == ".zip":
        generate_assignments(root, coursedir, names, api)  # zip_collect files into assignments
        students, notes = collect_zip(submissions, names, coursedir, api), []
    elif submissions.is_dir():
        students, notes = collect_folder(submissions, names)
    else:
        raise CourseError(f"{submissions} is neither a folder of student folders nor a .zip")
    if not students:
        raise CourseError(f"no student folders in {submissions}")
    return students, notes


def _write_jobs(plan: Plan, students: dict, timeout: int | None, limits: dict) -> None:
    """A job folder per submission that intake accepts; a result (with its note) for every one."""
    template = plan.work / "template"
    template.mkdir(parents=True)
    shutil.copytree(plan.coursedir / "source", template / "source")
    shutil.copyfile(plan.coursedir / "gradebook.db", template / "gradebook.db")
    read, env = prepare(plan.api.config, plan.work / "shared", plan.names)
    # Share the cores between the kernels graded at once instead of oversubscribing them.
    threads = str(max(1, (os.cpu_count() or 1) // plan.concurrency))
    env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
    packages = {name: str(grading_copy(plan.root, plan.work / "shared" / "coursekit" / name,
                                       plan.coursedir / "release" / name / f"{name}.ipynb", env, plan.notes))
                for name in plan.names}
    for student, notebooks in sorted(students.items()):
        for name in plan.names:
            result = plan.results[(student, name)] = NotebookResult(student, name, 0.0, 0.0)
            if name not in notebooks:
                result.problems.append("no submission")
                continue
            taken = intake(notebooks[name], plan.coursedir / "release" / name / f"{name}.ipynb")
            if taken.notebook is None:
                result.problems.append(taken.refused)
                continue
            plan.found[(student, name)] = taken.found
            folder = plan.work / "jobs" / student / name
            folder.mkdir(parents=True)
            nbformat.write(taken.notebook, folder / f"{name}.ipynb")
            job = Job(str(plan.root), str(template), student, name, str(folder / f"{name}.ipynb"),
                      str(folder), timeout, limits, read, env, packages[name])
            (folder / "job.json").write_text(json.dumps(asdict(job)))
            plan.jobs.append((student, name, folder / "job.json"))
