"""`coursekit release` refuses a graded cell that the judge would not grade as written
(coursekit.grading.judge.rules), naming the cell and the name; the course's own cells pass."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from coursekit.grading.course.directory import assignments
from coursekit.grading.judge.rules import free_names, imports, lint

ROOT = Path(__file__).resolve().parents[1]


def _notebook(*cells):
    nb = nbformat.v4.new_notebook()
    for kind, source, grade_id in cells:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["nbgrader"] = {
            "setup": {"locked": True, "solution": False, "grade": False},
            "answer": {"locked": False, "solution": True, "grade": False},
            "tests": {"locked": True, "solution": False, "grade": True, "points": 1},
        }[kind] | {"grade_id": grade_id}
        nb.cells.append(cell)
    return nb


SETUP = ("setup", "import numpy as np\nfrom coursekit.checks import conv as check\nTARGET = 3", "setup")
ANSWER = ("answer", "def im2col(x):\n    return x\n\ndef sum(xs):\n    return 0\n\nclass Net:\n    pass",
          "ex1_answer")


@pytest.mark.parametrize("source, name, why", [
    ("check.im2col(im2col, graded=True)", None, None),
    ("assert im2col(TARGET) == 3", "TARGET", "set by a locked cell without an import"),
    ("assert sum([1]) == 0", "sum", "Python builtin that the notebook redefines"),
    ("check.im2col(im2col_fast, graded=True)", "im2col_fast", "defined by no cell above it"),
    ("check.im2col(im2col.features(1), graded=True)", "im2col.features",
     "calls a part of the student's model"),
    ("net = Net()\nassert net.features[0](np.zeros(2)).shape", "net.features[0]",
     "calls a part of the student's model"),
    ("assert Net().head(np.zeros(2)).shape", "Net().head", "calls a part of the student's model"),
    ("net = Net()\nnet.eval()\ncheck.im2col(net, graded=True)\nassert im2col(np.ones(3)).sum() == 3",
     None, None),
])
def test_each_rule_is_checked(source, name, why):
    broken = lint(_notebook(SETUP, ANSWER, ("tests", source, "ex1_tests")), "01_x")
    if name is None:
        assert broken == []
        return
    assert [(b.cell, b.name) for b in broken] == [("01_x: graded cell ex1_tests", name)]
    assert why in broken[0].why


def test_a_name_from_a_later_cell_is_not_there_yet():
    nb = _notebook(SETUP, ("tests", "check.im2col(im2col, graded=True)", "ex1_tests"), ANSWER)
    assert [b.name for b in lint(nb)] == ["im2col"]


def test_the_judge_runs_what_the_rules_say():
    nb = _notebook(SETUP, ANSWER)
    assert imports(nb.cells) == ["import numpy as np", "from coursekit.checks import conv as check"]
    assert free_names("x = f(y)\nfor i in range(3):\n    z = x + i\ndef g(a):\n    return a + w") == \
        ["f", "y", "range", "w"]


def test_every_graded_cell_of_the_course_passes():
    for name in assignments(ROOT):
        assert lint(nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4), name) == []


def test_release_refuses_a_broken_graded_cell(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(ROOT / "autograder", course / "autograder")
    shutil.copytree(ROOT / "solutions", course / "solutions")
    path = course / "solutions" / "07_scenes.ipynb"
    nb = nbformat.read(path, as_version=4)
    tests = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex1_tests")
    tests.source = tests.source.replace("### END HIDDEN TESTS", "assert not FULL\n### END HIDDEN TESTS")
    nbformat.write(nb, path)
    done = subprocess.run([sys.executable, "-m", "coursekit.cli", "--course", str(course), "release",
                           "--out", "released"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 1, done.stdout + done.stderr
    said = done.stdout + done.stderr
    assert "07_scenes: graded cell ex1_tests: `FULL` is set by a locked cell without an import" in said, said
    assert not (tmp_path / "released").exists()
