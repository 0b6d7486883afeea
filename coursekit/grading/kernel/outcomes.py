"""What can happen to a cell while it is graded, by name, and how the summary says it.

The executors (:mod:`.recovering`, :mod:`.execute`) mark a cell that did not finish with an
error output of one of these names; :func:`problems_in` reads them back from an autograded
notebook for the grade table's notes.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode

KERNEL_DIED = "KernelDied"
TIMED_OUT = "CellTimeoutError"
KERNEL_RESTARTED = "KernelRestarted"
LEFT_RUNNING = "LeftRunning"
NOTEBOOK_TIME = "NotebookTimeLimit"
DISK_LIMIT = "DiskLimit"
JUDGE_FAILED = "JudgeFailed"
OUTPUT_CUT = "output cut"

#: what an error output of these kinds says happened to the cell (the note above a graded cell
#: that fails after such a cell)
INCIDENTS = {TIMED_OUT: "was stopped at the cell time limit", KERNEL_DIED: "killed its kernel",
             KERNEL_RESTARTED: "ignored the interrupt and had its kernel restarted",
             LEFT_RUNNING: "left threads running and had its kernel restarted",
             NOTEBOOK_TIME: "was not run (the notebook's time budget was spent)",
             DISK_LIMIT: "wrote too many files and had its kernel restarted",
             "MemoryError": "ran out of memory"}


def error(ename: str, evalue: str) -> NotebookNode:
    """An error output that marks what happened to a cell."""
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def problems_in(autograded: Path, timeout: float) -> list[str]:
    """What went wrong while running a submission, read from its autograded notebook."""
    if not autograded.exists():
        return []
    problems = []
    for index, cell in enumerate(nbformat.read(autograded, as_version=4).cells):
        where = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index}"
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and OUTPUT_CUT in out.get("text", ""):
                problems.append(f"{where}: printed too much; the rest of the output was dropped")
            if out.output_type != "error":
                continue
            problem = _problem(out, timeout)
            if problem:
                problems.append(f"{where}: {problem}")
    return problems


def _problem(out, timeout: float) -> str:
    said = {TIMED_OUT: f"stopped after the {timeout:g} s cell time limit",
            KERNEL_RESTARTED: "ignored the interrupt (kernel restarted, grading went on)",
            LEFT_RUNNING: "left threads running after the interrupt (kernel restarted, grading went on)",
            KERNEL_DIED: "killed its kernel (restarted, grading went on)",
            NOTEBOOK_TIME: "not run, the notebook's time budget was spent",
            DISK_LIMIT: out.get("evalue", ""),
            JUDGE_FAILED: out.get("evalue", ""),
            "MemoryError": "ran out of its memory limit",
            "ReferenceUsedError": "calls the reference implementation (0 points)"}
    if out.ename == "BlockingIOError" and "fork" in "".join(out.get("traceback", [])):
        return "ran into the limit on processes"
    return said.get(out.ename, "")
