"""Checkers for notebook 08, what a trained CNN has learned. Each runs the student's function on
the checkers' own small network (:class:`coursekit.models.probe_net.ProbeNet`) and compares with
coursekit's reference (:mod:`coursekit.reference.visualisation`) and, for Grad-CAM, with captum's
``LayerGradCam``; a wrong answer is told which usual mistake it makes."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import CheckError
from .checker import checker
from .student import call, type_name
from ..models.probe_net import ProbeNet
from ..reference import visualisation as _references

#: the numbers compared are float32 computations: how far two right answers may differ
TOL = 1e-4


def _ref(name):
    """coursekit's answer ``visualisation.<name>`` (a students' coursekit replays what it
    returned on the self-checks' inputs)."""
    return getattr(_references, name)


def _tensor(name: str, value, shape: tuple, hint: str = "") -> torch.Tensor:
    """The student's result as a float64 tensor of ``shape``, or a CheckError saying what came back."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise CheckError(f"{name} should return a tensor of shape {shape}, got {type_name(value)}.")
    if tuple(value.shape) != tuple(shape):
        raise CheckError(f"{name} returned shape {tuple(value.shape)}, expected {tuple(shape)}." + (f" {hint}" if hint else ""))
    value = value.detach().double()
    if not torch.isfinite(value).all():
        raise CheckError(f"{name} returned NaN or infinite values.")
    return value


def _near(a, b, tol=TOL) -> bool:
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return a.shape == b.shape and bool(torch.allclose(a, b, atol=tol * max(1.0, float(b.abs().max())), rtol=0))


def _images(g, n, h, w):
    return torch.rand(n, 3, h, w, generator=g)


# --- 1. filters and activations ----------------------------------------------------------------

@checker("filters and activations", exercise=("visualisation.normalise_filters", "visualisation.layer_activations"),
         builds_on={})
def filters_activations(normalise_filters, layer_activations, *, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(6, 3, 5, 4, generator=g) * torch.linspace(0.05, 3.0, 6).view(6, 1, 1, 1)
    shown = call("normalise_filters", normalise_filters, w.clone())
    if isinstance(shown, torch.Tensor) and tuple(shown.shape) == (6, 3, 5, 4):
        raise CheckError("normalise_filters returned (F, C, kh, kw) = (6, 3, 5, 4): move the channels last, "
                         "(F, kh, kw, C) = (6, 5, 4, 3), the layout imshow draws (permute(0, 2, 3, 1)).")
    shown = _tensor("normalise_filters", shown, (6, 5, 4, 3))
    want = _ref("normalise_filters")(w)
    if not _near(shown, want):
        together = ((w - w.min()) / (w.max() - w.min())).permute(0, 2, 3, 1)
        if _near(shown, together):
            raise CheckError("you scaled all the filters together (one min and max over the whole tensor): the "
                             "weak filters come out flat grey. Scale each filter on its own: its own min to 0 and "
                             "max to 1 (amin/amax over dims 1, 2, 3).")
        lo, hi = shown.amin(dim=(1, 2, 3)), shown.amax(dim=(1, 2, 3))
        if not (_near(lo, torch.zeros(6), 1e-3) and _near(hi, torch.ones(6), 1e-3)):
            raise CheckError(f"each filter should span exactly [0, 1]; yours have minima {np.round(lo.numpy(), 3)} "
                             f"and maxima {np.round(hi.numpy(), 3)}.")
        raise CheckError("each filter spans [0, 1] but the values are not (w - min) / (max - min) in the order "
                         "(F, kh, kw, C): did you reshape instead of permute?")
    model = ProbeNet(seed)
    x = _images(g, 3, 10, 12)
    for layer, upto in (("conv1", 1), ("relu2", 4)):
        with torch.no_grad():
            want = x
            for module in list(model.children())[:upto]:
                want = module(want)
        got = call("layer_activations", layer_activations, model, layer, x.clone())
        got = _tensor(f"layer_activations(model, {layer!r}, x)", got, tuple(want.shape),
                      "Return what the hooked submodule outputs, not the model's scores.")
        if not _near(got, want):
            raise CheckError(f"layer_activations(model, {layer!r}, x) is not the output of model.{layer}: register "
                             f"the forward hook on model.get_submodule(layer) and keep its `output` argument.")
    hooks = sum(len(m._forward_hooks) for m in model.modules())
    if hooks:
        raise CheckError(f"{hooks} forward hook(s) are still registered on the model after layer_activations "
                         f"returned: keep the handle register_forward_hook returns and call handle.remove() "
                         f"(in a finally: block), or every later forward pass runs your hook too.")
    return "normalise_filters and layer_activations: each filter scaled on its own; the hooked layer's output."


# --- 2. saliency -------------------------------------------------------------------------------

@checker("saliency", exercise=("visualisation.saliency",), builds_on={})
def saliency(saliency, *, seed=0):
    g = torch.Generator().manual_seed(seed)
    model = ProbeNet(seed)
    x = _images(g, 4, 9, 11)
    target = torch.tensor([0, 3, 1, 4])
    got = call("saliency", saliency, model, x.clone(), target.clone())
    got = _tensor("saliency", got, (4, 9, 11), "One map per image: (N, H, W), the largest over the colour "
                  "channels (dim 1).")
    grads = _ref("probe_gradients")(seed, x, target)
    want = grads["score"].abs().amax(dim=1)
    if _near(got, want):
        return "saliency: |d score / d x|, the largest over the channels."
    score = grads["score"]
    diagnoses = [
        (score.amax(dim=1), "some of your values are negative: take the absolute value of the gradient before "
                            "the max over channels (a pixel that lowers the score matters as much as one that raises it)."),
        (score.abs().sum(dim=1), "you summed |gradient| over the channels: take the largest (amax over dim 1)."),
        (score.abs().mean(dim=1), "you averaged |gradient| over the channels: take the largest (amax over dim 1)."),
        (grads["probability"].abs().amax(dim=1), "you took the gradient of the softmax probability: use the class's "
                                                 "score (the logit), which the other classes do not affect."),
        (grads["all"].abs().amax(dim=1), "you took the gradient of the sum of ALL the classes' scores: pick each "
                                         "image's target class, scores.gather(1, target[:, None]).sum()."),
    ]
    for value, message in diagnoses:
        if _near(got, value):
            raise CheckError(message)
    if bool((got < 0).any()):
        raise CheckError(diagnoses[0][1])
    raise CheckError(f"your saliency differs from |d score_target / d x| maxed over channels (largest "
                     f"difference {float((got - want).abs().max()):.3g}): backpropagate each image's own target score.")


# --- 3. Grad-CAM -------------------------------------------------------------------------------

def captum_grad_cam(model, layer: str, x, target) -> torch.Tensor:
    """Grad-CAM by captum (``LayerGradCam``, ReLU'd, upsampled bilinearly by
    ``LayerAttribution.interpolate``): (N, H, W), what a student's map is compared with."""
    from captum.attr import LayerAttribution, LayerGradCam

    cam = LayerGradCam(model, model.get_submodule(layer)).attribute(x, target=target, relu_attributions=True)
    return LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), interpolate_mode="bilinear")[:, 0].detach()


