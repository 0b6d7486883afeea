"""The students' coursekit (coursekit.grading.course.distribution): a real wheel, installed with
pip into a fresh venv, holds no answer of a locked notebook (the source scan of
coursekit.grading.course.answers, which finds every answer in the instructor's package), no
instructor's side, and still gives students what the notebooks give them.

The venv's own site-packages holds only the wheel; numpy and torch (a gigabyte) come from the
test environment through a .pth file, which Python reads after the venv's own packages."""
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from coursekit.grading.course.answers import find_answers, locked
from coursekit.grading.course.directory import CourseError, assignments
from coursekit.grading.course.distribution import build_student_wheel


def _venv_with(wheel: Path, folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(purelib),
                    str(wheel)], check=True)
    theirs = [p for p in {sysconfig.get_paths()["purelib"], *site.getsitepackages()} if Path(p).is_dir()]
    (purelib / "zz-test-dependencies.pth").write_text("\n".join(theirs) + "\n")
    return python


@pytest.fixture(scope="module")
def installed(tmp_path_factory, root):
    tmp = tmp_path_factory.mktemp("distribution")
    # what is in it, not whether its self-checks run (that is below): recording six notebooks'
    # self-checks would take minutes
    wheel = build_student_wheel(root, tmp / "dist", unlocked=["01_backprop"], record=False)
    return wheel, _venv_with(wheel, tmp / "venv")


def _isolated_env() -> dict:
    """The environment, without a PYTHONPATH that would put another coursekit first."""
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _run(python: Path, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=300, cwd="/",
                          env=_isolated_env())


def test_the_installed_package_is_the_wheel_and_holds_no_locked_answer(installed, root):
    wheel, python = installed
    where = _run(python, "import coursekit, os; print(os.path.dirname(coursekit.__file__))")
    assert where.returncode == 0, where.stderr
    package = Path(where.stdout.strip())
    assert str(package).startswith(str(python.parent.parent)), package  # the venv's, not the checkout
    names = locked(assignments(root), ["01_backprop"])
    assert names and not any(n.startswith("backprop.") for n in names)
    assert find_answers(package, names) == []
    unlocked = {name for f in find_answers(package, locked(assignments(root), [])) for name in f.answers}
    assert unlocked == set(locked(assignments(root), [])) - set(names)  # 01's answers are there
    files = zipfile.ZipFile(wheel).namelist()
    assert not any(f.startswith(("coursekit/grading/", "coursekit/benchmarks/")) or f == "coursekit/cli.py"
                   for f in files), [f for f in files if "grading" in f][:5]


def test_given_functions_work_and_a_locked_answer_says_which_notebook_unlocks_it(installed):
    _, python = installed
    done = _run(python, """
import numpy as np
from coursekit.reference.backprop import add_forward, softmax_nll
from coursekit.reference.conv import col2im
from coursekit.reference.layers import affine_forward
print(add_forward(1.0, 2.0)[0], round(softmax_nll(np.zeros((2, 3)), np.array([0, 1]))[0], 4))
try:
    affine_forward(np.ones((2, 3)), np.ones((3, 4)), np.ones(4))
except Exception as exc:
    print(type(exc).__name__, '|', exc)
import importlib.util
print(importlib.util.find_spec('coursekit.grading'))
""")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "3.0 1.0986"                       # given, and 01 is unlocked
    assert lines[1].startswith("LockedAnswer | coursekit.reference.layers.affine_forward is the answer "
                               "to an exercise of notebook 02_layers"), lines[1]
    assert lines[2] == "None"                             # no instructor's side


def test_unlocking_a_notebook_the_course_does_not_have_is_refused(tmp_path, root):
    with pytest.raises(CourseError, match="--unlock names notebooks the course does not have: 09_gans"):
        build_student_wheel(root, tmp_path, unlocked=["09_gans"])


