"""How closely coursekit's Grad-CAM reference agrees with captum's ``LayerGradCam``.

``python -m coursekit.benchmarks.grad_cam [--images 4] [--size 128]`` computes both on the same
model and layer, on random images and classes: the checkers' ProbeNet (layer ``conv2``) and the
ImageNet-pretrained EfficientNet-Lite0 behind notebook 08's model (``net.blocks.4``,
``net.blocks.5``, ``net.bn2``), and prints per pair the largest absolute difference, that
difference relative to the map's largest value, and each one's time. The tests require a relative
difference of at most 1e-5 (tests/test_checks_visualisation.py).
"""
from __future__ import annotations

import argparse
import time


def compare(model, layer: str, x, target) -> tuple[float, float, float, float]:
    """(largest |ours - captum's|, that / captum's largest value, our seconds, captum's seconds)."""
    from ..checks.visualisation import captum_grad_cam
    from ..reference import _original

    start = time.perf_counter()
    ours = _original("visualisation.grad_cam")(model, layer, x, target)
    mid = time.perf_counter()
    theirs = captum_grad_cam(model, layer, x, target)
    end = time.perf_counter()
    diff = float((ours - theirs).abs().max())
    return diff, diff / max(float(theirs.abs().max()), 1e-30), mid - start, end - mid


def main(argv=None) -> int:
    import torch

    from ..models import pretrained
    from ..models.explained import Normalised
    from ..models.probe_net import ProbeNet

    parser = argparse.ArgumentParser(prog="python -m coursekit.benchmarks.grad_cam", description=__doc__)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args(argv)
    g = torch.Generator().manual_seed(0)
    rows = []
    probe = ProbeNet(0)
    x = torch.rand(args.images, 3, 24, 32, generator=g)
    rows.append(("ProbeNet(0)", "conv2", *compare(probe, "conv2", x, torch.randint(0, 5, (args.images,), generator=g))))
    lite0 = Normalised(pretrained.efficientnet_lite0(), pretrained.LITE0_MEAN, pretrained.LITE0_STD).eval()
    x = torch.rand(args.images, 3, args.size, args.size, generator=g)
    target = torch.randint(0, 1000, (args.images,), generator=g)
    for layer in ("net.blocks.4", "net.blocks.5", "net.bn2"):
        rows.append((f"EfficientNet-Lite0 {args.size}px", layer, *compare(lite0, layer, x, target)))
    print(f"{'model':24s} {'layer':13s} {'max |diff|':>11s} {'relative':>10s} {'ours s':>7s} {'captum s':>8s}")
    for model, layer, diff, rel, ours, theirs in rows:
        print(f"{model:24s} {layer:13s} {diff:11.3g} {rel:10.3g} {ours:7.2f} {theirs:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
