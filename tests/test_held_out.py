"""07's saved models graded on held-out images: a class through `coursekit autograde`, on the
generated stand-in (always) and on the real 15-Scene test split (when ../shared/data has it)."""
import csv
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch

from coursekit.benchmarks import scene_project
from coursekit.data import fifteen_scene
from coursekit.grading.classes.project import NOTEBOOK, STORIES, make_project_class

ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "15-scene.zip"
STRUCTURE = ("ex3_tests", "ex5_tests", "ex6_tests")


def _models(tmp, data, test, **short):
    """The instructor's models, trained and for one epoch, on one core (the other xdist worker's
    tests have cell time limits)."""
    out, threads = {}, torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for kind, settings in (("trained", {}), ("one_epoch", dict(epochs=1, final_epochs=1, probe_steps=1))):
            folder = tmp / kind
            folder.mkdir()
            scene_project.run(data, test, out=folder, progress=False, **{**settings, **short})
            out[kind] = folder
    finally:
        torch.set_num_threads(threads)
    return out


SNOOP = """
import os
_held = os.path.join(os.getcwd(), "..", "..", "..", "..", "shared", "07_scenes.held-out")
print("told where:", os.environ.get("COURSEKIT_HELD_OUT"), "stand-in there:", os.path.isdir(_held + "/../07_scenes"))
try:
    print("HELD-OUT READ", os.listdir(_held), open(os.path.join(_held, "images.pt"), "rb").read(4))
except OSError as exc:
    print("HELD-OUT DENIED", type(exc).__name__)
"""


def _grade(root, released, tmp, models, *extra):
    subs = tmp / "subs"
    make_project_class(released, root / "solutions", subs, models)
    nb = nbformat.read(subs / "instructor" / f"{NOTEBOOK}.ipynb", as_version=4)
    for cell in nb.cells:   # a student who looks for the held-out images from their kernel
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "ex1_answer":
            cell.source = SNOOP + cell.source
    (subs / "snoop").mkdir()
    nbformat.write(nb, subs / "snoop" / f"{NOTEBOOK}.ipynb")
    env = {**os.environ, "COURSEKIT_DATA": str(tmp / "data-home")}
    done = subprocess.run([str(Path(sys.executable).parent / "coursekit"), "autograde", "subs", "--out", "graded",
                           "--no-progress", *extra], cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(tmp / "graded" / "grades_by_exercise.csv") as fh:
        rows = {(r["student"], r["exercise"]): r for r in csv.DictReader(fh) if r["notebook"] == NOTEBOOK}
    return done.stdout, rows


def _check(stdout, rows):
    score = lambda s, e: float(rows[(s, e)]["score"])  # noqa: E731
    for e in ("ex10_simple", "ex10_regularised", "ex10_transfer", *STRUCTURE):
        assert score("instructor", e) == float(rows[("instructor", e)]["max_score"]) > 0, e
    for e in ("ex10_simple", "ex10_regularised", "ex10_transfer"):
        assert score("one_epoch", e) == 0, e
        assert rows[("one_epoch", e)]["accuracy"] != ""
        assert float(rows[("one_epoch", e)]["accuracy"]) < float(rows[("instructor", e)]["accuracy"])
    for e in STRUCTURE:
        assert score("one_epoch", e) > 0, e
    assert score("wrong_architecture", "ex10_simple") == 0
    assert score("wrong_architecture", "ex10_transfer") > 0
    assert score("oversized", "ex10_simple") == 0 and score("oversized", "ex10_regularised") > 0
    assert score("corrupt", "ex10_transfer") == 0 and score("corrupt", "ex10_simple") > 0
    assert "leaderboard, transfer (held-out accuracy, top 4 of 4):" in stdout   # corrupt has none
    return score


def _feedback(tmp, student):
    return (tmp / "graded" / "feedback" / student / f"{NOTEBOOK}.html").read_text()


def _snooped(tmp):
    nb = nbformat.read(tmp / "graded" / "course" / "autograded" / "snoop" / NOTEBOOK / f"{NOTEBOOK}.ipynb",
                       as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex1_answer")
    return "".join(o.get("text", "") for o in cell.outputs)


def test_a_project_class_on_the_generated_stand_in(tmp_path, root, released):
    home = tmp_path / "data-home"
    data = fifteen_scene.load(fifteen_scene.generated(home), size=64, validation=0.2, progress=False)
    test = fifteen_scene.load(fifteen_scene.generated(home), size=64, progress=False).test
    models = _models(tmp_path, data, test)
    stdout, rows = _grade(root, released, tmp_path, models)
    _check(stdout, rows)
    assert "does not hold the weights of this SimpleNet" in _feedback(tmp_path, "wrong_architecture")
    assert "larger than the course&#39;s limit of 64 MB" in _feedback(tmp_path, "oversized") or \
        "larger than the course's limit of 64 MB" in _feedback(tmp_path, "oversized")
    assert "not a readable safetensors weights file" in _feedback(tmp_path, "corrupt")
    from coursekit.grading.kernel.sandbox import capabilities
    snooped = _snooped(tmp_path)
    assert "told where: None" in snooped and "stand-in there: True" in snooped, snooped
    if capabilities().get("files"):   # Landlock: the student's kernel reads only what it is given
        assert "HELD-OUT DENIED PermissionError" in snooped, snooped
    else:
        pytest.skip(f"no Landlock here: the held-out folder is unreadable only by path secrecy ({snooped!r})")
    with open(tmp_path / "graded" / "leaderboard.csv") as fh:
        board = list(csv.DictReader(fh))
    assert board[0]["rank"] == "1" and {r["model"] for r in board} == {"simple", "regularised", "transfer"}


@pytest.mark.skipif(not ARCHIVE.is_file(), reason=f"the real 15-Scene archive is not at {ARCHIVE}")
def test_the_instructors_models_earn_full_marks_on_the_real_test_split(tmp_path, root, released):
    """The real path: models trained on 15-Scene (the notebook's defaults), graded with
    `--data` on its 2,985 test images, which only the judge reads."""
    home = tmp_path / "data-home"
    real = fifteen_scene.fetch(ARCHIVE, home=home, progress=False)
    data = fifteen_scene.load(real, size=64, validation=0.2, progress=False)
    test = fifteen_scene.load(real, size=64, progress=False).test
    models = _models(tmp_path, data, test)
    subs = tmp_path / "subs"
    stdout, rows = _grade(root, released, tmp_path, models, "--data", os.path.relpath(ARCHIVE, tmp_path))
    _check(stdout, rows)
    assert "held-out accuracy" in _feedback(tmp_path, "one_epoch") and "2,985 15-Scene test images" in _feedback(tmp_path, "one_epoch")
    assert subs.is_dir()


def test_bench_project_prints_the_table_and_saves_the_files(tmp_path):
    """`coursekit bench project` as typed, from a working folder, with a relative --out."""
    env = {**os.environ, "COURSEKIT_DATA": str(tmp_path / "data-home")}
    done = subprocess.run([str(Path(sys.executable).parent / "coursekit"), "bench", "project", "--generated",
                           "--epochs", "1", "--final-epochs", "1", "--probe-steps", "1", "--out", "models"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "generated, standard split: trained on 240 images" in done.stdout
    for model in ("simple", "regularised", "transfer"):
        assert any(line.startswith(model) and line.rstrip().endswith("cpu") for line in done.stdout.splitlines())
        assert (tmp_path / "models" / f"{model}.safetensors").is_file()
    bad = subprocess.run([str(Path(sys.executable).parent / "coursekit"), "bench", "project", "--from", "nowhere.zip"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "nowhere.zip does not exist" in bad.stderr
