"""Finding the class's submissions: a folder of student folders, or an LMS zip, and when each
was handed in (nbgrader's ``timestamp.txt``)."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from nbgrader.plugins import FileNameCollectorPlugin
from traitlets import Unicode

from ..course.deadlines import parse_time
from ..course.directory import CourseError

# zip_collect matches these against each extracted file's full path. File names are
# "<student>_<notebook>.ipynb" or "<student>_<anything>_<notebook>.ipynb" (Moodle, Canvas, ...);
# student ids are letters, digits, '.' and '-'. Blackboard's names carry the submission time:
# "<assignment>_<student>_attempt_2026-10-09-17-05-00_<notebook>.ipynb" (the assignment name
# may be left out); the time becomes the submission's timestamp.txt, read in
# ``c.TimedNames.time_zone`` (Blackboard writes its server's local time; default UTC).
ZIP_NAME_REGEXP = r".*/(?P<student_id>[A-Za-z0-9.-]+)_(?:[^/]*_)?(?P<file_id>\d\d_[A-Za-z0-9_]+\.ipynb)$"
BLACKBOARD_REGEXP = (r".*/(?:[^/]*_)?(?P<student_id>[A-Za-z0-9.-]+)_attempt_"
                     r"(?P<timestamp>\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d)_(?:[^/]*_)?(?P<file_id>\d\d_[A-Za-z0-9_]+\.ipynb)$")
TIMESTAMP = "timestamp.txt"


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


def submission_time(notebook: Path, top: Path) -> tuple[str, str]:
    """When ``notebook`` was handed in, from the nearest ``timestamp.txt`` in its folder or a
    folder above it up to ``top`` (the student's folder), as (time in UTC, "") or ("", why
    the file could not be read); ("", "") when there is none. The time is written as nbgrader
    writes it: ``2026-10-09 17:05:00``."""
    folder = notebook.parent
    while True:
        stamp = folder / TIMESTAMP
        if stamp.is_file():
            try:
                return parse_time(stamp.read_text(errors="strict").strip()).isoformat(" "), ""
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                return "", (f"{stamp.relative_to(top.parent)} is not a time ({exc}; expected e.g. "
                            "'2026-10-09 17:05:00 UTC'): graded as on time")
        if folder == top or top not in folder.parents:
            return "", ""
        folder = folder.parent


def _with_files(regexp: str, files: list[str]) -> str:
    """``regexp`` whose file id may also be one of ``files`` (handed in beside the notebook)."""
    if not files:
        return regexp
    either = "|".join(re.escape(f) for f in files)
    return regexp.replace(r"(?P<file_id>\d\d_[A-Za-z0-9_]+\.ipynb)", rf"(?P<file_id>\d\d_[A-Za-z0-9_]+\.ipynb|{either})")


def collect_zip(archive: Path, names: list[str], staging: Path, api,
                files: dict[str, list[str]] | None = None) -> dict[str, dict[str, Path]]:
    """Collect an LMS zip with nbgrader's zip_collect into ``staging/submitted/<student>/<notebook>/``
    (``staging`` is the course directory ``api`` works on: a scratch one, so that the term's
    stored submissions are compared with the zip's, never overwritten by it). ``files``: notebook ->
    the files handed in beside it (``<student>_..._simple.safetensors``), collected beside it."""
    import zipfile

    from nbgrader.apps import ZipCollectApp

    if not zipfile.is_zipfile(archive):
        raise CourseError(f"{archive} is not a valid zip archive (truncated or corrupt?): expected "
                          "a zip of notebooks named like <student>_<notebook>.ipynb")
    students: dict[str, dict[str, Path]] = {}
    for name in names:
        downloaded = staging / "downloaded" / name / "archive"
        downloaded.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(archive, downloaded / archive.name)
        app = ZipCollectApp(config=api.config, coursedir=api.coursedir)
        extra = list((files or {}).get(name, []))
        app.config.FileNameCollectorPlugin.named_regexp = _with_files(ZIP_NAME_REGEXP, extra)
        app.config.TimedNames.blackboard_regexp = _with_files(BLACKBOARD_REGEXP, extra)
        app.collector_plugin = TimedNames   # a trait of the app already made: set on it, not its config
        app.config.FileNameCollectorPlugin.valid_ext = sorted({".ipynb", *(Path(f).suffix for f in extra)})
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
        for nb in sorted((staging / "submitted").glob(f"*/{name}/{name}.ipynb")):
            students.setdefault(nb.parts[-3], {})[name] = nb
    if not students:
        raise CourseError(f"{archive} holds no notebook named like <student>_<notebook>.ipynb "
                          f"for the notebooks {', '.join(names)}")
    return students


class TimedNames(FileNameCollectorPlugin):
    """nbgrader's file-name collector (ZIP_NAME_REGEXP), which first reads Blackboard's names
    (BLACKBOARD_REGEXP), their 2026-10-09-17-05-00 a time in ``time_zone``."""

    time_zone = Unicode("UTC", help="the zone of the times in an LMS zip's file names "
                        "(Blackboard: its server's zone, e.g. 'America/New_York')").tag(config=True)
    blackboard_regexp = Unicode(BLACKBOARD_REGEXP, help="Blackboard's file names").tag(config=True)

    def collect(self, submitted_file):
        import os

        match = re.match(self.blackboard_regexp, submitted_file)
        if match is None or os.path.splitext(submitted_file)[1] not in self.valid_ext:
            return super().collect(submitted_file)
        info = match.groupdict()
        stamp = info["timestamp"]
        info["timestamp"] = f"{stamp[:10]} {stamp[11:].replace('-', ':')} {self.time_zone}"
        return info
