"""A class that hands in notebook 07 with its three trained models: for tests, demos and the
closing numbers of the held-out grading (coursekit.checks.scenes, exercise 10).

    models = {"trained": DIR, "one_epoch": DIR}       # each holds simple/regularised/transfer.safetensors
    make_project_class(release_dir, solutions_dir, out, models)

Every student's notebook has the instructor's answers; what differs is the files beside it.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from .sample import student_notebook

NOTEBOOK = "07_scenes"
MODELS = ("simple", "regularised", "transfer")

#: student -> what they hand in, and what they should score on exercise 10 (grade_id -> points)
STORIES = {
    "instructor": "the instructor's trained models: every model earns its points",
    "one_epoch": "models trained for one epoch: the accuracy points are lost, the structure points kept",
    "wrong_architecture": "simple.safetensors holds SimpleNetFinal's weights: 0 for that model",
    "oversized": "a simple.safetensors over the course's size limit: refused, 0 for that model",
    "corrupt": "a transfer.safetensors that is not a weights file: 0 for that model",
}


def make_project_class(release_dir: Path, solutions_dir: Path, out: Path, models: dict[str, Path],
                       oversize: int = 65 << 20) -> dict[str, str]:
    """Write out/<student>/07_scenes.ipynb and the model files beside it. ``models['trained']`` and
    ``models['one_epoch']`` are folders of weights files (``coursekit bench project --out``)."""
    nb = student_notebook(release_dir / f"{NOTEBOOK}.ipynb", solutions_dir / f"{NOTEBOOK}.ipynb")
    for student in STORIES:
        folder = out / student
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{NOTEBOOK}.ipynb")
        source = models["one_epoch" if student == "one_epoch" else "trained"]
        for name in MODELS:
            shutil.copyfile(source / f"{name}.safetensors", folder / f"{name}.safetensors")
    shutil.copyfile(models["trained"] / "regularised.safetensors", out / "wrong_architecture" / "simple.safetensors")
    with open(out / "oversized" / "simple.safetensors", "r+b") as fh:   # sparse: costs no disk
        fh.truncate(oversize)
    (out / "corrupt" / "transfer.safetensors").write_bytes(b"\x00\x01 not a weights file " * 100)
    return dict(STORIES)
