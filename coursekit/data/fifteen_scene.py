"""The 15-Scene dataset (Lazebnik, Schmid & Ponce, CVPR 2006): fetch, validate, load.

4,485 JPEGs of 15 scene categories, about 200-300 px on a side, most of them greyscale. The
standard protocol trains on 100 images per class (1,500) and tests on the other 2,985; some
courses swap the two. After :func:`fetch` the dataset lives in ``<data home>/15-scene/``::

    15-scene/train/<class>/*.jpg     100 per class
    15-scene/test/<class>/*.jpg      TEST_COUNTS[class] per class
    15-scene/manifest.json           counts, sha256 of every file, duplicate groups

``<data home>`` is ``$COURSEKIT_DATA`` when set, else the project's ``data/`` folder. Where
the dataset has not been fetched, :func:`generated` writes a small synthetic dataset with the
same layout, so that everything downstream runs anywhere (and says which one it used).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .download import DataError, download, extract_zip, replace_dir, sha256sum, verify

NAME = "15-scene"
CLASSES = ("bedroom", "coast", "forest", "highway", "industrial", "insidecity", "kitchen",
           "livingroom", "mountain", "office", "opencountry", "store", "street", "suburb",
           "tallbuilding")
TRAIN_PER_CLASS = 100
TEST_COUNTS = {"bedroom": 116, "coast": 260, "forest": 228, "highway": 160, "industrial": 211,
               "insidecity": 208, "kitchen": 110, "livingroom": 189, "mountain": 274,
               "office": 115, "opencountry": 310, "store": 215, "street": 192, "suburb": 141,
               "tallbuilding": 256}
#: sha256 of the course's archive (15-scene/{train,test}/<class>/*.jpg, the standard split).
ARCHIVE_SHA256 = "fa5ed7f35ffc942df26c8c07b6defeecd1922b15ad9b9735fac86941b797b10b"
#: Where `coursekit data fetch 15-scene` downloads from; an instructor overrides it with
#: ``--url`` or ``$COURSEKIT_15SCENE_URL`` (and the checksum with ``--sha256``).
DEFAULT_URL = "https://figshare.com/ndownloader/files/12855005"
SPLITS = ("standard", "swapped")
IMAGE_SUFFIXES = (".jpg", ".jpeg")
RETRY = "Nothing was left half-made; retry with `coursekit data fetch 15-scene`."


def data_home() -> Path:
    """Where datasets are cached: ``$COURSEKIT_DATA``, else the project's ``data/`` folder."""
    env = os.environ.get("COURSEKIT_DATA")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "data"


def canonical_class(folder: str) -> str | None:
    """The class a folder name stands for, or None: 'MITinsidecity', 'Inside City' and
    'insidecity' all name 'insidecity' (the original release prefixes MIT/CAL/PAR)."""
    name = re.sub(r"[^a-z]", "", folder.lower())
    if name in CLASSES:
        return name
    for prefix in ("mit", "cal", "par"):
        if name.startswith(prefix) and name[len(prefix):] in CLASSES:
            return name[len(prefix):]
    return None


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def _class_folders(folder: Path) -> dict[str, Path]:
    found = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        cls = canonical_class(sub.name)
        if cls is not None:
            found[cls] = sub
    return found


