"""15-Scene fetching, validation and loading, on archives generated here with the real
dataset's layout and per-class counts (tiny images), and on the real archive when present."""
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from coursekit.data import fifteen_scene as scenes
from coursekit.data.download import DataError, download, sha256sum

# The real archive: $COURSEKIT_15SCENE, else ../shared/data/15-scene.zip beside the project.
SHARED_ZIP = Path(os.environ.get("COURSEKIT_15SCENE")
                  or Path(__file__).resolve().parents[2] / "shared" / "data" / "15-scene.zip")


def _jpeg(seed: int, grey: bool, size=(12, 9)) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    img = Image.fromarray(arr).convert("L") if grey else Image.fromarray(arr)
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    return buf.getvalue()


def make_archive(path: Path, layout="split", drop_class=None, not_jpeg=None, prefix="15-scene/"):
    """A zip in the course archive's layout (or the original flat one) with the real counts.
    test/livingroom's first image is a byte copy of a training image (a cross-split duplicate)."""
    seed = 0
    with zipfile.ZipFile(path, "w") as zf:
        for cls in scenes.CLASSES:
            if cls == drop_class:
                continue
            parts = {"train": scenes.TRAIN_PER_CLASS, "test": scenes.TEST_COUNTS[cls]}
            for part, n in parts.items():
                for i in range(n):
                    seed += 1
                    data = _jpeg(seed, grey=seed % 3 != 0)
                    if layout == "split":
                        name = f"{prefix}{part}/{cls}/image_{i + 1:04d}.jpg"
                    else:
                        folder = f"MIT{cls}" if cls in ("coast", "forest") else cls.capitalize()
                        offset = 0 if part == "train" else scenes.TRAIN_PER_CLASS
                        name = f"{prefix}{folder}/image_{offset + i + 1:04d}.jpg"
                    if cls == "livingroom" and part == "test" and i == 0:
                        data = first_train_livingroom
                    if cls == "livingroom" and part == "train" and i == 0:
                        first_train_livingroom = data
                    if name == not_jpeg:
                        data = b"<html>not found</html>"
                    zf.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return make_archive(tmp_path_factory.mktemp("arch") / "15-scene.zip")


def _leftovers(home: Path):
    return sorted(p.name for p in home.iterdir()) if home.exists() else []


def test_fetch_from_archive_validates_counts_and_reports_duplicates(archive, tmp_path):
    root = scenes.fetch(archive, sha256=sha256sum(archive), home=tmp_path, progress=False)
    assert root == tmp_path / "15-scene"
    counts = scenes.count(root)
    assert counts["train"] == {c: 100 for c in scenes.CLASSES}
    assert counts["test"] == scenes.TEST_COUNTS
    report = scenes.duplicate_report(root)
    assert report.startswith("1 groups of byte-identical images")
    assert "test/livingroom/image_0001.jpg = train/livingroom/image_0001.jpg   [train/test]" in report
    assert _leftovers(tmp_path) == ["15-scene"]        # no temporary folders left behind


def test_checksum_mismatch_leaves_nothing(archive, tmp_path):
    with pytest.raises(DataError, match="sha256 .* expected 0{64}.*Nothing was left half-made"):
        scenes.fetch(archive, sha256="0" * 64, home=tmp_path, progress=False)
    assert _leftovers(tmp_path) == []


def test_truncated_archive_is_a_clear_error(archive, tmp_path):
    cut = tmp_path / "cut.zip"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    home = tmp_path / "home"
    with pytest.raises(DataError, match="not a complete zip archive.*truncated"):
        scenes.fetch(cut, sha256=None, home=home, progress=False)
    assert _leftovers(home) == []


def test_wrong_layout_names_the_missing_class(tmp_path):
    bad = make_archive(tmp_path / "bad.zip", drop_class="kitchen")
    with pytest.raises(DataError, match="no folder for the class\\(es\\) kitchen"):
        scenes.fetch(bad, sha256=None, home=tmp_path / "home", progress=False)
    assert _leftovers(tmp_path / "home") == []
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("photos/cat.jpg", _jpeg(0, False))
    with pytest.raises(DataError, match="found no 15-Scene layout"):
        scenes.fetch(other, sha256=None, home=tmp_path / "home", progress=False)


def test_a_file_that_is_not_a_jpeg_is_refused(tmp_path):
    bad = make_archive(tmp_path / "bad.zip", not_jpeg="15-scene/test/office/image_0007.jpg")
    with pytest.raises(DataError, match="test/office/image_0007.jpg is not a JPEG"):
        scenes.fetch(bad, sha256=None, home=tmp_path / "home", progress=False)


