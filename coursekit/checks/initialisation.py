"""Checkers for notebook 05, initialisation experiments.

Random weights and dropout masks cannot be compared value by value with a reference that
draws its own random numbers, so those checkers test the statistics a right answer must have
(shape, mean, standard deviation, the kept fraction, the scaling) on large draws, with
tolerances many standard errors wide, and name the mistake from the measured ratio: the
fan_out in place of fan_in, the variance used as a standard deviation, He's missing 2,
dropout that is not inverted. Deterministic exercises are compared with
:mod:`coursekit.reference.initialisation` exactly.
"""
from __future__ import annotations

import numpy as np

from . import CheckError
from .checker import checker
from .diagnose import compare
from .student import call, unpack
from ..reference import initialisation as ref

INIT_NAMES = {"init_weights": "initialisation.init_weights", "forward_activations": "initialisation.forward_activations"}



# --- 1. initialisation schemes --------------------------------------------------------------

def _std_mistakes(scheme, fan_in, fan_out):
    """(wrong std, message) pairs for a scheme's usual slips."""
    return {
        "small": [(1.0, "'small' is N(0, 1) * 0.01.")],
        "large": [(0.01, "'large' is N(0, 1) * 1.0.")],
        "xavier": [(1 / np.sqrt(fan_out), "Xavier scales by the number of INPUTS: 1 / sqrt(fan_in), not fan_out."),
                   (1 / fan_in, "1 / fan_in is the variance; the standard deviation is 1 / sqrt(fan_in)."),
                   (np.sqrt(2 / (fan_in + fan_out)), "that is Glorot's average of fan_in and fan_out; "
                                                     "this course (and the lecture) uses 1 / sqrt(fan_in)."),
                   (np.sqrt(2 / fan_in), "that is He's sqrt(2 / fan_in); Xavier is 1 / sqrt(fan_in).")],
        "he": [(1 / np.sqrt(fan_in), "He has a factor 2 for the half of the ReLU's inputs that it zeroes: "
                                     "sqrt(2 / fan_in)."),
               (2 / fan_in, "2 / fan_in is the variance; the standard deviation is sqrt(2 / fan_in)."),
               (np.sqrt(2 / fan_out), "He scales by the number of INPUTS: sqrt(2 / fan_in), not fan_out."),
               (np.sqrt(2) / fan_in, "the square root covers the whole fraction: sqrt(2 / fan_in).")],
    }[scheme]


@checker("init_weights", exercise=("initialisation.init_weights",), builds_on=INIT_NAMES)
def init_weights(fn, *, seed=0):
    """Check each scheme's shape, mean and standard deviation on (fan_in, fan_out) = (400, 100)
    and (100, 400), and a ValueError for an unknown scheme."""
    rng = np.random.default_rng(seed)
    for fan_in, fan_out in ((400, 100), (100, 400)):
        for scheme in ("small", "large", "xavier", "he"):
            W = np.asarray(call("init_weights", fn, fan_in, fan_out, scheme, rng), dtype=float)
            where = f"init_weights({fan_in}, {fan_out}, {scheme!r})"
            if W.shape != (fan_in, fan_out):
                hint = ": a missing transpose?" if W.shape == (fan_out, fan_in) else "."
                raise CheckError(f"{where} has shape {W.shape}, expected ({fan_in}, {fan_out}){hint}")
            want = ref.SCHEMES[scheme](fan_in)
            std, mean = float(W.std()), float(W.mean())
            if abs(std / want - 1) > 0.05:
                for wrong, message in _std_mistakes(scheme, fan_in, fan_out):
                    if abs(std / wrong - 1) < 0.05:
                        raise CheckError(f"{where}: standard deviation {std:.4g}, expected {want:.4g}: {message}")
                raise CheckError(f"{where}: standard deviation {std:.4g}, expected {want:.4g}.")
            if abs(mean) > 5 * want / np.sqrt(W.size):
                raise CheckError(f"{where}: mean {mean:.3g}, expected 0: draw from a zero-mean "
                                 "Gaussian, rng.standard_normal.")
    twice = [np.asarray(call("init_weights", fn, 20, 10, "he", rng)) for _ in range(2)]
    if np.array_equal(twice[0], twice[1]):
        raise CheckError("two calls gave the same weights: draw them from the rng you are given.")
    try:
        got = call("init_weights", fn, 20, 10, "zeros", rng)
    except CheckError as err:
        if "ValueError" not in str(err):
            raise
    else:
        raise CheckError(f"init_weights(20, 10, 'zeros') returned {type(got).__name__}; raise a "
                         "ValueError that names the schemes it knows.")
    return ("init_weights: the right shape and standard deviation for small, large, Xavier and "
            "He, and a ValueError for an unknown scheme.")


