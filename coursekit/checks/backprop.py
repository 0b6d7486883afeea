"""Checkers for notebook 01, backpropagation by hand.

Each checker compares the student's answer with :mod:`coursekit.reference.backprop` and
raises :class:`~coursekit.checks.CheckError` naming the likely mistake. The hand calculations
(the scalar and gate graphs) are checked on the student's own numbers (:mod:`.personal`). Checkers that take
the student's functions run them on the notebook's numbers and on random cases drawn from
``seed``; the graded cells call them again with other seeds (hidden tests).
"""
from __future__ import annotations

import copy

import numpy as np

from . import CheckError, personal
from .checker import checker
from .diagnose import compare, compare_dict
from ..reference import backprop as ref
from .student import call as _call, unpack as _unpack

# The numbers of the notebook's worked example (the lecture's); the scalar and gate graphs are
# checked on the student's own numbers (coursekit.checks.personal).
TWO_LAYER_X = np.array([1.0, 0.1])
TWO_LAYER_T = 0.5
TWO_LAYER_LR = 0.2


def two_layer_params() -> dict[str, np.ndarray]:
    """The initial weights of the notebook's 2-2-1 network (a fresh copy each call)."""
    return dict(W1=np.array([[0.5, -0.4], [0.3, 0.8]]), b1=np.array([0.1, -0.2]),
                W2=np.array([[1.5, -1.0]]), b2=np.array([0.4]))


# --- 1. scalar graph ------------------------------------------------------------------------

# The hand calculations' answers on the student's own numbers, worked out here as the notebook's
# worked example works them out: their references (coursekit.reference.backprop.scalar_graph and
# gate_graph) are the exercises' answers, which a students' copy of coursekit does not hold, and a
# recording made at release cannot know every student's numbers.

def _scalar_answers(x: float, y: float, z: float) -> dict[str, float]:
    q = x + y
    return dict(q=q, f=q * z, dq_dx=1.0, dq_dy=1.0, df_dq=z, df_dz=q, df_dx=z, df_dy=z)


def _gate_answers(x: float, y: float, z: float, w: float) -> dict[str, float]:
    top = 2.0   # df/dc of f = 2c; the add passes it to a and b unchanged
    return dict(df_dc=top, df_da=top, df_db=top, df_dx=y * top, df_dy=x * top,
                df_dz=top if z >= w else 0.0, df_dw=0.0 if z >= w else top)


@checker("scalar_graph", exercise=("backprop.scalar_graph",))
def scalar_graph(*, q, f, dq_dx, dq_dy, df_dq, df_dz, df_dx, df_dy):
    """Check the forward values and gradients of f = (x + y) * z at the student's own x, y, z
    (:func:`coursekit.checks.personal.current`; the lecture's -2, 5, -4 without an id)."""
    inputs = personal.current().scalar_graph
    exp = _scalar_answers(**inputs)
    z, qv = inputs["z"], exp["q"]
    compare("q", q, exp["q"])
    compare("f", f, exp["f"])
    compare("dq_dx", dq_dx, exp["dq_dx"])
    compare("dq_dy", dq_dy, exp["dq_dy"])
    swap = "the multiply gate switches: the gradient with respect to one input is the other input"
    compare("df_dq", df_dq, exp["df_dq"], mistakes=[(qv, f"{swap} (z), not q itself.")])
    compare("df_dz", df_dz, exp["df_dz"], mistakes=[(z, f"{swap} (q), not z itself.")])
    for name, got in (("df_dx", df_dx), ("df_dy", df_dy)):
        compare(name, got, exp[name], mistakes=[
            (1.0, "that is only the local gradient of the add; multiply it by the upstream "
                  "gradient df_dq (chain rule)."),
            (qv, "you used q; the upstream gradient reaching q is df_dq = z.")])
    return "scalar graph: forward values and all six gradients are right."


# --- 2. gates -------------------------------------------------------------------------------

@checker("gates",
         exercise=("backprop.add_backward", "backprop.mul_backward", "backprop.max_backward"))