def _per_image(m):
    """Each map divided by its largest value (maps that differ only by a positive scale agree)."""
    top = m.flatten(1).abs().amax(dim=1).clamp(min=1e-12)
    return m / top.view(-1, *[1] * (m.dim() - 1))


@checker("Grad-CAM", exercise=("visualisation.grad_cam",), builds_on={})
def grad_cam(grad_cam, *, seed=0):
    g = torch.Generator().manual_seed(seed)
    model = ProbeNet(seed)
    x = _images(g, 3, 12, 16)
    target = torch.tensor([1, 4, 2])
    got = call("grad_cam", grad_cam, model, "conv2", x.clone(), target.clone())
    if isinstance(got, torch.Tensor) and got.dim() == 4 and got.shape[1] == 1:
        got = got[:, 0]
    got = _tensor("grad_cam", got, (3, 12, 16), "Upsample the (N, h, w) map to the images' size with "
                  "F.interpolate(cam[:, None], size=x.shape[-2:], mode='bilinear').")
    want = captum_grad_cam(model, "conv2", x, target)
    ours = _ref("probe_grad_cam")(seed, "conv2", x, target)
    if not _near(ours, want, 1e-4):  # coursekit's reference and captum's must agree
        raise CheckError("coursekit's Grad-CAM and captum's disagree here: tell your instructor.")
    # asked for whatever the answer (a students' coursekit replays what the release recorded)
    parts = _ref("probe_cam_parts")(seed, "conv2", x, target)
    if _near(_per_image(got), _per_image(want), 2e-3):
        return "grad_cam: ReLU of the gradient-weighted sum of the channels, as captum's LayerGradCam computes it."
    a, grads = parts["a"], parts["grads"]
    up = lambda cam: F.interpolate(cam[:, None], size=(12, 16), mode="bilinear", align_corners=False)[:, 0]  # noqa: E731
    weighted = (grads.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1)
    diagnoses = [
        (up(weighted), "your map has negative values: apply ReLU to the weighted sum (only the features that "
                       "RAISE the class score are the class's evidence)."),
        (up(torch.relu((a.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1))),
         "you weighted the channels by the mean of their ACTIVATIONS: the weight of channel k is the mean of the "
         "GRADIENT d score / d A^k over positions (that is what makes the map class-specific)."),
        (up((grads * a).sum(dim=1).relu()), "you multiplied the gradient and the activation position by "
                                                      "position: average each channel's gradient over the positions first "
                                                      "(one weight per channel), then weight the channel."),
    ]
    for value, message in diagnoses:
        if _near(_per_image(got), _per_image(value), 2e-3):
            raise CheckError(message)
    if bool((got < -1e-6).any()):
        raise CheckError(diagnoses[0][1])
    nearest = F.interpolate(torch.relu(weighted)[:, None], size=(12, 16), mode="nearest")[:, 0]
    if _near(_per_image(got), _per_image(nearest), 2e-3):
        raise CheckError("you upsampled with mode='nearest': use mode='bilinear' (align_corners=False), as captum does.")
    raise CheckError(f"your map differs from captum's LayerGradCam at model.conv2 (largest difference after scaling "
                     f"each map to max 1: {float((_per_image(got) - _per_image(want)).abs().max()):.3g}): the "
                     f"class score's gradient w.r.t. the layer's output, averaged per channel, weights that output.")


