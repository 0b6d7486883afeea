"""What the kernels of a class run may read, prepared once before grading starts.

What a notebook needs that its course configuration names: in
``autograder/nbgrader_config.py``, ``c.GradingPreparation.prepare = {"07_scenes":
"coursekit.grading.course.held_out:prepare_scenes"}`` (``module:function``, called with a folder
to fill and the course configuration). It returns the environment variables that tell the
notebook where things are, or a :class:`Preparation` that also names what only the judge may
read (the held-out test images: a student's code never sees them).
The folders are readable, not writable, by the sandboxed kernels. (matplotlib's configuration
and font cache are each kernel's own, in its folder: :mod:`..kernel.manager`.)
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from traitlets import Dict, Unicode
from traitlets.config import Configurable

from ..course.directory import CourseError


class GradingPreparation(Configurable):
    prepare = Dict(Unicode(), {}, help="notebook -> 'module:function' that prepares what grading "
                   "it needs, given a folder and the course configuration; returns environment "
                   "variables for the kernels, or a Preparation").tag(config=True)


@dataclass
class Preparation:
    """What a preparation function made: ``env`` for every kernel; ``judge_read`` (folders) and
    ``judge_env`` for the judge kernel alone."""
    env: dict[str, str] = field(default_factory=dict)
    judge_read: list[str] = field(default_factory=list)
    judge_env: dict[str, str] = field(default_factory=dict)


@dataclass
class Prepared:
    """Everything prepared for a class run: what every kernel reads and gets, and what only
    the judge reads and gets."""
    read: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    judge_read: list[str] = field(default_factory=list)
    judge_env: dict[str, str] = field(default_factory=dict)


def prepare(config, shared: Path, names: list[str]) -> Prepared:
    """Prepare under ``shared`` what grading ``names`` needs."""
    out = Prepared(env={"MPLBACKEND": "agg", "PYTHONWARNINGS": "ignore"})
    for name, target in GradingPreparation(config=config).prepare.items():
        if name not in names:
            continue
        folder = shared / name
        folder.mkdir(parents=True, exist_ok=True)
        made = resolve(target)(folder, config)
        made = made if isinstance(made, Preparation) else Preparation(env=dict(made))
        out.read.append(str(folder))
        out.env.update(made.env)
        out.judge_read += made.judge_read
        out.judge_env.update(made.judge_env)
    return out


def resolve(target: str):
    """The function ``module:function`` names, or a CourseError that says what is wrong."""
    module, _, function = target.partition(":")
    try:
        return getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError, ValueError) as exc:
        raise CourseError(f"GradingPreparation.prepare names {target!r}, which is not a function "
                          f"(expected 'module:function'): {exc}") from None
