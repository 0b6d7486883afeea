"""The class roster: who the students are, as the instructor's CSV says.

One row per student. ``student_id`` is required: the name of the student's folder of
submissions, or the id at the start of their file names in an LMS zip. The other columns are
optional and go where a learning-management system wants them: ``first_name``, ``last_name``
(or one ``name``, "First Last" or "Last, First"), ``email``, ``sis_user_id``,
``sis_login_id``, ``section`` and ``canvas_id`` (Canvas's numeric user id). Column names are
matched without regard to case, spaces or underscores (``Student ID``, ``SIS User ID``).

Canvas's own gradebook export works as a roster: its ``Student`` column is the name, ``ID``
the Canvas id, and, with no ``student_id`` column, ``SIS Login ID`` is taken as the student id
(name the students' folders by their login).
"""
from __future__ import annotations

import csv
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .directory import CourseError

#: the copy of the roster a class run was given, kept in the term's course for later exports
ROSTER = "roster.csv"
FIELDS = ("first_name", "last_name", "email", "sis_user_id", "sis_login_id", "section", "canvas_id")


@dataclass
class Person:
    student_id: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""
    canvas_id: str = ""

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    @property
    def sortable_name(self) -> str:
        """"Last, First", as Canvas shows its students."""
        return ", ".join(part for part in (self.last_name, self.first_name) if part) or self.student_id


def _key(column: str) -> str:
    return "".join(ch for ch in column.lower() if ch.isalnum())


def read_roster(path: Path) -> dict[str, Person]:
    """student id -> Person, or a CourseError that says what is wrong with the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CourseError(f"could not read the roster {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CourseError(f"the roster {path} is not UTF-8 text (save it as CSV UTF-8)") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise CourseError(f"the roster {path} is empty: expected a header with student_id")
    header = [_key(c) for c in rows[0]]
    columns = {"studentid": "student_id", "firstname": "first_name", "lastname": "last_name",
               "surname": "last_name", "name": "name", "student": "name", "email": "email",
               "emailaddress": "email", "sisuserid": "sis_user_id", "sisloginid": "sis_login_id",
               "section": "section", "canvasid": "canvas_id", "id": "canvas_id"}
    where = {columns[h]: i for i, h in reversed(list(enumerate(header))) if h in columns}
    if "student_id" not in where and "sis_login_id" in where:   # Canvas's gradebook export
        where["student_id"] = where["sis_login_id"]
    if "student_id" not in where:
        raise CourseError(f"the roster {path} has no student_id column (its header is "
                          f"{', '.join(rows[0])}): expected student_id (or Canvas's SIS Login ID), "
                          "then e.g. first_name, last_name, email, sis_user_id, section, canvas_id")
    people: dict[str, Person] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row) or (row and row[0].strip() == "Points Possible"):
            continue   # a blank line, or the second row of a Canvas export
        cell = {field: (row[i].strip() if i < len(row) else "") for field, i in where.items()}
        sid = cell.pop("student_id")
        if not sid:
            raise CourseError(f"the roster {path}, line {line}: no student_id")
        if sid in people:
            raise CourseError(f"the roster {path}, line {line}: student_id {sid!r} appears twice")
        name = cell.pop("name", "")
        if name and not (cell.get("first_name") or cell.get("last_name")):
            if ", " in name:   # "Last, First", as Canvas writes it
                last, _, first = name.partition(", ")
            else:
                first, _, last = name.rpartition(" ")
                first, last = (first, last) if first else (name, "")
            cell["first_name"], cell["last_name"] = first, last
        people[sid] = Person(sid, **{k: v for k, v in cell.items() if k in FIELDS})
    return people


def keep_roster(roster: Path, coursedir: Path) -> None:
    """Keep a copy of ``roster`` in the course ``coursedir`` (``coursekit export`` reads it)."""
    tmp = coursedir / f".{ROSTER}.tmp"
    shutil.copyfile(roster, tmp)
    os.replace(tmp, coursedir / ROSTER)