# --- 2. activation statistics ---------------------------------------------------------------

@checker("forward_activations",
         exercise=("initialisation.forward_activations",),
         builds_on=INIT_NAMES)
def forward_activations(fn, *, seed=0):
    """Check the list of layer outputs f(h W) for tanh and ReLU."""
    rng = np.random.default_rng(seed)
    for activation in ("tanh", "relu"):
        X = rng.standard_normal((6, 5))
        weights = [rng.standard_normal((5, 5)) * 0.7 for _ in range(3)]
        got = call("forward_activations", fn, X.copy(), [w.copy() for w in weights], activation)
        exp = ref.forward_activations(X, weights, activation)
        if not isinstance(got, (list, tuple)):
            raise CheckError(f"forward_activations should return a list of arrays, one per layer; "
                             f"got {type(got).__name__}.")
        if len(got) == len(exp) + 1:
            raise CheckError(f"forward_activations returned {len(got)} arrays for {len(exp)} layers: "
                             "leave out the input X, return h_1 ... h_L.")
        if len(got) != len(exp):
            raise CheckError(f"forward_activations returned {len(got)} arrays, expected one per "
                             f"layer ({len(exp)}).")
        f = ref.ACTIVATIONS[activation]
        pre, before = [], []
        h = X
        for w in weights:
            pre.append(h @ w)
            before.append(f(h) @ w)
            h = f(h @ w)
        for i, (g, e) in enumerate(zip(got, exp)):
            compare(f"forward_activations layer {i + 1} ({activation})", g, e, mistakes=[
                (pre[i], f"that is h W before the {activation}: apply the activation to each layer's output."),
                (before[i], "the activation comes after the product: h_i = f(h_{i-1} W_i).")])
    return "forward_activations: h_i = f(h_{i-1} W_i) for tanh and ReLU, layer 1 first."


@checker("lecture_numbers")
def lecture_numbers(stats: dict):
    """Check the student's per-layer (mean, std) for the lecture's five settings against the
    lecture's numbers (tolerances, not exact random numbers)."""
    def std(key, layer):
        if key not in stats:
            raise CheckError(f"stats has no entry {key!r}: run all five settings.")
        return stats[key][layer - 1][1]
    expectations = [
        (("small", "tanh"), 1, 0.19, 0.24, "0.01 * sqrt(500) = 0.22 before the tanh"),
        (("small", "tanh"), 2, 0.040, 0.056, "each layer shrinks the std by about 0.22"),
        (("small", "tanh"), 10, 0, 1e-5, "collapsed to 0"),
        (("large", "tanh"), 10, 0.95, 1.0, "saturated at +-1"),
        (("xavier", "tanh"), 1, 0.60, 0.66, "about 0.63"),
        (("xavier", "tanh"), 10, 0.18, 0.28, "slowly decaying to about 0.23"),
        (("xavier", "relu"), 10, 0, 0.1 * std(("xavier", "relu"), 1), "collapsing: below a tenth of layer 1"),
        (("he", "relu"), 10, 0.5 * std(("he", "relu"), 1), 2 * std(("he", "relu"), 1), "about constant"),
    ]
    for key, layer, low, high, what in expectations:
        value = std(key, layer)
        if not low <= value <= high:
            raise CheckError(f"{key[0]} + {key[1]}: layer {layer} std {value:.3g}, expected {what} "
                             f"(between {low:.3g} and {high:.3g}).")
    return ("the five settings reproduce the lecture: small weights collapse, large ones saturate, "
            "Xavier suits tanh, He suits ReLU.")


