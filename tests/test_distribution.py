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
from coursekit import models
for build in (lambda: models.BasicBlock(4, 4), lambda: models.DeepMLP(3, 8, 4, 2, True),
              lambda: __import__('coursekit.models.scene_nets', fromlist=['_']).SimpleNetFinal()):
    try:
        build()
        print('built')
    except Exception as exc:
        print(type(exc).__name__, '|', exc)
print(models.ResNet.__name__)
""")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "3.0 1.0986"                       # given, and 01 is unlocked
    assert lines[1].startswith("LockedAnswer | coursekit.reference.layers.affine_forward is the answer "
                               "to an exercise of notebook 02_layers"), lines[1]
    assert lines[2] == "None"                             # no instructor's side
    # the answer networks of locked notebooks cannot be built; what is given around them stays
    assert lines[3].startswith("LockedAnswer | coursekit.models.resnet.BasicBlock is the answer to an exercise "
                               "of notebook 06_architectures"), lines[3]
    assert lines[4].startswith("LockedAnswer | coursekit.models.residual.DeepMLP") and \
        lines[5].startswith("LockedAnswer | coursekit.models.scene_nets.SimpleNetFinal"), lines[4:6]
    assert lines[6] == "ResNet"


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


#: the notebooks whose students' wheel CI checks (each takes from 10 s to 2 minutes, the seven 7
#: minutes): ``python tests/test_distribution.py`` checks every notebook and prints the table
CI_NOTEBOOKS = ("01_backprop", "02_layers", "03_conv")


def wrong_answers(notebook: str) -> dict:
    """One named mistake per exercise of ``notebook`` (test_wrong_variants' first variant of each)."""
    from test_wrong_variants import VARIANTS

    if notebook == "01_backprop":
        return WRONG_01
    edits = {}
    for exercise, edit in VARIANTS[notebook].values():
        edits.setdefault(f"{exercise}_answer", edit)
    return edits


def handed_out(root, released, notebook, tmp):
    """The students' wheel as handed out with ``notebook``: every earlier notebook unlocked, its
    own answers and the later ones' locked, its self-checks recorded; installed in a fresh venv
    with a Jupyter kernel. Returns (wheel, kernel name, the venv's python)."""
    import json
    import os

    notebooks = assignments(root)
    earlier = notebooks[:notebooks.index(notebook)]
    wheel = build_student_wheel(root, tmp / "dist", unlocked=earlier, release_dir=released, record=[notebook])
    python = _venv_with(wheel, tmp / "venv")
    spec = tmp / "jupyter" / "kernels" / "student-wheel"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "the students' coursekit", "language": "python",
        "env": {"PYTHONPATH": ""}}))  # the wheel's coursekit, whatever the test run's PYTHONPATH
    os.environ["JUPYTER_PATH"] = str(tmp / "jupyter")
    return wheel, "student-wheel", python


def self_checks(root, released, notebook, tmp):
    """Run ``notebook`` in its students' wheel with the instructor's answers and with one mistake
    per exercise, and the wrong one in the instructor's coursekit too: (right, wrong, instructor's
    wrong), each grade id -> (error name, message) of the cells that failed."""
    import copy
    import os

    import nbformat

    from coursekit.grading.classes.sample import student_notebook

    old = os.environ.get("JUPYTER_PATH")
    try:
        wheel, kernel, python = handed_out(root, released, notebook, tmp)
        assert "coursekit/reference/recorded.json" in zipfile.ZipFile(wheel).namelist()
        release, solution = released / f"{notebook}.ipynb", root / "solutions" / f"{notebook}.ipynb"
        right = student_notebook(release, solution)
        right.cells.insert(0, nbformat.v4.new_code_cell("import coursekit, os; print(os.path.dirname(coursekit.__file__))"))
        right = _execute(right, kernel, tmp / "right")
        where = right.cells[0].outputs[0]["text"]
        assert where.startswith(str(python.parent.parent)), where  # the wheel's coursekit ran
        wrong = student_notebook(release, solution, wrong_answers(notebook))
        theirs = _errors(_execute(copy.deepcopy(wrong), kernel, tmp / "wrong"))
    finally:
        if old is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = old
    instructors = _errors(_execute(copy.deepcopy(wrong), "python3", tmp / "wrong-instructor"))
    return _errors(right), theirs, instructors


