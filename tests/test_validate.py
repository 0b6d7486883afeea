"""nbgrader's Validate (the JupyterLab button and `nbgrader validate`) tells a student the truth:
the visible line of each graded cell runs that exercise's check, so an untouched or wrong
notebook fails, naming the cell and the mistake, and a right one passes."""
import subprocess
import sys
import re
from pathlib import Path

import nbformat
import pytest

from coursekit.grading.classes.sample import student_notebook

NBGRADER = str(Path(sys.executable).parent / "nbgrader")

# notebook -> (answer cell, the right line, a wrong one, what the message must say)
WRONG = {
    "01_backprop": ("ex4_answer", "np.outer(q, x)", "np.outer(x, q)", "dW: the transpose of 2 q x^T"),
    "03_conv": ("ex4_answer", "np.sum(patch * w[f]) + b[f]", "np.sum(patch * w[f])",
                "you forgot to add the bias"),
}


def validate(path: Path) -> str:
    run = subprocess.run([NBGRADER, "validate", str(path)], cwd=path.parent, capture_output=True,
                         text=True, timeout=600)
    return run.stdout + run.stderr


@pytest.mark.parametrize("notebook", sorted(WRONG))
def test_validate_fails_untouched_and_wrong_and_passes_right(tmp_path, root, released, notebook):
    cell, right, wrong, message = WRONG[notebook]
    release, solution = released / f"{notebook}.ipynb", root / "solutions" / f"{notebook}.ipynb"

    def edit(src):
        assert right in src, f"the solution no longer contains {right!r}"
        return src.replace(right, wrong)

    cases = {"untouched": student_notebook(release, solution, answered=False),
             "wrong": student_notebook(release, solution, {cell: edit}),
             "right": student_notebook(release, solution)}
    said = {}
    for kind, nb in cases.items():
        (tmp_path / kind).mkdir()
        nbformat.write(nb, tmp_path / kind / f"{notebook}.ipynb")
        said[kind] = validate(tmp_path / kind / f"{notebook}.ipynb")
    graded = sum(1 for c in nbformat.read(release, as_version=4).cells
                 if c.metadata.get("nbgrader", {}).get("grade"))
    assert f"VALIDATION FAILED ON {graded} CELL(S)" in said["untouched"], said["untouched"][-2000:]
    assert "is not implemented yet" in said["untouched"]
    assert "VALIDATION FAILED ON 1 CELL(S)" in said["wrong"], said["wrong"][-2000:]
    exercise = cell.split("_")[0][2:]
    assert f"Graded tests for exercise {exercise} " in said["wrong"] and message in said["wrong"]
    assert "Success! Your notebook passes all the tests." in said["right"], said["right"][-2000:]
    for text in said.values():  # the hidden tests stay hidden
        assert "BEGIN HIDDEN TESTS" not in text and not re.search(r"graded=\d", text)


def test_the_release_shows_each_graded_cells_check_and_hides_the_rest(released):
    for path in sorted(released.glob("*.ipynb")):
        for c in nbformat.read(path, as_version=4).cells:
            if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code":   # not written answers
                lines = [line for line in c.source.splitlines() if not line.startswith("#")]
                assert lines and lines[0].startswith("check."), (path.name, c.source)
                assert not re.search(r"graded=\d", c.source), (path.name, c.source)

