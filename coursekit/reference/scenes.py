"""Reference answers of notebook 07 (the 15-scene project). The networks' references are
:mod:`coursekit.models.scene_nets`."""
from __future__ import annotations

import torch
from torch import nn

from . import reference


@reference("scenes.channel_mean_std")
def channel_mean_std(batches):
    """Per-channel mean and std of images in [0, 1], in one pass over ``batches`` of uint8
    images (N, 3, H, W). Returns two tuples of 3 floats (std: the population std, ddof=0)."""
    total = torch.zeros(3, dtype=torch.float64)
    total_sq = torch.zeros(3, dtype=torch.float64)
    count = 0
    for x in batches:
        x = x.to(torch.float64) / 255
        total += x.sum(dim=(0, 2, 3))
        total_sq += (x * x).sum(dim=(0, 2, 3))
        count += x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = (total_sq / count - mean ** 2).clamp(min=0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


@reference("scenes.fundamental_transforms")
def fundamental_transforms(size, mean, std):
    """PIL image -> (3, size, size) float tensor: resize the shorter side to ``size``, centre
    crop, scale to [0, 1], normalise."""
    from torchvision.transforms import v2
    return v2.Compose([v2.PILToTensor(), v2.RGB(), v2.Resize(size, antialias=True), v2.CenterCrop(size),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])


@reference("scenes.transformed")
def transformed(size, mean, std, image) -> torch.Tensor:
    """``fundamental_transforms(size, mean, std)`` applied to ``image``: what the checker compares
    a student's transform with (a tensor, which a students' coursekit can replay; a transform
    object it could not)."""
    return fundamental_transforms(size, mean, std)(image)


@reference("scenes.augmentation_transforms")
def augmentation_transforms(size, mean, std):
    """Like fundamental_transforms, with a random resized crop, a horizontal flip and colour
    jitter (brightness and contrast)."""
    from torchvision.transforms import v2
    return v2.Compose([v2.PILToTensor(), v2.RGB(), v2.RandomResizedCrop(size, scale=(0.5, 1.0), antialias=True),
                       v2.RandomHorizontalFlip(), v2.ColorJitter(brightness=0.3, contrast=0.3),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])


@reference("scenes.make_transfer_model")
def make_transfer_model(backbone: nn.Module, num_classes: int) -> nn.Module:
    """Replace the backbone's classifier with a new Linear(features, num_classes) and freeze
    every other parameter (requires_grad False). Returns the model."""
    for p in backbone.parameters():
        p.requires_grad = False
    features = backbone.get_classifier().in_features
    backbone.classifier = nn.Linear(features, num_classes)
    return backbone


@reference("scenes.predict")
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Predicted class (N,) int64 for normalised images x (N, 3, H, W): eval mode, no gradients,
    batch by batch."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out.append(model(x[i:i + batch_size]).argmax(dim=1))
    return torch.cat(out)


@reference("scenes.accuracy")
def accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of predictions equal to the labels, a float in [0, 1]."""
    return (pred == y).float().mean().item()


@reference("scenes.confusion_matrix")
def confusion_matrix(y_true: torch.Tensor, y_pred: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(C, C) int64 counts: row = true class, column = predicted class."""
    cm = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for t, p in zip(y_true.tolist(), y_pred.tolist()):
        cm[t, p] += 1
    return cm


@reference("scenes.per_class_accuracy")
def per_class_accuracy(cm: torch.Tensor) -> torch.Tensor:
    """(C,) float: for each true class, the fraction of its images predicted correctly."""
    return cm.diag().double() / cm.sum(dim=1).clamp(min=1).double()


@reference("scenes.misclassified")
def misclassified(y_true: torch.Tensor, y_pred: torch.Tensor, confidence: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (at most k, int64) of wrongly predicted images, most confident mistake first."""
    wrong = torch.nonzero(y_true != y_pred).flatten()
    order = torch.argsort(confidence[wrong], descending=True, stable=True)
    return wrong[order][:k]
