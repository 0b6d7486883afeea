"""The 15-scene benchmark: train each project model on the real dataset and print one row each.

    python -m coursekit.benchmarks.scene_training                      # the fetched dataset (data/15-scene)
    python -m coursekit.benchmarks.scene_training --from ../shared/data/15-scene.zip
    coursekit bench scenes --models simple,final --split swapped

Columns: model, split, image size (stored -> seen by the model), epochs, test accuracy, training
wall seconds (the optimisation steps only: decoding is done once before and reported on its
own; evaluation is not counted), training images per second, the seconds of one untimed
warm-up pass before training (loading the GPU kernels: about 10 s the first time a process
runs EfficientNet on a GPU), device. The recipes differ on a
GPU and on a CPU (fewer epochs, smaller images); each row says which device it ran on. The
whole run's wall time, decoding and evaluation included, is printed at the end.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace

import torch

from ..data import fifteen_scene as scenes
from ..training import Augment, TrainConfig, Trainer, pick_device

MEAN, STD = (0.456, 0.456, 0.456), (0.235, 0.235, 0.235)   # 15-Scene training images (grey)


@dataclass
class Recipe:
    model: str
    stored: int               # decoded size (px)
    config: TrainConfig


def _model(name: str):
    from ..models import pretrained
    from ..models.scene_nets import SimpleNet, SimpleNetDropout, SimpleNetFinal

    if name == "simple":
        return SimpleNet()
    if name == "dropout":
        return SimpleNetDropout()
    if name == "final":
        return SimpleNetFinal()
    if name == "lite0":
        return pretrained.efficientnet_lite0(num_classes=len(scenes.CLASSES))
    if name == "resnet18":
        return pretrained.resnet18(num_classes=len(scenes.CLASSES), progress=False)
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")


MODELS = ("simple", "dropout", "final", "lite0", "resnet18")
LIGHT = Augment(scale=(0.6, 1.0), brightness=0.2, contrast=0.2, saturation=0.0)
STRONG = Augment(scale=(0.25, 1.0), brightness=0.3, contrast=0.3, saturation=0.0)


def recipes(device: str) -> dict[str, Recipe]:
    """The training recipe of each model on a GPU ('cuda') or anywhere else (CPU)."""
    gpu = device == "cuda"
    scratch = dict(mean=MEAN, std=STD, optimizer="adamw", weight_decay=0.05)
    imagenet_grey = dict(optimizer="adamw", weight_decay=0.05, label_smoothing=0.1, tta_flip=True)
    from ..models.pretrained import IMAGENET_MEAN, IMAGENET_STD, LITE0_MEAN, LITE0_STD
    return {
        "simple": Recipe("simple", 64, TrainConfig(
            epochs=40 if gpu else 30, batch_size=64, lr=3e-3, augment=LIGHT, **scratch)),
        "dropout": Recipe("dropout", 64, TrainConfig(
            epochs=60 if gpu else 30, batch_size=64, lr=3e-3, augment=LIGHT, **scratch)),
        "final": Recipe("final", 128 if gpu else 64, TrainConfig(
            epochs=70 if gpu else 15, batch_size=64, lr=4e-3, augment=STRONG,
            label_smoothing=0.1, tta_flip=True, **scratch)),
        "lite0": Recipe("lite0", 160 if gpu else 96, TrainConfig(
            epochs=15 if gpu else 3, batch_size=64, lr=1e-3, augment=LIGHT,
            image_size=224 if gpu else 128, mean=LITE0_MEAN, std=LITE0_STD, **imagenet_grey)),
        "resnet18": Recipe("resnet18", 160 if gpu else 96, TrainConfig(
            epochs=10 if gpu else 3, batch_size=64, lr=1e-3, augment=LIGHT,
            image_size=224 if gpu else 128, mean=IMAGENET_MEAN, std=IMAGENET_STD, **imagenet_grey)),
    }


def run(data_root, models=("simple", "dropout", "final", "lite0"), split="standard", device=None,
        epochs: int | None = None, compile: bool = False, seed: int = 0, progress: bool = True,
        out=print) -> list[dict]:
    """Train each model in ``models`` on the dataset at ``data_root``; returns the rows."""
    dev = pick_device(device)
    book = recipes(dev.type)
    rows = []
    loaded = {}
    out(f"{'model':10s} {'split':9s} {'size':>10s} {'epochs':>6s} {'test acc':>8s} "
        f"{'train s':>8s} {'img/s':>8s} {'warm-up':>8s}  device")
    for name in models:
        if name not in book:
            raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
        recipe = book[name]
        if name == "resnet18":
            from ..models.pretrained import resnet18_weights_cached
            if not resnet18_weights_cached():
                out(f"{name:10s} skipped: torchvision's ResNet-18 weights are not in torch's "
                    f"cache and cannot be downloaded here")
                continue
        if recipe.stored not in loaded:
            start = time.perf_counter()
            loaded[recipe.stored] = scenes.load(data_root, split, recipe.stored, progress=progress)
            out(f"(decoded {recipe.stored}px images in {time.perf_counter() - start:.1f} s)")
        data = loaded[recipe.stored]
        config = replace(recipe.config, device=str(dev), compile=compile, seed=seed,
                         progress=progress, eval_every=10 ** 6)
        if epochs is not None:
            config = replace(config, epochs=epochs)
        torch.manual_seed(seed)
        from ..models.pretrained import WeightsUnavailable
        try:
            model = _model(name)
        except WeightsUnavailable as exc:
            out(f"{name:10s} skipped: {exc}")
            continue
        trainer = Trainer(model, data.train, data.test, config)
        warm = trainer.warm_up()
        history = trainer.fit()
        seen = config.image_size or recipe.stored
        row = {"model": name, "split": split, "stored": recipe.stored, "input": seen,
               "epochs": config.epochs, "test_acc": history.test_acc[-1],
               "train_s": history.seconds[-1], "images_per_s": history.images_per_s, "warm_up_s": warm,
               "device": torch.cuda.get_device_name() if dev.type == "cuda" else dev.type}
        rows.append(row)
        out(f"{name:10s} {split:9s} {f'{recipe.stored}->{seen}':>10s} {config.epochs:6d} "
            f"{row['test_acc']:8.1%} {row['train_s']:8.1f} {row['images_per_s']:8.0f} {warm:8.1f}  {row['device']}")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.benchmarks.scene_training",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", default=None,
                        help="fetch the dataset from this archive or folder first")
    parser.add_argument("--data", default=None, help="a fetched dataset folder (default: data/15-scene)")
    parser.add_argument("--models", default="simple,dropout,final,lite0,resnet18",
                        help=f"comma-separated, from {', '.join(MODELS)}")
    parser.add_argument("--split", default="standard", choices=scenes.SPLITS)
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the fastest)")
    parser.add_argument("--epochs", type=int, default=None, help="override every recipe's epochs")
    parser.add_argument("--compile", action="store_true", help="torch.compile the models")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        if args.source:
            root = scenes.fetch(args.source, sha256=None if not args.source.endswith(".zip") else scenes.ARCHIVE_SHA256,
                                progress=not args.no_progress)
        elif args.data:
            root = args.data
        else:
            root = scenes.data_home() / scenes.NAME
        rows = run(root, [m.strip() for m in args.models.split(",") if m.strip()], args.split,
                   args.device, args.epochs, args.compile, progress=not args.no_progress)
    except (scenes.DataError, ValueError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    print(f"whole bench: {time.perf_counter() - start:.1f} s wall (decoding and evaluation included)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
