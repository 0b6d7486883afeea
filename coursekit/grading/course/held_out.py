"""Notebook 07's grading preparation: the stand-in dataset its cells run on, and the held-out
test images its saved models are graded on (the judge's alone).

    coursekit autograde SUBMISSIONS --data ../shared/data/15-scene.zip    # the real test split
    c.HeldOutData.data = "/srv/15-scene"                                  # or in the course configuration

Without data the models are tested on the generated stand-in's test split, with its own
thresholds (CI, a fresh clone). The thresholds, the time budget and the largest weights file
are course configuration (``c.HeldOutData``, ``c.SubmittedFiles.max_bytes``).
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from traitlets import Dict, Float, Unicode
from traitlets.config import Configurable

from ...checks.scenes import HELD_OUT_ENV, SECONDS, THRESHOLDS, HeldOut
from ...data import fifteen_scene
from ..pipeline.prepare import Preparation
from .directory import CourseError
from .stand_in import prepare_stand_in
from .submitted import SubmittedFiles


class HeldOutData(Configurable):
    data = Unicode("", help="the 15-Scene dataset whose test split grades notebook 07's saved "
                   "models: a folder made by `coursekit data fetch 15-scene`, or the dataset's zip; "
                   "'' grades them on the generated stand-in").tag(config=True)
    thresholds = Dict(THRESHOLDS, help="dataset ('15-Scene', 'generated') -> model -> the test "
                      "accuracy that earns the model's points").tag(config=True)
    seconds = Float(SECONDS, help="the most seconds a model may take to classify the whole test "
                    "split on the grader's CPU").tag(config=True)


def held_out_split(data: str, home: Path | None = None) -> tuple[fifteen_scene.Split, str]:
    """(the test split decoded at 64 px, its kind) of ``data`` ('' = the generated stand-in, in
    ``home``)."""
    if not data:
        return fifteen_scene.open_scenes(size=64, home=home, real=False, progress=False).test, "generated"
    source = Path(data).expanduser()
    if (source / "manifest.json").is_file():
        return fifteen_scene.load(source, size=64, progress=False).test, "15-Scene"
    if not source.exists():
        raise CourseError(f"--data {data}: no such file or folder (expected a 15-Scene folder made by "
                          f"`coursekit data fetch 15-scene`, or the dataset's zip)")
    home = Path(tempfile.mkdtemp(prefix=".held-out-"))
    try:
        root = fifteen_scene.fetch(source, home=home, progress=False)
        return fifteen_scene.load(root, size=64, progress=False).test, "15-Scene"
    except fifteen_scene.DataError as exc:
        raise CourseError(f"--data {data}: {exc}") from None
    finally:
        shutil.rmtree(home, ignore_errors=True)


def prepare_scenes(folder: Path, config) -> Preparation:
    """The stand-in for the notebook's own cells (every kernel), and beside ``folder`` the
    held-out images and the rules the graded cells apply (the judge's alone)."""
    env = prepare_stand_in(folder, config)
    settings = HeldOutData(config=config)
    test, kind = held_out_split(settings.data, folder)
    if kind not in settings.thresholds:
        raise CourseError(f"c.HeldOutData.thresholds has no thresholds for the {kind} dataset "
                          f"(it has {', '.join(settings.thresholds)})")
    judge = folder.with_name(folder.name + ".held-out")
    HeldOut(test.x, test.y, kind, dict(settings.thresholds[kind]),
            SubmittedFiles(config=config).max_bytes, settings.seconds).save(judge)
    return Preparation(env=env, judge_read=[str(judge)], judge_env={HELD_OUT_ENV: str(judge)})