def gates(add_backward, mul_backward, max_backward, *, seed=0):
    """Check the three gate backward functions on scalars and on random arrays."""
    rng = np.random.default_rng(seed)
    cases = [(3.0, -4.0, 2.0)] + [tuple(rng.standard_normal((3, 4)) for _ in range(3))
                                  for _ in range(2)]
    for x, y, dout in cases:
        dx, dy = _unpack("add_backward", _call("add_backward", add_backward, dout,
                                               ref.add_forward(x, y)[1]), 2)
        compare("add_backward dx", dx, dout, mistakes=[
            (x, "the add gate passes dout through unchanged; you returned x.")])
        compare("add_backward dy", dy, dout)

        cache = ref.mul_forward(x, y)[1]
        dx, dy = _unpack("mul_backward", _call("mul_backward", mul_backward, dout, cache), 2)
        switch = "the multiply gate switches: dx = y * dout and dy = x * dout"
        compare("mul_backward dx", dx, y * dout, mistakes=[(x * dout, switch + "."),
                                                           (y, switch + " (you forgot dout).")])
        compare("mul_backward dy", dy, x * dout, mistakes=[(y * dout, switch + "."),
                                                           (x, switch + " (you forgot dout).")])

        cache = ref.max_forward(x, y)[1]
        dx, dy = _unpack("max_backward", _call("max_backward", max_backward, dout, cache), 2)
        exp_dx, exp_dy = ref.max_backward(dout, cache)
        route = "the max gate routes dout to the larger input only; the smaller one gets 0"
        compare("max_backward dx", dx, exp_dx, mistakes=[(exp_dy, route + " (you routed it to the "
                                                                  "smaller input)."),
                                                         (dout, route + ".")])
        compare("max_backward dy", dy, exp_dy, mistakes=[(exp_dx, route + " (you routed it to the "
                                                                  "smaller input)."),
                                                         (dout, route + ".")])
    return "gates: add distributes, mul switches, max routes, on scalars and arrays."


@checker("gate_graph", exercise=("backprop.gate_graph",))
def gate_graph(*, df_dc, df_da, df_db, df_dx, df_dy, df_dz, df_dw):
    """Check the gradients of f = 2 * (x * y + max(z, w)) at the student's own x, y, z, w (z > w;
    the lecture's 3, -4, 2, -1 without an id)."""
    g = personal.current().gate_graph
    exp = _gate_answers(**g)
    compare("df_dc", df_dc, exp["df_dc"])
    compare("df_da", df_da, exp["df_da"], mistakes=[
        (1.0, "the add gate passes on the upstream gradient df_dc, it does not reset it to 1.")])
    compare("df_db", df_db, exp["df_db"], mistakes=[
        (1.0, "the add gate passes on the upstream gradient df_dc, it does not reset it to 1.")])
    compare("df_dx", df_dx, exp["df_dx"], mistakes=[
        (g["x"] * exp["df_da"], "the multiply gate switches: df_dx = y * df_da."),
        (g["y"], "multiply the local gradient y by the upstream gradient df_da.")])
    compare("df_dy", df_dy, exp["df_dy"], mistakes=[
        (g["y"] * exp["df_da"], "the multiply gate switches: df_dy = x * df_da."),
        (g["x"], "multiply the local gradient x by the upstream gradient df_da.")])
    compare("df_dz", df_dz, exp["df_dz"], mistakes=[
        (0.0, "z is the larger input of the max, so it receives all of df_db.")])
    compare("df_dw", df_dw, exp["df_dw"], mistakes=[
        (exp["df_db"], "the max gate routes the gradient to the larger input only: w < z "
                       "gets 0.")])
    return "gate graph: every gradient is right."


# --- 3. one step on the 2-2-1 network -------------------------------------------------------

def _two_layer_cases(seed):
    """(x, t, params): the notebook's numbers, then two random networks."""
    rng = np.random.default_rng(seed)
    cases = [(TWO_LAYER_X, TWO_LAYER_T, two_layer_params())]
    for _ in range(2):
        params = {k: rng.standard_normal(v.shape) for k, v in two_layer_params().items()}
        cases.append((rng.standard_normal(2), float(rng.uniform(0, 1)), params))
    return cases


