"""The parts of 07's held-out grading, one at a time: weights files, the validation split,
Trainer.fit_or_load, files handed in beside a notebook (kept, refused, changed, from an LMS zip),
the measurements the leaderboard reads, and the judge-only held-out folder."""
import json
import zipfile

import nbformat
import pytest
import torch
from torch import nn

from coursekit.checks import CheckError
from coursekit.checks import scenes as check
from coursekit.checks.scenes import MEASURE
from coursekit.data import fifteen_scene
from coursekit.grading.course.directory import nbgrader_api
from coursekit.grading.course.submitted import REFUSED, copy_files, files_digest, store_files
from coursekit.grading.pipeline.collect import collect_zip
from coursekit.grading.pipeline.results import leaderboard, leaderboard_text, measurements
from coursekit.models.weights import WeightsError, load_weights, read_weights, save_weights
from coursekit.training import TrainConfig, Trainer

FILES = ["simple.safetensors", "regularised.safetensors", "transfer.safetensors"]


def _net():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 15))


def test_weights_round_trip_with_the_input_it_expects(tmp_path):
    torch.manual_seed(0)
    model = _net()
    path = save_weights(model, tmp_path / "simple", image_size=64, mean=(0.4, 0.5, 0.6), std=(0.2, 0.2, 0.3))
    assert path.name == "simple.safetensors" and path.stat().st_mode & 0o777 == 0o644
    other = _net()
    info = load_weights(other, path)
    assert (info.image_size, info.mean, info.std) == (64, (0.4, 0.5, 0.6), (0.2, 0.2, 0.3))
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)


def test_every_bad_weights_file_says_what_was_expected(tmp_path):
    path = save_weights(_net(), tmp_path / "simple.safetensors", image_size=64, mean=(0.5,) * 3, std=(0.2,) * 3)
    with pytest.raises(WeightsError, match=r"does not hold the weights of this Linear: 2 tensors of the model"):
        load_weights(nn.Linear(2, 2), path)
    wider = nn.Sequential(nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(5, 15))
    with pytest.raises(WeightsError, match=r"have another shape \(0.weight: file \(4, 3, 3, 3\), model \(5, 3, 3, 3\)"):
        load_weights(wider, path)
    with pytest.raises(WeightsError, match="larger than the limit"):
        read_weights(path, max_bytes=100)
    with pytest.raises(WeightsError, match="there is no file missing.safetensors"):
        read_weights(tmp_path / "missing.safetensors")
    pickled = tmp_path / "pickled.safetensors"
    torch.save(_net().state_dict(), pickled)
    with pytest.raises(WeightsError, match="not a readable safetensors weights file"):
        read_weights(pickled)
    from safetensors.torch import save_file
    bare = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(2)}, str(bare))
    with pytest.raises(WeightsError, match="without coursekit's metadata"):
        read_weights(bare)
    broken = _net()
    with torch.no_grad():
        broken[0].weight.fill_(float("nan"))
    nan = save_weights(broken, tmp_path / "nan", image_size=64, mean=(0.5,) * 3, std=(0.2,) * 3)
    with pytest.raises(WeightsError, match="NaN or infinite"):
        load_weights(_net(), nan)
    with pytest.raises(WeightsError, match="std should be 3 positive numbers"):
        save_weights(_net(), tmp_path / "x", image_size=64, mean=(0.5,) * 3, std=(0.2, 0, 0.2))
    with pytest.raises(WeightsError, match="image_size should be a whole number"):
        save_weights(_net(), tmp_path / "x", image_size=64.0, mean=(0.5,) * 3, std=(0.2,) * 3)


def test_the_validation_split_comes_from_the_training_images_and_the_test_images_stay_out(tmp_path):
    root = fifteen_scene.generated(tmp_path)
    full = fifteen_scene.load(root, size=32, progress=False)
    held = fifteen_scene.load(root, size=32, validation=0.2, progress=False)
    assert held.test is None and "the test images are held out" in held.describe()
    assert len(held.train) + len(held.val) == len(full.train)
    assert set(held.val.paths).isdisjoint(held.train.paths)
    assert all(p.startswith("train/") for p in held.val.paths)
    assert torch.equal(torch.bincount(held.val.y), torch.full((15,), 4))   # 20% of 20 per class
    with pytest.raises(ValueError, match="between 0 and 1"):
        fifteen_scene.load(root, size=32, validation=20, progress=False)


