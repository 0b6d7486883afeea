"""Where the course lives, and the nbgrader course directories coursekit works in.

The repository holds the instructor's source notebooks in ``solutions/`` (one notebook per
assignment, named like ``01_backprop.ipynb``) and the nbgrader configuration in
``autograder/``. nbgrader wants its own layout (``source/<assignment>/<notebook>.ipynb``, a
gradebook, ...), so every command builds a working course directory elsewhere and never
writes nbgrader's files into the repository.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader


class CourseError(RuntimeError):
    """Something about the course layout or an nbgrader step is wrong; the message says what."""


def _is_course(folder: Path) -> bool:
    return (folder / "solutions").is_dir() and (folder / "autograder" / "nbgrader_config.py").is_file()


def find_course_root(course: Path | None = None) -> Path:
    """The course repository (a folder holding solutions/ and autograder/nbgrader_config.py).

    ``course`` given: that folder, or an error. Otherwise the first course folder at or above
    the working directory, then the checkout this package is installed from.
    """
    if course is not None:
        if not _is_course(Path(course)):
            raise CourseError(f"{course} is not a course: expected solutions/ and "
                              "autograder/nbgrader_config.py in it")
        return Path(course).resolve()
    here = Path.cwd().resolve()
    import coursekit

    checkout = Path(coursekit.__file__).resolve().parents[1]  # where the package is installed from
    for folder in [here, *here.parents, checkout]:
        if _is_course(folder):
            return folder
    raise CourseError("could not find the course: no folder with solutions/ and "
                      "autograder/nbgrader_config.py above the working directory. Run from the "
                      "course repository or pass --course PATH.")


def assignments(root: Path) -> list[str]:
    """The assignment names, one per source notebook in solutions/, in course order."""
    names = sorted(p.stem for p in (root / "solutions").glob("*.ipynb"))
    if not names:
        raise CourseError(f"no notebooks in {root / 'solutions'}")
    return names


def ensure_tools_on_path() -> None:
    # nbgrader runs the `alembic` executable to create a gradebook: it must be on PATH even
    # when coursekit is run as .venv/bin/coursekit without activating the venv.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def nbgrader_api(root: Path, coursedir: Path, timeout: int | None = None, extra: Config | None = None):
    """An NbGraderAPI for a working course directory, configured from autograder/ (and
    ``extra``, merged last)."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    ensure_tools_on_path()
    config = PyFileConfigLoader("nbgrader_config.py", path=str(root / "autograder")).load_config()
    merged = Config()
    merged.merge(config)
    merged.CourseDirectory.root = str(coursedir)
    merged.Exchange.root = str(coursedir / "exchange")  # unused, but never /usr/local/share
    if timeout is not None:
        merged.Execute.timeout = timeout
        merged.ExecutePreprocessor.timeout = timeout
    if extra is not None:
        merged.merge(extra)
    return NbGraderAPI(coursedir=CourseDirectory(config=merged), config=merged)


def check(result: dict, what: str) -> None:
    """NbGraderAPI calls never raise: turn an unsuccessful result into a CourseError."""
    if not result.get("success"):
        detail = (result.get("error") or result.get("log") or "").strip().splitlines()[-15:]
        raise CourseError(f"{what} failed:\n" + "\n".join(detail))


def generate_assignments(root: Path, coursedir: Path, names: list[str], api) -> None:
    """Copy solutions/<name>.ipynb into the course's source/ and run generate_assignment."""
    for name in names:
        source = coursedir / "source" / name
        source.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / "solutions" / f"{name}.ipynb", source / f"{name}.ipynb")
        check(api.generate_assignment(name, force=True), f"generate_assignment {name}")


#: The configuration coursekit writes into the term's course directory, for nbgrader's own tools
#: run there (formgrader, ``nbgrader generate_feedback``): the course's configuration (so feedback
#: never shows hidden tests), its root, and autograding through coursekit.
COURSE_CONFIG = """\
# Written by coursekit autograde: nbgrader's tools run in this folder (formgrader, nbgrader
# generate_feedback) use the course's own configuration. Edit {config}, not this file.
c = get_config()  # noqa: F821
load_subconfig({config!r})  # noqa: F821
c.CourseDirectory.root = {coursedir!r}
c.Exchange.root = {exchange!r}
# Grading runs students' code: formgrader's Autograde button (and `nbgrader autograde` here)
# grades through `coursekit autograde --regrade STUDENT/NOTEBOOK`, in its sandbox and judge.
c.SandboxedExecute.term = {{"course": {root!r}, "out": {out!r}}}
"""


def write_course_config(root: Path, coursedir: Path) -> Path:
    """Write ``nbgrader_config.py`` into the term's course directory (see :data:`COURSE_CONFIG`)."""
    path = coursedir / "nbgrader_config.py"
    text = COURSE_CONFIG.format(config=str(root / "autograder" / "nbgrader_config.py"),
                                coursedir=str(coursedir), exchange=str(coursedir / "exchange"),
                                root=str(root), out=str(coursedir.parent))
    if not path.is_file() or path.read_text() != text:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path
