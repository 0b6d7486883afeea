"""Checkers for notebook 02, modular layers in numpy.

Layer checkers run the student's ``forward`` and ``backward`` on random inputs drawn from
``seed``, compare with :mod:`coursekit.reference.layers`, and check every backward against a
numerical gradient of the student's own forward (float64, rel_error below
:data:`GRAD_THRESHOLD`). Graded (``graded=``), a network checker runs the network with
coursekit's layers in place of the student's, so a mistake in a layer costs that layer's
points only; the self-check runs the student's own layers and says
when the network code is right but a layer it calls is not.
"""
from __future__ import annotations

import copy

import numpy as np

from . import CheckError
from .checker import checker
from .diagnose import compare, compare_dict
from .gradcheck import GRAD_THRESHOLD, check_gradients, numerical_gradient_array
from .student import call, unpack
from ..reference import stand_in
from ..reference import layers as ref
from ..reference import networks as ref_nets
from ..reference import optim as ref_optim
from ..reference.backprop import rel_error
from .backprop import check_softmax_case, softmax_cases

#: the notebook's names for the exercises networks build on -> their reference names
LAYER_NAMES = {name: f"layers.{name}" for name in (
    "affine_forward", "affine_backward", "relu_forward", "relu_backward", "leaky_relu_forward",
    "leaky_relu_backward", "sigmoid_forward", "sigmoid_backward", "tanh_forward",
    "tanh_backward", "elu_forward", "elu_backward", "softmax_loss")}
LAYER_NAMES["sgd_momentum"] = "optim.sgd_momentum"


def _reference_activations() -> dict:
    return {act: (stand_in(f"layers.{act}_forward"), stand_in(f"layers.{act}_backward"))
            for act in ref_nets.ACTIVATIONS}


# --- 1. affine ------------------------------------------------------------------------------

@checker("affine", exercise=("layers.affine_forward", "layers.affine_backward"))
def affine(affine_forward, affine_backward, *, seed=0):
    """Check out = x w + b (x of any shape (N, d1, ..., dk)) and its three gradients."""
    rng = np.random.default_rng(seed)
    worst = 0.0
    for x_shape, m in (((4, 5), 3), ((2, 3, 4), 5)):
        x = rng.standard_normal(x_shape)
        w, b = rng.standard_normal((int(np.prod(x_shape[1:])), m)), rng.standard_normal(m)
        out, cache = unpack("affine_forward", call("affine_forward", affine_forward,
                                                   x.copy(), w.copy(), b.copy()), 2)
        exp_out, exp_cache = ref.affine_forward(x, w, b)
        compare("affine_forward out", out, exp_out, mistakes=[
            (exp_out - b, "you forgot to add the bias b.")])
        dout = rng.standard_normal(exp_out.shape)
        grads = unpack("affine_backward", call("affine_backward", affine_backward, dout.copy(),
                                               cache), 3)
        exp = ref.affine_backward(dout, exp_cache)
        compare("dx", grads[0], exp[0], n=x.shape[0])
        compare("dw", grads[1], exp[1], n=x.shape[0])
        compare("db", grads[2], exp[2], n=x.shape[0], mistakes=[
            (dout.mean(axis=0), "db sums dout over the batch; you averaged it.")])
        worst = max(worst, check_gradients(
            "affine", lambda x, w, b: call("affine_forward", affine_forward, x, w, b),
            {"x": x, "w": w, "b": b}, dict(zip("xwb", grads)), dout))
    return (f"affine: out, dx, dw, db right for 2-D and 4-D x; numerical gradient rel_error "
            f"{worst:.1e} (< {GRAD_THRESHOLD:g}).")


# --- 2./3. activations ----------------------------------------------------------------------

