"""Checkers for notebook 04, normalisation.

Each checker runs the student's functions on random cases drawn from ``seed``, compares with
:mod:`coursekit.reference.normalisation`, checks every backward against a numerical gradient of the
student's forward (float64, rel_error below :data:`GRAD_THRESHOLD`), and names the likely
mistake: the unbiased variance, the wrong axis, a swapped momentum, batch statistics at test
time, the mean and variance treated as constants in the backward pass, ...
"""
from __future__ import annotations

import copy
import time

import numpy as np

from . import CheckError
from .checker import checker
from .diagnose import compare, compare_dict
from .gradcheck import GRAD_THRESHOLD, check_gradients
from .student import call, forward_for_backward, unpack
from ..reference import conv as ref_conv
from ..reference import layers as ref_layers
from ..reference import normalisation as ref

#: the notebook's names for the exercises later ones build on -> their reference names
NORM_NAMES = {name: f"normalisation.{name}" for name in (
    "batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt")}



def _bn_case(rng, n=8, d=5):
    x = 2 + 3 * rng.standard_normal((n, d))
    return x, 0.5 + rng.random(d), rng.standard_normal(d)


def _state(rng, d):
    return {"running_mean": rng.standard_normal(d), "running_var": 0.5 + rng.random(d)}


def _forward(fn, x, gamma, beta, state, mode, momentum=0.99, eps=1e-5):
    return unpack("batchnorm_forward", call("batchnorm_forward", fn, x.copy(), gamma.copy(),
                                            beta.copy(), state, mode, momentum, eps), 2)


# --- 1. batch norm forward ------------------------------------------------------------------

@checker("batchnorm_forward", exercise=("normalisation.batchnorm_forward",), builds_on=NORM_NAMES)
def batchnorm_forward(fn, *, seed=0):
    """Check train mode (batch statistics, the running update with momentum m, eps, gamma,
    beta), a fresh state, and test mode (running statistics, state left alone)."""
    rng = np.random.default_rng(seed)
    for momentum in (0.99, 0.9):
        x, gamma, beta = _bn_case(rng)
        state = _state(rng, x.shape[1])
        before = copy.deepcopy(state)
        out, _ = _forward(fn, x, gamma, beta, state, "train", momentum)
        exp_state = copy.deepcopy(before)
        exp, _ = ref.batchnorm_forward(x, gamma, beta, exp_state, "train", momentum)
        mu, var = x.mean(axis=0), x.var(axis=0)
        row_mu, row_var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
        compare("batchnorm_forward out (train mode)", out, exp, mistakes=[
            (gamma * (x - mu) / np.sqrt(x.var(axis=0, ddof=1) + 1e-5) + beta,
             "you normalised with the unbiased variance (ddof=1); batch norm uses the batch's "
             "plain variance, np.var's default."),
            (gamma * (x - row_mu) / np.sqrt(row_var + 1e-5) + beta,
             "you took the statistics of each sample over its features (axis=1): batch norm "
             "averages each feature over the batch, axis=0."),
            (gamma * (x - mu) / np.sqrt(var) + beta, "you left out eps: divide by sqrt(var + eps)."),
            ((x - mu) / np.sqrt(var + 1e-5), "you forgot the scale gamma and shift beta."),
            (gamma * (x - mu) / (var + 1e-5) + beta, "divide by the standard deviation "
                                                     "sqrt(var + eps), not the variance.")])
        for key in ("running_mean", "running_var"):
            if key not in state:
                raise CheckError(f"after a training step, state has no {key!r}: update "
                                 f"state[{key!r}] in place.")
            batch = mu if key == "running_mean" else var
            compare(f"state[{key!r}] after one training step (momentum {momentum})", state[key],
                    exp_state[key], mistakes=[
                        ((1 - momentum) * before[key] + momentum * batch,
                         f"m and 1 - m are swapped: the running statistic keeps m = {momentum} of "
                         "its old value, running = m * running + (1 - m) * batch."),
                        (before[key], "the running statistics did not change: update them in "
                                      "train mode."),
                        (batch, "that is the batch's statistic itself; keep a running average, "
                                "m * running + (1 - m) * batch."),
                        (momentum * before[key] + (1 - momentum) * x.std(axis=0),
                         "keep a running average of the variance, not of the standard deviation."),
                        (momentum * before[key] + (1 - momentum) * x.var(axis=0, ddof=1),
                         "average the same (biased) variance that the forward pass normalises with.")])
    x, gamma, beta = _bn_case(rng)
    fresh = {}
    _forward(fn, x, gamma, beta, fresh, "train", 0.9)
    exp_fresh = {}
    ref.batchnorm_forward(x, gamma, beta, exp_fresh, "train", 0.9)
    compare_dict("state after a training step on an empty state {}", fresh, exp_fresh,
                 mistakes=[])
    state = _state(rng, x.shape[1])
    before = copy.deepcopy(state)
    out, _ = _forward(fn, x, gamma, beta, state, "test")
    exp, _ = ref.batchnorm_forward(x, gamma, beta, copy.deepcopy(before), "test")
    train_like, _ = ref.batchnorm_forward(x, gamma, beta, copy.deepcopy(before), "train")
    compare("batchnorm_forward out (test mode)", out, exp, mistakes=[
        (train_like, "in test mode normalise with the running statistics, not the batch's: "
                     "otherwise a prediction depends on the other images in the batch.")])
    for key in before:
        if not np.array_equal(np.asarray(state.get(key)), before[key]):
            raise CheckError(f"test mode changed state[{key!r}]: only training updates the "
                             "running statistics.")
    return ("batchnorm_forward: train mode normalises with the batch's statistics and updates "
            "the running ones (m * running + (1 - m) * batch); test mode uses them unchanged.")


