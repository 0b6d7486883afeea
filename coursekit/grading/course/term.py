"""The term's course directory: created by the first `coursekit autograde`, kept by every later one.

``OUT/course`` is an nbgrader course directory that lives as long as the term:

* ``gradebook.db``: nbgrader's gradebook, every notebook graded so far, plus coursekit's own
  record of each submission (:mod:`..pipeline.ledger`);
* ``source/<notebook>/`` and ``release/<notebook>/``: the notebook each submission is graded
  against, regenerated from ``solutions/`` when it changes (the ledger says which version
  each submission was graded against);
* ``submitted/<student>/<notebook>/``: what each student last handed in, with nbgrader's
  ``timestamp.txt`` when the submission carried a time;
* ``autograded/`` and the feedback pages: what grading made of it;
* ``nbgrader_config.py``: the course's configuration for nbgrader's own tools run in this
  folder (formgrader: :func:`.directory.write_course_config`), and ``exchange/``, the nbgrader
  exchange it names (coursekit does not use it; formgrader wants it to exist).
"""
from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from .directory import CourseError, check, write_course_config

#: a file in the course directory that says coursekit keeps it (and which version of its layout)
MARKER = ".coursekit-term"


def open_course(root: Path, coursedir: Path) -> Path:
    """The term's course directory at ``coursedir``, created on first use; a CourseError when the
    folder is something else (a course an older coursekit made fresh for one run, whose grades
    it cannot tell apart from a half-written run's)."""
    gradebook = coursedir / "gradebook.db"
    if coursedir.exists() and not (coursedir / MARKER).is_file():
        if not coursedir.is_dir():
            raise CourseError(f"{coursedir} is a file: expected the term's course folder")
        if any(coursedir.iterdir()) and (not gradebook.is_file() or _has_submissions(gradebook)):
            raise CourseError(f"{coursedir} holds a course coursekit does not keep (made by an older "
                              "coursekit, which started a fresh course on every run): move it away or "
                              "choose another --out to start this term's course there")
    coursedir.mkdir(parents=True, exist_ok=True)
    (coursedir / MARKER).write_text("1\n")
    (coursedir / "exchange").mkdir(exist_ok=True)   # nbgrader's exchange (formgrader warns without one)
    write_course_config(root, coursedir)
    return coursedir


def lock_course(coursedir: Path):
    """Hold the term's course for one class run: an open file with an exclusive lock, released
    when it is closed or the process ends (killed included). A second run on the same course is
    a CourseError naming the first one's process."""
    path = coursedir / ".coursekit-lock"
    handle = open(path, "a+")
    try:
        import fcntl
    except ImportError:  # Windows: no lock (one run at a time is then the instructor's care)
        return handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise CourseError(f"another coursekit autograde is grading into {coursedir.parent} "
                          f"(process {holder}): wait for it to finish") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _has_submissions(gradebook: Path) -> bool:
    try:
        with sqlite3.connect(gradebook) as db:
            return bool(db.execute("SELECT COUNT(*) FROM submitted_assignment").fetchone()[0])
    except sqlite3.Error:
        return True  # not a gradebook we can read: not ours to touch


def release_changed(root: Path, coursedir: Path, name: str, recorded: str) -> bool:
    """Whether the course's ``source/`` and gradebook must be (re)made for ``name``: never made,
    or ``solutions/<name>.ipynb`` is not the version ``recorded`` (its sha256)."""
    from ..pipeline.ledger import sha256

    source = coursedir / "source" / name / f"{name}.ipynb"
    return not source.is_file() or recorded != sha256(root / "solutions" / f"{name}.ipynb")


def generate(root: Path, coursedir: Path, name: str, api) -> None:
    """(Re)make the assignment ``name`` in the course from ``solutions/`` with nbgrader's
    generate_assignment (its gradebook entry, source/ and release/). nbgrader refuses to add or
    remove graded cells of a notebook that has submissions: that is a CourseError saying so."""
    source = coursedir / "source" / name
    source.mkdir(parents=True, exist_ok=True)
    tmp = source / f".{name}.ipynb.tmp"
    shutil.copyfile(root / "solutions" / f"{name}.ipynb", tmp)
    os.replace(tmp, source / f"{name}.ipynb")
    result = api.generate_assignment(name, force=True)
    if not result.get("success") and "Cannot add or remove cells" in (result.get("log") or "") + (result.get("error") or ""):
        raise CellsChanged(name)
    check(result, f"generate_assignment {name}")


class CellsChanged(CourseError):
    """solutions/<name>.ipynb gained or lost graded cells under submissions graded against the old one."""

    def __init__(self, name: str):
        super().__init__(f"solutions/{name}.ipynb now has other graded or answer cells than the version "
                         f"the course's submissions of {name} were graded against, and nbgrader cannot "
                         f"change the cells under graded submissions: run again with --regrade-outdated "
                         f"to regrade every submission of {name} against the new version")
        self.name = name