@checker("two_layer_forward", exercise=("backprop.two_layer_forward", "backprop.euclidean_loss"))
def two_layer_forward(forward, loss, *, seed=0):
    """Check forward(x, params) -> (y, cache) and loss(y, t) -> (C, dy)."""
    for x, t, params in _two_layer_cases(seed):
        y, _ = _unpack("two_layer_forward", _call("two_layer_forward", forward, x.copy(),
                                                  copy.deepcopy(params)), 2)
        exp_y, (_, h, _, _) = ref.two_layer_forward(x, params)
        compare("y (output of two_layer_forward)", y, exp_y, mistakes=[
            (ref.sigmoid(params["W2"] @ h + params["b2"]), "the output unit is linear: no "
                                                           "sigmoid on y."),
            (params["W2"] @ (params["W1"] @ x + params["b1"]) + params["b2"],
             "did you forget the hidden sigmoid?"),
            (params["W2"] @ ref.sigmoid(params["W1"].T @ x + params["b1"]) + params["b2"],
             "row j of W1 holds the weights into hidden unit j: use W1 @ x, not W1.T @ x.")])
        C, dy = _unpack("euclidean_loss", _call("euclidean_loss", loss, exp_y, t), 2)
        exp_C, exp_dy = ref.euclidean_loss(exp_y, t)
        compare("C (the loss)", C, exp_C)
        compare("dy (the loss gradient)", dy, exp_dy, mistakes=[
            (2 * exp_dy, "the 1/2 in C = 1/2 ||y - t||^2 cancels the 2 from the square: dy = y - t.")])
    return "forward pass and loss: right on the notebook's numbers and on random weights."


@checker("two_layer_backward", exercise=("backprop.two_layer_backward",))
def two_layer_backward(backward, *, seed=0):
    """Check backward(dy, cache) -> grads, given the cache (x, h, y, params) of the forward."""
    for x, t, params in _two_layer_cases(seed):
        y, cache = ref.two_layer_forward(x, params)
        _, dy = ref.euclidean_loss(y, t)
        grads = _call("two_layer_backward", backward, dy.copy(), copy.deepcopy(cache))
        exp = ref.two_layer_backward(dy, cache)
        h = cache[1]
        dh = params["W2"].T @ dy
        out_sig = dy * y * (1 - y)  # as if the output unit were a sigmoid
        compare_dict("grads", grads, exp, keys=["W2", "b2", "W1", "b1"], mistakes=[
            (np.outer(out_sig, h), "the output unit is linear: do not multiply by y * (1 - y)."),
            (out_sig, "the output unit is linear: do not multiply by y * (1 - y)."),
            (np.outer(dh, x), "did you forget the derivative of the hidden sigmoids, h * (1 - h)?"),
            (dh, "did you forget the derivative of the hidden sigmoids, h * (1 - h)?"),
            (np.outer(x, dh * h * (1 - h)), "the transpose of dz x^T: dW1[j, i] = dz[j] * x[i]."),
            (np.outer(dy, x), "dW2 = dy h^T uses the hidden activations h (the input to this "
                              "layer), not x.")])
    return "backward pass: all four gradients are right."


@checker("sgd_step", exercise=("backprop.sgd_step",))
def sgd_step(step, *, seed=0):
    """Check step(params, grads, lr) -> new params (theta - lr * grad), inputs untouched."""
    rng = np.random.default_rng(seed)
    for lr in (TWO_LAYER_LR, float(rng.uniform(0.01, 1))):
        params = {k: rng.standard_normal(v.shape) for k, v in two_layer_params().items()}
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        before = copy.deepcopy(params)
        new = _call("sgd_step", step, params, grads, lr)
        exp = ref.sgd_step(before, grads, lr)
        if not isinstance(new, dict) or sorted(new) != sorted(exp):
            raise CheckError(f"sgd_step should return a dict with keys {sorted(exp)}, got "
                             f"{sorted(new) if isinstance(new, dict) else type(new).__name__}.")
        for k in params:
            compare(f"new params[{k!r}]", new[k], exp[k], mistakes=[
                (before[k] + lr * grads[k], "gradient descent subtracts: theta - lr * grad."),
                (before[k] - grads[k], "you forgot the learning rate lr.")])
            if not np.array_equal(params[k], before[k]):
                raise CheckError(f"sgd_step changed params[{k!r}] in place: return new arrays "
                                 "(the hand calculation compares old and new weights).")
    return "SGD step: theta - lr * grad, old parameters left untouched."


