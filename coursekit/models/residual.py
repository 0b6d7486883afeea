"""A deep fully connected net with or without residual connections, for notebook 06's
experiment: does a shortcut make depth trainable?"""
from __future__ import annotations

import torch
from torch import nn


class DeepMLP(nn.Module):
    """inp: Linear(in, width) - ReLU; ``depth`` blocks Linear(width, width) - ReLU, each
    either h = relu(block(h)) (plain) or h = h + relu(block(h)) (residual); out: Linear(width,
    classes)."""

    def __init__(self, in_features, width, depth, classes, residual):
        super().__init__()
        self.residual = residual
        self.inp = nn.Linear(in_features, width)
        self.blocks = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.out = nn.Linear(width, classes)

    def forward(self, x):
        h = torch.relu(self.inp(x))
        for block in self.blocks:
            h = h + torch.relu(block(h)) if self.residual else torch.relu(block(h))
        return self.out(h)
