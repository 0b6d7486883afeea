"""ProbeNet: the small seeded CNN on which notebook 08's checkers try a student's saliency,
Grad-CAM, occlusion and fooling functions. Its layers have names (``conv1`` .. ``fc``) so that an
answer finds one with ``model.get_submodule(name)``; it maps images (N, 3, H, W) of any size in
[0, 1] to 5 class scores."""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

#: the names of ProbeNet's layers, in order
LAYERS = ("conv1", "relu1", "conv2", "relu2", "pool", "flatten", "fc")


class ProbeNet(nn.Sequential):
    """conv 3x3 (3->6), ReLU, conv 3x3 (6->8), ReLU, global average pool, linear 8->5; its
    weights are drawn from ``seed`` (the same on every machine)."""

    def __init__(self, seed: int = 0):
        super().__init__(OrderedDict([
            ("conv1", nn.Conv2d(3, 6, 3, padding=1)), ("relu1", nn.ReLU()),
            ("conv2", nn.Conv2d(6, 8, 3, padding=1)), ("relu2", nn.ReLU()),
            ("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(8, 5))]))
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * (0.6 if p.dim() > 1 else 0.2))
        self.eval()
