"""Fair to every answer: a right answer written another way gets full marks, and a common real
bug is told its cause, not a generic "relative error".

The checkers are called as the graded cells call them (``quiet=True``; ``isolate=True`` where
the graded cell sets it). The answers the judge carries between kernels (a namedtuple cache)
and the one-mistake-one-exercise rule across a forward and a backward exercise are graded end
to end at the bottom, through `coursekit autograde`.
"""
from collections import namedtuple

import nbformat
import numpy as np
import pytest

from coursekit.checks import CheckError
from coursekit.checks import backprop as check01
from coursekit.checks import conv as check03
from coursekit.checks import layers as check02
from coursekit.checks import normalisation as check04
from coursekit.grading.pipeline.autograde import autograde
from coursekit.grading.pipeline.results import PENDING
from coursekit.grading.classes.sample import student_notebook
from coursekit.reference import _original

R = _original  # coursekit's own functions, not recorded as reference calls


def ref(name):
    return R(name)


# --- right answers written differently ----------------------------------------------------

AffineCache = namedtuple("AffineCache", "x w b")


def affine_forward_namedtuple(x, w, b):
    return np.einsum("nd,dm->nm", x.reshape(len(x), -1), w) + b, AffineCache(x, w, b)


def affine_backward_namedtuple(dout, cache):
    dx = np.einsum("nm,dm->nd", dout, cache.w).reshape(cache.x.shape)
    return dx, cache.x.reshape(len(cache.x), -1).T @ dout, dout.sum(axis=0)


def test_an_einsum_affine_with_a_namedtuple_cache_passes():
    check02.affine(affine_forward_namedtuple, affine_backward_namedtuple, quiet=True)


def test_a_backward_is_not_charged_for_a_wrong_forward():
    """ddof=1 in the forward (exercise 1) does not cost the right backward of exercises 2
    and 3: their checks run it on coursekit's forward's cache."""
    def forward_ddof(x, gamma, beta, state, mode="train", momentum=0.99, eps=1e-5):
        mu, var = x.mean(axis=0), x.var(axis=0, ddof=1)
        inv_std = 1 / np.sqrt(var + eps)
        x_hat = (x - mu) * inv_std
        return gamma * x_hat + beta, (x_hat, gamma, inv_std, mode)

    with pytest.raises(CheckError, match="unbiased variance"):
        check04.batchnorm_forward(forward_ddof, quiet=True, isolate=True)
    check04.batchnorm_backward(forward_ddof, ref("normalisation.batchnorm_backward"), quiet=True, isolate=True)
    check04.batchnorm_backward_alt(forward_ddof, ref("normalisation.batchnorm_backward_alt"), quiet=True, isolate=True)


def test_a_backward_with_its_own_cache_layout_passes_on_its_own_forward():
    names = ("x_hat", "gamma", "inv_std", "mode")

    def forward(x, gamma, beta, state, mode="train", momentum=0.99, eps=1e-5):
        out, cache = ref("normalisation.batchnorm_forward")(x, gamma, beta, state, mode, momentum, eps)
        return out, {"x": x, **dict(zip(names, cache))}

    def backward(dout, cache):
        return ref("normalisation.batchnorm_backward")(dout, tuple(cache[k] for k in names))

    check04.batchnorm_backward(forward, backward, quiet=True, isolate=True)

    def wrong_forward(x, *args):
        out, cache = forward(x, *args)
        return out + 1, cache

    with pytest.raises(CheckError) as info:  # wrong forward and another layout: it says why
        check04.batchnorm_backward(wrong_forward, backward, quiet=True, isolate=True)
    assert "your batchnorm_forward is not right yet" in str(info.value)
    assert "cache = (x_hat, gamma, inv_std, mode)" in str(info.value)


# --- real bugs, named --------------------------------------------------------------------

def test_log_of_an_underflowed_probability_is_named():
    def softmax_log_probs(scores, y):
        shifted = scores - scores.max(axis=1, keepdims=True)
        p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        n = len(y)
        d = p.copy()
        d[np.arange(n), y] -= 1
        return float(-np.log(p[np.arange(n), y]).mean()), d / n

    with pytest.raises(CheckError) as info:
        check02.losses(ref("layers.euclidean_loss"), softmax_log_probs, quiet=True)
    assert "a probability can underflow to 0, and log(0) = -inf" in str(info.value)
    assert "subtract each row's max" not in str(info.value)


def test_float32_is_named():
    def affine_forward32(x, w, b):
        x32 = x.reshape(len(x), -1).astype(np.float32)
        return x32 @ w.astype(np.float32) + b.astype(np.float32), (x, w, b)

    with pytest.raises(CheckError, match="Your forward computes in float32: .* need float64"):
        check02.affine(affine_forward32, ref("layers.affine_backward"), quiet=True)


