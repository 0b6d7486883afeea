"""Planning a class run in the term's course: what was handed in, what changed since it was
graded, and one job per submission to grade, written for a worker.

A submission is graded when the course has no complete record of it (:mod:`.ledger`): new,
changed since it was graded (its bytes' sha256), left half-recorded by a killed run, or asked
for (``--regrade STUDENT[/NOTEBOOK]``, ``--regrade-outdated`` for submissions graded against
an older ``solutions/`` notebook). Everything else keeps its grade and is counted as skipped.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from ..course.deadlines import due_dates
from ..course.directory import CourseError, assignments, check, nbgrader_api
from ..course.distribution import grading_copy
from ..course.parameters import GradingParameters
from ..course.roster import Person, keep_roster, read_roster
from ..course.submitted import SubmittedFiles, copy_files, files_digest, store_files
from ..course.term import CellsChanged, generate, lock_course, open_course, release_changed
from ..kernel.sandbox import Limits, capabilities
from ..kernel import zygote
from ..kernel.scratch import remove_tree
from . import ledger
from .collect import TIMESTAMP, collect_folder, collect_zip, submission_time
from .intake import intake, someone_else
from .jobs import Job
from .prepare import prepare
from .results import NotebookResult


@dataclass
class Stored:
    """What the course holds of one (student, notebook): the last notebook handed in."""
    path: Path          # OUT/course/submitted/<student>/<notebook>/<notebook>.ipynb
    content: str        # its sha256
    submitted: str = ""  # when it was handed in (UTC, nbgrader's timestamp.txt), "" if unknown


@dataclass
class Plan:
    root: Path
    out: Path
    api: object                  # the NbGraderAPI of the term's course directory
    names: list[str]             # the notebooks this run reports on
    results: dict[tuple[str, str], NotebookResult]
    jobs: list[tuple[str, str, Path]] = field(default_factory=list)   # (student, notebook, job.json)
    found: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # what intake found
    refused: dict[tuple[str, str], str] = field(default_factory=dict)      # intake's refusals
    stored: dict[tuple[str, str], Stored] = field(default_factory=dict)    # every stored submission
    releases: dict[str, str] = field(default_factory=dict)   # notebook -> sha256 of solutions/ now
    skipped: list[tuple[str, str]] = field(default_factory=list)  # unchanged since graded
    outdated: dict[str, list[str]] = field(default_factory=dict)  # notebook -> students graded on an old one
    people: dict[str, Person] | None = None    # the roster, when one was given
    notes: list[str] = field(default_factory=list)
    concurrency: int = 1
    wall: float = 0.0            # seconds before a worker is stopped
    lock: object = None          # the course's lock (course.term.lock_course), held until the run ends
    leaderboard: dict = field(default_factory=dict)   # model -> [(student, accuracy)], best first (07)

    @property
    def coursedir(self) -> Path:
        return self.out / "course"

    @property
    def work(self) -> Path:
        return self.out / "work"


def jobs_default() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def plan_class(root: Path, submissions: Path | None, out: Path, *, timeout: int | None, jobs: int | None,
               limits: dict | None, regrade: list[str] | tuple = (), regrade_outdated: bool = False,
               roster: Path | None = None, graded_here: bool = True, data: Path | None = None) -> Plan:
    """Everything up to grading: see the module docstring. ``graded_here``: the submissions are
    graded on this machine (not on a cluster's workers, which report their own sandboxes)."""
    # Every path is made absolute here: the workers and kernels run in other folders.
    root, out = Path(root).resolve(), Path(out).resolve()
    if data is not None:
        data = Path(data).expanduser().resolve()
        if not data.exists():
            raise CourseError(f"--data {data}: no such file or folder (expected a 15-Scene folder made by "
                              f"`coursekit data fetch 15-scene`, or the dataset's zip)")
    if submissions is not None:
        submissions = Path(submissions).resolve()
        if not submissions.exists():
            raise CourseError(f"no submissions at {submissions}")
    elif not regrade and not regrade_outdated:
        raise CourseError("nothing to grade: give SUBMISSIONS (a folder of student folders or an LMS "
                          "zip), or --regrade / --regrade-outdated to regrade what the course holds")
    all_names = assignments(root)
    due = due_dates(_config(root), all_names)   # a bad due date stops the run before anything is written
    people = read_roster(roster) if roster is not None else None
    with tempfile.TemporaryDirectory(prefix="coursekit-collect-") as staging:
        handed, seen, notes = _collect(root, submissions, all_names, Path(staging)) if submissions else ({}, set(), [])
        out.mkdir(parents=True, exist_ok=True)
        coursedir = open_course(root, out / "course")
        lock = lock_course(coursedir)  # one class run at a time in a term's course
        try:
            plan = _plan(root, out, coursedir, lock, all_names, due, people, roster, handed, seen, notes,
                         timeout=timeout, jobs=jobs, limits=limits, regrade=regrade,
                         regrade_outdated=regrade_outdated, graded_here=graded_here, data=data)
        except BaseException:
            lock.close()
            raise
    return plan


def _plan(root, out, coursedir, lock, all_names, due, people, roster, handed, seen, notes, *, timeout, jobs,
          limits, regrade, regrade_outdated, graded_here, data=None) -> Plan:
    from nbgrader.api import Gradebook

    if not remove_tree(out / "work"):  # may hold what a submission wrote
        raise CourseError(f"could not remove {out / 'work'} left by an earlier run: remove it and retry")
    if roster is not None:
        keep_roster(roster, coursedir)
    api = nbgrader_api(root, coursedir, timeout=timeout)
    if data is not None:
        api.config.HeldOutData.data = str(data)
    plan = Plan(root, out, api, [], {}, people=people, concurrency=jobs or jobs_default(), lock=lock,
                notes=list(notes))
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
        ledger.ensure(gb)
        cut = ledger.repair(gb)
        recorded, entries = ledger.releases(gb), ledger.entries(gb)
    if cut:
        plan.notes.append(f"{len(cut)} submission(s) left half-recorded by an interrupted run were "
                          "removed from the gradebook and are graded again: "
                          + ", ".join(f"{s}/{n}" for s, n in cut[:10]) + (" ..." if len(cut) > 10 else ""))
    hashes = StoredHashes(coursedir / "submitted")
    extra = SubmittedFiles(config=api.config)
    for (student, name), (path, when) in handed.items():
        problem = _store(coursedir / "submitted" / student / name, path, name, when, hashes)
        if problem:
            plan.notes.append(f"{student}: {problem}")
        elif extra.names(name):   # the files handed in beside it (07's models)
            store_files(path.parent, coursedir / "submitted" / student / name, extra.names(name), extra.max_bytes)
    plan.stored = _stored(coursedir, all_names, hashes, extra)
    hashes.save()
    forced = _regrade_list(plan, regrade, all_names)
    current = {n: ledger.sha256(root / "solutions" / f"{n}.ipynb") for n in all_names
               if recorded.get(n) or any(k[1] == n for k in plan.stored)}
    outdated = {key for key, e in entries.items() if e.status in ledger.COMPLETE and key in plan.stored
                and e.release != current.get(key[1], e.release)}
    if regrade_outdated:
        forced |= outdated
    todo = []
    for key, stored in sorted(plan.stored.items()):
        entry = entries.get(key)
        if (key in forced or entry is None or entry.content != stored.content
                or entry.status == ledger.REGRADING):
            todo.append(key)   # new, changed, left unrecorded by an interrupted run, or asked for
    # The notebooks this run reports on and grades: what was handed in now, and what is graded.
    plan.names = [n for n in all_names if any(k[1] == n for k in [*handed, *todo])]
    if not plan.names:
        raise CourseError("nothing to regrade: the course holds no submission graded against an older notebook")
    plan.releases = {n: sha for n, sha in current.items() if n in plan.names or recorded.get(n)}
    _sync_releases(plan, recorded, regrade_outdated, entries)
    _course_facts(plan, due, seen)
    for key in sorted(outdated - set(todo)):
        plan.outdated.setdefault(key[1], []).append(key[0])
    for name, students in plan.outdated.items():
        plan.notes.append(f"{len(students)} submission(s) of {name} were graded against an older "
                          f"solutions/{name}.ipynb ({', '.join(students[:8])}{' ...' if len(students) > 8 else ''}): "
                          "their grades are kept; --regrade-outdated regrades them")
    missing = [k for k, v in capabilities().items() if not v]
    if missing and todo and graded_here:
        plan.notes.append("this machine cannot shut submissions in for: " + ", ".join(missing) +
                          " (see coursekit.grading.kernel.sandbox); the other limits apply")
    # A result for every submission this run is about; for every student in SUBMISSIONS, a
    # result (with "no submission") for each notebook of the run.
    for key in sorted({*todo, *handed, *((s, n) for s in seen for n in plan.names)}):
        result = plan.results[key] = NotebookResult(*key, 0.0, 0.0)
        if key not in plan.stored:
            result.missing = True
            result.problems.append("no submission")
        elif key not in todo:   # graded before and unchanged (handed in again, or not this time)
            plan.skipped.append(key)
        result.submitted = plan.stored[key].submitted if key in plan.stored else ""
    limits = asdict(Limits(**(limits or {})))
    plan.wall = limits["notebook_seconds"] + 120
    if todo:
        _write_jobs(plan, todo, timeout, limits, graded_here)
    return plan


def _config(root: Path):
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader("nbgrader_config.py", path=str(root / "autograder")).load_config()


def _collect(root: Path, submissions: Path, names: list[str], staging: Path):
    """What SUBMISSIONS holds: {(student, notebook): (path, submission time)}, every student in it
    (with or without a course notebook) and notes; an LMS zip is collected into ``staging`` first.
    Nothing is written into the course here."""
    if submissions.is_file() and submissions.suffix == ".zip":
        api = nbgrader_api(root, staging)
        extra = SubmittedFiles(config=api.config)
        students, notes = collect_zip(submissions, names, staging, api, {n: extra.names(n) for n in names}), []
        where = staging / "submitted"
    elif submissions.is_dir():
        (students, notes), where = collect_folder(submissions, names), submissions
    else:
        raise CourseError(f"{submissions} is neither a folder of student folders nor a .zip")
    if not students:
        raise CourseError(f"no student folders in {submissions}")
    handed = {}
    for student, notebooks in students.items():
        for name, path in notebooks.items():
            when, problem = submission_time(path, where / student)
            if problem:
                notes.append(f"{student}: {problem}")
            handed[(student, name)] = (path, when)
    if not handed:
        raise CourseError(f"{submissions} holds no course notebook (expected <student>/NN_name.ipynb "
                          f"for one of {', '.join(n + '.ipynb' for n in names)})")
    return handed, set(students), notes


class StoredHashes:
    """The sha256 of each stored submission, kept in ``submitted/.sha256.json`` by file size and
    modification time, so that a run reads only the files that changed (a term of 1,000 students
    and ten notebooks would otherwise read gigabytes each run)."""

    def __init__(self, folder: Path):
        self.path = folder / ".sha256.json"
        try:
            self.known = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.known = {}

    def __call__(self, path: Path) -> str:
        stat = path.stat()
        key = path.relative_to(self.path.parent).as_posix()
        size, mtime, sha = (self.known.get(key) or [None, None, None])
        if (size, mtime) != (stat.st_size, stat.st_mtime_ns):
            sha = ledger.sha256(path)
            self.known[key] = [stat.st_size, stat.st_mtime_ns, sha]
        return sha

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(".sha256.json.tmp")
        tmp.write_text(json.dumps(self.known))
        os.replace(tmp, self.path)


def _store(folder: Path, path: Path, name: str, when: str, hashes: StoredHashes) -> str:
    """Keep ``path`` as the course's copy of this submission, unless it holds the same bytes (a
    submission's time is when its content was first handed in). Returns a problem to note, or ""."""
    dest = folder / f"{name}.ipynb"
    try:
        content = ledger.sha256(path)
    except OSError as exc:
        if dest.is_file():  # a passing read error must not replace what was handed in before
            return f"could not read {path.name} ({exc.strerror}): kept the copy handed in before"
        content = ""
    if content and dest.is_file() and hashes(dest) == content:
        return ""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.ipynb.tmp"
    try:
        shutil.copyfile(path, tmp)
    except OSError as exc:  # unreadable: what is stored says so, and intake refuses it
        tmp.write_text(f"could not be read ({exc.strerror})")
    stamp = folder / TIMESTAMP
    if when:
        (folder / f".{TIMESTAMP}.tmp").write_text(when + "\n")
        os.replace(folder / f".{TIMESTAMP}.tmp", stamp)
    elif stamp.exists():
        stamp.unlink()
    os.replace(tmp, dest)  # last: a stored notebook always has its own time beside it
    return ""


def _stored(coursedir: Path, names: list[str], hashes: StoredHashes,
            extra: SubmittedFiles) -> dict[tuple[str, str], Stored]:
    """Each stored submission; its content is the notebook's sha256, and with files handed in
    beside it (SubmittedFiles), theirs too."""
    stored = {}
    for name in names:
        for path in sorted((coursedir / "submitted").glob(f"*/{name}/{name}.ipynb")):
            stamp = path.parent / TIMESTAMP
            when = stamp.read_text().strip() if stamp.is_file() else ""
            content = hashes(path)
            files = files_digest(path.parent, extra.names(name))
            stored[(path.parts[-3], name)] = Stored(path, f"{content}+{files}" if files else content, when)
    return stored


def _regrade_list(plan: Plan, specs, names: list[str]) -> set[tuple[str, str]]:
    """The stored submissions ``--regrade`` names: STUDENT (all of theirs) or STUDENT/NOTEBOOK."""
    chosen = set()
    for spec in specs:
        student, _, name = spec.partition("/")
        if name and name not in names:
            raise CourseError(f"--regrade {spec}: {name} is not a notebook of the course "
                              f"(expected one of {', '.join(names)})")
        keys = {k for k in plan.stored if k[0] == student and (not name or k[1] == name)}
        if not keys:
            raise CourseError(f"--regrade {spec}: the course holds no submission of "
                              f"{name or 'any notebook'} by {student!r}")
        chosen |= keys
    return chosen


def _sync_releases(plan: Plan, recorded: dict[str, str], regrade_outdated: bool, entries) -> None:
    """(Re)make each notebook of the run in the course when solutions/ changed (or on first use)."""
    from nbgrader.api import Gradebook

    for name in plan.names:
        if not release_changed(plan.root, plan.coursedir, name, recorded.get(name, "")):
            continue
        try:
            generate(plan.root, plan.coursedir, name, plan.api)
        except CellsChanged:
            if not regrade_outdated:
                raise
            # every submission of it is regraded: take them out, then nbgrader may change the cells
            with Gradebook(plan.api.coursedir.db_url, plan.api.coursedir.course_id) as gb:
                for (student, notebook) in entries:
                    if notebook == name:
                        ledger.forget(gb, student, notebook)
                for submission in list(gb.assignment_submissions(name)):
                    gb.remove_submission(name, submission.student.id)
            generate(plan.root, plan.coursedir, name, plan.api)
        with Gradebook(plan.api.coursedir.db_url, plan.api.coursedir.course_id) as gb:
            ledger.set_release(gb, name, plan.releases[name])


def _course_facts(plan: Plan, due: dict[str, datetime], seen: set[str]) -> None:
    """Due dates (from the course configuration), every student of SUBMISSIONS (one who handed
    in no course notebook is still in the class) and the roster's names into the gradebook,
    where nbgrader's late penalties, formgrader and the CSVs read them."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(plan.api.coursedir.db_url, plan.api.coursedir.course_id) as gb:
        known = {s.id for s in gb.students}
        for student in sorted(seen - known):
            gb.add_student(student)
        for assignment in gb.assignments:
            if assignment.duedate != due.get(assignment.name):
                gb.update_or_create_assignment(assignment.name, duedate=due.get(assignment.name))
        for person in (plan.people or {}).values():
            fields = dict(first_name=person.first_name or None, last_name=person.last_name or None,
                          email=person.email or None, lms_user_id=person.canvas_id or None)
            try:
                student = gb.find_student(person.student_id)
                if all(getattr(student, k) == v for k, v in fields.items()):
                    continue
            except MissingEntry:
                pass
            gb.update_or_create_student(person.student_id, **fields)


def _template(plan: Plan, names: list[str]) -> Path:
    """A course directory for the workers: the run's notebooks and a gradebook that holds only
    them (not the term's grades: each worker copies it)."""
    template = plan.work / "template"
    api = nbgrader_api(plan.root, template)
    for name in names:
        (template / "source" / name).mkdir(parents=True)
        shutil.copyfile(plan.coursedir / "source" / name / f"{name}.ipynb",
                        template / "source" / name / f"{name}.ipynb")
        check(api.generate_assignment(name, force=True), f"generate_assignment {name}")
    return template


def _write_jobs(plan: Plan, todo: list[tuple[str, str]], timeout: int | None, limits: dict,
                graded_here: bool = True) -> None:
    """A job folder per submission to grade that intake accepts; intake's refusals are noted."""
    names = sorted({name for _, name in todo})
    prepared = prepare(plan.api.config, plan.work / "shared", names)
    read, env = prepared.read, prepared.env
    extra = SubmittedFiles(config=plan.api.config)
    # Share the cores between the kernels graded at once instead of oversubscribing them.
    threads = str(max(1, (os.cpu_count() or 1) // plan.concurrency))
    env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
    if graded_here:   # the kernels' zygote imports torch while the jobs are written (kernel.zygote)
        zygote.for_grading(env)
    template = _template(plan, names)
    parameters = GradingParameters(config=plan.api.config).values
    packages = {name: str(grading_copy(plan.root, plan.work / "shared" / "coursekit" / name,
                                       plan.coursedir / "release" / name / f"{name}.ipynb", env, plan.notes,
                                       parameters.get(name)))
                for name in names}
    for student, name in todo:
        result = plan.results[(student, name)]
        taken = intake(plan.stored[(student, name)].path, plan.coursedir / "release" / name / f"{name}.ipynb")
        if taken.notebook is None:
            result.problems.append(taken.refused)
            plan.refused[(student, name)] = taken.refused
            continue
        plan.found[(student, name)] = taken.found + someone_else(taken.notebook, student)
        folder = plan.work / "jobs" / student / name
        folder.mkdir(parents=True)
        nbformat.write(taken.notebook, folder / f"{name}.ipynb")
        files = ""
        if extra.names(name):   # (an empty folder when none was handed in: the cells say so)
            (folder / "files").mkdir()
            copy_files(plan.stored[(student, name)].path.parent, extra.names(name), folder / "files")
            files = str(folder / "files")
        job = Job(str(plan.root), str(template), student, name, str(folder / f"{name}.ipynb"),
                  str(folder), timeout, limits, read, env, packages[name],
                  judge_read=prepared.judge_read, judge_env=prepared.judge_env, files=files)
        (folder / "job.json").write_text(json.dumps(asdict(job)))
        plan.jobs.append((student, name, folder / "job.json"))


def now() -> str:
    """The time now, in UTC, as nbgrader writes times."""
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat(" ", timespec="seconds")
