"""`coursekit export`: the term's gradebook in the formats learning-management systems import.

* **Canvas** (``canvas.csv``): Canvas's gradebook CSV, as its *Export* writes it and its *Import*
  reads it: ``Student`` ("Last, First"), ``ID`` (Canvas's numeric user id), ``SIS User ID``,
  ``SIS Login ID``, ``Section``, then one column per notebook; the second row is
  ``Points Possible``. Canvas matches a row by ``ID``, else by SIS User ID or SIS Login ID (a
  student with none of them in the roster is left out and listed); a column it does not know
  becomes a new assignment.
* **Moodle** (``moodle.csv``): a file for Moodle's *Import → CSV file*: ``First name``,
  ``Last name``, ``ID number``, ``Email address``, then one column per notebook. Moodle stops
  the whole import at a row whose user it cannot find, so every row carries the
  ``Email address`` to map from (*Identify user by: Email address*); a student without one in
  the roster is left out and listed.
* **nbgrader** (``nbgrader.csv``): nbgrader's own CSV export (``CsvExportPlugin``'s columns), a
  row per student and notebook with raw score, late penalty and score, quoted where a field
  holds a comma (nbgrader's plugin does not quote).

Scores are after late penalties; a notebook a student did not hand in (or that was refused)
scores 0, as in ``grades.csv``. The export holds the course's lock (not while a class run
writes), leaves out what a killed run left half-written, and refuses a roster none of whose
students has anything graded (the wrong roster, or ids that are not the folders' names). Names and ids come from the roster (:mod:`..course.roster`);
students of the gradebook who are not in the roster and roster students with no submission are
listed, never dropped silently.
"""
from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..course.directory import CourseError
from ..course.roster import ROSTER, Person, read_roster
from ..course.term import lock_course
from ..pipeline import ledger
from ..pipeline.results import term_rows, whole_file

FORMATS = ("canvas", "moodle", "nbgrader")
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_COLUMNS = ["First name", "Last name", "ID number", "Email address"]


@dataclass
class Exported:
    files: dict[str, Path] = field(default_factory=dict)        # format -> file written
    not_in_roster: list[str] = field(default_factory=list)      # graded, but no roster row
    no_submission: dict[str, list[str]] = field(default_factory=dict)  # student -> notebooks with nothing graded
    left_out: dict[str, list[str]] = field(default_factory=dict)  # format -> students left out, and why


def export(out: Path, formats: list[str], roster: Path | None = None, to: Path | None = None) -> Exported:
    """Write the chosen ``formats`` of the term under ``out`` (its ``course/`` gradebook) into
    ``to`` (default ``out/export``)."""
    from nbgrader.api import Gradebook

    out = Path(out)
    gradebook = out / "course" / "gradebook.db"
    if not gradebook.is_file():
        raise CourseError(f"no gradebook at {gradebook}: grade a class into {out} first "
                          f"(coursekit autograde SUBMISSIONS --out {out})")
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise CourseError(f"unknown export format {', '.join(unknown) or '(none)'}: expected "
                          f"{', '.join(FORMATS)}")
    roster = roster if roster is not None else (out / "course" / ROSTER if (out / "course" / ROSTER).is_file() else None)
    people = read_roster(roster) if roster is not None else None
    if people is None and set(formats) & {"canvas", "moodle"}:
        raise CourseError("Canvas and Moodle match students by their LMS ids and e-mail addresses: "
                          "give the class roster with --roster ROSTER.csv (columns student_id, "
                          "first_name, last_name, email, sis_user_id, sis_login_id, section, canvas_id)")
    to = Path(to) if to is not None else out / "export"
    done = Exported()
    lock = lock_course(out / "course")   # not while a class run writes the gradebook
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="nbgrader")
            with Gradebook(f"sqlite:///{gradebook}", "coursekit") as gb:
                _export(gb, formats, people, roster, to, done)
    finally:
        lock.close()
    return done


