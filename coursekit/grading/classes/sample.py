"""The bundled sample class: student submissions built from the release, for the demo and tests.

Each student is the release notebook with answers filled in from the instructor's solutions,
then changed by that student's edits (answer cell grade_id -> new source):

alice  every answer right                                  -> full marks (her written answers,
                                                              the model answers, wait for a person)
bob    hands in the untouched release                      -> 0 (blank written answers too)
carol  one wrong answer: dW transposed in exercise 4       -> loses exercise 4 only
dave   an answer cell that loops forever (exercise 6a)     -> stopped by the time limit, loses 6a only
erin   an answer cell that kills its kernel (exercise 2b)  -> kernel restarted, loses 2b only
frank  calls the reference implementation (exercise 5)     -> 0 on exercise 5
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import nbformat

from ..course.written import SOLUTION_MARKERS, is_written, model_answer

NOTEBOOK = "01_backprop"

Edit = Callable[[str], str]  # the right answer's source -> the student's source

STUDENTS: dict[str, tuple[str, dict[str, Edit]]] = {
    "alice": ("every answer right", {}),
    "bob": ("the untouched release", {}),
    "carol": ("one wrong answer: dW transposed (exercise 4)", {
        "ex4_answer": lambda src: src.replace("np.outer(q, x)", "np.outer(x, q)"),
    }),
    "dave": ("an answer cell that loops forever (exercise 6a)", {
        "ex6a_answer": lambda src: "while True:\n    pass\n\n" + src,
    }),
    "erin": ("an answer cell that kills its kernel (exercise 2b)", {
        "ex2b_answer": lambda src: "import os\nos._exit(1)\n" + src,
    }),
    "frank": ("calls the reference implementation (exercise 5)", {
        "ex5_answer": lambda src: "from coursekit.reference.backprop import softmax_nll\n",
    }),
}

#: The students who answered everything right; every other sample student loses points.
FULL_MARKS = ("alice",)


def solution_sources(solution: Path) -> dict[str, str]:
    """grade_id -> source of each answer cell of a solutions notebook, markers removed (a written
    answer: its model answer, without the rubric)."""
    nb = nbformat.read(solution, as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: model_answer(c.source) if is_written(c)
            else SOLUTION_MARKERS.sub("", c.source + "\n").rstrip("\n")
            for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")}


def student_notebook(release: Path, solution: Path, edits: dict[str, Edit] | None = None,
                     answered: bool = True) -> nbformat.NotebookNode:
    """A submission: the release with answers filled in (if ``answered``), then ``edits``
    applied to the answer cells they name."""
    nb = nbformat.read(release, as_version=4)
    answers = solution_sources(solution)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if not answered or grade_id not in answers:
            continue
        cell.source = answers[grade_id]
        if edits and grade_id in edits:
            cell.source = edits[grade_id](answers[grade_id])
    return nb


def make_sample_class(release_dir: Path, solutions_dir: Path, out: Path) -> dict[str, str]:
    """Write out/<student>/01_backprop.ipynb for each sample student. Returns student -> story."""
    release = release_dir / f"{NOTEBOOK}.ipynb"
    solution = solutions_dir / f"{NOTEBOOK}.ipynb"
    for student, (_, edits) in STUDENTS.items():
        nb = student_notebook(release, solution, edits, answered=student != "bob")
        (out / student).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out / student / f"{NOTEBOOK}.ipynb")
    return {student: story for student, (story, _) in STUDENTS.items()}