def _activation(name, forward, backward, x, rng, extra=None, mistakes=()):
    """Check one elementwise activation; returns the worst numerical rel_error."""
    extra = extra or {}

    def fwd(x, **given):  # the student's forward, extra arguments passed by position
        args = [given.get(k, v) for k, v in extra.items()]
        return call(f"{name}_forward", forward, x, *copy.deepcopy(args))

    given = x.copy()
    with np.errstate(all="ignore"):
        out, cache = unpack(f"{name}_forward", fwd(given), 2)
    if not np.array_equal(given, x):
        raise CheckError(f"{name}_forward changed its input x in place (x[x < 0] = ..., x *= ..., "
                         "or out=x): the layer before may still need x, and your cache then holds "
                         "the changed values. Compute the output into a new array.")
    exp_out, exp_cache = getattr(ref, f"{name}_forward")(x, **extra)
    compare(f"{name}_forward out", out, exp_out)
    dout = rng.standard_normal(x.shape)
    with np.errstate(all="ignore"):
        grads = call(f"{name}_backward", backward, dout.copy(), cache)
    exp = getattr(ref, f"{name}_backward")(dout, exp_cache)
    if isinstance(exp, tuple):  # PReLU: (dx, dalpha)
        grads = unpack(f"{name}_backward", grads, len(exp))
        names = ["dx", "dalpha"]
    else:
        grads, exp, names = (grads,), (exp,), ["dx"]
    for label, got, want in zip(names, grads, exp):
        compare(f"{name}_backward {label}", got, want, n=x.shape[0],
                mistakes=[(m(dout, x), msg) for key, m, msg in mistakes if key == label])
    inputs = {"x": x, **{k: v for k, v in extra.items() if isinstance(v, np.ndarray)}}
    return check_gradients(name, fwd, inputs, dict(zip(["x", "alpha"], grads)), dout)


def _test_input(rng, shape=(4, 5)):
    x = rng.standard_normal(shape) * 2
    return np.where(np.abs(x) < 1e-3, 0.5, x)  # keep away from the kink at 0


@checker("relu_family",
         exercise=("layers.relu_forward", "layers.relu_backward", "layers.leaky_relu_forward",
                   "layers.leaky_relu_backward", "layers.prelu_forward", "layers.prelu_backward"))
def relu_family(relu_forward, relu_backward, leaky_relu_forward, leaky_relu_backward,
                prelu_forward, prelu_backward, *, seed=0):
    """Check ReLU, leaky ReLU (alpha = 0.01 and another) and PReLU (with dalpha)."""
    rng = np.random.default_rng(seed)
    pos = lambda x: (x > 0).astype(float)  # noqa: E731
    worst = _activation("relu", relu_forward, relu_backward, _test_input(rng), rng, mistakes=[
        ("dx", lambda d, x: pos(x), "relu_backward must multiply by dout: dx = dout * (x > 0)."),
        ("dx", lambda d, x: d * (x < 0), "the gradient passes where x > 0, not where x < 0.")])
    for alpha in (0.01, 0.2):
        worst = max(worst, _activation(
            "leaky_relu", leaky_relu_forward, leaky_relu_backward, _test_input(rng), rng,
            {"alpha": alpha}, mistakes=[
                ("dx", lambda d, x, a=alpha: np.where(x > 0, d, a),
                 "for x <= 0 the gradient is alpha * dout, not alpha."),
                ("dx", lambda d, x: d * pos(x), "for x <= 0 the gradient is alpha * dout, "
                                                "not 0 (that is plain ReLU).")]))
    x = _test_input(rng)
    alpha = rng.uniform(0.05, 0.3, x.shape[1])
    worst = max(worst, _activation(
        "prelu", prelu_forward, prelu_backward, x, rng, {"alpha": alpha}, mistakes=[
            ("dalpha", lambda d, x: np.sum(d * x, axis=0),
             "dalpha only gets gradient where x <= 0 (for x > 0 the output does not use alpha)."),
            ("dx", lambda d, x: np.where(x > 0, d, alpha), "for x <= 0, dx = alpha * dout.")]))
    return (f"ReLU, leaky ReLU and PReLU (dx and dalpha) are right; numerical gradient "
            f"rel_error {worst:.1e} (< {GRAD_THRESHOLD:g}).")


