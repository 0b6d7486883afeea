"""Reference answers of notebook 08 (what a trained CNN has learned).

Every function takes a classifier ``model`` that maps images ``x`` (N, 3, H, W) in [0, 1] to
class scores (N, C), and a layer by its *name* (``model.get_submodule(layer)``). The
``probe_*`` functions are what the checkers compare a student's answer with: the same
computation on the checkers' own network, :class:`coursekit.models.probe_net.ProbeNet` (its
seed), so that their arguments are values and a students' coursekit can replay them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import reference
from ..models.probe_net import ProbeNet


# --- 1. filters and activations ----------------------------------------------------------------

@reference("visualisation.normalise_filters")
def normalise_filters(weight: torch.Tensor) -> torch.Tensor:
    """Conv filters (F, C, kh, kw) -> images (F, kh, kw, C), each filter scaled to [0, 1] on its
    own (its min to 0, its max to 1), so that a weak filter's pattern shows as well as a strong one's."""
    w = torch.as_tensor(weight).detach().float()
    lo = w.amin(dim=(1, 2, 3), keepdim=True)
    hi = w.amax(dim=(1, 2, 3), keepdim=True)
    return ((w - lo) / (hi - lo).clamp(min=1e-12)).permute(0, 2, 3, 1)


@reference("visualisation.layer_activations")
def layer_activations(model, layer: str, x: torch.Tensor) -> torch.Tensor:
    """The output of ``model``'s submodule ``layer`` when the model runs on ``x``: caught by a
    forward hook, which is removed afterwards. Detached; (N, C', H', W') for a conv layer."""
    caught = {}
    handle = model.get_submodule(layer).register_forward_hook(
        lambda module, inputs, out: caught.__setitem__("out", out.detach()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return caught["out"]


# --- 2. saliency -------------------------------------------------------------------------------

@reference("visualisation.saliency")
def saliency(model, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Vanilla gradient saliency (Simonyan et al. 2014): |d score_target / d x|, the largest over
    the colour channels. x (N, 3, H, W), target (N,) class indices -> (N, H, W)."""
    model.eval()
    x = x.detach().clone().requires_grad_(True)
    scores = model(x)
    grad, = torch.autograd.grad(scores.gather(1, target.view(-1, 1)).sum(), x)
    return grad.abs().amax(dim=1)


@reference("visualisation.probe_gradients")
def probe_gradients(seed: int, x: torch.Tensor, target: torch.Tensor) -> dict:
    """On ProbeNet(seed): the input gradients (N, 3, H, W) of the target's score ("score"), of its
    softmax probability ("probability") and of the sum of all the scores ("all"): what the
    saliency checker tells a right answer from the usual mistakes with."""
    model = ProbeNet(seed)
    out = {}
    for name, pick in (("score", lambda s: s.gather(1, target.view(-1, 1)).sum()),
                       ("probability", lambda s: s.softmax(1).gather(1, target.view(-1, 1)).sum()),
                       ("all", lambda s: s.sum())):
        xi = x.detach().clone().requires_grad_(True)
        out[name], = torch.autograd.grad(pick(model(xi)), xi)
    return out


# --- 3. Grad-CAM -------------------------------------------------------------------------------

@reference("visualisation.grad_cam")
def grad_cam(model, layer: str, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017) at ``layer``, whose output is A (N, K, h, w): the weight of
    channel k is the mean over positions of d score_target / d A^k; the map is ReLU(sum_k weight_k
    A^k), upsampled bilinearly to x's size. (N, H, W), not normalised."""
    model.eval()
    a, grads = _activation_and_gradient(model, layer, x, target)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * a).sum(dim=1, keepdim=True))
    return F.interpolate(cam, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)[:, 0].detach()


def _activation_and_gradient(model, layer: str, x: torch.Tensor, target: torch.Tensor):
    """(A, dA): the output of ``layer`` (caught by a forward hook) and the gradient of the target
    scores' sum w.r.t. it."""
    caught = {}
    handle = model.get_submodule(layer).register_forward_hook(
        lambda module, inputs, out: caught.__setitem__("a", out))
    try:
        scores = model(x)
    finally:
        handle.remove()
    a = caught["a"]
    grads, = torch.autograd.grad(scores.gather(1, target.view(-1, 1)).sum(), a)
    return a, grads


@reference("visualisation.probe_grad_cam")
def probe_grad_cam(seed: int, layer: str, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """:func:`grad_cam` on ProbeNet(seed)."""
    return grad_cam(ProbeNet(seed), layer, x, target)


@reference("visualisation.probe_cam_parts")
def probe_cam_parts(seed: int, layer: str, x: torch.Tensor, target: torch.Tensor) -> dict:
    """On ProbeNet(seed): the output of ``layer`` ("a") and the gradient of the target scores
    w.r.t. it ("grads"), from which the Grad-CAM checker builds the usual wrong maps."""
    a, grads = _activation_and_gradient(ProbeNet(seed), layer, x, target)
    return {"a": a.detach(), "grads": grads}


# --- 4. occlusion ------------------------------------------------------------------------------

@reference("visualisation.occlusion_map")
def occlusion_map(model, image: torch.Tensor, target: int, patch: int, stride: int, fill: float = 0.5,
                  batch_size: int = 64) -> torch.Tensor:
    """Occlusion sensitivity (Zeiler & Fergus 2014) of one image (3, H, W): entry [i, j] is the
    softmax probability of class ``target`` when the patch x patch square whose top-left corner
    is (i * stride, j * stride) is filled with ``fill``. (rows, cols), rows = (H - patch) //
    stride + 1 (vertical positions), cols likewise along W. The occluded copies run in batches."""
    occluded, rows, cols = _occluded(image, patch, stride, fill)
    model.eval()
    with torch.no_grad():
        probs = torch.cat([model(batch).softmax(dim=1)[:, target] for batch in occluded.split(batch_size)])
    return probs.reshape(rows, cols)


def _occluded(image: torch.Tensor, patch: int, stride: int, fill: float) -> tuple[torch.Tensor, int, int]:
    """(the copies of ``image`` (rows * cols, 3, H, W), each with one square filled, rows, cols)."""
    _, h, w = image.shape
    rows, cols = (h - patch) // stride + 1, (w - patch) // stride + 1
    occluded = image.detach().unsqueeze(0).repeat(rows * cols, 1, 1, 1)
    for k in range(rows * cols):
        i, j = divmod(k, cols)
        occluded[k, :, i * stride:i * stride + patch, j * stride:j * stride + patch] = fill
    return occluded, rows, cols


@reference("visualisation.probe_occlusion")
def probe_occlusion(seed: int, image: torch.Tensor, target: int, patch: int, stride: int, fill: float) -> dict:
    """On ProbeNet(seed): the occlusion map ("map"), and, for the checker's diagnoses, the
    class scores instead of probabilities ("scores")."""
    model = ProbeNet(seed)
    occluded, rows, cols = _occluded(image, patch, stride, fill)
    with torch.no_grad():
        scores = model(occluded)
    return {"map": occlusion_map(model, image, target, patch, stride, fill),
            "scores": scores[:, target].reshape(rows, cols)}


# --- 5. feature space --------------------------------------------------------------------------

@reference("visualisation.cosine_neighbours")
def cosine_neighbours(features: torch.Tensor, query: torch.Tensor, k: int) -> torch.Tensor:
    """The indices (k,) int64 of the k rows of ``features`` (N, D) most similar to ``query`` (D,)
    by cosine similarity, the most similar first."""
    sims = F.normalize(features.float(), dim=1) @ F.normalize(query.float(), dim=0)
    return sims.argsort(descending=True, stable=True)[:k]


@reference("visualisation.embed_2d")
def embed_2d(features, seed: int = 0):
    """A 2-D t-SNE embedding (N, 2) of ``features`` (N, D), each row L2-normalised first (the
    cosine geometry the neighbours use); ``seed`` fixes t-SNE's randomness."""
    from sklearn.manifold import TSNE

    f = F.normalize(torch.as_tensor(features).float(), dim=1).numpy()
    return TSNE(n_components=2, init="pca", perplexity=min(30.0, (len(f) - 1) / 3),
                random_state=seed).fit_transform(f)


# --- 6. fooling images -------------------------------------------------------------------------

@reference("visualisation.fgsm")
def fgsm(model, x: torch.Tensor, label: torch.Tensor, eps: float) -> torch.Tensor:
    """The fast gradient sign method (Goodfellow et al. 2015): x + eps * sign(d loss / d x) for the
    cross-entropy of the true ``label``, clamped to [0, 1]. (N, 3, H, W), detached."""
    model.eval()
    x = x.detach().clone().requires_grad_(True)
    grad, = torch.autograd.grad(F.cross_entropy(model(x), label), x)
    return (x + eps * grad.sign()).clamp(0, 1).detach()


@reference("visualisation.fool")
def fool(model, x: torch.Tensor, label: torch.Tensor, eps: float, steps: int = 10,
         step_size: float | None = None) -> torch.Tensor:
    """Iterative FGSM: ``steps`` steps of size ``step_size`` (eps / 4 by default) up the loss's
    gradient sign, each followed by a clip to the L-inf ball of radius eps around x and to [0, 1]."""
    model.eval()
    step = eps / 4 if step_size is None else step_size
    x = x.detach()
    adv = x.clone()
    for _ in range(steps):
        adv.requires_grad_(True)
        grad, = torch.autograd.grad(F.cross_entropy(model(adv), label), adv)
        adv = torch.min(torch.max(adv.detach() + step * grad.sign(), x - eps), x + eps).clamp(0, 1)
    return adv.detach()


@reference("visualisation.probe_fooled")
def probe_fooled(seed: int, x: torch.Tensor, label: torch.Tensor, eps: float, steps: int) -> dict:
    """On ProbeNet(seed): FGSM ("fgsm"), FGSM with the sign flipped ("down"), iterative FGSM
    ("fool") and the cross-entropy of each (``*_loss``)."""
    model = ProbeNet(seed)
    out = {"fgsm": fgsm(model, x, label, eps), "down": fgsm(model, x, label, -eps),
           "fool": fool(model, x, label, eps, steps)}
    with torch.no_grad():
        for name in ("fgsm", "fool", "down"):
            out[f"{name}_loss"] = float(F.cross_entropy(model(out[name]), label))
        out["clean_loss"] = float(F.cross_entropy(model(x), label))
    return out