def test_the_release_command_builds_the_wheel_and_refuses_a_bad_unlock_before_writing(tmp_path, root):
    """`coursekit release --out rel --wheel dist --unlock 01` as typed, in a fresh folder."""
    coursekit = Path(sys.executable).with_name("coursekit")
    unlock = ",".join(nb.split("_")[0] for nb in assignments(root) if nb != "02_layers")  # records 02 only
    done = subprocess.run([str(coursekit), "--course", str(root), "release", "--out", "rel", "--wheel", "dist",
                           "--unlock", unlock], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "built dist/coursekit-" in done.stdout and "01_backprop, 03_conv" in done.stdout
    assert list((tmp_path / "dist").glob("coursekit-*.whl")) and (tmp_path / "rel" / "01_backprop.ipynb").exists()
    bad = subprocess.run([str(coursekit), "--course", str(root), "release", "--out", "rel2", "--wheel", "dist2",
                          "--unlock", "01,09"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "--unlock names a notebook the course does not have: '09'" in bad.stderr
    assert not (tmp_path / "rel2").exists() and not (tmp_path / "dist2").exists()


# --- the self-checks, from what the release recorded -------------------------------------------

WRONG_01 = {  # one named mistake per exercise kind: the transposed gradient, the missing 1/N, zeros
    "ex4_answer": lambda src: src + "\n\ndef norm_sq_backward(df, cache):\n    x, W, q = cache\n"
                                    "    return 2 * df * W.T @ q, 2 * df * np.outer(x, q)\n",
    "ex5_answer": lambda src: src.replace("dscores / n", "dscores"),
    "ex6b_answer": lambda src: src + "\n\ndef rel_error(a, b):\n    return 0.0\n",
}


def _errors(nb):
    """grade id (or cell index) -> (ename, evalue) of each code cell that failed."""
    out = {}
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []):
            if o.output_type == "error":
                out[cell.metadata.get("nbgrader", {}).get("grade_id", i)] = (o.ename, o.evalue)
    return out


def _execute(nb, kernel_name, folder):
    from nbclient import NotebookClient

    folder.mkdir(parents=True, exist_ok=True)
    NotebookClient(nb, timeout=300, kernel_name=kernel_name, allow_errors=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    return nb


@pytest.fixture(scope="module")
def only_01_locked(tmp_path_factory, root, released):
    """A wheel with notebook 01 locked (the others unlocked), its self-checks recorded, and a
    Jupyter kernel running the venv it is installed in."""
    import json
    import os

    tmp = tmp_path_factory.mktemp("locked01")
    others = [nb for nb in assignments(root) if nb != "01_backprop"]
    wheel = build_student_wheel(root, tmp / "dist", unlocked=others, release_dir=released)
    python = _venv_with(wheel, tmp / "venv")
    spec = tmp / "jupyter" / "kernels" / "student-wheel"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "the students' coursekit", "language": "python",
        "env": {"PYTHONPATH": ""}}))  # the wheel's coursekit, whatever the test run's PYTHONPATH
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(tmp / "jupyter")
    yield wheel, python, tmp
    if old is None:
        os.environ.pop("JUPYTER_PATH")
    else:
        os.environ["JUPYTER_PATH"] = old


@pytest.mark.parametrize("answers", ["right", "wrong"])
def test_the_self_checks_of_a_locked_notebook_say_what_they_say_with_the_answers_at_hand(
        only_01_locked, root, released, answers):
    """Notebook 01, locked: its self-checks, run in the students' coursekit, pass on the
    instructor's answers and name each mistake exactly as the instructor's coursekit does."""
    import copy

    import nbformat

    from coursekit.grading.classes.sample import NOTEBOOK, student_notebook

    wheel, python, tmp = only_01_locked
    assert "coursekit/reference/recorded.json" in zipfile.ZipFile(wheel).namelist()
    nb = student_notebook(released / f"{NOTEBOOK}.ipynb", root / "solutions" / f"{NOTEBOOK}.ipynb",
                          WRONG_01 if answers == "wrong" else None)
    theirs = copy.deepcopy(nb)
    theirs.cells.insert(0, nbformat.v4.new_code_cell("import coursekit, os; print(os.path.dirname(coursekit.__file__))"))
    theirs = _execute(theirs, "student-wheel", tmp / f"run-{answers}")
    assert theirs.cells[0].outputs[0]["text"].startswith(str(python.parent.parent)), theirs.cells[0].outputs
    students = _errors(theirs)
    instructors = _errors(_execute(copy.deepcopy(nb), "python3", tmp / f"ref-{answers}"))
    if answers == "right":
        assert students == instructors == {}, students
    else:
        assert set(instructors) >= {"ex4_tests", "ex5_tests", "ex6b_tests"}, instructors
        assert students == instructors
        assert not any("LockedAnswer" in name for name, _ in students.values())
