"""What coursekit knows about each submission in the term's gradebook, kept in the gradebook.

nbgrader's gradebook (``OUT/course/gradebook.db``) holds the grades; a table of coursekit's in
the same SQLite file, ``coursekit_graded``, holds one row per (student, notebook) that is
completely recorded: the sha256 of the submitted file, the sha256 of the source notebook it was
graded against (``solutions/<notebook>.ipynb``: a fixed hidden test changes it), the submission
time, and whether it was graded or refused (and why).

The row is what makes a class run safe to kill: it is removed (and committed) before a
submission's grades are touched, and written in the same commit as its last grade, so a row
says "these grades are complete". A submission in nbgrader's tables without a row was cut off
by a killed run: :func:`repair` removes it, and the next run grades it again. A second table,
``coursekit_release``, says which version of each notebook the course's own ``source/`` and
gradebook hold.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

GRADED = "graded"


@dataclass(frozen=True)
class Entry:
    student: str
    notebook: str
    content: str        # sha256 of the submitted file's bytes
    release: str        # sha256 of solutions/<notebook>.ipynb when it was graded
    submitted: str = ""  # the submission time (ISO, UTC), "" when the submission carried none
    status: str = GRADED  # or why it was refused ("not a valid notebook: ...")
    graded_at: str = ""
    notes: str = ""       # what grading noticed ("ex6a_answer: stopped after ..."), one per line


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sql(gb, statement: str, **params):
    from sqlalchemy import text

    return gb.db.execute(text(statement), params)


def ensure(gb) -> None:
    """Create coursekit's tables in the gradebook ``gb`` if they are not there yet."""
    _sql(gb, "CREATE TABLE IF NOT EXISTS coursekit_graded (student TEXT NOT NULL, notebook TEXT NOT NULL, "
         "content TEXT NOT NULL, release TEXT NOT NULL, submitted TEXT NOT NULL, status TEXT NOT NULL, "
         "graded_at TEXT NOT NULL, notes TEXT NOT NULL DEFAULT '', PRIMARY KEY (student, notebook))")
    _sql(gb, "CREATE TABLE IF NOT EXISTS coursekit_release (notebook TEXT PRIMARY KEY, release TEXT NOT NULL)")
    gb.db.commit()


def entries(gb) -> dict[tuple[str, str], Entry]:
    rows = _sql(gb, "SELECT student, notebook, content, release, submitted, status, graded_at, notes "
                "FROM coursekit_graded").fetchall()
    return {(r[0], r[1]): Entry(*r) for r in rows}


def forget(gb, student: str, notebook: str) -> None:
    """The row of (student, notebook) removed and committed: its grades are about to change."""
    _sql(gb, "DELETE FROM coursekit_graded WHERE student = :s AND notebook = :n", s=student, n=notebook)
    gb.db.commit()


def write(gb, entry: Entry) -> None:
    """The row of ``entry`` (not committed: the caller commits it with the last grade)."""
    _sql(gb, "INSERT OR REPLACE INTO coursekit_graded VALUES (:s, :n, :c, :r, :t, :st, :g, :no)",
         s=entry.student, n=entry.notebook, c=entry.content, r=entry.release, t=entry.submitted,
         st=entry.status, g=entry.graded_at, no=entry.notes)


def releases(gb) -> dict[str, str]:
    return dict(_sql(gb, "SELECT notebook, release FROM coursekit_release").fetchall())


def set_release(gb, notebook: str, release: str) -> None:
    _sql(gb, "INSERT OR REPLACE INTO coursekit_release VALUES (:n, :r)", n=notebook, r=release)
    gb.db.commit()


def repair(gb) -> list[tuple[str, str]]:
    """Remove every submission in nbgrader's tables that has no complete row (a killed run's);
    returns them as (student, notebook)."""
    from nbgrader.api import MissingEntry

    complete = {key for key, e in entries(gb).items() if e.status == GRADED}
    removed = []
    for assignment in gb.assignments:
        for submission in gb.assignment_submissions(assignment.name):
            key = (submission.student.id, assignment.name)
            if key not in complete:
                removed.append(key)
    for student, notebook in removed:
        try:
            gb.remove_submission(notebook, student)
        except MissingEntry:
            pass
    return removed