@checker("smooth_activations",
         exercise=("layers.sigmoid_forward", "layers.sigmoid_backward", "layers.tanh_forward",
                   "layers.tanh_backward", "layers.elu_forward", "layers.elu_backward"))
def smooth_activations(sigmoid_forward, sigmoid_backward, tanh_forward, tanh_backward,
                       elu_forward, elu_backward, *, seed=0):
    """Check sigmoid (also at +-1000), tanh and ELU, forward and backward."""
    rng = np.random.default_rng(seed)
    big = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0]])
    with np.errstate(all="ignore"):
        out, _ = unpack("sigmoid_forward", call("sigmoid_forward", sigmoid_forward, big.copy()), 2)
    if not np.all(np.isfinite(np.asarray(out, dtype=float))):
        raise CheckError("sigmoid_forward gives NaN or inf at x = +-1000: exp(1000) overflows. "
                         "Use 1 / (1 + exp(-x)) for x >= 0 and exp(x) / (1 + exp(x)) for x < 0.")
    compare("sigmoid_forward at x = +-1000", out, ref.sigmoid_forward(big)[0], atol=1e-12)
    s = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    worst = _activation("sigmoid", sigmoid_forward, sigmoid_backward, _test_input(rng), rng, mistakes=[
        ("dx", lambda d, x: d * x * (1 - x), "the derivative is s (1 - s) with s = sigmoid(x), "
                                             "the forward output, not x itself."),
        ("dx", lambda d, x: s(x) * (1 - s(x)), "multiply the local gradient by dout.")])
    t = np.tanh
    worst = max(worst, _activation("tanh", tanh_forward, tanh_backward, _test_input(rng), rng, mistakes=[
        ("dx", lambda d, x: d * (1 - t(t(x)) ** 2), "you applied tanh twice: the cache already "
                                                    "holds tanh(x), so dx = dout * (1 - out^2)."),
        ("dx", lambda d, x: d * (1 - t(x)), "the derivative of tanh is 1 - tanh(x)^2 (squared)."),
        ("dx", lambda d, x: d * (1 - x ** 2), "use tanh(x), not x: dx = dout * (1 - tanh(x)^2).")]))
    for alpha in (1.0, 0.5):
        worst = max(worst, _activation(
            "elu", elu_forward, elu_backward, _test_input(rng), rng, {"alpha": alpha}, mistakes=[
                ("dx", lambda d, x, a=alpha: np.where(x > 0, d, d * a * (np.exp(x) - 1)),
                 "for x <= 0 the derivative of alpha (e^x - 1) is alpha e^x (no - 1)."),
                ("dx", lambda d, x: np.where(x > 0, d, d * np.exp(x)),
                 "for x <= 0 the derivative is alpha * e^x: you forgot alpha.")]))
    return (f"sigmoid (stable at +-1000), tanh and ELU are right; numerical gradient rel_error "
            f"{worst:.1e} (< {GRAD_THRESHOLD:g}).")


# --- 4. losses ------------------------------------------------------------------------------

@checker("losses", exercise=("layers.euclidean_loss", "layers.softmax_loss"))
def losses(euclidean_loss, softmax_loss, *, seed=0):
    """Check the mean Euclidean loss 1/(2N) sum ||x - y||^2 and the mean softmax
    cross-entropy, each with its gradient, and softmax's stability for scores ~1000."""
    rng = np.random.default_rng(seed)
    for n, d in ((4, 3), (7, 1)):
        x, y = rng.standard_normal((n, d)), rng.standard_normal((n, d))
        loss, dx = unpack("euclidean_loss", call("euclidean_loss", euclidean_loss, x.copy(), y.copy()), 2)
        exp_loss, exp_dx = ref.euclidean_loss(x, y)
        compare("euclidean loss", loss, exp_loss, n=n)
        compare("euclidean dx", dx, exp_dx, n=n, mistakes=[
            (-exp_dx, "dx is the gradient with respect to x: (x - y) / N, not (y - x) / N.")])
    worst = 0.0
    for scores, y in softmax_cases(rng):
        dscores = check_softmax_case("softmax_loss", softmax_loss, scores, y)
        if np.abs(scores).max() < 100:
            num = numerical_gradient_array(lambda s: np.array(ref.softmax_loss(s, y)[0]),
                                           scores.copy(), np.array(1.0))
            worst = max(worst, rel_error(np.asarray(dscores, dtype=float), num))
    return (f"Euclidean and softmax losses (averaged over the batch, stable) are right; "
            f"numerical gradient rel_error {worst:.1e} (< {GRAD_THRESHOLD:g}).")


