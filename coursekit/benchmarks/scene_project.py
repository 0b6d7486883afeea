"""Notebook 07's three graded models, trained as the notebook trains them, and what they score.

    python -m coursekit.benchmarks.scene_project --from ../shared/data/15-scene.zip --out models/
    coursekit bench project                     # the fetched dataset, else the generated stand-in

For each model the project grades (simple: SimpleNet; regularised: SimpleNetFinal with
augmentation; transfer: a linear probe on frozen EfficientNet-Lite0 features) this trains the
instructor's answer (the classes of ``solutions/07_scenes.ipynb``) with the notebook's default settings (``--epochs``/``--final-epochs``/
``--probe-steps``/``--probe-size`` change them) on the training images less the validation
images the notebook holds out, and measures the accuracy on the held-out test split after every
epoch (the probe: every 25 steps). It prints one row per model: the accuracy at the end, the
course's threshold for it, and the training seconds after which the accuracy first reached the
threshold (what a student on this machine waits). ``--out DIR`` saves the three weights files
(as a student hands them in: ``simple.safetensors``, ...), for grading tests and demos.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

from ..checks.scenes import THRESHOLDS
from ..data import fifteen_scene as scenes
from ..models import pretrained
from ..models.weights import save_weights
from ..training import TrainConfig, Trainer, extract_features, pick_device
from .scene_training import STRONG

#: the notebook's settings (solutions/07_scenes.ipynb, its parameters and training cells)
VALIDATION, EPOCHS, FINAL_EPOCHS, PROBE_STEPS, PROBE_SIZE = 0.2, 8, 6, 300, 96
BASE = dict(batch_size=64, lr=3e-3, optimizer="adamw", weight_decay=0.05)


SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions" / "07_scenes.ipynb"


def instructor_answers(path: Path = SOLUTIONS) -> dict:
    """SimpleNet, SimpleNetFinal and make_transfer_model as the instructor's notebook defines them
    (its answer cells, run here)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    code = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}
    names = {"torch": torch, "nn": nn}
    for gid in ("ex3_answer", "ex5_answer", "ex6_answer"):
        exec(compile(code[gid], f"{path.name}:{gid}", "exec"), names)  # the instructor's own code
    return {k: names[k] for k in ("SimpleNet", "SimpleNetFinal", "make_transfer_model")}


def channel_stats(x: torch.Tensor) -> tuple[tuple, tuple]:
    """Per-channel mean and std of uint8 images (N, 3, H, W), scaled to [0, 1]."""
    v = x.double() / 255
    return tuple(v.mean(dim=(0, 2, 3)).tolist()), tuple(v.std(dim=(0, 2, 3), unbiased=False).tolist())


def _reached(accs: list[float], seconds: list[float], threshold: float) -> str:
    for acc, s in zip(accs, seconds):
        if acc == acc and acc >= threshold:
            return f"{s:.1f}"
    return "not reached"


def run(data, test, epochs=EPOCHS, final_epochs=FINAL_EPOCHS, probe_steps=PROBE_STEPS,
        probe_size=PROBE_SIZE, out: Path | None = None, progress: bool = True) -> list[dict]:
    """Train the three models on ``data.train``; accuracy on ``test`` (a Split) as they train."""
    answers = instructor_answers()
    SimpleNet, SimpleNetFinal = answers["SimpleNet"], answers["SimpleNetFinal"]
    mean, std = channel_stats(data.train.x)
    thresholds = THRESHOLDS[data.kind]
    rows = []
    for name, make, config in (
            ("simple", SimpleNet, TrainConfig(epochs=epochs, mean=mean, std=std, **BASE)),
            ("regularised", SimpleNetFinal, TrainConfig(epochs=final_epochs, augment=STRONG, label_smoothing=0.1,
                                                        mean=mean, std=std, **{**BASE, "lr": 4e-3}))):
        torch.manual_seed(0)
        config.progress = progress
        trainer = Trainer(make(), data.train, test, config)
        trainer.fit()
        h = trainer.history
        rows.append({"model": name, "accuracy": h.test_acc[-1], "threshold": thresholds[name],
                     "seconds": h.seconds[-1], "to_threshold": _reached(h.test_acc, h.seconds, thresholds[name]),
                     "device": trainer.device.type})
        if out is not None:
            save_weights(trainer.model.cpu(), out / f"{name}.safetensors", image_size=64, mean=mean, std=std)
    torch.manual_seed(0)
    lite0 = answers["make_transfer_model"](pretrained.efficientnet_lite0(), len(scenes.CLASSES))
    head, lite0.classifier = lite0.classifier, nn.Identity()
    start = time.perf_counter()
    train_feats = extract_features(lite0, data.train.x, pretrained.LITE0_MEAN, pretrained.LITE0_STD, probe_size,
                                   progress=progress)
    spent = time.perf_counter() - start
    test_feats = extract_features(lite0, test.x, pretrained.LITE0_MEAN, pretrained.LITE0_STD, probe_size,
                                  progress=progress)
    lite0.classifier = head
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=1e-3)
    accs, seconds = [], []
    for step in range(1, probe_steps + 1):
        t = time.perf_counter()
        loss = nn.functional.cross_entropy(head(train_feats), data.train.y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        spent += time.perf_counter() - t
        if step % 25 == 0 or step == probe_steps:
            with torch.no_grad():
                accs.append((head(test_feats).argmax(1) == test.y).float().mean().item())
            seconds.append(spent)
    rows.append({"model": "transfer", "accuracy": accs[-1], "threshold": thresholds["transfer"],
                 "seconds": spent, "to_threshold": _reached(accs, seconds, thresholds["transfer"]),
                 "device": pick_device().type})
    if out is not None:
        save_weights(lite0, out / "transfer.safetensors", image_size=probe_size,
                     mean=pretrained.LITE0_MEAN, std=pretrained.LITE0_STD)
    return rows


def table(rows: list[dict], data, test) -> str:
    lines = [f"{data.kind}, {data.split} split: trained on {len(data.train)} images ({VALIDATION:.0%} of each class held "
             f"out for validation), tested on the {len(test)} test images",
             f"{'model':<12} {'accuracy':>9} {'threshold':>10} {'train s':>8} {'s to threshold':>15}  device"]
    for r in rows:
        lines.append(f"{r['model']:<12} {r['accuracy']:>9.1%} {r['threshold']:>10.0%} {r['seconds']:>8.1f} "
                     f"{r['to_threshold']:>15}  {r['device']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="coursekit bench project", description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", help="a 15-Scene zip or folder (default: the fetched dataset)")
    parser.add_argument("--generated", action="store_true", help="use the generated stand-in")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--final-epochs", type=int, default=FINAL_EPOCHS)
    parser.add_argument("--probe-steps", type=int, default=PROBE_STEPS)
    parser.add_argument("--probe-size", type=int, default=PROBE_SIZE)
    parser.add_argument("--out", type=Path, help="save simple/regularised/transfer.safetensors here")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        if args.source:
            root = scenes.fetch(args.source)
        elif args.generated:
            root = scenes.generated()
        else:
            root = scenes.open_scenes(real=True, progress=False).root
        data = scenes.load(root, size=64, validation=VALIDATION)
        test = scenes.load(root, size=64).test
    except (scenes.DataError, ValueError) as exc:
        print(f"coursekit bench project: {exc}", file=sys.stderr)
        return 2
    rows = run(data, test, args.epochs, args.final_epochs, args.probe_steps, args.probe_size, args.out)
    print(table(rows, data, test))
    print(f"{time.perf_counter() - start:.0f} s in all, decoding included")
    return 0


if __name__ == "__main__":
    sys.exit(main())