def _export(gb, formats, people, roster, to: Path, done: Exported) -> None:
    ledger.ensure(gb)
    ledger.repair(gb)   # what a killed run left half-written is no grade (the next run grades it)
    graded = {s for s, _ in ledger.entries(gb)}
    if people is not None and graded and not graded & set(people):
        raise CourseError(f"no student of the roster {roster} has anything graded (the roster's "
                          f"student ids are e.g. {', '.join(sorted(people)[:3])}; the gradebook's "
                          f"{', '.join(sorted(graded)[:3])}): is it the right roster, with the ids "
                          "the students' folders are named by?")
    to.mkdir(parents=True, exist_ok=True)
    if people is not None:
        _names_into(gb, people)
    notebooks, students, rows = term_rows(gb, {})
    maxima = {a.name: float(a.max_score or 0.0) for a in gb.assignments}
    if people is not None:
        done.not_in_roster = [s for s in students if s not in people]
        for sid in people:
            missing = [n for n in notebooks if (sid, n) not in rows or rows[(sid, n)].status != "graded"]
            if missing:
                done.no_submission[sid] = missing
    score = {key: row.score for key, row in rows.items()}
    if "canvas" in formats:
        done.files["canvas"], done.left_out["canvas"] = _canvas(to / "canvas.csv", people, notebooks, maxima, score)
    if "moodle" in formats:
        done.files["moodle"], done.left_out["moodle"] = _moodle(to / "moodle.csv", people, notebooks, score)
    if "nbgrader" in formats:
        done.files["nbgrader"] = _nbgrader(to / "nbgrader.csv", gb, rows)


def _names_into(gb, people: dict[str, Person]) -> None:
    """The roster's names into the gradebook (nbgrader's export and formgrader read them there)."""
    for person in people.values():
        gb.update_or_create_student(person.student_id, first_name=person.first_name or None,
                                    last_name=person.last_name or None, email=person.email or None,
                                    lms_user_id=person.canvas_id or None)


def _cell(value: float) -> str:
    return f"{value:g}"


def _canvas(path: Path, people, notebooks, maxima, score) -> tuple[Path, list[str]]:
    left_out = []
    with whole_file(path) as fh:
        writer = csv.writer(fh)
        writer.writerow([*CANVAS_COLUMNS, *notebooks])
        writer.writerow(["    Points Possible", "", "", "", "", *(_cell(maxima[n]) for n in notebooks)])
        for sid, p in sorted(people.items(), key=lambda kv: (kv[1].sortable_name.lower(), kv[0])):
            if not (p.canvas_id or p.sis_user_id or p.sis_login_id):
                left_out.append(f"{sid} (no canvas_id, sis_user_id or sis_login_id in the roster: "
                                "Canvas matches rows by one of them)")
                continue
            writer.writerow([p.sortable_name, p.canvas_id, p.sis_user_id, p.sis_login_id, p.section,
                             *(_cell(score.get((sid, n), 0.0)) for n in notebooks)])
    return path, left_out


#: nbgrader's CSV export (``nbgrader export``, CsvExportPlugin): its columns, in its order
NBGRADER_COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                    "raw_score", "late_submission_penalty", "score", "max_score"]


def _nbgrader(path: Path, gb, rows) -> Path:
    """nbgrader's CSV export, a row per notebook and student with what nbgrader writes (a student
    who handed nothing in: 0 and no timestamp), written by the csv module: nbgrader's own plugin
    does not quote, so a name with a comma ("Bitdiddle, Jr.") shifts every column after it."""
    with whole_file(path) as fh:
        writer = csv.writer(fh)
        writer.writerow(NBGRADER_COLUMNS)
        for assignment in gb.assignments:
            for student in gb.students:
                row = rows.get((student.id, assignment.name))
                if row is None:
                    continue
                writer.writerow([assignment.name, _time(assignment.duedate), row.submitted, student.id,
                                 student.last_name or "", student.first_name or "", student.email or "",
                                 row.raw_score, row.late_penalty, max(0.0, row.score), float(assignment.max_score or 0.0)])
    return path


def _time(value) -> str:
    return value.isoformat(" ", timespec="seconds") if value is not None else ""


def _moodle(path: Path, people, notebooks, score) -> tuple[Path, list[str]]:
    left_out = []
    with whole_file(path) as fh:
        writer = csv.writer(fh)
        writer.writerow([*MOODLE_COLUMNS, *notebooks])
        for sid, p in sorted(people.items()):
            if not p.email:
                left_out.append(f"{sid} (no email in the roster: Moodle matches rows by Email address)")
                continue
            writer.writerow([p.first_name, p.last_name, p.sis_user_id, p.email,
                             *(_cell(score.get((sid, n), 0.0)) for n in notebooks)])
    return path, left_out