# --- 5. SGD with momentum -------------------------------------------------------------------

@checker("sgd_momentum", exercise=("optim.sgd_momentum",))
def sgd_momentum(fn, *, seed=0):
    """Check four steps of delta <- m delta + dw; w <- w - lr delta, state kept between calls."""
    rng = np.random.default_rng(seed)
    for lr, m in ((0.1, 0.9), (float(rng.uniform(0.01, 0.5)), float(rng.uniform(0.5, 0.99)))):
        w = rng.standard_normal((3, 2))
        w_ref, state, state_ref = w.copy(), None, None
        plain = w.copy()
        for step in range(1, 5):
            dw = rng.standard_normal(w.shape)
            before = w.copy()
            w, state = unpack("sgd_momentum", call("sgd_momentum", fn, w.copy(), dw.copy(),
                                                   state, lr=lr, momentum=m), 2)
            w_ref, state_ref = ref_optim.sgd_momentum(w_ref, dw, state_ref, lr=lr, momentum=m)
            plain = plain - lr * dw
            compare(f"w after step {step} (lr={lr:.3g}, momentum={m:.3g})", w, w_ref, mistakes=[
                (before - lr * dw, "that is a plain SGD step: keep delta in state between calls "
                                   "and add momentum * delta to it each step."),
                (plain, "that is plain SGD: you never used momentum * delta."),
                (2 * before - w_ref, "descent subtracts: w - lr * delta."),
            ])
            if not isinstance(state, dict):
                raise CheckError(f"sgd_momentum should return (next_w, state) with state a dict, "
                                 f"got state of type {type(state).__name__}.")
            w = np.asarray(w, dtype=float)
    return ("SGD with momentum: delta <- momentum * delta + dw; w <- w - lr * delta, "
            "over four steps.")


# --- 6. two-layer network -------------------------------------------------------------------

def _bowl(params, X, y):
    """A loss with the networks' interface (loss, grads) that is a bowl in the parameters, a
    different curvature for every weight: momentum and plain SGD follow different paths on it."""
    loss, grads = 0.0, {}
    for name, value in params.items():
        curve = np.linspace(0.5, 1.5, value.size).reshape(value.shape)
        loss += 0.5 * float(np.sum((curve * value) ** 2))
        grads[name] = curve ** 2 * value
    return loss, grads


def _net_case(rng, dims, n=6):
    X = rng.standard_normal((n, dims[0]))
    y = rng.integers(0, dims[-1], n)
    params = ref_nets.init_mlp(dims, seed=int(rng.integers(1 << 30)))
    for k in params:  # non-zero biases, so a bias mistake shows
        if k.startswith("b"):
            params[k] = 0.1 * rng.standard_normal(params[k].shape)
    return X, y, params


