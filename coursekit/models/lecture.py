"""The lecture's architectures as PyTorch models: AlexNet (227 x 227 input) and VGG16 built
from their layer lists, and GoogLeNet's inception module, naive and with 1 x 1 bottlenecks.

A layer list is a list of tuples (name, kind, *arguments), first layer first:
``(name, "conv", filters, kernel, stride, pad)``, ``(name, "pool", kernel, stride)`` (max
pooling), ``(name, "norm")`` (local response normalisation, no parameters) and
``(name, "fc", outputs)``. Notebook 06 computes the same table by formula from these lists.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

ALEXNET_LAYERS = [
    ("conv1", "conv", 96, 11, 4, 0), ("pool1", "pool", 3, 2), ("norm1", "norm"),
    ("conv2", "conv", 256, 5, 1, 2), ("pool2", "pool", 3, 2), ("norm2", "norm"),
    ("conv3", "conv", 384, 3, 1, 1), ("conv4", "conv", 384, 3, 1, 1), ("conv5", "conv", 256, 3, 1, 1),
    ("pool3", "pool", 3, 2),
    ("fc6", "fc", 4096), ("fc7", "fc", 4096), ("fc8", "fc", 1000),
]
ALEXNET_INPUT = (3, 227, 227)


def _vgg16_layers():
    layers, block = [], 1
    for filters, convs in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        layers += [(f"conv{block}_{i}", "conv", filters, 3, 1, 1) for i in range(1, convs + 1)]
        layers.append((f"pool{block}", "pool", 2, 2))
        block += 1
    return layers + [("fc6", "fc", 4096), ("fc7", "fc", 4096), ("fc8", "fc", 1000)]


VGG16_LAYERS = _vgg16_layers()
VGG16_INPUT = (3, 224, 224)


def build(layers, in_channels: int = 3, dropout: float = 0.5) -> nn.Sequential:
    """An nn.Sequential from a layer list: each conv and each fc but the last is followed by an
    in-place ReLU, the fc layers before the last by dropout, and the first fc by a Flatten."""
    modules, channels, features = OrderedDict(), in_channels, None
    last_fc = max(i for i, layer in enumerate(layers) if layer[1] == "fc") if any(
        layer[1] == "fc" for layer in layers) else -1
    for i, (name, kind, *args) in enumerate(layers):
        if kind == "conv":
            filters, kernel, stride, pad = args
            modules[name] = nn.Conv2d(channels, filters, kernel, stride, pad)
            modules[f"{name}_relu"] = nn.ReLU(inplace=True)
            channels = filters
        elif kind == "pool":
            modules[name] = nn.MaxPool2d(args[0], args[1])
        elif kind == "norm":
            modules[name] = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
        elif kind == "fc":
            if features is None:
                modules["flatten"] = nn.Flatten()
                modules[name] = nn.LazyLinear(args[0])
            else:
                modules[name] = nn.Linear(features, args[0])
            features = args[0]
            if i != last_fc:
                modules[f"{name}_relu"] = nn.ReLU(inplace=True)
                modules[f"{name}_drop"] = nn.Dropout(dropout)
        else:
            raise ValueError(f"layer {name!r}: unknown kind {kind!r} (conv, pool, norm or fc)")
    return nn.Sequential(modules)


def _materialise(model: nn.Sequential, input_size) -> nn.Sequential:
    with torch.no_grad():
        model.eval()(torch.zeros(1, *input_size))
    return model.train()


def alexnet() -> nn.Sequential:
    """The lecture's AlexNet: 227 x 227 x 3 in, CONV1 96 11 x 11 stride 4 -> 55 x 55 x 96, ..."""
    return _materialise(build(ALEXNET_LAYERS), ALEXNET_INPUT)


def vgg16() -> nn.Sequential:
    """VGG16 (configuration D): 13 3 x 3 convs (pad 1) in 5 blocks, 2 x 2 max pools, 3 fc."""
    return _materialise(build(VGG16_LAYERS), VGG16_INPUT)


# --- GoogLeNet's inception module -----------------------------------------------------------

def _conv_relu(c_in, c_out, kernel):
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2), nn.ReLU(inplace=True))


class Inception(nn.Module):
    """Four parallel branches concatenated along channels: 1 x 1 conv, 3 x 3 conv, 5 x 5 conv,
    3 x 3 max pool (stride 1, 'same' padding). With reduce3 / reduce5 / pool_proj (the
    bottleneck version) a 1 x 1 conv shrinks the channels before the 3 x 3 and 5 x 5 convs
    and after the pool. Spatial size is kept."""

    def __init__(self, in_channels, c1, c3, c5, reduce3=None, reduce5=None, pool_proj=None):
        super().__init__()
        self.branch1 = _conv_relu(in_channels, c1, 1)
        self.branch3 = (nn.Sequential(_conv_relu(in_channels, reduce3, 1), _conv_relu(reduce3, c3, 3))
                        if reduce3 else _conv_relu(in_channels, c3, 3))
        self.branch5 = (nn.Sequential(_conv_relu(in_channels, reduce5, 1), _conv_relu(reduce5, c5, 5))
                        if reduce5 else _conv_relu(in_channels, c5, 5))
        pool = nn.MaxPool2d(3, stride=1, padding=1)
        self.branch_pool = nn.Sequential(pool, _conv_relu(in_channels, pool_proj, 1)) if pool_proj else pool

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], dim=1)