def test_floor_division_is_named():
    def softmax_floor(scores, y):
        loss, d = ref("backprop.softmax_nll")(scores, y)
        return loss, (d * len(y)) // len(y)

    with pytest.raises(CheckError, match=r"floor\) division // where / was meant"):
        check01.softmax_nll(softmax_floor, quiet=True)


def _conv_backward_assigned(dout, cache):
    x, w, b, stride, pad = cache
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    n_images, n_filters, ho, wo = dout.shape
    for n in range(n_images):
        for f in range(n_filters):
            for i in range(ho):
                for j in range(wo):
                    rows, cols = slice(i * stride, i * stride + kh), slice(j * stride, j * stride + kw)
                    dw[f] = dout[n, f, i, j] * xp[n, :, rows, cols]          # = instead of +=
                    dxp[n, :, rows, cols] += dout[n, f, i, j] * w[f]
    return dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]], dw, dout.sum(axis=(0, 2, 3))


def test_assignment_instead_of_accumulation_is_named():
    with pytest.raises(CheckError, match=r"you assigned \(=\) where the contributions must add up"):
        check03.conv_backward(ref("conv.conv_forward_naive"), _conv_backward_assigned, quiet=True,
                              isolate=True)


def test_padding_every_axis_is_named():
    def conv_pad_all(x, w, b, stride=1, pad=0):
        n_images, _, h, wd = x.shape
        n_filters, _, kh, kw = w.shape
        ho, wo = (h - kh + 2 * pad) // stride + 1, (wd - kw + 2 * pad) // stride + 1
        xp = np.pad(x, pad)                                                  # pads N and C too
        out = np.zeros((n_images, n_filters, ho, wo))
        for n in range(n_images):
            for f in range(n_filters):
                for i in range(ho):
                    for j in range(wo):
                        patch = xp[n, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
                        out[n, f, i, j] = np.sum(patch * w[f]) + b[f]
        return out, (x, w, b, stride, pad)

    with pytest.raises(CheckError, match=r"np.pad\(x, pad\) pads every axis"):
        check03.conv_forward(conv_pad_all, quiet=True, isolate=True)


def test_width_taken_from_the_height_fails_on_rectangular_inputs():
    def conv_square_only(x, w, b, stride=1, pad=0):
        n_images, _, h, _ = x.shape
        n_filters, _, kh, kw = w.shape
        ho = wo = (h - kh + 2 * pad) // stride + 1                           # W' from H
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        out = np.zeros((n_images, n_filters, ho, wo))
        for n, f, i, j in np.ndindex(out.shape):
            patch = xp[n, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[n, f, i, j] = np.sum(patch * w[f]) + b[f] if patch.shape[1:] == (kh, kw) else 0
        return out, (x, w, b, stride, pad)

    with pytest.raises(CheckError, match="has shape"):
        check03.conv_forward(conv_square_only, quiet=True, isolate=True)


def test_momentum_reset_every_epoch_and_an_accumulator_never_reset_are_named():
    sgd = ref("optim.sgd_momentum")

    def train_reset(params, loss_fn, X, y, *, epochs=300, lr=0.5, momentum=0.9):
        history = []
        for _ in range(epochs):
            states = {name: None for name in params}                        # reset every epoch
            loss, grads = loss_fn(params, X, y)
            history.append(float(loss))
            for name in params:
                params[name], states[name] = sgd(params[name], grads[name], states[name], lr=lr,
                                                 momentum=momentum)
        return history

    def train_running_total(params, loss_fn, X, y, *, epochs=300, lr=0.5, momentum=0.9):
        history, total, states = [], 0.0, {name: None for name in params}
        for _ in range(epochs):
            loss, grads = loss_fn(params, X, y)
            total += float(loss)                                             # never reset
            history.append(total)
            for name in params:
                params[name], states[name] = sgd(params[name], grads[name], states[name], lr=lr,
                                                 momentum=momentum)
        return history

    with pytest.raises(CheckError, match="is the momentum state reset every epoch"):
        check02.train(train_reset, quiet=True, isolate=True)
    with pytest.raises(CheckError, match="an accumulator that is never reset"):
        check02.train(train_running_total, quiet=True, isolate=True)


def test_an_in_place_relu_is_told_it_changed_its_input():
    def relu_in_place(x):
        x[x < 0] = 0
        return x, x

    with pytest.raises(CheckError, match="relu_forward changed its input x in place"):
        check02.relu_family(relu_in_place, ref("layers.relu_backward"), ref("layers.leaky_relu_forward"),
                            ref("layers.leaky_relu_backward"), ref("layers.prelu_forward"),
                            ref("layers.prelu_backward"), quiet=True)


# --- end to end: through the judge --------------------------------------------------------

def replace(old, new):
    def edit(src):
        assert old in src, f"the solution no longer contains {old!r}"
        return src.replace(old, new)
    return edit


OWN_FILTERS = """
def normalise_filters(weight):
    tiles = []
    for f in weight.detach():
        f = f - f.min()
        tiles.append((f / f.max()).permute(1, 2, 0))
    return torch.stack(tiles)


def layer_activations(model, layer, x):
    seen = []
    handle = dict(model.named_modules())[layer].register_forward_hook(lambda m, i, out: seen.append(out))
    with torch.no_grad():
        model(x)
    handle.remove()
    return seen[0]
"""

OWN_GRAD_CAM = """
def grad_cam(model, layer, x, target):
    store = {}
    def keep(module, inputs, out):
        out.retain_grad()
        store["a"] = out
    handle = model.get_submodule(layer).register_forward_hook(keep)
    scores = model(x)
    handle.remove()
    model.zero_grad()
    scores[torch.arange(len(x)), target].sum().backward()
    a, g = store["a"], store["a"].grad
    cam = F.relu(torch.einsum("nk,nkhw->nhw", g.mean(dim=(2, 3)), a)).detach()
    cam = F.interpolate(cam.unsqueeze(1), size=x.shape[-2:], mode="bilinear").squeeze(1)
    return cam / cam.amax(dim=(1, 2), keepdim=True).clamp(min=1e-8)   # scaled to [0, 1] per image
"""

# notebook -> student -> ({answer cell: edit}, the exercises it must lose)
CLASSES = {
    "02_layers": {
        "namedtuple-cache": ({"ex1_answer": lambda src: (
            "from collections import namedtuple\nCache = namedtuple('Cache', 'x w b')\n\n"
            + src.replace("cache = (x, w, b)", "cache = Cache(x, w, b)")
                 .replace("x, w, b = cache\n", "x, w, b = cache.x, cache.w, cache.b\n"))}, []),
        "dict-cache-einsum": ({"ex1_answer": lambda src: (
            src.replace("cache = (x, w, b)", "cache = {'x': x, 'w': w}")
               .replace("x, w, b = cache\n", "x, w = cache['x'], cache['w']\n")
               .replace("dx = (dout @ w.T).reshape(x.shape)",
                        "dx = np.einsum('nm,dm->nd', dout, w).reshape(x.shape)"))}, []),
    },
    "08_visualisation": {   # hooks and gradients in the student's kernel, on the checkers' network rebuilt there
        "own-ways": ({"ex1_answer": lambda src: OWN_FILTERS, "ex3_answer": lambda src: OWN_GRAD_CAM,
                      "ex5_answer": replace("return sims.argsort(descending=True)[:k]", "return sims.topk(k).indices"),
                      "ex6_answer": replace("F.cross_entropy(model(x), label).backward()",
                                            "F.cross_entropy(model(x), label, reduction='sum').backward()")}, []),
    },
    "04_normalisation": {
        "ddof-forward": ({"ex1_answer": replace("mu, var = x.mean(axis=0), x.var(axis=0)",
                                                "mu, var = x.mean(axis=0), x.var(axis=0, ddof=1)")},
                         ["ex1_tests"]),
    },
}


@pytest.fixture(scope="module", params=sorted(CLASSES))
def graded(request, tmp_path_factory, root, released):
    notebook = request.param
    release, solution = released / f"{notebook}.ipynb", root / "solutions" / f"{notebook}.ipynb"
    subs = tmp_path_factory.mktemp(f"fair-{notebook}")
    students = {"instructor": student_notebook(release, solution)}
    for student, (edits, _) in CLASSES[notebook].items():
        students[student] = student_notebook(release, solution, edits)
    for student, nb in students.items():
        (subs / student).mkdir()
        nbformat.write(nb, subs / student / f"{notebook}.ipynb")
    result = autograde(root, subs, tmp_path_factory.mktemp(f"fair-out-{notebook}"), timeout=60,
                       progress=False)
    return notebook, result


def test_each_student_loses_only_what_is_wrong(graded):
    notebook, result = graded
    instructor = result.get("instructor", notebook)
    full = {e.grade_id: e.max_score for e in instructor.exercises if e.graded_by != PENDING}   # written: for people
    assert instructor.score == sum(full.values()) > 0, (instructor.problems, result.notes)
    for student, (_, lose) in CLASSES[notebook].items():
        r = result.get(student, notebook)
        lost = sorted(e.grade_id for e in r.exercises if e.score < e.max_score and e.graded_by != PENDING)
        assert lost == lose, (student, lost, r.problems)
        assert r.score == sum(full.values()) - sum(full[g] for g in lose)