def _find_layout(top: Path) -> tuple[str, Path]:
    """('split', D) where D/train and D/test hold the class folders, or ('flat', D) where D
    holds the 15 class folders; searched breadth-first below ``top``."""
    queue = [top]
    while queue:
        folder = queue.pop(0)
        subs = {p.name.lower(): p for p in folder.iterdir() if p.is_dir()}
        if "train" in subs and "test" in subs:
            return "split", folder
        if len(_class_folders(folder)) == len(CLASSES):
            return "flat", folder
        queue.extend(sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")))
    listing = sorted(p.name for p in top.iterdir())[:20]
    raise DataError(f"found no 15-Scene layout in the archive: expected <root>/train/<class>/ and "
                    f"<root>/test/<class>/, or the 15 class folders ({', '.join(CLASSES)}); the "
                    f"top level holds {listing}.")


def _normalise(top: Path, out: Path) -> None:
    """Move the images found below ``top`` into ``out/{train,test}/<class>/``."""
    kind, folder = _find_layout(top)
    if kind == "split":
        subs = {p.name.lower(): p for p in folder.iterdir() if p.is_dir()}
        for part in ("train", "test"):
            classes = _class_folders(subs[part])
            missing = [c for c in CLASSES if c not in classes]
            if missing:
                raise DataError(f"{part}/ has no folder for the class(es) {', '.join(missing)} "
                                f"(it holds {sorted(p.name for p in subs[part].iterdir())}).")
            for cls, src in classes.items():
                _move(_images(src), out / part / cls)
    else:
        # The original release: one folder per class. The standard protocol trains on 100
        # images per class; we take the first 100 by file name, so the split is reproducible.
        for cls, src in _class_folders(folder).items():
            images = _images(src)
            _move(images[:TRAIN_PER_CLASS], out / "train" / cls)
            _move(images[TRAIN_PER_CLASS:], out / "test" / cls)


def _move(images: list[Path], dest: Path) -> None:
    dest.mkdir(parents=True)
    for img in images:
        os.replace(img, dest / img.name)


def count(root: Path) -> dict[str, dict[str, int]]:
    """{'train': {class: n}, 'test': {class: n}} for a dataset folder."""
    return {part: {cls: len(_images(root / part / cls)) if (root / part / cls).is_dir() else 0
                   for cls in CLASSES} for part in ("train", "test")}


def validate(root: Path, expected: dict[str, dict[str, int]] | None = None) -> dict[str, dict[str, int]]:
    """Check the per-class counts (default: the real dataset's) and that every file is a JPEG.

    Raises DataError naming each class whose count is off. Returns the counts.
    """
    counts = count(root)
    if expected is None:
        expected = {"train": {c: TRAIN_PER_CLASS for c in CLASSES}, "test": dict(TEST_COUNTS)}
    wrong = [f"{part}/{cls}: {counts[part][cls]} images, expected {expected[part][cls]}"
             for part in ("train", "test") for cls in CLASSES
             if counts[part][cls] != expected[part][cls]]
    if wrong:
        raise DataError("the images do not match the 15-Scene dataset's per-class counts:\n  "
                        + "\n  ".join(wrong[:20]) + f"\n{RETRY}")
    for part in ("train", "test"):
        for cls in CLASSES:
            for img in _images(root / part / cls):
                with open(img, "rb") as f:
                    if f.read(2) != b"\xff\xd8":
                        raise DataError(f"{img.relative_to(root)} is not a JPEG file (it does not "
                                        f"start with the JPEG marker FF D8). {RETRY}")
    return counts


def manifest(root: Path) -> dict:
    """{'counts', 'sha256': {relative path: hash}, 'duplicates': [[paths...], ...]}."""
    hashes = {}
    for part in ("train", "test"):
        for cls in CLASSES:
            for img in _images(root / part / cls):
                hashes[img.relative_to(root).as_posix()] = sha256sum(img)
    groups = defaultdict(list)
    for path, digest in hashes.items():
        groups[digest].append(path)
    duplicates = sorted(sorted(g) for g in groups.values() if len(g) > 1)
    return {"counts": count(root), "sha256": hashes, "duplicates": duplicates}


def _write_manifest(root: Path, expected=None) -> dict:
    validate(root, expected)
    info = manifest(root)
    (root / "manifest.json").write_text(json.dumps(info, indent=1))
    return info


def fetch(source: str | os.PathLike | None = None, *, url: str | None = None,
          sha256: str | None = ARCHIVE_SHA256, home: str | os.PathLike | None = None,
          force: bool = False, progress: bool = True) -> Path:
    """Put the 15-Scene dataset into ``<home>/15-scene`` and return that folder.

    ``source`` is a local zip archive or an unpacked folder (e.g. ``../shared/data/15-scene.zip``);
    without it the archive is downloaded from ``url`` (default ``$COURSEKIT_15SCENE_URL`` or
    :data:`DEFAULT_URL`). Archives are checked against ``sha256`` (None or '' skips the check,
    for an archive of another origin: its layout and counts are still validated). Everything
    is unpacked and validated in a temporary folder and renamed into place at the end: a
    failure at any point leaves no partial dataset behind.
    """
    home = Path(home) if home is not None else data_home()
    dest = home / NAME
    if not force and (dest / "manifest.json").is_file():
        return dest
    home.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{NAME}.", dir=home))
    try:
        if source is None:
            url = url or os.environ.get("COURSEKIT_15SCENE_URL") or DEFAULT_URL
            archive = download(url, work / "download.zip", sha256, progress=progress, retry=RETRY)
            source = archive
        source = Path(source).expanduser()
        raw = work / "raw"
        raw.mkdir()
        if source.is_dir():
            shutil.copytree(source, raw / source.name)
        elif source.is_file():
            verify(source, sha256, f"Pass --sha256 '' to accept an archive of another origin. {RETRY}")
            extract_zip(source, raw, RETRY)
        else:
            raise DataError(f"{source} does not exist: pass a zip archive or an unpacked folder.")
        out = work / NAME
        out.mkdir()
        _normalise(raw, out)
        _write_manifest(out)
        replace_dir(out, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def duplicate_report(root: Path) -> str:
    """A human-readable account of byte-identical files, noting those that cross the
    train/test split (test images the model has effectively seen) or two classes."""
    info = json.loads((Path(root) / "manifest.json").read_text())
    groups = info["duplicates"]
    cross_split = [g for g in groups if len({p.split("/")[0] for p in g}) > 1]
    cross_class = [g for g in groups if len({p.split("/")[1] for p in g}) > 1]
    lines = [f"{len(groups)} groups of byte-identical images "
             f"({sum(len(g) for g in groups)} files); {len(cross_split)} cross the train/test "
             f"split, {len(cross_class)} cross two classes"]
    for g in groups:
        notes = []
        if g in cross_split:
            notes.append("train/test")
        if g in cross_class:
            notes.append("two classes")
        lines.append(f"  {' = '.join(g)}" + (f"   [{', '.join(notes)}]" if notes else ""))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# A generated stand-in with the same layout


def _pattern(cls: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One (size, size, 3) uint8 image of class ``cls``: one of 5 textures (horizontal or
    vertical stripes, a grid, a diagonal crosshatch, spots) times one of 3 vertical light
    gradients (bright sky above, bright ground below, even), with a random frequency, phase,
    tint and noise.

    Like a scene's class, these survive what the project's augmentations do: a mirror image
    has the same texture and the same gradient, and a zoomed-in crop only changes the
    frequency, which varies within a class anyway.
    """
    texture, light = cls % 5, cls // 5
    yy, xx = np.mgrid[0:size, 0:size] / size
    freq = rng.uniform(3.0, 7.0)
    phase = rng.uniform(0, 2 * np.pi, size=2)
    across, down = (np.sin(2 * np.pi * freq * xx + phase[0]), np.sin(2 * np.pi * freq * yy + phase[1]))
    diag = (np.sin(2 * np.pi * freq * (xx + yy) / np.sqrt(2) + phase[0])
            * np.sin(2 * np.pi * freq * (xx - yy) / np.sqrt(2) + phase[1]))
    spots = np.maximum(across * down, 0) ** 2 * 2 - 0.5
    wave = (down, across, np.maximum(across, down), diag, spots)[texture]
    slope = (0.6, -0.6, 0.0)[light] * (1 + rng.normal(0, 0.1))
    base = 0.55 + slope * (0.5 - yy) + 0.2 * wave
    tint = rng.uniform(0.7, 1.0, size=3)
    img = base[..., None] * tint + rng.normal(0, 0.08, size=(size, size, 3))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def generated(home: str | os.PathLike | None = None, train_per_class: int = 20,
              test_per_class: int = 12, size: int = 72, seed: int = 0) -> Path:
    """Write (once) a small synthetic dataset in the 15-Scene layout and return its folder.

    Same class names and folders as the real one, so every loader and notebook cell runs on
    it; every third image is stored greyscale, as most real 15-Scene images are.
    """
    from PIL import Image

    home = Path(home) if home is not None else data_home()
    dest = home / f"{NAME}-generated-v2-{train_per_class}-{test_per_class}-{size}-{seed}"
    if (dest / "manifest.json").is_file():
        return dest
    home.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=home))
    try:
        rng = np.random.default_rng(seed)
        for part, n in (("train", train_per_class), ("test", test_per_class)):
            for k, cls in enumerate(CLASSES):
                folder = work / part / cls
                folder.mkdir(parents=True)
                for i in range(n):
                    img = Image.fromarray(_pattern(k, size, rng))
                    if i % 3 == 0:
                        img = img.convert("L")
                    img.save(folder / f"image_{i + 1:04d}.jpg", quality=90)
        expected = {"train": {c: train_per_class for c in CLASSES},
                    "test": {c: test_per_class for c in CLASSES}}
        _write_manifest(work, expected)
        replace_dir(work, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


# ---------------------------------------------------------------------------------------------
# Decoding into uint8 tensors


def decode(path: Path, size: int) -> np.ndarray:
    """One image as (3, size, size) uint8: greyscale and CMYK files become 3-channel RGB, the
    shorter side is resized to ``size`` and the centre cropped square."""
    from PIL import Image

    with Image.open(path) as img:
        img.draft("RGB", (size, size))   # JPEG: let the decoder skip detail we throw away
        img = img.convert("RGB")
        w, h = img.size
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        img = img.resize((nw, nh), Image.BILINEAR, reducing_gap=3.0)
        left, top = (nw - size) // 2, (nh - size) // 2
        img = img.crop((left, top, left + size, top + size))
        return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy()


@dataclass
class Split:
    """Images of one part of a split: x (N, 3, S, S) uint8, y (N,) int64, their files."""
    x: "torch.Tensor"  # noqa: F821
    y: "torch.Tensor"  # noqa: F821
    paths: list[str] = field(repr=False)

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device) -> "Split":
        return Split(self.x.to(device), self.y.to(device), self.paths)


@dataclass
class Scenes:
    """A loaded dataset: ``train`` and ``test`` :class:`Split`\\ s, the class names, which
    dataset it is (``kind``: '15-Scene' or 'generated'), its split and its folder. Opened with
    ``validation=f``, ``val`` holds that fraction of each class's training images, ``train`` the
    others, and ``test`` is None: the test images are held out (the grader's)."""
    train: Split
    test: Split | None
    classes: tuple[str, ...]
    kind: str
    split: str
    size: int
    root: Path
    val: Split | None = None

    def describe(self) -> str:
        parts = [f"{len(self.train)} training"]
        if self.val is not None:
            parts.append(f"{len(self.val)} validation")
        held = " (the test images are held out)" if self.test is None else ""
        if self.test is not None:
            parts.append(f"{len(self.test)} test")
        return (f"{self.kind} dataset at {self.root}: {' and '.join(parts)} images ({self.split} "
                f"split){held}, {len(self.classes)} classes, decoded to {self.size}x{self.size}")


def hold_out(split: Split, fraction: float) -> tuple[Split, Split]:
    """(the rest, the last ``fraction`` of each class's images) of ``split``: a validation set
    carved from the training images, the same every time (at least one image per class)."""
    import torch

    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f"validation should be a fraction of each class's training images, between 0 "
                         f"and 1 (e.g. 0.2), got {fraction!r}")
    val = torch.zeros(len(split.y), dtype=torch.bool)
    for k in split.y.unique().tolist():
        index = (split.y == k).nonzero().flatten()
        if len(index) < 2:
            raise ValueError(f"class {k} has {len(index)} training image(s): too few to hold some out")
        val[index[-min(len(index) - 1, max(1, round(len(index) * fraction))):]] = True
    pick = lambda mask: Split(split.x[mask], split.y[mask],  # noqa: E731
                              [p for p, m in zip(split.paths, mask.tolist()) if m])
    return pick(~val), pick(val)


def _load_part(root: Path, part: str, size: int, progress: bool) -> Split:
    import torch
    from ..progress import bar

    cache = root / "cache" / f"{part}-{size}.pt"
    if cache.is_file():
        saved = torch.load(cache, weights_only=True)
        return Split(saved["x"], saved["y"], saved["paths"])
    files, labels = [], []
    for k, cls in enumerate(CLASSES):
        for img in _images(root / part / cls):
            files.append(img)
            labels.append(k)
    if not files:
        raise DataError(f"{root / part} holds no images: is {root} a 15-Scene folder "
                        f"(made by `coursekit data fetch 15-scene`)?")
    x = np.empty((len(files), 3, size, size), dtype=np.uint8)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        jobs = pool.map(lambda p: decode(p, size), files)
        for i, arr in enumerate(bar(jobs, total=len(files), desc=f"decoding {part} ({size}px)",
                                    progress=progress, leave=False)):
            x[i] = arr
    split = Split(torch.from_numpy(x), torch.tensor(labels, dtype=torch.int64),
                  [p.relative_to(root).as_posix() for p in files])
    cache.parent.mkdir(exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    torch.save({"x": split.x, "y": split.y, "paths": split.paths}, tmp)
    os.replace(tmp, cache)
    return split


def load(root: str | os.PathLike, split: str = "standard", size: int = 64, kind: str | None = None,
         progress: bool = True, validation: float = 0.0) -> Scenes:
    """Decode a dataset folder once into uint8 tensors (cached in ``<root>/cache/``).

    ``split='standard'`` trains on train/ and tests on test/; ``'swapped'`` the other way round.
    ``validation=f`` holds out that fraction of each class's training images as ``val`` and
    leaves the test images alone (``test`` is None).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an int >= 8 (pixels), got {size!r}")
    root = Path(root)
    if not (root / "manifest.json").is_file():
        raise DataError(f"{root} is not a fetched 15-Scene folder (no manifest.json). Run "
                        f"`coursekit data fetch 15-scene` (or `--from ARCHIVE`).")
    train_part = "test" if split == "swapped" else "train"
    train = _load_part(root, train_part, size, progress)
    if kind is None:
        kind = "generated" if root.name.startswith(f"{NAME}-generated") else "15-Scene"
    if validation:
        train, val = hold_out(train, validation)
        return Scenes(train, None, CLASSES, kind, split, size, root, val)
    test = _load_part(root, "train" if split == "swapped" else "test", size, progress)
    return Scenes(train, test, CLASSES, kind, split, size, root)


def open_scenes(size: int = 64, split: str = "standard", home: str | os.PathLike | None = None,
                generated_ok: bool = True, real: bool = True, progress: bool = True,
                validation: float = 0.0) -> Scenes:
    """The real dataset when it has been fetched (or ``$COURSEKIT_15SCENE`` names an archive or
    folder to fetch from), else the generated stand-in. ``Scenes.kind`` says which.
    ``real=False`` always takes the generated one (the grader does: quick and the same for all).
    ``validation=f``: that fraction of each class's training images becomes ``val``; the test split is not
    loaded (notebook 07: its models are graded on the test images)."""
    home = Path(home) if home is not None else data_home()
    if real:
        folder = home / NAME
        source = os.environ.get("COURSEKIT_15SCENE")
        if not (folder / "manifest.json").is_file() and source:
            fetch(source, home=home, progress=progress)
        if (folder / "manifest.json").is_file():
            return load(folder, split, size, progress=progress, validation=validation)
        if not generated_ok:
            raise DataError(f"the 15-Scene dataset is not in {folder}: run `coursekit data fetch "
                            f"15-scene` (or set COURSEKIT_15SCENE to an archive).")
    return load(generated(home), split, size, progress=progress, validation=validation)