# --- 4. f(x, W) = ||W x||^2 -----------------------------------------------------------------

NORM_SQ_X = np.array([0.2, 0.4])
NORM_SQ_W = np.array([[0.1, 0.5], [-0.3, 0.8]])


@checker("norm_sq", exercise=("backprop.norm_sq_forward", "backprop.norm_sq_backward"))
def norm_sq(forward, backward, *, seed=0):
    """Check f = ||W x||^2 forward and its gradients dx = 2 W^T q, dW = 2 q x^T."""
    rng = np.random.default_rng(seed)
    cases = [(NORM_SQ_X, NORM_SQ_W)] + [(rng.standard_normal(4), rng.standard_normal((3, 4)))
                                        for _ in range(2)]
    for x, W in cases:
        f, cache = _unpack("norm_sq_forward", _call("norm_sq_forward", forward, x.copy(),
                                                    W.copy()), 2)
        exp_f, (_, _, q) = ref.norm_sq_forward(x, W)
        compare("f", f, exp_f, mistakes=[(np.sqrt(exp_f), "f is the squared norm: no square "
                                                          "root.")])
        dx, dW = _unpack("norm_sq_backward", _call("norm_sq_backward", backward, 1.0, cache), 2)
        exp_dx, exp_dW = ref.norm_sq_backward(1.0, (x, W, q))
        compare("dW", dW, exp_dW, mistakes=[(2 * np.outer(x, q), "the transpose of 2 q x^T: "
                                                                  "dW must have W's shape.")])
        square = W.shape[0] == W.shape[1]
        compare("dx", dx, exp_dx, mistakes=[(2 * W @ q, "dx = 2 W^T q: you used W instead of "
                                                        "W^T (a missing transpose).")] if square else [])
    return "||Wx||^2: f, dx = 2 W^T q and dW = 2 q x^T are right, square and non-square W."


# --- 5. softmax + NLL -----------------------------------------------------------------------

def softmax_cases(rng) -> list[tuple[np.ndarray, np.ndarray]]:
    """(scores, labels) cases for a softmax loss: small, wide, and scores around 1000."""
    return [(rng.standard_normal((5, 3)), rng.integers(0, 3, 5)),
            (rng.standard_normal((8, 10)), rng.integers(0, 10, 8)),
            (1000 * rng.standard_normal((4, 6)), rng.integers(0, 6, 4))]


def check_softmax_case(name: str, fn, scores, y):
    """Run the student's ``fn(scores, y) -> (mean loss, dscores)`` on one case and compare it
    with the reference, naming an unstable exp or a gradient that is not (p - onehot(y)) / N.
    Returns the student's dscores."""
    with np.errstate(all="ignore"):
        loss, dscores = _unpack(name, _call(name, fn, scores.copy(), y.copy()), 2)
    n = len(y)
    exp_loss, exp_d = ref.softmax_nll(scores, y)
    finite = lambda v: bool(np.all(np.isfinite(np.asarray(v, dtype=float))))  # noqa: E731
    if not finite(dscores):
        raise CheckError(f"{name} gives NaN or inf for large scores (up to ~1000): subtract "
                         "each row's max before exp, it does not change the softmax.")
    if not finite(loss):
        raise CheckError(f"{name}'s loss is {float(np.asarray(loss, dtype=float)):g} for large scores "
                         "(up to ~1000) although dscores is finite: even after subtracting the max, "
                         "a probability can underflow to 0, and log(0) = -inf. Take log p = shifted "
                         "- log(sum(exp(shifted))) (log-sum-exp), not np.log of the probabilities.")
    compare(f"{name} loss", loss, exp_loss, n=n)
    p = exp_d * n
    p[np.arange(n), y] += 1
    compare(f"{name} dscores", dscores, exp_d, n=n, mistakes=[
        (p / n, "that is p / N: the gradient is (p - onehot(y)) / N, subtract 1 at the true class."),
        (p, "that is the probabilities p: the gradient is (p - onehot(y)) / N.")])
    return dscores