# --- 4. occlusion ------------------------------------------------------------------------------

@checker("occlusion", exercise=("visualisation.occlusion_map",), builds_on={})
def occlusion(occlusion_map, *, seed=0):
    g = torch.Generator().manual_seed(seed)
    model = ProbeNet(seed)
    for (h, w, patch, stride, target) in ((12, 20, 4, 4, 2), (10, 10, 4, 2, 3)):
        image = torch.rand(3, h, w, generator=g)
        image[:, :h // 2, :w // 3] *= 0.2    # not symmetric: a transposed map differs
        rows, cols = (h - patch) // stride + 1, (w - patch) // stride + 1
        expected = _ref("probe_occlusion")(seed, image, target, patch, stride, 0.5)
        want = expected["map"]
        got = call("occlusion_map", occlusion_map, model, image.clone(), target, patch, stride)
        if isinstance(got, torch.Tensor) and tuple(got.shape) == (cols, rows) and rows != cols:
            raise CheckError(f"on a {h}x{w} image your map is {cols}x{rows}, expected {rows}x{cols}: your map is "
                             f"transposed (rows are the patch's vertical positions, (H - patch) // stride + 1).")
        if isinstance(got, torch.Tensor) and got.dim() == 2 and tuple(got.shape) != (rows, cols):
            raise CheckError(f"on a {h}x{w} image with patch {patch} and stride {stride} your map is "
                             f"{tuple(got.shape)}, expected ({rows}, {cols}): the patch fits (H - patch) // stride + 1 "
                             f"times down and (W - patch) // stride + 1 times across.")
        got = _tensor("occlusion_map", got, (rows, cols))
        if _near(got, want):
            continue
        if _near(got, want.T) or _near(got.T, want):
            raise CheckError("your map is transposed: entry [i, j] is the patch at row i * stride, column j * stride.")
        if _near(got, expected["scores"]):
            raise CheckError("your map holds the class's score: use its softmax probability (model(x).softmax(dim=1)).")
        if _near(got, torch.flip(want, dims=(0, 1))):
            raise CheckError("your map is flipped: entry [0, 0] is the patch at the top-left corner.")
        raise CheckError(f"your map differs from the probability of class {target} with a grey (fill=0.5) "
                         f"{patch}x{patch} patch at (i * stride, j * stride) (largest difference "
                         f"{float((got - want).abs().max()):.3g}): fill every channel of the square with fill, and "
                         f"keep the rest of the image as it is.")
    return "occlusion_map: the class probability for each patch position, rows down and columns across."


# --- 5. feature space --------------------------------------------------------------------------

def _clusters(seed, per_class=12, classes=5, dim=16):
    """Feature vectors whose direction says their class and whose length does not (lengths from
    0.01 to 100): what cosine geometry separates and Euclidean geometry mixes up."""
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(classes, dim, generator=g), dim=1)
    labels = torch.arange(classes).repeat_interleave(per_class)
    directions = F.normalize(centres[labels] + 0.15 * torch.randn(len(labels), dim, generator=g), dim=1)
    lengths = torch.exp(torch.empty(len(labels)).uniform_(np.log(0.01), np.log(100.0), generator=g))
    return directions * lengths[:, None], labels


