"""Notebook 08's checkers, references and models: coursekit's answers pass every checker on the
self-check's seed and a hidden one; each usual mistake is named; the Grad-CAM reference agrees with
captum's LayerGradCam on the checkers' network and on EfficientNet-Lite0; 07's files are read as
08 reads them, and a missing or broken one is said."""
import pytest
import torch
import torch.nn.functional as F

from coursekit.checks import CheckError
from coursekit.checks import visualisation as check
from coursekit.reference import _original

R = {name: _original(f"visualisation.{name}") for name in (
    "normalise_filters", "layer_activations", "saliency", "grad_cam", "occlusion_map", "cosine_neighbours",
    "embed_2d", "fgsm", "fool")}

#: the largest difference allowed between coursekit's Grad-CAM and captum's, relative to the map's largest value
GRAD_CAM_TOLERANCE = 1e-5


@pytest.mark.parametrize("seed", [0, 8505])
def test_the_references_pass_every_checker(seed, capsys):
    check.filters_activations(R["normalise_filters"], R["layer_activations"], seed=seed)
    check.saliency(R["saliency"], seed=seed)
    check.grad_cam(R["grad_cam"], seed=seed)
    check.occlusion(R["occlusion_map"], seed=seed)
    check.feature_space(R["cosine_neighbours"], R["embed_2d"], seed=seed)
    check.fooling(R["fgsm"], R["fool"], seed=seed)
    assert capsys.readouterr().out.count("✓") == 6


def _hooked(model, layer, x):
    caught = {}
    handle = model.get_submodule(layer).register_forward_hook(lambda m, i, o: caught.update(a=o))
    try:
        scores = model(x)
    finally:
        handle.remove()
    return scores, caught["a"]


def _cam(weights_from, relu=True):
    def grad_cam(model, layer, x, target):
        scores, a = _hooked(model, layer, x)
        grads, = torch.autograd.grad(scores.gather(1, target[:, None]).sum(), a)
        w = (grads if weights_from == "gradients" else a).mean(dim=(2, 3), keepdim=True)
        cam = (w * a).sum(dim=1, keepdim=True)
        cam = torch.relu(cam) if relu else cam
        return F.interpolate(cam, size=x.shape[-2:], mode="bilinear")[:, 0].detach()
    return grad_cam


def _noabs_saliency(model, x, target):
    x = x.clone().requires_grad_(True)
    model(x).gather(1, target[:, None]).sum().backward()
    return x.grad.amax(dim=1)


def _prob_saliency(model, x, target):
    x = x.clone().requires_grad_(True)
    model(x).softmax(1).gather(1, target[:, None]).sum().backward()
    return x.grad.abs().amax(dim=1)


def _leaky_hook(model, layer, x):
    caught = {}
    model.get_submodule(layer).register_forward_hook(lambda m, i, o: caught.update(o=o.detach()))
    with torch.no_grad():
        model(x)
    return caught["o"]


def _tsne_raw(features, seed=0):
    from sklearn.manifold import TSNE
    f = torch.as_tensor(features).float().numpy()
    return TSNE(n_components=2, init="pca", perplexity=min(30.0, (len(f) - 1) / 3), random_state=seed).fit_transform(f)


def _euclidean(features, query, k):
    return torch.cdist(features, query[None])[:, 0].argsort()[:k]


def _occlusion_scores(model, image, target, patch, stride, fill=0.5):
    _, h, w = image.shape
    rows, cols = (h - patch) // stride + 1, (w - patch) // stride + 1
    out = torch.empty(rows, cols)
    for i in range(rows):
        for j in range(cols):
            covered = image.clone()
            covered[:, i * stride:i * stride + patch, j * stride:j * stride + patch] = fill
            with torch.no_grad():
                out[i, j] = model(covered[None])[0, target]
    return out


