"""`coursekit release`: solutions/ -> notebooks/, the student release, with nbgrader.

nbgrader's generate_assignment replaces the answers with the stub, strips the hidden tests,
clears outputs and checksums the locked cells. The result is deterministic: releasing twice
leaves no git diff.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .course import assignments, generate_assignments, nbgrader_api


def release(root: Path, out: Path | None = None) -> list[Path]:
    """Generate the student notebooks from ``root/solutions`` into ``out`` (default
    ``root/notebooks``). Returns the paths written."""
    root = Path(root).resolve()
    out = Path(out).resolve() if out is not None else root / "notebooks"
    names = assignments(root)
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
