"""What every kernel of a class run may read, prepared once before grading starts.

What a notebook needs that its course configuration names: in
``autograder/nbgrader_config.py``, ``c.GradingPreparation.prepare = {"07_scenes":
"coursekit.data.fifteen_scene:prepare_for_grading"}`` (``module:function``, called with a
folder to fill; it returns the environment variables that tell the notebook where it is).
The folders are readable, not writable, by the sandboxed kernels. (matplotlib's configuration
and font cache are each kernel's own, in its folder: :mod:`..kernel.manager`.)
"""
from __future__ import annotations

import importlib
from pathlib import Path

from traitlets import Dict, Unicode
from traitlets.config import Configurable

from ..course.directory import CourseError


class GradingPreparation(Configurable):
    prepare = Dict(Unicode(), {}, help="notebook -> 'module:function' that prepares what grading "
                   "it needs, given a folder; returns environment variables for the kernels."
                   ).tag(config=True)


def prepare(config, shared: Path, names: list[str]) -> tuple[list[str], dict[str, str]]:
    """Prepare under ``shared`` what grading ``names`` needs. Returns (readable paths, environment)."""
    env = {"MPLBACKEND": "agg", "PYTHONWARNINGS": "ignore"}
    paths = []
    for name, target in GradingPreparation(config=config).prepare.items():
        if name not in names:
            continue
        folder = shared / name
        folder.mkdir(parents=True, exist_ok=True)
        env.update(resolve(target)(folder))
        paths.append(str(folder))
    return paths, env


def resolve(target: str):
    """The function ``module:function`` names, or a CourseError that says what is wrong."""
    module, _, function = target.partition(":")
    try:
        return getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError, ValueError) as exc:
        raise CourseError(f"GradingPreparation.prepare names {target!r}, which is not a function "
                          f"(expected 'module:function'): {exc}") from None
