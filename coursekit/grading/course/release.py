"""`coursekit release`: solutions/ -> notebooks/, the student release, with nbgrader.

nbgrader's generate_assignment replaces the answers with the stub, strips the hidden tests,
clears outputs and checksums the locked cells. The result is deterministic: releasing twice
leaves no git diff. Before that, every graded cell is checked against the rules the judge
grades by (:mod:`coursekit.grading.judge.rules`): a cell that breaks one is not released.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import nbformat

from ..judge.rules import lint
from .directory import CourseError, assignments, generate_assignments, nbgrader_api


def check_graded_cells(root: Path, names: list[str]) -> None:
    """Refuse to release a graded cell that breaks one of the judge's rules, naming the cell and
    the name."""
    broken = [str(b) for name in names
              for b in lint(nbformat.read(root / "solutions" / f"{name}.ipynb", as_version=4), name)]
    if broken:
        raise CourseError("not released: these graded cells would not be graded as written "
                          "(see coursekit.grading.judge.rules):\n  " + "\n  ".join(broken))


def release(root: Path, out: Path | None = None) -> list[Path]:
    """Generate the student notebooks from ``root/solutions`` into ``out`` (default
    ``root/notebooks``). Returns the paths written."""
    root = Path(root).resolve()
    out = Path(out).resolve() if out is not None else root / "notebooks"
    names = assignments(root)
    check_graded_cells(root, names)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="coursekit-release-") as tmp:
        coursedir = Path(tmp)
        api = nbgrader_api(root, coursedir)
        generate_assignments(root, coursedir, names, api)
        for name in names:
            target = out / f"{name}.ipynb"
            shutil.copyfile(coursedir / "release" / name / f"{name}.ipynb", target)
            written.append(target)
    return written