# --- 2./3. batch norm backward --------------------------------------------------------------

def _check_bn_backward(name, forward, backward, rng):
    """Check the student's backward (train mode) on the cache of their forward, or of
    coursekit's where theirs is wrong (a mistake in exercise 1 is not charged again here)."""
    worst = 0.0
    for n, d in ((8, 5), (3, 4), (6, 1)):
        x, gamma, beta = _bn_case(rng, n, d)
        dout = rng.standard_normal(x.shape)
        with forward_for_backward("batchnorm_forward", forward, ref.batchnorm_forward,
                                  (x, gamma, beta, {}, "train"),
                                  "cache = (x_hat, gamma, inv_std, mode)") as (out, cache, used):
            exp_out, exp_cache = ref.batchnorm_forward(x, gamma, beta, {}, "train")
            dx, dgamma, dbeta = unpack(name, call(name, backward, dout.copy(), cache), 3)
            exp_dx, exp_dgamma, exp_dbeta = ref.batchnorm_backward(dout, exp_cache)
            x_hat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-5)
            compare(f"{name} dbeta", dbeta, exp_dbeta, n=n)
            compare(f"{name} dgamma", dgamma, exp_dgamma, n=n, mistakes=[
                (np.sum(dout * x, axis=0), "dgamma = sum(dout * x_hat): the normalised x, not x.")])
            compare(f"{name} dx", dx, exp_dx, n=n, mistakes=[
                (dout * gamma / np.sqrt(x.var(axis=0) + 1e-5),
                 "in train mode the mean and variance depend on x: their paths through the graph "
                 "add two more terms to dx (you treated them as constants)."),
                (exp_dx + (dout * gamma).mean(axis=0) / np.sqrt(x.var(axis=0) + 1e-5),
                 "dx misses the path through the mean: subtract the mean of dx_hat / std."),
                (exp_dx + x_hat * np.mean(dout * gamma * x_hat, axis=0) / np.sqrt(x.var(axis=0) + 1e-5),
                 "dx misses the path through the variance.")])
            worst = max(worst, check_gradients(
                name, lambda x, gamma, beta: _forward(used, x, gamma, beta, {}, "train"),
                {"x": x, "gamma": gamma, "beta": beta}, {"x": dx, "gamma": dgamma, "beta": dbeta}, dout))
    return worst


