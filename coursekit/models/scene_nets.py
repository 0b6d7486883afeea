"""The 15-scene project's networks, from two conv layers to a residual net with batch norm.

All take images (N, 3, H, W) (normalised floats) and return class scores (N, num_classes).
"""
from __future__ import annotations

from torch import nn


class SimpleNet(nn.Module):
    """Two conv layers and two fully connected ones, designed for 64 x 64 inputs.

    (N, 3, 64, 64) -conv5-> (N, 16, 60, 60) -pool3-> (N, 16, 20, 20) -conv5-> (N, 32, 16, 16)
    -pool3-> (N, 32, 5, 5) -> 800 -> 100 -> num_classes. Other input sizes are pooled to 5 x 5.
    """

    def __init__(self, num_classes: int = 15, dropout: float = 0.0):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 5), nn.ReLU(), nn.MaxPool2d(3),
            nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(3),
            nn.AdaptiveMaxPool2d(5),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(32 * 5 * 5, 100), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(100, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class SimpleNetDropout(SimpleNet):
    """SimpleNet with dropout before each fully connected layer (train it with augmentation)."""

    def __init__(self, num_classes: int = 15, dropout: float = 0.5):
        super().__init__(num_classes, dropout)


def conv_bn(cin: int, cout: int, pool: bool = False) -> nn.Sequential:
    """3x3 conv -> batch norm -> ReLU (-> 2x2 max pool): (N, cin, H, W) -> (N, cout, H, W)."""
    layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class Residual(nn.Module):
    """x + two conv_bn layers of x (same shape in and out)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(channels, channels), conv_bn(channels, channels))

    def forward(self, x):
        return x + self.body(x)


class SimpleNetFinal(nn.Module):
    """The best from-scratch net: conv-BN-ReLU stages with max pooling and residual blocks,
    global average pooling, dropout, one linear layer.

    (N, 3, S, S) -> stem (w, S) -> (2w, S/2) + residual -> (4w, S/4) -> (8w, S/8) + residual
    -> (8w, S/16) -> global average -> num_classes. Any S divisible by 16 (64 to 224).
    """

    def __init__(self, num_classes: int = 15, width: int = 32, dropout: float = 0.2):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            conv_bn(3, w),
            conv_bn(w, 2 * w, pool=True), Residual(2 * w),
            conv_bn(2 * w, 4 * w, pool=True),
            conv_bn(4 * w, 8 * w, pool=True), Residual(8 * w),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                        nn.Linear(8 * w, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))
