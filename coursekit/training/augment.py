"""Batch transforms on the device: uint8 images in, normalised float images out.

The dataset is decoded once into a uint8 tensor (on the GPU when there is one); each batch is
then cropped, flipped, colour-jittered and normalised there with a few tensor operations,
so no CPU worker decodes or augments anything during training. They are the tensor versions
of torchvision's ``RandomResizedCrop``, ``RandomHorizontalFlip``, ``ColorJitter`` and
``Normalize`` (every image gets its own random parameters).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class Augment:
    """Random-resized-crop scale range (fraction of the area), aspect ratio range, flip
    probability, and brightness / contrast / saturation jitter strengths."""
    scale: tuple[float, float] = (0.35, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: float = 0.5
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3


def to_float(x: torch.Tensor, mean, std, size: int | None = None) -> torch.Tensor:
    """(N, 3, S, S) uint8 -> (N, 3, size, size) float32, scaled to [0, 1] and normalised."""
    if x.dtype != torch.uint8:
        raise TypeError(f"expected a uint8 image batch (N, 3, H, W), got dtype {x.dtype}")
    out = x.float().div_(255)
    if size is not None and size != x.shape[-1]:
        out = F.interpolate(out, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return _normalise(out, mean, std)


def _normalise(img: torch.Tensor, mean, std) -> torch.Tensor:
    """(img - mean) / std per channel, for a float batch (N, C, H, W)."""
    mean = torch.as_tensor(mean, dtype=img.dtype, device=img.device).view(1, -1, 1, 1)
    std = torch.as_tensor(std, dtype=img.dtype, device=img.device).view(1, -1, 1, 1)
    return (img - mean) / std


def augment(x: torch.Tensor, mean, std, size: int | None = None, aug: Augment = Augment(),
            generator: torch.Generator | None = None) -> torch.Tensor:
    """A randomly augmented, normalised float batch (N, 3, size, size) from uint8 ``x``."""
    if x.dtype != torch.uint8 or x.dim() != 4:
        raise TypeError(f"expected a uint8 image batch (N, 3, H, W), got {x.dtype} {tuple(x.shape)}")
    n, dev = x.shape[0], x.device
    size = size or x.shape[-1]

    def rand(*shape):
        return torch.rand(*shape, device=dev, generator=generator)

    img = x.float().div_(255)
    # Random resized crop + flip as one affine resampling: a crop of relative width sx and
    # height sy centred at (cx, cy) in the [-1, 1] coordinates grid_sample uses.
    area = aug.scale[0] + (aug.scale[1] - aug.scale[0]) * rand(n)
    log_r = math.log(aug.ratio[0]) + (math.log(aug.ratio[1]) - math.log(aug.ratio[0])) * rand(n)
    ratio = torch.exp(log_r)
    sx = torch.sqrt(area * ratio).clamp(max=1.0)
    sy = torch.sqrt(area / ratio).clamp(max=1.0)
    cx = (1 - sx) * (2 * rand(n) - 1)
    cy = (1 - sy) * (2 * rand(n) - 1)
    flip = torch.where(rand(n) < aug.flip, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0] = sx * flip
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = sy
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, (n, 3, size, size), align_corners=False)
    img = F.grid_sample(img, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    # Colour jitter: brightness, contrast (towards the image's mean grey), saturation.
    def factor(strength):
        return (1 + strength * (2 * rand(n, 1, 1, 1) - 1))
    if aug.brightness:
        img = img * factor(aug.brightness)
    grey = (0.299 * img[:, 0:1] + 0.587 * img[:, 1:2] + 0.114 * img[:, 2:3])
    if aug.contrast:
        m = grey.mean(dim=(2, 3), keepdim=True)
        img = (img - m) * factor(aug.contrast) + m
    if aug.saturation:
        img = (img - grey) * factor(aug.saturation) + grey
    return _normalise(img.clamp_(0, 1), mean, std)