@checker("batchnorm_backward", exercise=("normalisation.batchnorm_backward",), builds_on=NORM_NAMES)
def batchnorm_backward(forward, backward, *, seed=0):
    """Check the graph backward (train mode) against the reference and numerically."""
    worst = _check_bn_backward("batchnorm_backward", forward, backward, np.random.default_rng(seed))
    return (f"batchnorm_backward: dx, dgamma, dbeta right; numerical gradient rel_error "
            f"{worst:.1e} (< {GRAD_THRESHOLD:g}).")


@checker("batchnorm_backward_alt",
         exercise=("normalisation.batchnorm_backward_alt",),
         builds_on=NORM_NAMES)
def batchnorm_backward_alt(forward, backward_alt, *, seed=0):
    """Check the closed-form backward like the graph one."""
    worst = _check_bn_backward("batchnorm_backward_alt", forward, backward_alt,
                               np.random.default_rng(seed))
    return (f"batchnorm_backward_alt: the closed form agrees; numerical gradient rel_error "
            f"{worst:.1e} (< {GRAD_THRESHOLD:g}).")


def speed_ratio(forward, backward, backward_alt, n=4096, d=512, repeats=20, seed=0) -> float:
    """Time both backward passes on one (n, d) batch (best of ``repeats``); print and return
    graph time / closed-form time."""
    rng = np.random.default_rng(seed)
    x, gamma, beta = _bn_case(rng, n, d)
    _, cache = _forward(forward, x, gamma, beta, {}, "train")
    dout = rng.standard_normal(x.shape)
    times = []
    for fn in (backward, backward_alt):
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            fn(dout, cache)
            best = min(best, time.perf_counter() - start)
        times.append(best)
    ratio = times[0] / times[1]
    print(f"graph backward {times[0] * 1e3:.2f} ms, closed form {times[1] * 1e3:.2f} ms on a "
          f"({n}, {d}) batch: the closed form is {ratio:.1f}x as fast")
    return ratio


# --- 4. spatial batch norm ------------------------------------------------------------------

@checker("spatial_batchnorm",
         exercise=("normalisation.spatial_batchnorm_forward",
                   "normalisation.spatial_batchnorm_backward"),
         builds_on=NORM_NAMES)
def spatial_batchnorm(forward, backward, *, seed=0):
    """Check spatial batch norm (statistics per channel over N, H, W) forward and backward."""
    rng = np.random.default_rng(seed)
    worst = 0.0
    for shape in ((2, 3, 2, 3), (3, 2, 2, 2)):
        x = 1 + rng.standard_normal(shape)
        c = shape[1]
        gamma, beta = 0.5 + rng.random(c), rng.standard_normal(c)
        state, exp_state = {}, {}
        out, cache = unpack("spatial_batchnorm_forward", call(
            "spatial_batchnorm_forward", forward, x.copy(), gamma.copy(), beta.copy(), state,
            "train"), 2)
        exp, exp_cache = ref.spatial_batchnorm_forward(x, gamma, beta, exp_state, "train")
        wrong_flat, _ = ref.batchnorm_forward(x.reshape(-1, c), gamma, beta, {}, "train")
        per_pixel = ((x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-5)
                     * gamma.reshape(1, c, 1, 1) + beta.reshape(1, c, 1, 1))
        compare("spatial_batchnorm_forward out", out, exp, mistakes=[
            (wrong_flat.reshape(shape), "x.reshape(-1, C) does not give one column per channel: "
                                        "move C last first, x.transpose(0, 2, 3, 1).reshape(-1, C)."),
            (per_pixel, "you normalised each pixel over the batch only: spatial batch norm takes "
                        "each channel's statistics over N, H and W together.")])
        compare_dict("state after spatial_batchnorm_forward (one running value per channel)",
                     state, exp_state)
        dout = rng.standard_normal(shape)
        grads = unpack("spatial_batchnorm_backward",
                       call("spatial_batchnorm_backward", backward, dout.copy(), cache), 3)
        for label, got, want in zip(("dx", "dgamma", "dbeta"), grads,
                                    ref.spatial_batchnorm_backward(dout, exp_cache)):
            compare(f"spatial_batchnorm_backward {label}", got, want)
        worst = max(worst, check_gradients(
            "spatial_batchnorm", lambda x, gamma, beta: call(
                "spatial_batchnorm_forward", forward, x, gamma, beta, {}, "train"),
            {"x": x, "gamma": gamma, "beta": beta}, dict(zip(("x", "gamma", "beta"), grads)), dout))
    return (f"spatial batch norm: statistics per channel over (N, H, W); gradients right, "
            f"numerical rel_error {worst:.1e} (< {GRAD_THRESHOLD:g}).")