MISTAKES = {
    "filters scaled together": (check.filters_activations,
                                (lambda w: ((w - w.min()) / (w.max() - w.min())).permute(0, 2, 3, 1), R["layer_activations"]),
                                "you scaled all the filters together"),
    "filters not permuted": (check.filters_activations,
                             (lambda w: (w - w.amin((1, 2, 3), keepdim=True)) / (w.amax((1, 2, 3), keepdim=True)
                                                                               - w.amin((1, 2, 3), keepdim=True)),
                              R["layer_activations"]), "move the channels last"),
    "hook left behind": (check.filters_activations, (R["normalise_filters"], _leaky_hook), "handle.remove()"),
    "model's scores instead of the layer's": (check.filters_activations,
                                              (R["normalise_filters"], lambda m, layer, x: m(x).detach()),
                                              "not the model's scores"),
    "saliency without abs": (check.saliency, (_noabs_saliency,), "take the absolute value"),
    "saliency of the probability": (check.saliency, (_prob_saliency,), "softmax probability"),
    "Grad-CAM without ReLU": (check.grad_cam, (_cam("gradients", relu=False),), "apply ReLU"),
    "Grad-CAM weighted by activations": (check.grad_cam, (_cam("activations"),), "mean of their ACTIVATIONS"),
    "Grad-CAM not upsampled": (check.grad_cam, (lambda m, layer, x, t: R["grad_cam"](m, layer, x[..., ::2, ::2], t),),
                               "Upsample"),
    "occlusion transposed": (check.occlusion, (lambda *a, **k: R["occlusion_map"](*a, **k).T,), "transposed"),
    "occlusion of scores": (check.occlusion, (_occlusion_scores,), "use its softmax probability"),
    "Euclidean neighbours": (check.feature_space, (_euclidean, R["embed_2d"]), "Euclidean distance"),
    "t-SNE unnormalised": (check.feature_space, (R["cosine_neighbours"], _tsne_raw), "L2-normalise every row"),
    "FGSM sign flipped": (check.fooling, (lambda m, x, y, eps: R["fgsm"](m, x, y, -eps), R["fool"]), "go DOWN"),
    "fool without the budget": (check.fooling, (R["fgsm"], lambda m, x, y, eps, steps=10: R["fool"](m, x, y, 3 * eps, steps)),
                                "clip to [x - eps, x + eps]"),
    "fgsm not clamped": (check.fooling, (lambda m, x, y, eps: R["fgsm"](m, x, y, eps) + eps * (x > 1 - eps), R["fool"]),
                         "outside [0, 1]"),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_each_mistake_is_named(mistake):
    checker, functions, phrase = MISTAKES[mistake]
    with pytest.raises(CheckError) as caught:
        checker(*functions)
    assert phrase in str(caught.value), str(caught.value)


def test_a_right_answer_written_another_way_passes():
    """A Grad-CAM scaled to [0, 1] per image, neighbours by topk, FGSM with a summed loss."""
    def scaled(model, layer, x, target):
        m = R["grad_cam"](model, layer, x, target)
        return m / m.flatten(1).amax(1).clamp(min=1e-12)[:, None, None]

    def topk(features, query, k):
        return F.cosine_similarity(features, query[None], dim=1).topk(k).indices

    def summed(model, x, label, eps):
        x = x.clone().requires_grad_(True)
        F.cross_entropy(model(x), label, reduction="sum").backward()
        return torch.clamp(x + eps * x.grad.sign(), 0, 1).detach()

    check.grad_cam(scaled)
    check.feature_space(topk, R["embed_2d"])
    check.fooling(summed, R["fool"])


def test_grad_cam_agrees_with_captum_on_efficientnet_lite0():
    """The acceptance's comparison: coursekit's Grad-CAM and captum's LayerGradCam on the same model
    (ImageNet-pretrained EfficientNet-Lite0) and layer, within GRAD_CAM_TOLERANCE of the map's maximum."""
    from coursekit.models import pretrained
    from coursekit.models.explained import Normalised

    model = Normalised(pretrained.efficientnet_lite0(), pretrained.LITE0_MEAN, pretrained.LITE0_STD).eval()
    x = torch.rand(3, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([3, 500, 970])
    for layer in ("net.blocks.5", "net.bn2"):
        ours = R["grad_cam"](model, layer, x, target)
        theirs = check.captum_grad_cam(model, layer, x, target)
        assert ours.shape == theirs.shape == (3, 128, 128)
        scale = float(theirs.abs().max())
        assert scale > 0 and float((ours - theirs).abs().max()) <= GRAD_CAM_TOLERANCE * scale, layer


def test_07s_files_are_what_08_shows(tmp_path):
    """scene_classifier loads 07's transfer.safetensors (and resizes to its size); first_filters reads
    simple.safetensors as data; a broken file is said, not a traceback."""
    from coursekit.data.fifteen_scene import open_scenes
    from coursekit.models import pretrained
    from coursekit.models.explained import first_filters, scene_classifier
    from coursekit.models.scene_nets import SimpleNet
    from coursekit.models.weights import save_weights

    data = open_scenes(size=64, home=tmp_path / "data", real=False, validation=0.2, progress=False)
    lite0 = pretrained.efficientnet_lite0(num_classes=15)
    torch.nn.init.normal_(lite0.classifier.weight)
    save_weights(lite0, tmp_path / "transfer.safetensors", image_size=96, mean=pretrained.LITE0_MEAN,
                 std=pretrained.LITE0_STD)
    model, said = scene_classifier(data, tmp_path / "transfer.safetensors")
    assert "loaded from" in said and model.size == 96
    assert torch.equal(model.net.classifier.weight, lite0.classifier.weight)
    with pytest.raises(ValueError, match=r"expected images \(N, 3, H, W\)"):
        model(torch.rand(2, 64, 64))
    trained, said = scene_classifier(data, tmp_path / "absent.safetensors", steps=5, progress=False)
    assert "no " in said and "trained 07's transfer model" in said and trained(torch.rand(2, 3, 64, 64)).shape == (2, 15)

    net = SimpleNet()
    save_weights(net, tmp_path / "simple.safetensors", image_size=64, mean=(0.5,) * 3, std=(0.25,) * 3)
    filters, said = first_filters(data, tmp_path / "simple.safetensors")
    assert torch.equal(filters, net.features[0].weight) and "simple.safetensors" in said
    trained, said = first_filters(data, tmp_path / "absent.safetensors", epochs=1, progress=False)
    assert trained.shape == (16, 3, 5, 5) and "trained 1 epochs at 64px" in said
    (tmp_path / "broken.safetensors").write_bytes(b"not a weights file")
    filters, said = first_filters(data, tmp_path / "broken.safetensors")
    assert filters is None and "broken.safetensors" in said