# --- 3. gradient statistics -----------------------------------------------------------------

@checker("backward_grad_norms",
         exercise=("initialisation.backward_grad_norms",),
         builds_on=INIT_NAMES)
def backward_grad_norms(fn, *, seed=0):
    """Check the per-layer weight-gradient norms for tanh and ReLU."""
    rng = np.random.default_rng(seed)
    for activation in ("tanh", "relu"):
        X = rng.standard_normal((7, 6))
        weights = [rng.standard_normal((6, 6)) * 0.6 for _ in range(4)]
        dout = rng.standard_normal((7, 6))
        got = call("backward_grad_norms", fn, X.copy(), [w.copy() for w in weights], activation, dout.copy())
        exp = ref.backward_grad_norms(X, weights, activation, dout)
        if isinstance(got, (list, tuple)) and len(got) != len(exp):
            raise CheckError(f"backward_grad_norms returned {len(got)} norms for {len(exp)} layers.")
        hs = [X] + ref.forward_activations(X, weights, activation)
        no_derivative, dh = [], dout
        for i in range(len(weights), 0, -1):
            no_derivative.append(float(np.linalg.norm(hs[i - 1].T @ dh)))
            dh = dh @ weights[i - 1].T
        compare(f"backward_grad_norms ({activation})", got, exp, mistakes=[
            (exp[::-1], "the norms are in reverse order: return layer 1 first."),
            (no_derivative[::-1], f"you skipped the {activation}'s local gradient: dz = dh * f'(z) "
                                  "before dW = h_{i-1}^T dz.")])
    return "backward_grad_norms: ||dW_i|| right for tanh and ReLU, layer 1 first."


# --- 4. dropout -----------------------------------------------------------------------------

@checker("dropout",
         exercise=("initialisation.dropout_forward", "initialisation.dropout_backward"),
         builds_on=INIT_NAMES)
