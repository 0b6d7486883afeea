"""Files a student hands in beside a notebook (07's trained models), kept with the submission.

    c.SubmittedFiles.files = {"07_scenes": ["simple.safetensors", "regularised.safetensors",
                                            "transfer.safetensors"]}
    c.SubmittedFiles.max_bytes = 64 * 2**20

A submission is the notebook and these files from the same folder (a student's folder, or an
LMS zip's files named ``<student>_..._simple.safetensors``). The course keeps a copy of each
beside its copy of the notebook; a file over ``max_bytes`` is not copied: a
``<file>.refused`` note says why, and the graded cell that needs the file shows it. The
files are part of what decides whether a submission changed (a new model is graded again).
While graded, the student's kernel finds them in its working folder and the judge in its own
read-only copy (``$COURSEKIT_SUBMITTED``: :func:`coursekit.checks.student.submitted_file`).
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from traitlets import Dict, Int, List, Unicode
from traitlets.config import Configurable

from ...data.download import sha256sum
from ...models.weights import MAX_BYTES

REFUSED = ".refused"


class SubmittedFiles(Configurable):
    files = Dict(List(Unicode()), {}, help="notebook -> the names of the files handed in beside it "
                 "(plain names, no folders)").tag(config=True)
    max_bytes = Int(MAX_BYTES, help="the largest file kept (bytes); larger ones are refused, with "
                    "a note the graded cell shows").tag(config=True)

    def names(self, notebook: str) -> list[str]:
        names = list(self.files.get(notebook, []))
        bad = [n for n in names if not n or Path(n).name != n or n.startswith(".") or n.endswith(".ipynb")]
        if bad:
            raise ValueError(f"c.SubmittedFiles.files[{notebook!r}] holds {bad}: expected plain file "
                             f"names such as 'simple.safetensors'")
        return names


def store_files(source: Path, dest: Path, names: list[str], max_bytes: int) -> None:
    """Make ``dest`` hold the files ``names`` as ``source`` (the folder of a handed-in notebook)
    holds them: copied when changed, removed when gone, refused (with a note) when too large."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        src, kept, refused = source / name, dest / name, dest / (name + REFUSED)
        if not src.is_file():
            kept.unlink(missing_ok=True)
            refused.unlink(missing_ok=True)
            continue
        size = src.stat().st_size
        if size > max_bytes:
            kept.unlink(missing_ok=True)
            refused.write_text(f"{name} was not accepted: it is {size / 2**20:.1f} MB, larger than the course's "
                               f"limit of {max_bytes / 2**20:.0f} MB. Save only the model's weights "
                               f"(save_weights), and hand in a smaller model.\n")
            continue
        refused.unlink(missing_ok=True)
        if kept.is_file() and kept.stat().st_size == size and sha256sum(kept) == sha256sum(src):
            continue
        tmp = dest / f".{name}.tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, kept)


def files_digest(folder: Path, names: list[str]) -> str:
    """A digest of the files ``names`` kept in ``folder`` (and their refusal notes): '' when none."""
    parts = []
    for name in names:
        for path in (folder / name, folder / (name + REFUSED)):
            if path.is_file():
                parts.append(f"{path.name}:{sha256sum(path)}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest() if parts else ""


def copy_files(folder: Path, names: list[str], *targets: Path) -> None:
    """Copy the kept files ``names`` (and refusal notes) from ``folder`` into each of ``targets``."""
    for name in names:
        for path in (folder / name, folder / (name + REFUSED)):
            if path.is_file():
                for target in targets:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target / path.name)