def test_a_recording_is_made_once_for_what_it_depends_on(tmp_path, root, released, monkeypatch):
    """The self-checks of a notebook are recorded once for the wheel and every class run that
    grades it, again when what they depend on changes (here: the kernel's thread setting)."""
    import json

    from coursekit.grading.course.distribution import recorded_self_checks

    monkeypatch.setenv("COURSEKIT_CACHE", str(tmp_path / "cache"))
    first = recorded_self_checks(root, released / "01_backprop.ipynb", {"OMP_NUM_THREADS": "2", "DATA": "/here"})
    calls = json.loads(first.read_text())
    assert calls and {c["name"] for c in calls.values()} >= {"backprop.two_layer_forward"}, sorted(calls)[:3]
    made = first.stat().st_mtime_ns
    again = recorded_self_checks(root, released / "01_backprop.ipynb", {"OMP_NUM_THREADS": "2", "DATA": "/there"})
    assert again == first and again.stat().st_mtime_ns == made  # another run's folder: the same
    assert recorded_self_checks(root, released / "01_backprop.ipynb", {"OMP_NUM_THREADS": "1", "DATA": "/here"}) != first
    assert [p.name for p in (tmp_path / "cache" / "self-checks").iterdir() if p.name.startswith(".")] == []


def test_a_recording_that_fails_leaves_a_note_and_grading_goes_on(tmp_path, root, released, monkeypatch):
    """The instructor's answers failing to run (a dataset gone, a broken solution) costs the
    feedback under the self-checks, never the grading: the copy is built, the run says why."""
    from coursekit.grading.course import distribution

    def fails(*args, **kwargs):
        raise CourseError("01_backprop with the instructor's answers failed while recording its self-checks: boom")
    monkeypatch.setenv("COURSEKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(distribution, "record_self_checks", fails)
    notes = []
    copy = distribution.grading_copy(root, tmp_path / "copy", released / "01_backprop.ipynb", {}, notes)
    assert (copy / "coursekit" / "reference" / "backprop.py").is_file()
    assert not (copy / "coursekit" / "reference" / "recorded.json").exists()
    assert notes == ["01_backprop: its self-checks could not be recorded, so in the feedback those that need a "
                     "reference say it is locked (grading is not affected): 01_backprop with the instructor's "
                     "answers failed while recording its self-checks: boom"]


@pytest.mark.parametrize("notebook", CI_NOTEBOOKS)
def test_the_self_checks_of_a_notebook_as_handed_out_pass_right_answers_and_name_each_mistake(
        tmp_path, root, released, notebook):
    """In the students' wheel handed out with the notebook (its answers locked, what it builds
    on unlocked), the self-checks pass the instructor's answers, and with one mistake per
    exercise they fail where the instructor's coursekit fails, each with the same named mistake
    (where a check builds on an exercise that is also wrong, the wheel cannot swap in the
    locked answer: it names the earlier mistake, one the instructor's names too)."""
    right, theirs, instructors = self_checks(root, released, notebook, tmp_path)
    assert right == {}, right
    wrong_exercises = {f"{key.split('_')[0]}_tests" for key in wrong_answers(notebook)}
    assert wrong_exercises <= set(instructors), (wrong_exercises, instructors)
    assert set(theirs) == set(instructors), (theirs, instructors)
    for cell, (name, message) in theirs.items():
        assert name != "LockedAnswer", (cell, message)
        assert (name, message) == instructors[cell] or (name, message) in instructors.values(), \
            (cell, message, instructors[cell])


if __name__ == "__main__":
    # The table behind the test, for every notebook: python tests/test_distribution.py [NOTEBOOK...]
    import tempfile
    import time

    from coursekit.grading.course.directory import find_course_root
    from coursekit.grading.course.release import release

    root = find_course_root()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        release(root, tmp / "release")
        for notebook in sys.argv[1:] or assignments(root):
            start = time.perf_counter()
            right, theirs, instructors = self_checks(root, tmp / "release", notebook, tmp / notebook)
            same = sum(1 for cell, value in theirs.items() if instructors.get(cell) == value)
            print(f"{notebook}: right answers {len(right)} failing cells; {len(wrong_answers(notebook))} "
                  f"answers wrong: {len(instructors)} failing cells with the instructor's coursekit, "
                  f"{len(theirs)} with the wheel, {same} with the same message; "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
            for cell in sorted(set(theirs) | set(instructors)):
                if theirs.get(cell) != instructors.get(cell):
                    print(f"  {cell}: wheel {theirs.get(cell)!s:.160} | instructor {instructors.get(cell)!s:.160}")