# --- 5. group norm (layer norm and instance norm as its two ends) ---------------------------

@checker("groupnorm",
         exercise=("normalisation.groupnorm_forward", "normalisation.groupnorm_backward",
                   "normalisation.layernorm_forward", "normalisation.instancenorm_forward"),
         builds_on=NORM_NAMES)
def groupnorm(forward, backward, *, seed=0):
    """Check group norm for G = 1 (layer norm), a middle G and G = C (instance norm)."""
    rng = np.random.default_rng(seed)
    worst = 0.0
    for shape, groups in (((2, 6, 3, 3), 3), ((2, 4, 2, 3), 1), ((3, 4, 3, 2), 4), ((2, 6, 2, 2), 2)):
        x = 1 + 2 * rng.standard_normal(shape)
        n, c = shape[:2]
        gamma, beta = 0.5 + rng.random(c), rng.standard_normal(c)
        out, cache = unpack("groupnorm_forward", call("groupnorm_forward", forward, x.copy(),
                                                      gamma.copy(), beta.copy(), groups), 2)
        exp, exp_cache = ref.groupnorm_forward(x, gamma, beta, groups)
        g, b = gamma.reshape(1, c, 1, 1), beta.reshape(1, c, 1, 1)
        inter = x.reshape(n, c // groups, groups, -1).transpose(0, 2, 1, 3)    # channels interleaved
        inter = (inter - inter.mean(axis=(2, 3), keepdims=True)) / np.sqrt(inter.var(axis=(2, 3), keepdims=True) + 1e-5)
        interleaved = inter.transpose(0, 2, 1, 3).reshape(shape) * g + b
        per_channel = (x - x.mean(axis=(2, 3), keepdims=True)) / np.sqrt(x.var(axis=(2, 3), keepdims=True) + 1e-5) * g + b
        mistakes = [(per_channel, "you normalised each channel over (H, W) alone (instance norm); "
                                  "a group's statistics span its C / G channels and (H, W)."),
                    (ref.spatial_batchnorm_forward(x, gamma, beta, {})[0],
                     "that is batch norm: group norm takes each SAMPLE's statistics, never "
                     "averaging over the batch."),
                    (interleaved, "your groups take every G-th channel: group g holds the "
                                  "consecutive channels g*C/G ... (g+1)*C/G - 1, "
                                  "x.reshape(N, G, -1).")]
        compare(f"groupnorm_forward out (G = {groups} of C = {c})", out, exp,
                mistakes=[(m, msg) for m, msg in mistakes if not np.allclose(m, exp)])
        dout = rng.standard_normal(shape)
        grads = unpack("groupnorm_backward", call("groupnorm_backward", backward, dout.copy(), cache), 3)
        for label, got, want in zip(("dx", "dgamma", "dbeta"), grads, ref.groupnorm_backward(dout, exp_cache)):
            compare(f"groupnorm_backward {label} (G = {groups})", got, want)
        worst = max(worst, check_gradients(
            "groupnorm", lambda x, gamma, beta: call("groupnorm_forward", forward, x, gamma, beta, groups),
            {"x": x, "gamma": gamma, "beta": beta}, dict(zip(("x", "gamma", "beta"), grads)), dout))
    return (f"group norm: right for G = 1 (layer norm), G = C (instance norm) and between; "
            f"numerical gradient rel_error {worst:.1e} (< {GRAD_THRESHOLD:g}).")


@checker("against_torch")
def against_torch(layernorm, instancenorm, groupnorm, *, seed=0):
    """Compare the three per-sample norms with torch.nn.functional's."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 6, 5, 5))
    gamma, beta = 0.5 + rng.random(6), rng.standard_normal(6)
    t, tg, tb = (torch.from_numpy(a) for a in (x, gamma, beta))
    expected = {
        "layer norm": F.layer_norm(t, t.shape[1:], None, None, 1e-5) * tg.view(1, -1, 1, 1) + tb.view(1, -1, 1, 1),
        "instance norm": F.instance_norm(t, weight=tg, bias=tb, eps=1e-5),
        "group norm (G = 3)": F.group_norm(t, 3, tg, tb, 1e-5)}
    got = {"layer norm": layernorm(x, gamma, beta)[0], "instance norm": instancenorm(x, gamma, beta)[0],
           "group norm (G = 3)": groupnorm(x, gamma, beta, 3)[0]}
    worst = 0.0
    for name in expected:
        compare(f"{name} vs torch", got[name], expected[name].numpy(), rtol=1e-6, atol=1e-8)
        worst = max(worst, float(np.abs(np.asarray(got[name]) - expected[name].numpy()).max()))
    return (f"layer, instance and group norm agree with torch.nn.functional "
            f"(largest difference {worst:.1e}).")


# --- 6. fusing batch norm into the layer before ---------------------------------------------

@checker("fuse_batchnorm", exercise=("normalisation.fuse_batchnorm",), builds_on=NORM_NAMES)
def fuse_batchnorm(fn, *, seed=0):
    """Check that the fused conv/linear layer reproduces layer + test-mode BN to 1e-5."""
    rng = np.random.default_rng(seed)
    worst = 0.0
    for kind in ("conv", "linear", "conv"):
        f = int(rng.integers(2, 6))
        if kind == "conv":
            c = f + 1
            x = rng.standard_normal((2, c, 5, 5))
            w, b = rng.standard_normal((f, c, 3, 3)), rng.standard_normal(f)
            layer = lambda w, b: ref_conv.conv_forward_im2col(x, w, b, 1, 1)[0]  # noqa: E731
            per = (1, f, 1, 1)
        else:
            x = rng.standard_normal((4, f + 2))
            w, b = rng.standard_normal((f + 2, f)), rng.standard_normal(f)
            layer = lambda w, b: ref_layers.affine_forward(x, w, b)[0]  # noqa: E731
            per = (1, f)
        gamma, beta = 0.5 + rng.random(f), rng.standard_normal(f)
        mean, var = rng.standard_normal(f), 0.5 + rng.random(f)
        scale = gamma / np.sqrt(var + 1e-5)
        fused = unpack("fuse_batchnorm", call("fuse_batchnorm", fn, w.copy(), b.copy(), gamma.copy(),
                                              beta.copy(), mean.copy(), var.copy()), 2)
        exp_w, exp_b = ref.fuse_batchnorm(w, b, gamma, beta, mean, var)
        shape = (-1,) + (1,) * (w.ndim - 1) if kind == "conv" else (1, -1)
        compare(f"fused {kind} weight", fused[0], exp_w, mistakes=[
            (w * gamma.reshape(shape), "scale each output channel's weights by gamma / sqrt(var + eps), "
                                       "not by gamma alone."),
            (w, "the weights need scaling too: w' = s w with s = gamma / sqrt(var + eps).")])
        compare(f"fused {kind} bias", fused[1], exp_b, mistakes=[
            (scale * b - mean + beta, "the mean is subtracted before scaling: b' = s (b - mean) + beta."),
            (scale * b + beta, "you forgot the running mean: b' = s (b - mean) + beta."),
            (b - mean + beta, "the bias is scaled too: b' = s (b - mean) + beta with s = gamma / "
                              "sqrt(var + eps).")])
        unfused = layer(w, b)
        unfused = gamma.reshape(per) * (unfused - mean.reshape(per)) / np.sqrt(var.reshape(per) + 1e-5) + beta.reshape(per)
        got = layer(np.asarray(fused[0], dtype=float), np.asarray(fused[1], dtype=float))
        err = float(np.abs(got - unfused).max())
        if not err <= 1e-5:
            raise CheckError(f"the fused {kind} layer's output differs from layer + batch norm by "
                             f"{err:.2g} (should be <= 1e-5).")
        worst = max(worst, err)
    return (f"fuse_batchnorm: the fused conv and linear layers reproduce layer + batch norm "
            f"(largest difference {worst:.1e}, <= 1e-5).")


# --- 7. a batch-norm network at test time ---------------------------------------------------

def _bn_net_case(rng, dims, n):
    from ..reference.networks import init_bn_mlp
    params = init_bn_mlp(dims, seed=int(rng.integers(1 << 30)))
    for k in params:
        if k.startswith(("b", "gamma")):
            params[k] = params[k] + 0.1 * rng.standard_normal(params[k].shape)
    state = {i: _state(rng, d) for i, d in enumerate(dims[1:-1], start=1)}
    return params, state, rng.standard_normal((n, dims[0]))


@checker("bn_mlp_forward", exercise=("networks.bn_mlp_loss",), builds_on=NORM_NAMES,
         forbids=("networks.bn_mlp_training_loss",))
def bn_mlp_forward(fn, *, seed=0):
    """Check the scores of (affine - BN - ReLU) x (L-1) - affine in both modes, the running
    statistics, and that a test-mode prediction does not depend on the batch."""
    from ..reference.networks import bn_mlp_loss
    rng = np.random.default_rng(seed)
    for dims in ([4, 6, 3], [3, 5, 4, 2]):
        params, state, X = _bn_net_case(rng, dims, 7)
        for mode in ("train", "test"):
            got_state, exp_state = copy.deepcopy(state), copy.deepcopy(state)
            scores = call("bn_mlp_forward", fn, copy.deepcopy(params), got_state, X.copy(), mode)
            exp = bn_mlp_loss(params, X, state=exp_state, mode=mode, momentum=0.99)
            other = bn_mlp_loss(params, X, state=copy.deepcopy(state),
                                mode="train" if mode == "test" else "test", momentum=0.99)
            compare(f"bn_mlp_forward scores ({mode} mode)", scores, exp, mistakes=[
                (other, f"these are the {'train' if mode == 'test' else 'test'}-mode scores: pass "
                        f"mode={mode!r} on to every batch norm layer.")])
            for i in exp_state:
                if i not in got_state:
                    raise CheckError(f"state[{i}] is missing: layer {i}'s batch norm keeps its "
                                     f"running statistics in state[{i}].")
                compare_dict(f"state[{i}] after a {mode}-mode pass", got_state[i], exp_state[i])
        alone = np.concatenate([np.asarray(call("bn_mlp_forward", fn, copy.deepcopy(params),
                                                copy.deepcopy(state), X[i:i + 1].copy(), "test"))
                                for i in range(len(X))])
        compare("test-mode scores of each sample scored alone (batch size 1)", alone,
                bn_mlp_loss(params, X, state=copy.deepcopy(state), mode="test"))
    return ("bn_mlp_forward: right in train and test mode; at test time a sample's scores do "
            "not depend on the batch it comes in.")
