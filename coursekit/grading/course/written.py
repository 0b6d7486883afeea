"""Written answers: markdown cells that people grade, in formgrader (nbgrader's "manually graded
answer" cells).

In ``solutions/`` a written answer is two cells: a locked question cell (grade id
``written_<topic>_question``) and the answer cell, markdown, an nbgrader solution and grade cell
with points (grade id ``written_<topic>``), whose source is the model answer and the rubric::

    ### BEGIN SOLUTION
    The model answer, as a good student would write it.

    **Rubric (2 points).** 1 point: ... 1 point: ...
    ### END SOLUTION

The release shows the question and an empty answer cell (nbgrader's text stub, "YOUR ANSWER
HERE"); the model answer and the rubric stay in ``solutions/`` and in the course's ``source/``,
and ``coursekit rubrics`` prints them for the people grading. Autograding leaves these cells
ungraded (nbgrader: no automatic score, "needs manual grade"), except an answer left as released,
which scores 0 at once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

#: nbgrader's solution delimiters, each a line of its own
SOLUTION_MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.MULTILINE)
_RUBRIC = re.compile(r"^\*\*Rubric\b.*", re.MULTILINE | re.DOTALL)


@dataclass
class WrittenAnswer:
    grade_id: str
    points: float
    title: str      # the question cell's heading, "Written answer · Why pooling tolerates small shifts"
    question: str   # the question cell's text below it
    model: str      # the model answer
    rubric: str     # "**Rubric (2 points).** ..."


def is_written(cell) -> bool:
    """A manually graded answer cell: markdown, an nbgrader solution and grade cell."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "markdown" and bool(meta.get("solution")) and bool(meta.get("grade"))


def model_answer(source: str) -> str:
    """The model answer of an answer cell's source: the markers and the rubric removed."""
    return _RUBRIC.sub("", SOLUTION_MARKERS.sub("", source)).strip()


def rubric(source: str) -> str:
    found = _RUBRIC.search(SOLUTION_MARKERS.sub("", source))
    return found.group(0).strip() if found else ""


def written_answers(solution: Path) -> list[WrittenAnswer]:
    """The written answers of a ``solutions/`` notebook, in order."""
    nb = nbformat.read(solution, as_version=4)
    questions = {c.metadata.get("nbgrader", {}).get("grade_id", ""): c.source for c in nb.cells}
    found = []
    for cell in nb.cells:
        if is_written(cell):
            meta = cell.metadata["nbgrader"]
            title, question = _question(questions.get(f"{meta['grade_id']}_question", ""))
            found.append(WrittenAnswer(meta["grade_id"], float(meta.get("points", 0)), title, question,
                                       model_answer(cell.source), rubric(cell.source)))
    return found


def _question(source: str) -> tuple[str, str]:
    """(heading without its points, the question) of a question cell."""
    lines = source.strip().splitlines()
    title = ""
    if lines and lines[0].startswith("#"):
        title = re.sub(r"\s*\(\d+ points?\)\s*$", "", lines.pop(0).lstrip("#").strip())
    text = "\n".join(line for line in lines if not line.startswith("*Answer in")).strip()
    return title, text


def rubrics_text(solutions: Path, names: list[str]) -> str:
    """What ``coursekit rubrics`` prints: per notebook, each written answer's question, model
    answer and rubric, for the people who grade them in formgrader."""
    blocks = []
    for name in names:
        answers = written_answers(solutions / f"{name}.ipynb")
        if not answers:
            continue
        blocks.append(f"# {name}: {len(answers)} written answer(s), "
                      f"{sum(a.points for a in answers):g} points, graded by hand in formgrader")
        for a in answers:
            blocks.append(f"\n## {a.grade_id}: {a.title} ({a.points:g} points)\n\n{a.question}\n\n"
                          f"Model answer: {a.model}\n\n{a.rubric}")
        blocks.append("")
    return "\n".join(blocks).rstrip() + "\n"
