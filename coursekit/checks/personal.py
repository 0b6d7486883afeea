"""Per-student numbers for the hand calculations: two students do not share answers.

Notebooks 01, 03 and 06 ask for numbers worked out by hand (01's scalar and gate graphs and the
2-2-1 network, 03's output size, parameters and multiply-adds of one layer, 06's shape and counts
of one layer). Each student gets their own: :func:`numbers` draws them from a seed derived from
the student's id, so a notebook copied from a classmate carries the classmate's answers, which
are wrong for its new owner. The lecture's own numbers (:data:`LECTURE`) stay as the worked
example, and are what a notebook without an id uses.

Which id (:func:`student_id`):

* graded by a class run: the submission's folder, which the grader puts in ``$COURSEKIT_STUDENT``
  of the student's kernel and of the judge (whatever the notebook says; the class run notes a
  notebook whose ``STUDENT_ID`` names someone else);
* else the ``STUDENT_ID`` the student entered in the notebook's first code cell;
* else JupyterHub's user name (``$JUPYTERHUB_USER``);
* else none: the lecture's numbers, with a warning.

The setup cell calls :func:`my_numbers` with the notebook's ``STUDENT_ID``; the checkers read the
same numbers through :func:`current`.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field

import numpy as np

#: set by a class run in the student's kernel and the judge: the submission's folder (its student)
STUDENT_ENV = "COURSEKIT_STUDENT"
HUB_ENV = "JUPYTERHUB_USER"
#: the first code cell of 01, 03 and 06: ``STUDENT_ID = "..."``
ENTERED = re.compile(r"""^STUDENT_ID\s*=\s*(["'])(.*?)\1""", re.MULTILINE)

_registered = ""   # the id the notebook's setup cell gave my_numbers (self-checks use it)


@dataclass(frozen=True)
class Numbers:
    """One student's numbers. Shapes and meanings as in the notebooks."""
    student: str                       # "" for the lecture's numbers
    scalar_graph: dict = field(default_factory=dict)   # 01 ex1: x, y, z of f = (x + y) z
    gate_graph: dict = field(default_factory=dict)     # 01 ex2b: x, y, z, w of f = 2 (x y + max(z, w))
    network: tuple = ()                                # 01 ex3: (x (2,), t, params) of the 2-2-1 net
    conv_layer: dict = field(default_factory=dict)     # 03 ex2: c_in, size, filters, kernel, stride, pad
    layer: dict = field(default_factory=dict)          # 06 ex1: in_shape (C, H, W), filters, kernel, stride, pad


def _lecture() -> Numbers:
    return Numbers("", dict(x=-2.0, y=5.0, z=-4.0), dict(x=3.0, y=-4.0, z=2.0, w=-1.0),
                   (np.array([1.0, 0.1]), 0.5,
                    dict(W1=np.array([[0.5, -0.4], [0.3, 0.8]]), b1=np.array([0.1, -0.2]),
                         W2=np.array([[1.5, -1.0]]), b2=np.array([0.4]))),
                   dict(c_in=3, size=32, filters=10, kernel=5, stride=1, pad=2),
                   dict(in_shape=(3, 227, 227), filters=96, kernel=11, stride=4, pad=0))


#: the lecture's numbers: the notebooks' worked examples
LECTURE = _lecture()


def _normal(student: str) -> str:
    return student.strip().casefold()


def seed(student: str) -> int:
    """The seed of ``student``'s numbers: from the sha256 of the id (case and surrounding spaces
    ignored), the same on every machine and Python."""
    return int.from_bytes(hashlib.sha256(f"coursekit:{_normal(student)}".encode()).digest()[:8], "big")


def numbers(student: str) -> Numbers:
    """``student``'s numbers (the lecture's for an empty id). Chosen so that no two of an
    exercise's answers coincide and no diagnosis of a mistake is ambiguous: every input of the
    scalar graph a whole number from -12 to 12, q = x + y not 0 or +-1, z not +-1 and not q; the
    gate graph's z above w (the max routes to z, as in the lecture) and x, y apart from 0 and +-1;
    a conv layer whose filter tiles its padded input."""
    if not _normal(student):
        return LECTURE
    rng = np.random.default_rng(seed(student))
    small = [v for v in range(-12, 13) if v not in (-1, 0, 1)]
    while True:
        x, y, z = (float(rng.choice(small)) for _ in range(3))
        q = x + y
        if abs(q) > 1 and len({x, y, z, q}) == 4:
            break
    scalar = dict(x=x, y=y, z=z)
    while True:
        gx, gy = (float(rng.choice(small)) for _ in range(2))
        gz, gw = sorted(float(v) for v in rng.choice(range(-6, 7), 2, replace=False))[::-1]
        if abs(gx) != abs(gy):
            break
    gates = dict(x=gx, y=gy, z=gz, w=gw)
    tenth = lambda *shape: np.round(rng.uniform(-1.0, 1.0, shape), 1)   # noqa: E731
    params = dict(W1=tenth(2, 2), b1=tenth(2), W2=np.round(rng.uniform(-2.0, 2.0, (1, 2)), 1), b2=tenth(1))
    network = (tenth(2), float(np.round(rng.uniform(0.1, 0.9), 1)), params)
    while True:
        kernel = int(rng.choice([3, 5, 7]))
        stride, pad, size = int(rng.choice([1, 2])), int(rng.integers(0, kernel // 2 + 1)), int(rng.integers(12, 65))
        if (size - kernel + 2 * pad) % stride == 0 and size + 2 * pad >= kernel:
            break
    conv = dict(c_in=int(rng.choice([1, 3, 8, 16, 32])), size=size, filters=int(rng.choice([4, 6, 8, 12, 16, 24, 32, 64])),
                kernel=kernel, stride=stride, pad=pad)
    while True:
        kernel = int(rng.choice([3, 5, 7, 11]))
        stride, pad, side = int(rng.choice([1, 2, 4])), int(rng.integers(0, kernel // 2 + 1)), int(rng.integers(24, 129))
        if (side - kernel + 2 * pad) % stride == 0:
            break
    layer = dict(in_shape=(int(rng.choice([3, 16, 32, 64])), side, side),
                 filters=int(rng.choice([16, 32, 48, 64, 96, 128])), kernel=kernel, stride=stride, pad=pad)
    return Numbers(student.strip(), scalar, gates, network, conv, layer)


def student_id(entered: str = "") -> str:
    """The id whose numbers count (see the module docstring): the grader's, the one entered,
    JupyterHub's user, or ""."""
    return (os.environ.get(STUDENT_ENV) or str(entered or "").strip() or os.environ.get(HUB_ENV) or "").strip()


def current() -> Numbers:
    """The numbers the checkers use now: the grader's student while graded, else the id the
    notebook's setup cell gave :func:`my_numbers` (or JupyterHub's user)."""
    return numbers(student_id(_registered))


def my_numbers(entered: str = "") -> Numbers:
    """The setup cell's call, with the notebook's ``STUDENT_ID``: registers it for the
    self-checks, says whose numbers these are, and returns them."""
    global _registered
    _registered = str(entered or "").strip()
    mine = current()
    graded = os.environ.get(STUDENT_ENV, "").strip()
    if graded:
        differs = _registered and _normal(_registered) != _normal(graded)
        print(f"Graded as {graded!r} (the submission's folder): the hand calculations use {graded}'s numbers"
              + (f", not those of {_registered!r}, the STUDENT_ID in this notebook." if differs else "."))
    elif mine.student:
        source = "the STUDENT_ID above" if _registered else "your JupyterHub user name"
        print(f"Your numbers come from your id {mine.student!r} ({source}); graded, the grader uses "
              "the id your course knows you by, so make sure this is it.")
    else:
        print("No STUDENT_ID: the hand calculations use the lecture's numbers for now. Enter your id "
              "(your login, as your course's roster has it) in the first code cell and run the notebook "
              "again: graded, your numbers come from your id, and answers for other numbers are wrong.")
    return mine


def entered_id(source: str) -> str:
    """The ``STUDENT_ID`` a notebook's cell source sets ("" if none)."""
    found = ENTERED.search(source or "")
    return found.group(2).strip() if found else ""


def differs(entered: str, student: str) -> bool:
    """Whether the id a notebook names is someone other than ``student`` (case and spaces aside)."""
    return bool(_normal(entered)) and _normal(entered) != _normal(student)