def check_network(name, fn, cases, expected, mistakes_for, kwargs_for=lambda c: {}):
    for X, y, params, *rest in cases:
        kwargs = kwargs_for(rest)
        mistakes = mistakes_for(params, X, y, **kwargs)
        scores = call(name, fn, copy.deepcopy(params), X.copy(), **kwargs)
        exp_scores = expected(params, X, None, **kwargs)
        compare(f"{name}(params, X) scores", scores, exp_scores, mistakes=[
            (m, msg) for key, m, msg in mistakes if key == "scores"])
        loss, grads = unpack(f"{name}(params, X, y)", call(name, fn, copy.deepcopy(params),
                                                           X.copy(), y.copy(), **kwargs), 2)
        exp_loss, exp_grads = expected(params, X, y, **kwargs)
        compare(f"{name} loss", loss, exp_loss)
        if isinstance(grads, dict):
            missing = sorted(set(exp_grads) - set(grads))
            if missing:
                raise CheckError(f"{name}: grads is missing {missing}" + (
                    ": does your backward loop stop one layer early (range off by one)?"
                    if "W1" in missing else "."))
        compare_dict(f"{name} grads", grads, exp_grads, keys=sorted(exp_grads), mistakes=[
            (m, msg) for key, m, msg in mistakes if key == "grads"])


def _two_layer_mistakes(params, X, y):
    h = X @ params["W1"] + params["b1"]
    a = np.maximum(h, 0)
    scores = a @ params["W2"] + params["b2"]
    out = [("scores", np.maximum(scores, 0), "no ReLU after the last layer: the scores are "
                                             "the second affine's output."),
           ("scores", h @ params["W2"] + params["b2"], "you skipped the ReLU between the two "
                                                       "affine layers.")]
    if y is not None:
        _, dscores = ref.softmax_loss(scores, y)
        da = dscores @ params["W2"].T
        out.append(("grads", X.T @ da, "dW1 ignores the ReLU: multiply by (h > 0) on the way "
                                       "back through it."))
        out.append(("grads", da.sum(axis=0), "db1 ignores the ReLU: multiply by (h > 0) on "
                                             "the way back through it."))
    return out


@checker("two_layer_loss",
         exercise=("networks.two_layer_loss",),
         builds_on=LAYER_NAMES,
         extra=lambda: {"ACTIVATIONS": _reference_activations()})
def two_layer_net(two_layer_loss, *, seed=0):
    """Check two_layer_loss(params, X, y=None): scores, loss and the four gradients."""
    rng = np.random.default_rng(seed)
    cases = [_net_case(rng, dims) for dims in ([4, 6, 3], [2, 10, 5])]

    check_network("two_layer_loss", two_layer_loss, cases,
                  lambda p, X, y: ref_nets.mlp_loss(p, X, y), _two_layer_mistakes)
    return ("two-layer net: scores, loss and gradients of W1, b1, W2, b2 are right.")


# --- 7. training ----------------------------------------------------------------------------

@checker("train",
         exercise=("networks.train",),
         builds_on=LAYER_NAMES,
         extra=lambda: {"ACTIVATIONS": _reference_activations()})
def train(train_fn, *, seed=0):
    """Check train(params, loss_fn, X, y, epochs=, lr=, momentum=) -> loss history, with
    params updated in place, against coursekit's loop on a small problem."""
    rng = np.random.default_rng(seed)
    X, y, params = _net_case(rng, [3, 8, 3], n=12)
    loss_fn = _bowl  # the checker's own loss: the student's loop is checked, not a network
    kwargs = dict(epochs=5, lr=float(rng.uniform(0.05, 0.5)), momentum=0.9)

    mine = copy.deepcopy(params)
    history = call("train", train_fn, mine, loss_fn, X.copy(), y.copy(), **kwargs)
    theirs = copy.deepcopy(params)
    exp_history = ref_nets.train(theirs, loss_fn, X, y, **kwargs)
    if history is None:
        raise CheckError("train returned None: return the list of losses, one per epoch.")
    if all(np.array_equal(mine[k], params[k]) for k in params):
        raise CheckError("train did not change params: store each updated parameter back "
                         "with params[name] = ... (the dict is updated in place).")
    plain = copy.deepcopy(params)
    plain_history = ref_nets.train(plain, loss_fn, X, y, **{**kwargs, "momentum": 0.0})
    reset = ("that is plain SGD: is the momentum state reset every epoch? Create one state per "
             "parameter before the loop over epochs and pass it back in each step.")
    compare("loss history", np.asarray(history, dtype=float).ravel(), exp_history, mistakes=[
        (plain_history, reset),
        (np.cumsum(exp_history), "each epoch's loss includes the earlier epochs': an "
                                 "accumulator that is never reset. Record each epoch's own loss.")])
    for k in params:
        compare(f"params[{k!r}] after {kwargs['epochs']} epochs", mine[k], theirs[k],
                mistakes=[(plain[k], reset)])
    return (f"train: {kwargs['epochs']} epochs of momentum SGD give the expected losses and "
            "weights.")