def knn_agreement(points, labels, k: int = 5) -> float:
    """The fraction of points whose k nearest other points (Euclidean) mostly share their label."""
    p = torch.as_tensor(np.asarray(points), dtype=torch.float64)
    d = torch.cdist(p, p)
    d.fill_diagonal_(float("inf"))
    nearest = labels[d.topk(k, largest=False).indices]
    return float(((nearest == labels[:, None]).sum(dim=1) > k // 2).double().mean())


@checker("feature space", exercise=("visualisation.cosine_neighbours", "visualisation.embed_2d"), builds_on={})
def feature_space(cosine_neighbours, embed_2d, *, seed=0):
    features, labels = _clusters(seed)
    for q in (0, 31):
        query = features[q] * 3.0
        want = _ref("cosine_neighbours")(features, query, 6)
        got = call("cosine_neighbours", cosine_neighbours, features.clone(), query.clone(), 6)
        if isinstance(got, np.ndarray):
            got = torch.from_numpy(got)
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != (6,):
            raise CheckError(f"cosine_neighbours(features, query, 6) should return 6 indices, got "
                             f"{type_name(got)} of shape {tuple(getattr(got, 'shape', ()))}.")
        got = got.long()
        if torch.equal(got, want):
            continue
        euclid = torch.cdist(features, query[None])[:, 0].argsort(stable=True)[:6]
        if torch.equal(got, euclid):
            raise CheckError("you ranked by Euclidean distance: feature vectors of one class point the same way "
                             "but differ in length. Rank by cosine similarity (normalise rows and query, then dot).")
        if set(got.tolist()) == set(want.tolist()):
            raise CheckError("the right neighbours in the wrong order: the most similar first (descending similarity).")
        least = (F.normalize(features, dim=1) @ F.normalize(query, dim=0)).argsort(stable=True)[:6]
        if torch.equal(got, least):
            raise CheckError("you returned the LEAST similar rows: sort by similarity in descending order.")
        raise CheckError(f"cosine_neighbours gave {got.tolist()}, expected {want.tolist()} (the rows with the "
                         f"largest cosine similarity to the query, most similar first).")
    first = call("embed_2d", embed_2d, features.clone(), seed=seed)
    points = _tensor("embed_2d", first, (len(labels), 2), "One 2-D point per feature vector: (N, 2).")
    again = _tensor("embed_2d", call("embed_2d", embed_2d, features.clone(), seed=seed), (len(labels), 2))
    if not _near(points, again, 1e-6):
        raise CheckError("two calls with the same seed gave different embeddings: pass random_state=seed to TSNE "
                         "so the picture is the same on every run.")
    agreement = knn_agreement(points, labels)
    if agreement < 0.95:
        raise CheckError(f"in your embedding only {agreement:.0%} of the points have mostly their own class among "
                         f"their 5 nearest neighbours, though each class's feature vectors point the same way: "
                         f"L2-normalise every row (features / features.norm(dim=1, keepdim=True)) before t-SNE, or "
                         f"the vectors' lengths decide the map.")
    return f"cosine_neighbours and embed_2d: cosine neighbours; {agreement:.0%} of the points sit among their own class."


# --- 6. fooling images -------------------------------------------------------------------------

@checker("fooling images", exercise=("visualisation.fgsm", "visualisation.fool"), builds_on={})
def fooling(fgsm, fool, *, seed=0):
    g = torch.Generator().manual_seed(seed)
    model = ProbeNet(seed)
    x = _images(g, 6, 8, 8)
    with torch.no_grad():
        label = model(x).argmax(dim=1)
    eps, steps = 0.05, 6
    expected = _ref("probe_fooled")(seed, x, label, eps, steps)
    for name, fn, args in (("fgsm", fgsm, (eps,)), ("fool", fool, (eps, steps))):
        adv = _tensor(name, call(name, fn, model, x.clone(), label.clone(), *args), tuple(x.shape),
                      "Return the perturbed images, the same shape as x.")
        if float(adv.min()) < -1e-6 or float(adv.max()) > 1 + 1e-6:
            raise CheckError(f"{name} returned pixels outside [0, 1] ({float(adv.min()):.3f} .. {float(adv.max()):.3f}): "
                             f"clamp the images to the valid range.")
        if float((adv - x).abs().max()) > eps + 1e-5:
            raise CheckError(f"{name} moved a pixel by {float((adv - x).abs().max()):.3f}, more than the budget eps = "
                             f"{eps}" + (": clip to [x - eps, x + eps] after every step." if name == "fool" else "."))
        if _near(adv, expected[name], 1e-5):
            continue
        with torch.no_grad():
            loss = float(F.cross_entropy(model(adv.float()), label))
        if name == "fgsm" and _near(adv, expected["down"], 1e-5) or loss < expected["clean_loss"]:
            raise CheckError(f"{name} made the loss of the true labels go DOWN ({expected['clean_loss']:.3f} -> "
                             f"{loss:.3f}): that makes the model surer. Step UP the gradient: x + eps * sign(d loss / d x).")
        raise CheckError(f"{name} differs from " + ("x + eps * sign(d loss / d x), clamped to [0, 1]" if name == "fgsm"
                         else f"{steps} steps of size eps / 4 up the gradient's sign, each clipped to the eps-ball "
                              f"around x and to [0, 1]") +
                         f" (the loss reached {loss:.3f}, expected {expected[name + '_loss']:.3f}).")
    return (f"fgsm and fool: within eps = {eps}, the loss of the true labels rises from {expected['clean_loss']:.2f} "
            f"to {expected['fgsm_loss']:.2f} (FGSM) and {expected['fool_loss']:.2f} ({steps} steps).")