@checker("softmax_nll", exercise=("backprop.softmax_nll",))
def softmax_nll(fn, *, seed=0):
    """Check fn(scores, y) -> (mean loss, dscores) including numerical stability."""
    for scores, y in softmax_cases(np.random.default_rng(seed)):
        check_softmax_case("softmax_nll", fn, scores, y)
    return "softmax + NLL: loss and gradient (p - y) / N are right, and stable for large scores."


# --- 6. numerical gradient ------------------------------------------------------------------

@checker("numerical_gradient", exercise=("backprop.numerical_gradient",))
def numerical_gradient(fn, *, seed=0):
    """Check fn(f, x, h) -> centred-difference gradient of scalar f at an n-D array x."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((3, 4))
    cases = [  # (f, its analytic gradient, x): a 2-D and a 1-D input
        (lambda v: float(np.sum(np.sin(v) * A) + np.sum(v ** 3)),
         lambda v: np.cos(v) * A + 3 * v ** 2, rng.standard_normal((3, 4))),
        (lambda v: float(np.sum(v ** 3) + np.sum(np.sin(v))),
         lambda v: 3 * v ** 2 + np.cos(v), 2 * rng.standard_normal(5))]
    h = 1e-5
    for fx, gx, x in cases:
        x_before = x.copy()
        got = _call("numerical_gradient", fn, fx, x, h, _hint="" if x.ndim == 1 else
                    "x is 2-D here: loop over every element with np.ndindex(x.shape).")
        if not np.array_equal(x, x_before):
            raise CheckError("numerical_gradient changed x: restore x[i] to its old value after "
                             "evaluating f at x[i] + h and x[i] - h.")
        fwd = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            xp = x.copy()
            xp[i] += h
            fwd[i] = (fx(xp) - fx(x)) / h
        compare("numerical gradient", got, gx(x), rtol=1e-6, atol=1e-7, mistakes=[
            (fwd, "that is the forward difference (f(x+h) - f(x)) / h: use the centred "
                  "difference (f(x+h) - f(x-h)) / (2h), its error is O(h^2) instead of O(h).")])
    # h must be used: with a large h the centred difference differs measurably from h=1e-5
    x = 1 + rng.random(4)
    cube = lambda v: float(np.sum(v ** 3))  # noqa: E731
    got = _call("numerical_gradient", fn, cube, x.copy(), 1e-2)
    # the centred difference of x^3 is 3x^2 + h^2: 1e-4 away from 3x^2 at h = 1e-2
    compare("numerical gradient with h=1e-2", got, ref.numerical_gradient(cube, x.copy(), 1e-2),
            rtol=1e-7, atol=1e-9, mistakes=[
                (3 * x ** 2, "you ignored the h argument (the result does not change with h).")])
    return "numerical_gradient: centred difference, any shape, x restored, h respected."


@checker("rel_error", exercise=("backprop.rel_error",))
def rel_error(fn, *, seed=0):
    """Check fn(a, b) -> max |a - b| / max(1e-8, |a| + |b|)."""
    rng = np.random.default_rng(seed)
    cases = [(rng.standard_normal((3, 4)), rng.standard_normal((3, 4))),
             (np.array([1.0, -2.0, 3.0]), np.array([1.0, -2.5, 3.0])),
             (np.zeros(3), np.zeros(3))]
    for a, b in cases:
        got = _call("rel_error", fn, a.copy(), b.copy())
        exp = ref.rel_error(a, b)
        compare("rel_error", got, exp, mistakes=[
            (np.mean(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))),
             "that is the mean relative error; report the largest (max)."),
            (np.max(np.abs(a - b)), "that is the absolute error; divide by |a| + |b|.")])
    return "rel_error: the largest elementwise relative error, safe when both are 0."
