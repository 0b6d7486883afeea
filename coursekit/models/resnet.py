"""ResNet as in He et al. 2016 and torchvision: basic blocks (ResNet-18/34) and bottleneck
blocks (ResNet-50), with the same module names as torchvision, so torchvision's weights load
into these models and the parameter counts agree exactly.

A block is built as ``Block(in_channels, planes, stride)`` and has a class attribute
``expansion`` (its output has planes * expansion channels). When the shape changes (stride 2
or a different channel count) the shortcut is ``downsample``: a 1 x 1 conv with that stride
and a batch norm; otherwise the identity.
"""
from __future__ import annotations

from torch import nn


def _shortcut(in_channels, out_channels, stride):
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                         nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """3 x 3 conv (stride) - BN - ReLU - 3 x 3 conv - BN, plus the shortcut, then ReLU."""
    expansion = 1

    def __init__(self, in_channels, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, planes, stride)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1 x 1 conv (reduce to planes) - 3 x 3 conv (stride) - 1 x 1 conv (expand to 4 planes),
    each followed by BN (and ReLU but the last), plus the shortcut, then ReLU."""
    expansion = 4

    def __init__(self, in_channels, planes, stride=1):
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, out_channels, stride)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """7 x 7 conv stride 2 - BN - ReLU - 3 x 3 max pool stride 2, four stages of blocks
    (64, 128, 256, 512 planes; stride 2 at the start of stages 2-4), global average pool, fc."""

    def __init__(self, block, layers, num_classes=1000):
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"ResNet needs four stage depths, e.g. [2, 2, 2, 2]; got {layers}")
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        channels = 64
        for i, (planes, depth) in enumerate(zip((64, 128, 256, 512), layers), start=1):
            blocks = []
            for j in range(depth):
                blocks.append(block(channels, planes, 2 if (j == 0 and i > 1) else 1))
                channels = planes * block.expansion
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def resnet18(block=BasicBlock):
    return ResNet(block, [2, 2, 2, 2])


def resnet34(block=BasicBlock):
    return ResNet(block, [3, 4, 6, 3])


def resnet50(block=Bottleneck):
    return ResNet(block, [3, 4, 6, 3])
