"""Notebook 07's models, ready for notebook 08 to take apart.

* :class:`Normalised`: a classifier that takes images in [0, 1] (it normalises, and resizes to
  the size it was trained at, itself), so that a saliency map or a fooling perturbation is in
  pixel units and a grey patch is 0.5 whatever the network's statistics.
* :func:`scene_classifier`: 07's transfer model (EfficientNet-Lite0 with a 15-class head), from
  the ``transfer.safetensors`` that 07 saved when it is here, else trained the way 07 trains it
  (a linear probe on the frozen features; seconds on a CPU).
* :func:`first_filters`: the first conv layer's filters of 07's SimpleNet, from
  ``simple.safetensors``, else of coursekit's SimpleNet trained for a few epochs here.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import pretrained
from .weights import WeightsError, fit_weights, read_weights


class Normalised(nn.Module):
    """``net`` behind its input preparation: images (N, 3, H, W) in [0, 1] -> class scores (N, C).
    Inputs of another size than ``size`` are resized (bilinear) first."""

    def __init__(self, net: nn.Module, mean, std, size: int | None = None):
        super().__init__()
        self.net, self.size = net, size
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images (N, 3, H, W) in [0, 1], got shape {tuple(x.shape)}")
        if self.size is not None and tuple(x.shape[-2:]) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.net((x - self.mean) / self.std)


def scene_classifier(data, path: str | os.PathLike = "transfer.safetensors", steps: int = 300,
                     progress: bool = True) -> tuple[Normalised, str]:
    """07's transfer model, in eval mode, and a sentence saying where
    it came from. ``path``: the weights file 07 saved (EfficientNet-Lite0 with a Linear(1280, 15)
    head); when it is not there, the head is trained here on ``data.train`` at the images' own
    size (a linear probe: ``steps`` full-batch AdamW steps on the frozen features)."""
    from ..training import extract_features

    net = pretrained.efficientnet_lite0(num_classes=len(data.classes))
    path = Path(path)
    if path.is_file():
        state, info = read_weights(path)
        fit_weights(net, state, str(path))
        model = Normalised(net, info.mean, info.std, info.image_size)
        said = f"07's transfer model, loaded from {path} ({info.image_size}px)"
    else:
        torch.manual_seed(0)
        head, net.classifier = net.classifier, nn.Identity()
        feats = extract_features(net, data.train.x, pretrained.LITE0_MEAN, pretrained.LITE0_STD,
                                 progress=progress)
        net.classifier = head
        opt = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=1e-3)
        for _ in range(steps):
            loss = F.cross_entropy(head(feats), data.train.y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model = Normalised(net, pretrained.LITE0_MEAN, pretrained.LITE0_STD, None)
        said = (f"no {path} from notebook 07 here: trained 07's transfer model (a linear probe on "
                f"frozen EfficientNet-Lite0 features, {steps} steps, {data.size}px)")
    return model.eval(), said


def first_filters(data, path: str | os.PathLike = "simple.safetensors", epochs: int = 4,
                  progress: bool = True) -> tuple[torch.Tensor | None, str]:
    """The filters (F, 3, k, k) of the first conv layer of 07's SimpleNet and a sentence saying
    where they came from: ``path`` when it is there (read as data: the file's first 4-d tensor with
    3 input channels), else coursekit's SimpleNet trained ``epochs`` epochs on ``data`` at 64px.
    (None, why) when neither is possible (coursekit's SimpleNet is locked in this copy)."""
    from ..reference import LockedAnswer

    path = Path(path)
    if path.is_file():
        try:
            state, _ = read_weights(path)
        except WeightsError as exc:
            return None, str(exc)
        for name, tensor in state.items():
            if tensor.dim() == 4 and tensor.shape[1] == 3:
                return tensor.float(), f"your SimpleNet's {name}, from {path}"
        return None, f"{path} holds no conv layer with 3 input channels"
    from ..training import TrainConfig, Trainer
    from .scene_nets import SimpleNet

    try:
        torch.manual_seed(0)
        net = SimpleNet()
    except LockedAnswer:
        return None, f"no {path} here (run notebook 07 first to see your SimpleNet's filters)"
    Trainer(net, data.train, None, TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, optimizer="adamw",
                                               weight_decay=0.05, image_size=64, progress=progress)).fit()
    return net.features[0].weight.detach().clone(), \
        f"no {path} from notebook 07 here: coursekit's SimpleNet, trained {epochs} epochs at 64px"
