"""Finding the class's submissions: a folder of student folders, or an LMS zip."""
from __future__ import annotations

import shutil
from pathlib import Path

from ..course.directory import CourseError

# zip_collect matches this against each extracted file's full path. File names are
# "<student>_<notebook>.ipynb" or "<student>_<anything>_<notebook>.ipynb" (Moodle, Canvas, ...);
# student ids are letters, digits, '.' and '-'.
ZIP_NAME_REGEXP = r".*/(?P<student_id>[A-Za-z0-9.-]+)_(?:.*_)?(?P<file_id>\d\d_[A-Za-z0-9_]+\.ipynb)$"


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