# --- 8. any depth ---------------------------------------------------------------------------

@checker("mlp_loss",
         exercise=("networks.mlp_loss",),
         builds_on=LAYER_NAMES,
         extra=lambda: {"ACTIVATIONS": _reference_activations()})
def mlp(mlp_loss, *, seed=0):
    """Check mlp_loss(params, X, y=None, activation=...) for depths 1 to 4."""
    rng = np.random.default_rng(seed)
    cases = [(*_net_case(rng, dims), act) for dims, act in (
        ([4, 6, 3], "relu"), ([3, 5, 4, 2], "relu"), ([3, 5, 4, 6, 3], "tanh"), ([5, 3], "relu"))]

    def mistakes(params, X, y, activation):
        depth = len(params) // 2
        forward = getattr(ref, f"{activation}_forward")  # the wrapper: a students' coursekit replays it
        h = X
        for i in range(1, depth + 1):
            h = forward(h @ params[f"W{i}"] + params[f"b{i}"])[0]
        return [("scores", h, "no activation after the last layer: the scores are the last "
                              "affine's output.")] if depth > 1 else []

    check_network("mlp_loss", mlp_loss, cases,
                  lambda p, X, y, activation: ref_nets.mlp_loss(p, X, y, activation),
                  mistakes, kwargs_for=lambda rest: {"activation": rest[0]})
    return ("mlp_loss: scores, loss and every gradient right for 1 to 4 layers, ReLU and tanh.")


@checker("trained")
def trained(loss_fn, params, X, y, target: float, what: str = "network") -> float:
    """Check a trained network's accuracy on (X, y) reaches ``target``; returns it."""
    scores = call("loss_fn", loss_fn, params, X)
    acc = float(np.mean(np.argmax(np.asarray(scores), axis=1) == y))
    if acc < target:
        raise CheckError(f"the {what} reaches {acc:.1%} on held-out data, below the target "
                         f"{target:.0%}: look at the loss curve (flat? exploding?) and at the "
                         "learning rate.")
    return f"the {what} reaches {acc:.1%} on held-out data (target {target:.0%}).", acc


# --- 9. dead units --------------------------------------------------------------------------

@checker("dead_fraction", exercise=("layers.dead_fraction",))
def dead_fraction(fn, *, seed=0):
    """Check fn(h) -> the fraction of units (columns) that are 0 for every sample."""
    rng = np.random.default_rng(seed)
    for n, d in ((6, 8), (3, 10), (10, 4)):
        h = np.maximum(rng.standard_normal((n, d)) + rng.choice([0.0, -5.0], d), 0)
        h[int(rng.integers(n)), int(rng.integers(d))] = 0.0
        got = call("dead_fraction", fn, h.copy())
        exp = ref.dead_fraction(h)
        compare("dead fraction", got, exp, mistakes=[
            (np.mean(np.all(h == 0, axis=1)), "you counted samples whose units are all 0: a "
                                              "unit is dead when its column is 0 for every "
                                              "sample (np.all over axis 0)."),
            (np.mean(h == 0), "that is the fraction of zero outputs; a unit is dead only if it "
                              "is 0 for every sample."),
            (np.sum(np.all(h == 0, axis=0)), "return a fraction (divide by the number of "
                                             "units), not a count.")])
    return "dead_fraction: the share of units that are 0 for the whole batch."


__all__ = ["GRAD_THRESHOLD", "LAYER_NAMES", "affine", "dead_fraction", "losses", "mlp",
           "relu_family", "sgd_momentum", "smooth_activations", "train", "trained",
           "two_layer_net"]