def test_the_original_flat_layout_is_split_100_per_class(tmp_path):
    flat = make_archive(tmp_path / "flat.zip", layout="flat", prefix="scene_categories/")
    root = scenes.fetch(flat, sha256=None, home=tmp_path / "home", progress=False)
    counts = scenes.count(root)
    assert counts["train"] == {c: 100 for c in scenes.CLASSES}
    assert counts["test"] == scenes.TEST_COUNTS
    # the first 100 files by name train
    assert (root / "train" / "coast" / "image_0100.jpg").is_file()
    assert (root / "test" / "coast" / "image_0101.jpg").is_file()


def test_fetch_from_a_folder_and_a_failed_refetch_keeps_the_old_copy(archive, tmp_path):
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(unpacked)
    root = scenes.fetch(unpacked, home=tmp_path / "home", progress=False)
    before = (root / "manifest.json").read_text()
    with pytest.raises(DataError):
        scenes.fetch(archive, sha256="f" * 64, home=tmp_path / "home", force=True, progress=False)
    assert (root / "manifest.json").read_text() == before
    assert _leftovers(tmp_path / "home") == ["15-scene"]


def test_download_checks_the_checksum_and_is_atomic(archive, tmp_path):
    url = archive.as_uri()
    with pytest.raises(DataError, match="sha256"):
        download(url, tmp_path / "a.zip", sha256="1" * 64, progress=False)
    assert _leftovers(tmp_path) == []
    with pytest.raises(DataError, match="could not download"):
        download((tmp_path / "missing.zip").as_uri(), tmp_path / "b.zip", progress=False)
    assert _leftovers(tmp_path) == []
    got = download(url, tmp_path / "a.zip", sha256=sha256sum(archive), progress=False)
    assert got.read_bytes() == archive.read_bytes()
    root = scenes.fetch(url=url, sha256=sha256sum(archive), home=tmp_path / "home", progress=False)
    assert scenes.count(root)["test"] == scenes.TEST_COUNTS


def test_load_decodes_grey_and_rgb_to_three_channels_and_caches(archive, tmp_path):
    root = scenes.fetch(archive, sha256=None, home=tmp_path, progress=False)
    data = scenes.load(root, "standard", size=16, progress=False)
    assert tuple(data.train.x.shape) == (1500, 3, 16, 16) and data.train.x.dtype.is_floating_point is False
    assert tuple(data.test.x.shape) == (2985, 3, 16, 16)
    assert data.kind == "15-Scene" and data.classes == scenes.CLASSES
    np.testing.assert_array_equal(np.bincount(data.test.y.numpy()), [scenes.TEST_COUNTS[c] for c in scenes.CLASSES])
    grey = data.train.x[0]                       # seed 1: stored greyscale
    assert bool((grey[0] == grey[1]).all() and (grey[1] == grey[2]).all())
    rgb = data.train.x[2]                        # seed 3: stored RGB
    assert not bool((rgb[0] == rgb[1]).all())
    assert (root / "cache" / "train-16.pt").is_file()
    swapped = scenes.load(root, "swapped", size=16, progress=False)
    assert len(swapped.train) == 2985 and len(swapped.test) == 1500
    assert swapped.train.paths == data.test.paths


def test_bad_arguments_are_explained(tmp_path):
    with pytest.raises(ValueError, match="split must be one of"):
        scenes.load(tmp_path, "random")
    with pytest.raises(DataError, match="not a fetched 15-Scene folder"):
        scenes.load(tmp_path, "standard")


def test_generated_stand_in_has_the_layout_and_says_what_it_is(tmp_path):
    data = scenes.open_scenes(size=32, home=tmp_path, progress=False)
    assert data.kind == "generated" and "generated dataset" in data.describe()
    assert len(data.train) == 20 * 15 and len(data.test) == 12 * 15
    with pytest.raises(DataError, match="coursekit data fetch 15-scene"):
        scenes.open_scenes(size=32, home=tmp_path, generated_ok=False)


@pytest.mark.skipif(not SHARED_ZIP.is_file(), reason="the real 15-Scene archive is not on this machine "
                    "(set COURSEKIT_15SCENE or put it in ../shared/data/)")
def test_real_dataset_fetch_duplicates_and_a_short_training_run(tmp_path):
    import torch

    from coursekit.models.scene_nets import SimpleNet
    from coursekit.training import TrainConfig, Trainer

    root = scenes.fetch(SHARED_ZIP, home=tmp_path, progress=False)      # checksum verified
    report = scenes.duplicate_report(root)
    assert report.startswith("18 groups of byte-identical images (36 files)")
    assert "[train/test, two classes]" in report                         # insidecity vs tallbuilding
    data = scenes.load(root, size=64, progress=False)
    torch.manual_seed(0)
    trainer = Trainer(SimpleNet(), data.train, data.test,
                      TrainConfig(epochs=8, lr=3e-3, optimizer="adamw", weight_decay=0.05,
                                  mean=(0.456,) * 3, std=(0.235,) * 3, progress=False, eval_every=100))
    history = trainer.fit()
    assert history.test_acc[-1] > 0.35, history.test_acc      # chance is 1/15 = 6.7%
