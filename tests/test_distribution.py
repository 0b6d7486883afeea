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
    wheel = build_student_wheel(root, tmp / "dist", unlocked=["01_backprop"])
    return wheel, _venv_with(wheel, tmp / "venv")


def _run(python: Path, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=300, cwd="/")


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
    done = subprocess.run([str(coursekit), "--course", str(root), "release", "--out", "rel", "--wheel", "dist",
                           "--unlock", "01"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "built dist/coursekit-" in done.stdout and "01_backprop unlocked" in done.stdout
    assert list((tmp_path / "dist").glob("coursekit-*.whl")) and (tmp_path / "rel" / "01_backprop.ipynb").exists()
    bad = subprocess.run([str(coursekit), "--course", str(root), "release", "--out", "rel2", "--wheel", "dist2",
                          "--unlock", "01,09"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "--unlock names a notebook the course does not have: '09'" in bad.stderr
    assert not (tmp_path / "rel2").exists() and not (tmp_path / "dist2").exists()