def dropout(forward, backward, *, seed=0):
    """Check inverted dropout on a large array: values 0 or x / keep, the kept fraction,
    the expected value, test mode, fresh masks, and dx = dout * mask."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((500, 400)) + 2.0
    for keep in (0.8, 0.5):
        out, cache = unpack("dropout_forward", call("dropout_forward", forward, x.copy(), keep, "train", rng), 2)
        out = np.asarray(out, dtype=float)
        if out.shape != x.shape:
            raise CheckError(f"dropout_forward out has shape {out.shape}, expected x's {x.shape}.")
        kept = out != 0
        fraction = float(kept.mean())
        if abs(fraction - (1 - keep)) < 0.01 and keep != 0.5:
            raise CheckError(f"you kept {fraction:.1%} of the values with keep={keep}: keep is the "
                             "probability of KEEPING a value (rng.random(shape) < keep).")
        if abs(fraction - keep) > 0.01:
            raise CheckError(f"you kept {fraction:.1%} of the values, expected keep = {keep:.0%}.")
        if np.allclose(out[kept], x[kept]):
            raise CheckError("the kept values are unchanged: inverted dropout divides them by keep at "
                             "train time, so the expected value stays x and test time needs nothing.")
        if np.allclose(out[kept], x[kept] * keep):
            raise CheckError("divide the kept values by keep (you multiplied).")
        compare(f"dropout_forward kept values (keep={keep})", out[kept], x[kept] / keep)
        dout = rng.standard_normal(x.shape)
        dx = np.asarray(call("dropout_backward", backward, dout.copy(), cache), dtype=float)
        compare(f"dropout_backward dx (keep={keep})", dx, np.where(kept, dout / keep, 0.0), mistakes=[
            (np.where(kept, dout, 0.0), "the backward pass scales by 1 / keep too: dx = dout * mask "
                                        "with the same mask (0 or 1 / keep)."),
            (dout / keep, "dropped values get no gradient: multiply dout by the mask.")])
    again, _ = unpack("dropout_forward", call("dropout_forward", forward, x.copy(), 0.5, "train", rng), 2)
    if np.array_equal(np.asarray(again) != 0, kept):
        raise CheckError("two training passes dropped the same values: draw a new mask each time "
                         "from the rng you are given.")
    out, cache = unpack("dropout_forward", call("dropout_forward", forward, x.copy(), 0.5, "test", rng), 2)
    compare("dropout_forward in test mode", out, x, mistakes=[
        (x * 0.5, "inverted dropout already scaled at train time: test mode returns x unchanged.")])
    dout = rng.standard_normal(x.shape)
    compare("dropout_backward in test mode", call("dropout_backward", backward, dout.copy(), cache), dout)
    return ("dropout: inverted (kept values divided by keep at train time), the identity at test "
            "time, a fresh mask per pass, and dx = dout * mask.")


# --- 5. weight penalties --------------------------------------------------------------------

@checker("regularization", exercise=("initialisation.regularization",), builds_on=INIT_NAMES)
def regularization(fn, *, seed=0):
    """Check the L2 and L1 penalties and their gradients."""
    rng = np.random.default_rng(seed)
    W, lam = rng.standard_normal((5, 4)), float(rng.uniform(0.01, 1))
    for kind in ("l2", "l1"):
        penalty, dW = unpack(f"regularization(W, lam, {kind!r})",
                             call("regularization", fn, W.copy(), lam, kind), 2)
        exp_penalty, exp_dW = ref.regularization(W, lam, kind)
        compare(f"{kind} penalty", penalty, exp_penalty, mistakes=[
            (0.5 * lam * np.sum(W * W), "the penalty is lam * sum(W^2) here, without the 1/2."),
            (lam * np.sum(W), "sum |W| (L1) or W^2 (L2): the plain sum lets signs cancel.")])
        compare(f"{kind} gradient", dW, exp_dW, mistakes=[
            (lam * W, "the derivative of lam * W^2 is 2 lam W." if kind == "l2" else
             "the derivative of lam * |W| is lam * sign(W), not lam * W."),
            (2 * lam * np.sign(W), "the derivative of lam * |W| is lam * sign(W).")])
    return "regularization: L2 (lam sum W^2, 2 lam W) and L1 (lam sum |W|, lam sign W) right."


# --- 6. preprocessing -----------------------------------------------------------------------

@checker("channel_mean_subtract",
         exercise=("initialisation.channel_mean_subtract",),
         builds_on=INIT_NAMES)
def channel_mean_subtract(fn, *, seed=0):
    """Check per-channel mean subtraction with the training set's means."""
    rng = np.random.default_rng(seed)
    train = rng.standard_normal((6, 3, 4, 5)) + np.array([5.0, -2.0, 1.0]).reshape(1, 3, 1, 1)
    test = rng.standard_normal((4, 3, 4, 5)) * 2 + 3
    got = unpack("channel_mean_subtract", call("channel_mean_subtract", fn, train.copy(), test.copy()), 3)
    exp = ref.channel_mean_subtract(train, test)
    mean_image = train.mean(axis=0)
    compare("the per-channel mean", got[2], exp[2], mistakes=[
        (test.mean(axis=(0, 2, 3)), "the statistics come from the TRAINING set only.")])
    compare("train, centred", got[0], exp[0], mistakes=[
        (train - mean_image, "that subtracts the mean image (one mean per pixel, AlexNet); subtract "
                             "one mean per channel, averaged over N, H and W (VGG).")])
    compare("test, centred", got[1], exp[1], mistakes=[
        (test - test.mean(axis=(0, 2, 3)).reshape(1, 3, 1, 1),
         "centre the test set with the TRAINING set's means: at test time you have no test statistics.")])
    return "channel_mean_subtract: the training set's per-channel means, subtracted from both sets."
