"""Reading a submitted notebook before it is graded: refuse what is not a notebook, put back
what the student may not change, and say what was found.

nbgrader restores the *source* of locked cells from the gradebook, but a submission can do
worse: delete a test cell (its points vanish from the notebook), duplicate or invent grade ids
(nbgrader stops with an error and the whole submission scores nothing), turn a test cell into
markdown, or change a cell's points. :func:`intake` compares the submission with the release
notebook the student was given (nbgrader's, with its checksums), cell by cell, by grade id, and returns a notebook nbgrader can grade fairly:

* a locked cell (instructions, setup, self-checks, graded tests) that is missing is put back
  where it was, after the cell that came before it in the release;
* a locked cell whose source, type or metadata was changed is replaced by the release's
  (nbgrader then restores the hidden tests from the gradebook);
* an answer cell keeps the student's code, with the release's metadata (type, points, ids);
* a cell with a grade id the assignment does not have, or a second cell with an id already
  seen, becomes an ordinary cell of the student's (its nbgrader metadata is dropped);
* an answer cell that was deleted is reported; its exercise scores 0 because its names are
  missing.

Every change is listed in :attr:`Intake.found` and reaches the summary and the feedback.
"""
from __future__ import annotations

import copy
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

#: The largest submission read (bytes): a notebook of a few MB of outputs is normal.
MAX_BYTES = 50 << 20


@dataclass
class Intake:
    notebook: NotebookNode | None
    found: list[str] = field(default_factory=list)
    refused: str = ""


def _meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def _grade_id(cell) -> str | None:
    gid = _meta(cell).get("grade_id")
    return gid if isinstance(gid, str) else None


def read_submission(path: Path) -> tuple[NotebookNode | None, str]:
    """The submitted notebook, or None and why it is refused."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        return None, f"could not be read ({exc.strerror})"
    if size > MAX_BYTES:
        return None, f"is {size / 2**20:.0f} MB, more than the {MAX_BYTES >> 20} MB a notebook may be"
    try:
        raw = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"is not valid JSON ({str(exc).splitlines()[0][:100]})"
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        return None, "is JSON but not a notebook (no list of cells)"
    try:
        with warnings.catch_warnings():  # nbformat warns (and repairs) duplicate cell ids
            warnings.simplefilter("ignore")
            nb = nbformat.reads(json.dumps(raw), as_version=4)
            nbformat.validate(nb)
    except Exception as exc:  # nbformat's validation errors are long: keep the first line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"is not a valid notebook ({first[:120]})"
    return nb, ""


def intake(path: Path, release: Path) -> Intake:
    """Read ``path`` and make it gradable against the notebook the students were given."""
    nb, why = read_submission(path)
    if nb is None:
        return Intake(None, refused=f"not a valid notebook: the file {why}; scored 0")
    src = nbformat.read(release, as_version=4)
    src_cells = {_grade_id(c): c for c in src.cells if _grade_id(c)}
    found: list[str] = []

    cells, seen = [], set()
    for cell in nb.cells:
        gid = _grade_id(cell)
        if gid is None:
            if "nbgrader" in cell.get("metadata", {}):
                cell.metadata.pop("nbgrader")
            cells.append(cell)
            continue
        if gid not in src_cells:
            found.append(f"a cell claims the grade id {gid!r}, which the assignment does not have: "
                         "graded as an ordinary cell of yours")
            cell.metadata.pop("nbgrader")
            cells.append(cell)
            continue
        if gid in seen:
            found.append(f"a second cell with the grade id {gid!r}: graded as an ordinary cell of yours")
            cell.metadata.pop("nbgrader")
            cells.append(cell)
            continue
        seen.add(gid)
        original = src_cells[gid]
        meta = _meta(original)
        if meta.get("solution") and not meta.get("locked"):
            if cell.cell_type != original.cell_type:
                found.append(f"answer cell {gid} was changed to {cell.cell_type}: changed back to {original.cell_type}")
                cell = _retyped(cell, original)
            elif _meta(cell) != meta:
                found.append(f"answer cell {gid}: its nbgrader metadata was edited; the assignment's was put back")
            cell.metadata["nbgrader"] = copy.deepcopy(meta)
            cells.append(cell)
            continue
        # a locked cell: the instructor's, whatever the submission holds
        if cell.cell_type != original.cell_type or cell.source != original.source or _meta(cell) != meta:
            what = "graded test cell" if meta.get("grade") else "locked cell"
            found.append(f"{what} {gid} was edited: the assignment's cell was put back")
            restored = copy.deepcopy(original)
            if restored.cell_type == "code":
                restored.outputs, restored.execution_count = [], None
            cell = restored
        cells.append(cell)

    missing = [gid for gid in src_cells if gid not in seen]
    for gid in missing:
        meta = _meta(src_cells[gid])
        if meta.get("solution") and not meta.get("locked"):
            found.append(f"answer cell {gid} was deleted: its exercise scores 0")
            continue
        what = "graded test cell" if meta.get("grade") else "locked cell"
        found.append(f"{what} {gid} was deleted: put back")
        cells.insert(_position(cells, src, gid), _fresh(src_cells[gid]))
    nb.cells = cells
    nb.metadata["kernelspec"] = copy.deepcopy(src.metadata.get("kernelspec", nb.metadata.get("kernelspec", {})))
    return Intake(nb, found)


def _fresh(cell) -> NotebookNode:
    cell = copy.deepcopy(cell)
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    return cell


def _retyped(cell, original) -> NotebookNode:
    fresh = _fresh(original)
    fresh.source = cell.source
    return fresh


def _position(cells: list, src, gid: str) -> int:
    """Where to put back the source's cell ``gid``: after the nearest earlier source cell that
    is in ``cells``, else at the start."""
    order = [_grade_id(c) for c in src.cells]
    here = order.index(gid)
    present = {_grade_id(c): i for i, c in enumerate(cells) if _grade_id(c)}
    for earlier in reversed(order[:here]):
        if earlier in present:
            return present[earlier] + 1
    return 0


def someone_else(nb: NotebookNode, student: str) -> list[str]:
    """A note when the notebook's ``STUDENT_ID`` (its first code cells, :mod:`coursekit.checks.personal`)
    names someone other than ``student``, the submission's folder: it is graded as ``student``,
    with their numbers for the hand calculations. [] otherwise."""
    from ...checks.personal import differs, entered_id

    entered = next(filter(None, (entered_id(c.source) for c in nb.cells if c.cell_type == "code")), "")
    if not differs(entered, student):
        return []
    return [f"the notebook's STUDENT_ID is {entered!r}: graded as {student!r} (the submission's folder), "
            f"so its hand calculations were checked on {student}'s numbers"]