def test_fit_or_load_trains_and_saves_then_loads_without_training(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randint(0, 255, (32, 3, 16, 16), dtype=torch.uint8, generator=g), torch.arange(32) % 15
    torch.manual_seed(0)
    trainer = Trainer(_net(), (x, y), (x, y), TrainConfig(epochs=2, batch_size=8, progress=False, mean=(0.5,) * 3,
                                                          std=(0.25,) * 3))
    history = trainer.fit_or_load(tmp_path / "m.safetensors")
    assert len(history.epoch) == 2 and (tmp_path / "m.safetensors").is_file()
    again = Trainer(_net(), (x, y), (x, y), TrainConfig(epochs=2, batch_size=8, progress=False))
    loaded = again.fit_or_load(tmp_path / "m.safetensors", train=False)
    assert loaded.epoch == [] and loaded.loaded_from.endswith("m.safetensors")
    assert again.evaluate() == trainer.evaluate()
    with pytest.raises(WeightsError, match="there is no file"):
        again.fit_or_load(tmp_path / "none.safetensors", train=False)


def test_files_handed_in_are_kept_refused_when_too_large_and_change_the_submission(tmp_path):
    src, kept = tmp_path / "alice", tmp_path / "kept"
    src.mkdir()
    (src / "simple.safetensors").write_bytes(b"a" * 10)
    (src / "transfer.safetensors").write_bytes(b"b" * 500)
    store_files(src, kept, FILES, max_bytes=100)
    assert (kept / "simple.safetensors").read_bytes() == b"a" * 10
    assert not (kept / "transfer.safetensors").exists()
    assert "larger than the course's limit" in (kept / ("transfer.safetensors" + REFUSED)).read_text()
    first = files_digest(kept, FILES)
    (src / "simple.safetensors").write_bytes(b"c" * 10)
    (src / "transfer.safetensors").unlink()
    store_files(src, kept, FILES, max_bytes=100)
    assert files_digest(kept, FILES) not in ("", first)
    assert not (kept / ("transfer.safetensors" + REFUSED)).exists()
    copy_files(kept, FILES, tmp_path / "job")
    assert sorted(p.name for p in (tmp_path / "job").iterdir()) == ["simple.safetensors"]
    assert files_digest(tmp_path / "empty", FILES) == ""


def test_an_lms_zip_brings_the_model_files_beside_the_notebook(tmp_path, root):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("subs/ann_07_scenes.ipynb", "{}")
        z.writestr("subs/ann_simple.safetensors", b"weights")
        z.writestr("subs/ann_attempt_2026-10-10-12-00-00_transfer.safetensors", b"more")
        z.writestr("subs/ann_other.safetensors", b"not a course file")
    staging = tmp_path / "staging"
    students = collect_zip(archive, ["07_scenes"], staging, nbgrader_api(root, staging), {"07_scenes": FILES})
    folder = students["ann"]["07_scenes"].parent
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [
        "07_scenes.ipynb", "simple.safetensors", "timestamp.txt", "transfer.safetensors"]
    assert (folder / "simple.safetensors").read_bytes() == b"weights"


def test_only_graded_cells_measurements_reach_the_leaderboard(tmp_path):
    nb = nbformat.v4.new_notebook()
    record = {"model": "transfer", "accuracy": 0.9, "images": 10, "dataset": "generated"}
    fake = {"model": "transfer", "accuracy": 1.0, "images": 10, "dataset": "generated"}
    graded = nbformat.v4.new_code_cell("check.held_out_accuracy(...)")
    graded.metadata["nbgrader"] = {"grade": True, "grade_id": "ex10_transfer", "points": 2}
    graded.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": "x", MEASURE: record})]
    own = nbformat.v4.new_code_cell("display(...)")   # the student's own cell cannot fake one
    own.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": "x", MEASURE: fake})]
    nb.cells = [own, graded]
    path = tmp_path / "07_scenes.ipynb"
    nbformat.write(nb, path)
    assert measurements(path) == {"ex10_transfer": record}
    assert measurements(tmp_path / "missing.ipynb") == {}

    class Row:
        def __init__(self, measures):
            self.measures = measures
    board = leaderboard({("bob", "07_scenes"): Row({"ex10_transfer": {**record, "accuracy": 0.7}}),
                         ("amy", "07_scenes"): Row({"ex10_transfer": record}), ("cy", "07_scenes"): Row({})})
    assert board == {"transfer": [("amy", 0.9), ("bob", 0.7)]}
    assert leaderboard_text(board, top=1).splitlines() == [
        "leaderboard, transfer (held-out accuracy, top 1 of 2):", "   1. amy                  90.0%"]


def test_held_out_accuracy_reads_the_judges_folder_and_the_submitted_files(tmp_path, monkeypatch):
    from coursekit.benchmarks.scene_project import instructor_answers

    SimpleNet = instructor_answers()["SimpleNet"]
    torch.manual_seed(0)
    x = torch.randint(0, 255, (40, 3, 64, 64), dtype=torch.uint8)
    y = torch.arange(40) % 15
    check.HeldOut(x, y, "15-Scene", {"simple": 0.0, "regularised": 0.5, "transfer": 0.5}).save(tmp_path / "held")
    files = tmp_path / "files"
    save_weights(SimpleNet(), files / "simple", image_size=64, mean=(0.5,) * 3, std=(0.25,) * 3)
    monkeypatch.setenv(check.HELD_OUT_ENV, str(tmp_path / "held"))
    monkeypatch.setenv("COURSEKIT_SUBMITTED", str(files))
    check.held_out_accuracy("simple", SimpleNet, graded=True)
    check.held_out_accuracy("simple", SimpleNet, graded=1)     # threshold 0: any accuracy passes
    settings = json.loads((tmp_path / "held" / "settings.json").read_text())
    (tmp_path / "held" / "settings.json").write_text(json.dumps({**settings, "seconds": 1e-6}))
    with pytest.raises(CheckError, match="too slow"):
        check.held_out_accuracy("simple", SimpleNet, graded=1)
    with pytest.raises(CheckError, match="there is no file regularised.safetensors"):
        check.held_out_accuracy("regularised", SimpleNet, graded=1)


def test_a_model_with_the_wrong_number_of_outputs_scores_nothing_and_is_told(tmp_path, monkeypatch):
    class TenWay(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64 * 64, 10))

        def forward(self, x):
            return self.net(x)

    x, y = torch.zeros(40, 3, 64, 64, dtype=torch.uint8), torch.arange(40) % 15
    check.HeldOut(x, y, "generated", {"simple": 0.0, "regularised": 0.0, "transfer": 0.0}).save(tmp_path / "held")
    save_weights(TenWay(), tmp_path / "simple", image_size=64, mean=(0.5,) * 3, std=(0.25,) * 3)
    monkeypatch.setenv(check.HELD_OUT_ENV, str(tmp_path / "held"))
    monkeypatch.setenv("COURSEKIT_SUBMITTED", str(tmp_path))
    with pytest.raises(CheckError, match=r"should give scores \(32, 15\), got \(32, 10\)"):
        check.held_out_accuracy("simple", TenWay, graded=1)


def test_the_course_gives_some_cells_longer_than_the_per_cell_limit():
    import time

    from coursekit.grading.kernel.execute import SandboxedExecute

    ex = SandboxedExecute(timeout=30, cell_timeouts={"07_scenes:ex10_transfer": 300})
    ex.resources = {"nbgrader": {"notebook": "07_scenes"}}
    ex._deadline = time.monotonic() + 600
    cell = nbformat.v4.new_code_cell("")
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "ex10_transfer"}
    assert ex._get_timeout(cell) == 300
    cell.metadata["nbgrader"]["grade_id"] = "ex9_tests"
    assert ex._get_timeout(cell) == 30
    assert ex._get_timeout(None) == 30           # nbclient asks without a cell, too
    ex.resources = {"nbgrader": {"notebook": "02_layers"}}
    cell.metadata["nbgrader"]["grade_id"] = "ex10_transfer"
    assert ex._get_timeout(cell) == 30           # the same grade id in another notebook
    ex._deadline = time.monotonic() + 100
    assert ex._get_timeout(cell) <= 100          # the notebook's own budget still applies
