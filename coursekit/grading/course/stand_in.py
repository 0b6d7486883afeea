"""The generated 15-Scene stand-in that notebooks 07 and 08 run on while graded, decoded once per
class run into the folder the preparation is given (readable, not writable, by the kernels; they
find it through ``$COURSEKIT_DATA``)::

    c.GradingPreparation.prepare = {"08_visualisation": "coursekit.grading.course.stand_in:prepare_stand_in"}
"""
from __future__ import annotations

from pathlib import Path

from ...data import fifteen_scene
from .parameters import GradingParameters


def prepare_stand_in(folder: Path, config) -> dict[str, str]:
    """Decode the stand-in into ``folder`` (named for its notebook) at the image size the course's
    grading parameters give that notebook (``IMAGE_SIZE``; 64 without one)."""
    size = GradingParameters(config=config).values.get(Path(folder).name, {}).get("IMAGE_SIZE", 64)
    fifteen_scene.open_scenes(size=size, home=folder, real=False, progress=False)
    return {"COURSEKIT_DATA": str(folder)}
