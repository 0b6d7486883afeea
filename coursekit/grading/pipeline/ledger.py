"""What coursekit knows about each submission in the term's gradebook, kept in the gradebook.

nbgrader's gradebook (``OUT/course/gradebook.db``) holds the grades; a table of coursekit's in
the same SQLite file, ``coursekit_graded``, holds one row per (student, notebook) that is
completely recorded: the sha256 of the submitted file, the sha256 of the source notebook it was
graded against (``solutions/<notebook>.ipynb``: a fixed hidden test changes it), the submission
time, and whether it was graded or refused (and why).

The row is what makes a class run safe to kill. Its status says what the grades are:

* ``graded``: complete, for the file of ``content``; written in the same commit as its last grade;
* ``regrading``: complete, but being graded again (set and committed before anything of it is
  touched; the next run grades it again if the run that set it was killed);
* ``refused: why``: the file is not gradable (nbgrader holds no submission for it).

A submission in nbgrader's tables with neither a ``graded`` nor a ``regrading`` row was cut off
by a killed run while it was first added: :func:`repair` removes it, and the next run grades it
again. A second table, ``coursekit_release``, says which version of each notebook the course's
own ``source/`` and gradebook hold.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...data.download import sha256sum

GRADED = "graded"
REGRADING = "regrading"
REFUSED = "refused: "   # + why
COMPLETE = (GRADED, REGRADING)   # statuses under which nbgrader's grades are whole


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


sha256 = sha256sum   # the sha256 of a file's bytes (one helper: coursekit.data.download)


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


def entries(gb, student: str | None = None, notebook: str | None = None) -> dict[tuple[str, str], Entry]:
    """The rows, or the one row of (``student``, ``notebook``)."""
    where, params = "", {}
    if student is not None:
        where, params = " WHERE student = :s AND notebook = :n", {"s": student, "n": notebook}
    rows = _sql(gb, "SELECT student, notebook, content, release, submitted, status, graded_at, notes "
                "FROM coursekit_graded" + where, **params).fetchall()
    return {(r[0], r[1]): Entry(*r) for r in rows}


def mark(gb, student: str, notebook: str, status: str) -> None:
    """Set the status of a row, committed."""
    _sql(gb, "UPDATE coursekit_graded SET status = :st WHERE student = :s AND notebook = :n",
         st=status, s=student, n=notebook)
    gb.db.commit()


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


def repair(gb, only: tuple[str, str] | None = None) -> list[tuple[str, str]]:
    """Remove every submission in nbgrader's tables (or the one of ``only``: (student, notebook))
    whose row says neither ``graded`` nor ``regrading`` (a killed run's, cut off while it was
    first added); returns them as (student, notebook)."""
    from nbgrader.api import MissingEntry

    whole = {key for key, e in entries(gb).items() if e.status in COMPLETE}
    removed = []
    for assignment in gb.assignments:
        if only is not None and assignment.name != only[1]:
            continue
        for submission in gb.assignment_submissions(assignment.name):
            key = (submission.student.id, assignment.name)
            if key not in whole and (only is None or key == only):
                removed.append(key)
    for student, notebook in removed:
        try:
            gb.remove_submission(notebook, student)
        except MissingEntry:
            pass
    return removed
