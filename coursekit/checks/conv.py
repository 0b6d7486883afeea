"""Checkers for notebook 03, convolution and pooling.

Same pattern as :mod:`coursekit.checks.layers`: compare with :mod:`coursekit.reference.conv`
on random cases drawn from ``seed``, check gradients numerically (rel_error below
:data:`~coursekit.checks.gradcheck.GRAD_THRESHOLD`), and name the likely mistake. The fast
convolution is also checked for what makes it fast: no Python loop over output positions.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from . import CheckError, personal
from .checker import checker
from .diagnose import compare
from .gradcheck import GRAD_THRESHOLD, check_gradients
from .layers import check_network, trained
from .student import call, forward_for_backward, seconds_per_step, unpack
from ..reference import conv as ref
from ..reference import networks as ref_nets
from ..reference.backprop import rel_error

#: the notebook's names for the exercises the convnet builds on -> their reference names
CONV_NAMES = {name: f"conv.{name}" for name in (
    "output_size", "conv_forward_naive", "conv_backward_naive", "max_pool_forward", "max_pool_backward",
    "avg_pool_forward", "avg_pool_backward", "im2col", "conv_forward_im2col",
    "conv_backward_im2col")}




def _expect_value_error(name, fn, args, why):
    try:
        got = call(name, fn, *args)
    except CheckError as err:
        if "raised ValueError" in str(err):
            return
        raise
    raise CheckError(f"{name}{args} returned {got!r}; it should raise ValueError because {why}.")


# --- 1. output size -------------------------------------------------------------------------

@checker("output_size", exercise=("conv.output_size",), builds_on=CONV_NAMES)
def output_size(fn, *, seed=0):
    """Check fn(size, kernel, stride, pad) = (W - K + 2P) / S + 1 and its ValueErrors."""
    rng = np.random.default_rng(seed)
    cases = [(32, 5, 1, 2), (7, 3, 1, 0), (7, 3, 2, 0), (227, 11, 4, 0), (5, 3, 2, 1)]
    for _ in range(4):
        k, s, p = int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(0, 3))
        cases.append((k - 2 * p + s * int(rng.integers(1, 12)), k, s, p))
    for size, k, s, p in cases:
        if size < 1:
            continue
        got = call("output_size", fn, size, k, s, p)
        exp = ref.output_size(size, k, s, p)
        compare(f"output_size({size}, {k}, {s}, {p})", got, exp, mistakes=[
            (exp - 1, "the formula is (W - K + 2P) / S + 1: you forgot the + 1 (off by one)."),
            (exp + 1, "off by one: the formula is (W - K + 2P) / S + 1."),
            ((size - k + p) // s + 1, "padding is added on both sides: + 2P, not + P."),
            ((size - k) // s + 1, "you ignored the padding P.")])
        if not isinstance(got, (int, np.integer)):
            raise CheckError(f"output_size({size}, {k}, {s}, {p}) returned {got!r} of type "
                             f"{type(got).__name__}: return an int (use // once you know it divides).")
    _expect_value_error("output_size", fn, (3, 5, 1, 0), "a 5-wide filter does not fit in 3 pixels")
    _expect_value_error("output_size", fn, (7, 3, 3, 0), "(7 - 3) / 3 is not a whole number: "
                                                         "the filter does not tile the input")
    return ("output_size: (W - K + 2P) / S + 1, with a ValueError when the filter does not fit "
            "or does not tile.")


# --- 2. counting ----------------------------------------------------------------------------

def _params_mistakes(c: int, f: int, k: int) -> list[tuple[int, str]]:
    """The wrong parameter counts of F filters K x K on C channels, and what each one means."""
    return [(f * c * k * k, "you forgot the biases: one per filter, F of them."),
            (f * (k * k + 1), "each filter spans all C input channels: C x K x K weights."),
            (f * (c * k * k) + c, "one bias per filter (F), not per input channel.")]


def _macs_mistakes(c: int, size: int, f: int, k: int, out: int) -> list[tuple[int, str]]:
    """The wrong multiply-add counts of that layer on a size x size input (out x out outputs)."""
    return [(f * size * size * c * k * k, "count one C*K*K dot product per OUTPUT value: F x H' x W' of "
                                          "them, with H' = (W - K + 2P) / S + 1."),
            (f * out * out * k * k, "each output value is a dot product over all C input channels: "
                                    "C x K x K multiply-adds."),
            (f * out * out * (c * k * k + 1), "count multiply-adds only; the bias add is not a multiplication.")]


@checker("conv_macs", exercise=("conv.conv_params", "conv.conv_macs"), builds_on=CONV_NAMES)
def counts(conv_params, conv_macs, *, seed=0):
    """Check parameter and multiply-add counts, starting with the lecture's example."""
    rng = np.random.default_rng(seed)
    cases = [(3, 32, 10, 5, 1, 2), (64, 56, 64, 3, 1, 1), (3, 227, 96, 11, 4, 0)]
    for _ in range(3):
        k = int(rng.choice([1, 3, 5]))
        cases.append((int(rng.integers(1, 65)), 2 * int(rng.integers(4, 20)) + k % 2,
                      int(rng.integers(1, 129)), k, 1, k // 2))
    for c, size, f, k, s, p in cases:
        got = call("conv_params", conv_params, c, f, k)
        compare(f"conv_params({c}, {f}, {k})", got, ref.conv_params(c, f, k), mistakes=_params_mistakes(c, f, k))
        got = call("conv_macs", conv_macs, c, size, f, k, s, p)
        out = ref.output_size(size, k, s, p)
        compare(f"conv_macs({c}, {size}, {f}, {k}, {s}, {p})", got, ref.conv_macs(c, size, f, k, s, p),
                mistakes=_macs_mistakes(c, size, f, k, out))
    return ("conv_params and conv_macs: 760 parameters and 768,000 multiply-adds for the "
            "lecture's layer, and right on other layers.")


@checker("conv layer by hand")
def conv_by_hand(*, size, params, macs):
    """Check the output size, parameters and multiply-adds of the student's own layer
    (:func:`coursekit.checks.personal.current`; the lecture's layer without an id), worked out
    by hand: the formulas, not the student's functions."""
    layer = personal.current().conv_layer
    c, n, f, k, s, p = (layer[key] for key in ("c_in", "size", "filters", "kernel", "stride", "pad"))
    out = (n - k + 2 * p) // s + 1
    where = f"your layer ({f} filters {k}x{k}, stride {s}, pad {p}, on a {c}x{n}x{n} input)"
    compare(f"{where}: its output size", size, out, mistakes=[
        ((n - k) // s + 1, "the zero padding counts: W' = (W - K + 2P) / S + 1."),
        (n - k + 2 * p + 1, "divide by the stride: W' = (W - K + 2P) / S + 1."),
        ((n - k + 2 * p) // s, "add 1: the filter's first position counts too.")])
    compare(f"{where}: its parameters", params, f * (c * k * k + 1), mistakes=_params_mistakes(c, f, k))
    compare(f"{where}: its multiply-adds", macs, f * out * out * c * k * k, mistakes=_macs_mistakes(c, n, f, k, out))
    return f"your layer by hand: {out}x{out} outputs, {f * (c * k * k + 1):,} parameters, {f * out * out * c * k * k:,} multiply-adds."


# --- 3. receptive field ---------------------------------------------------------------------

@checker("receptive_field", exercise=("conv.receptive_field",), builds_on=CONV_NAMES)
def receptive_field(fn, *, seed=0):
    """Check fn(layers) for stacks of (kernel, stride) layers."""
    rng = np.random.default_rng(seed)
    cases = [[(3, 1)] * 3, [(7, 1)], [(5, 1)] * 2, [(3, 1), (2, 2), (3, 1)],
             [(3, 1), (3, 1), (2, 2), (3, 1), (3, 1), (2, 2), (3, 1)]]
    for _ in range(3):
        cases.append([(int(rng.choice([1, 2, 3, 5])), int(rng.choice([1, 1, 2])))
                      for _ in range(int(rng.integers(2, 6)))])
    for layers in cases:
        got = call("receptive_field", fn, list(layers))
        exp = ref.receptive_field(layers)
        no_stride = 1 + sum(k - 1 for k, _ in layers)
        compare(f"receptive_field({layers})", got, exp, mistakes=[
            (no_stride, "after a stride-2 layer, one step of the next layer spans 2 input "
                        "pixels: multiply each (K - 1) by the product of the strides before it."),
            (no_stride - 1, "a single 1 x 1 output sees 1 pixel: start from 1, then add (K - 1) "
                            "per layer.")])
    return "receptive_field: 1 + L (K - 1) for stacked convs, and right with pooling strides."


# --- 4./5. naive convolution ----------------------------------------------------------------

#: (x shape, w shape, stride, pad): square and rectangular inputs and filters, odd sizes, a batch
#: of one, strides 1 to 3 (a conv that takes W' from H passes none of the rectangular ones)
CONV_CASES = [((2, 3, 5, 5), (4, 3, 3, 3), 1, 1), ((2, 2, 7, 7), (3, 2, 3, 3), 2, 1),
              ((1, 3, 6, 6), (2, 3, 2, 2), 2, 0), ((1, 2, 5, 8), (3, 2, 3, 2), 1, 0),
              ((2, 3, 7, 5), (2, 3, 3, 3), 2, 1), ((2, 2, 7, 10), (2, 2, 1, 1), 3, 0)]


def _conv_case(rng, x_shape, w_shape):
    return (rng.standard_normal(x_shape), rng.standard_normal(w_shape),
            rng.standard_normal(w_shape[0]))


@contextmanager
def _padding_explained(pad):
    """A shape error with padding: name np.pad(x, pad), which pads every axis."""
    try:
        yield
    except CheckError as exc:
        if pad and any(word in str(exc) for word in ("broadcast", "reshape", "shape")):
            raise CheckError(f"{exc}\n  With padding: np.pad(x, pad) pads every axis, the images "
                             "and channels too; pad only H and W: np.pad(x, ((0, 0), (0, 0), "
                             "(pad, pad), (pad, pad))).") from None
        raise


def _check_conv_forward(name, forward, x, w, b, stride, pad):
    with _padding_explained(pad):
        out, cache = unpack(name, call(name, forward, x.copy(), w.copy(), b.copy(), stride, pad), 2)
    exp, _ = ref.conv_forward_im2col(x, w, b, stride, pad)
    flipped, _ = ref.conv_forward_im2col(x, w[:, :, ::-1, ::-1].copy(), b, stride, pad)
    compare(f"{name} out (stride {stride}, pad {pad})", out, exp, mistakes=[
        (exp - b.reshape(1, -1, 1, 1), "you forgot to add the bias b[f]."),
        (flipped, "you flipped the kernel: in deep learning 'convolution' slides w as it is "
                  "(cross-correlation)."),
    ])
    return out, cache


def _assigned_not_added(x, w, dout, stride, pad):
    """dx and dw of the naive backward written with = where it needs += (loops n, f, i, j)."""
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for n, f, i, j in np.ndindex(dout.shape):
        rows, cols = slice(i * stride, i * stride + kh), slice(j * stride, j * stride + kw)
        dw[f] = dout[n, f, i, j] * xp[n, :, rows, cols]
        dxp[n, :, rows, cols] = dout[n, f, i, j] * w[f]
    return dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]], dw


def _check_conv_backward(name, backward, dout, cache, x, exp_cache, pad):
    dx, dw, db = unpack(name, call(name, backward, dout.copy(), cache), 3)
    exp_dx, exp_dw, exp_db = ref.conv_backward_im2col(dout, exp_cache)
    n = x.shape[0]
    if np.shape(dx) == (n, x.shape[1], x.shape[2] + 2 * pad, x.shape[3] + 2 * pad) and pad:
        raise CheckError(f"dx has the padded shape {np.shape(dx)}: cut the padding off "
                         f"(dx_padded[:, :, P:-P, P:-P]) to get x's shape {x.shape}.")
    _, w, stride, _, _ = exp_cache
    set_dx, set_dw = _assigned_not_added(x, w, dout, stride, pad)
    assigned = ("you assigned (=) where the contributions must add up (+=): every output position "
                "adds its term to dw[f], and overlapping windows add to the same dx values.")
    compare("dx", dx, exp_dx, n=n, mistakes=[(set_dx, assigned)])
    compare("dw", dw, exp_dw, n=n, mistakes=[(set_dw, assigned)])
    compare("db", db, exp_db, n=n, mistakes=[
        (dout.sum(axis=(2, 3)).mean(axis=0), "db sums dout over the batch and every output "
                                             "position; you averaged over the batch.")])
    return dx, dw, db


@checker("conv_forward_naive", exercise=("conv.conv_forward_naive",), builds_on=CONV_NAMES)
def conv_forward(conv_forward_naive, *, seed=0):
    """Check the naive convolution's forward pass, with stride and padding."""
    rng = np.random.default_rng(seed)
    for x_shape, w_shape, stride, pad in CONV_CASES:
        x, w, b = _conv_case(rng, x_shape, w_shape)
        _check_conv_forward("conv_forward_naive", conv_forward_naive, x, w, b, stride, pad)
    return "conv_forward_naive: right with stride 1 and 2, with and without padding."


@checker("conv_backward_naive", exercise=("conv.conv_backward_naive",), builds_on=CONV_NAMES)
def conv_backward(conv_forward_naive, conv_backward_naive, *, seed=0):
    """Check the naive convolution's backward pass on the cache of the student's forward,
    and against numerical gradients of the convolution."""
    rng = np.random.default_rng(seed)
    worst = 0.0
    for x_shape, w_shape, stride, pad in CONV_CASES:
        x, w, b = _conv_case(rng, x_shape, w_shape)
        exp_out, exp_cache = ref.conv_forward_im2col(x, w, b, stride, pad)
        dout = rng.standard_normal(exp_out.shape)
        with forward_for_backward("conv_forward_naive", conv_forward_naive, ref.conv_forward_naive,
                                  (x, w, b, stride, pad), "cache = (x, w, b, stride, pad)") as (_, cache, _):
            dx, dw, db = _check_conv_backward("conv_backward_naive", conv_backward_naive, dout,
                                              cache, x, exp_cache, pad)
        worst = max(worst, check_gradients(
            "conv_backward_naive", lambda x, w, b: ref.conv_forward_im2col(x, w, b, stride, pad),
            {"x": x, "w": w, "b": b}, {"x": dx, "w": dw, "b": db}, dout))
    return (f"conv_backward_naive: dx, dw, db right; numerical gradient rel_error {worst:.1e} "
            f"(< {GRAD_THRESHOLD:g}).")


# --- 6./7. pooling --------------------------------------------------------------------------

def _pool_cases(rng):
    return [(rng.standard_normal((2, 3, 4, 4)), 2, 2), (rng.standard_normal((1, 2, 6, 6)), 3, 3),
            (rng.standard_normal((2, 2, 5, 5)), 3, 1),          # overlapping windows
            (rng.standard_normal((1, 3, 4, 8)), 2, 2), (rng.standard_normal((2, 1, 7, 3)), 3, 2)]


def _check_pool(kind, forward, backward, seed, forward_mistakes, backward_mistakes):
    """Run the student's ``{kind}_pool_forward`` / ``_backward`` on the pooling cases.

    forward_mistakes(exp, size) and backward_mistakes(even, size) give (wrong value, message)
    pairs, where ``even`` is dout spread evenly over each window (average pooling's dx)."""
    rng = np.random.default_rng(seed)
    for x, size, stride in _pool_cases(rng):
        where = f"(size {size}, stride {stride})"
        out, cache = unpack(f"{kind}_pool_forward", call(f"{kind}_pool_forward", forward,
                                                         x.copy(), size, stride), 2)
        exp, exp_cache = getattr(ref, f"{kind}_pool_forward")(x, size, stride)
        compare(f"{kind}_pool_forward out {where}", out, exp, mistakes=forward_mistakes(exp, size))
        dout = rng.standard_normal(exp.shape)
        dx = call(f"{kind}_pool_backward", backward, dout.copy(), cache)
        even = ref.avg_pool_backward(dout, (x.shape, size, stride))
        compare(f"{kind}_pool_backward dx {where}", dx,
                getattr(ref, f"{kind}_pool_backward")(dout, exp_cache),
                mistakes=backward_mistakes(even, size))


@checker("max pooling",
         exercise=("conv.max_pool_forward", "conv.max_pool_backward"),
         builds_on=CONV_NAMES)
def max_pool(max_pool_forward, max_pool_backward, *, seed=0):
    """Check max pooling forward/backward, including overlapping windows."""
    _check_pool("max", max_pool_forward, max_pool_backward, seed, lambda exp, size: [],
                lambda even, size: [
                    (even * size * size, "max pooling routes each dout to its window's maximum "
                                         "only; you gave it to every input in the window."),
                    (even, "that is average pooling's backward: route dout to the maximum only.")])
    return "max pooling: forward and backward right, overlapping windows included."


@checker("average pooling",
         exercise=("conv.avg_pool_forward", "conv.avg_pool_backward"),
         builds_on=CONV_NAMES)
def avg_pool(avg_pool_forward, avg_pool_backward, *, seed=0):
    """Check average pooling forward/backward, including overlapping windows."""
    _check_pool("avg", avg_pool_forward, avg_pool_backward, seed,
                lambda exp, size: [(exp * size * size, "that is the window's sum: divide by "
                                                       "K x K for the mean.")],
                lambda even, size: [
                    (even * size * size, f"each of the K x K = {size * size} inputs of a window "
                                         "gets dout / (K x K), not all of dout (a missing 1/K^2).")])
    return "average pooling: forward and backward right, overlapping windows included."


# --- 8. im2col ------------------------------------------------------------------------------

#: the inputs a loop over output rows, columns or positions is timed on: a thin image and a
#: long one (each STEPS more rows, or columns, than the short one), a 2 x 2 kernel
STEPS = 20_000
LOOP_SHAPES = {"rows": ((1, 1, 21, 2), (1, 1, 21 + STEPS, 2)), "columns": ((1, 1, 2, 21), (1, 1, 2, 21 + STEPS))}
#: seconds per extra output row or column above which a function loops over them: a Python
#: loop step that does anything costs a microsecond or more (4 measured, graded, for a loop
#: over rows), a vectorised function well under a tenth of that (at most 0.35 measured, graded,
#: with two submissions at once on two cores; most under 0.1)
STEP_SECONDS = 0.8e-6


#: timings taken before a function is called a loop: on a busy machine (other submissions,
#: other work) a vectorised function's run can be cut by the scheduler every time in a row;
#: a real loop is slow every time, so only a function slow in each round fails
ROUNDS = 4


def _refuse_loops(name, fn, make_args, advice):
    """Time the student's ``fn`` on ``make_args(x)`` for the short and long images of
    LOOP_SHAPES; fail if its time grows like a Python loop over the rows or columns in each of
    up to ROUNDS rounds (the least is kept). Returns fn's value on the long thin image."""
    value = None
    for along, (small, large) in LOOP_SHAPES.items():
        per_step = float("inf")
        for _ in range(ROUNDS):
            rng = np.random.default_rng(0)
            measured, got = seconds_per_step(name, fn, make_args(rng.standard_normal(small)),
                                             make_args(rng.standard_normal(large)), STEPS, repeats=5)
            per_step = min(per_step, measured)
            value = got if value is None else value
            if per_step <= STEP_SECONDS or per_step > 5 * STEP_SECONDS:
                break   # vectorised, or a loop no busy machine explains
        if per_step > STEP_SECONDS:
            raise CheckError(f"{name} is not vectorised: each of {STEPS:,} more output {along} took "
                             f"{per_step * 1e6:.1f} microseconds more, the cost of a Python loop over "
                             f"them (a vectorised one takes well under 0.1). {advice}")
    return value


#: what the im2col exercises loop over instead
_OFFSETS = ("Loop only over the KH x KW offsets inside a filter (4 here), each taking one strided "
            "slice of all images, not over output positions.")


@checker("im2col", exercise=("conv.im2col",), builds_on=CONV_NAMES)
def im2col(fn, *, seed=0):
    """Check fn(x, kh, kw, stride, pad) -> columns (C*KH*KW, N*H'*W'), rows (c, ki, kj),
    columns (n, i, j), and that it has no Python loop over output positions."""
    rng = np.random.default_rng(seed)
    for (n, c, h, w), (kh, kw), stride, pad in [
            ((2, 3, 5, 5), (3, 3), 1, 1), ((3, 2, 6, 6), (2, 2), 2, 0), ((1, 2, 7, 7), (3, 3), 2, 1),
            ((1, 2, 5, 8), (3, 2), 1, 0), ((2, 1, 7, 5), (3, 3), 2, 1)]:
        x = rng.standard_normal((n, c, h, w))
        with _padding_explained(pad):
            got = call("im2col", fn, x.copy(), kh, kw, stride, pad)
        exp = ref.im2col(x, kh, kw, stride, pad)
        ho, wo = ref.output_size(h, kh, stride, pad), ref.output_size(w, kw, stride, pad)
        by_offset = exp.reshape(c, kh * kw, -1).transpose(1, 0, 2).reshape(exp.shape)
        positions_last = exp.reshape(-1, n, ho * wo).transpose(0, 2, 1).reshape(exp.shape)
        compare(f"im2col(x {x.shape}, {kh}, {kw}, stride={stride}, pad={pad})", got, exp, mistakes=[
            (by_offset, "the rows are in (ki, kj, c) order; they must be (c, ki, kj), the order "
                        "w.reshape(F, -1) flattens a filter in."),
            (positions_last, "the columns are in (i, j, n) order; they must be (n, i, j): all "
                             "of image 0's positions first.")])
    _refuse_loops("im2col", fn, lambda x: (x, 2, 2, 1, 0), _OFFSETS)
    return "im2col: right columns in the right order, without a loop over output positions."


# --- 8b. fast convolution -------------------------------------------------------------------

@checker("conv_forward_im2col",
         exercise=("conv.conv_forward_im2col", "conv.conv_backward_im2col"),
         builds_on=CONV_NAMES)
def conv_fast(conv_forward_im2col, conv_backward_im2col, *, seed=0):
    """Check the im2col convolution against the reference (forward and backward) and that
    neither loops over output positions."""
    rng = np.random.default_rng(seed)
    for x_shape, w_shape, stride, pad in CONV_CASES + [((3, 4, 8, 8), (5, 4, 5, 5), 1, 2)]:
        x, w, b = _conv_case(rng, x_shape, w_shape)
        f = w.shape[0]
        exp, exp_cache = ref.conv_forward_im2col(x, w, b, stride, pad)
        cols = exp_cache[-1]                                    # the reference's im2col of x
        unarranged = (w.reshape(f, -1) @ cols + b.reshape(-1, 1)).reshape(exp.shape)
        out, cache = unpack("conv_forward_im2col", call(
            "conv_forward_im2col", conv_forward_im2col, x.copy(), w.copy(), b.copy(), stride, pad), 2)
        compare(f"conv_forward_im2col out (stride {stride}, pad {pad})", out, exp, mistakes=[
            (unarranged, "the product w_row @ cols is (F, N*H'*W'): reshape it to (F, N, H', W'), "
                         "then transpose to (N, F, H', W')."),
            (exp - b.reshape(1, -1, 1, 1), "you forgot to add the bias.")])
        dout = rng.standard_normal(exp.shape)
        dx, dw, db = unpack("conv_backward_im2col", call(
            "conv_backward_im2col", conv_backward_im2col, dout.copy(), cache), 3)
        exp_dx, exp_dw, exp_db = ref.conv_backward_im2col(dout, exp_cache)
        d = dout.transpose(1, 0, 2, 3).reshape(f, -1)
        compare("dx", dx, exp_dx)
        compare("dw", dw, exp_dw, mistakes=[
            ((cols @ d.T).reshape(w.shape), "dw is dout_rows @ cols.T, shape (F, C*KH*KW), "
                                            "reshaped to w's shape; you reshaped its "
                                            "transpose (a missing transpose).")])
        compare("db", db, exp_db, n=x.shape[0])
    w, b = rng.standard_normal((3, 1, 2, 2)), rng.standard_normal(3)
    _refuse_loops("conv_forward_im2col", conv_forward_im2col, lambda x: (x, w, b, 1, 0), _OFFSETS)
    forward = lambda x: unpack("conv_forward_im2col", call(  # noqa: E731  (your own cache)
        "conv_forward_im2col", conv_forward_im2col, x, w, b, 1, 0), 2)
    _refuse_loops("conv_backward_im2col", conv_backward_im2col,
                  lambda x: (np.ones((1, 3, x.shape[2] - 1, x.shape[3] - 1)), forward(x)[1]), _OFFSETS)
    return ("im2col convolution: forward and backward equal the naive ones, without a loop over "
            "output positions.")


@checker("against_torch")
def against_torch(conv_forward, conv_backward, max_pool_forward, max_pool_backward, *,
                  seed=0) -> dict[str, float]:
    """Compare the student's fast conv and max pooling with torch.nn.functional's (float64).

    Returns the rel_error of each output and gradient; raises if one is above 1e-10.
    """
    import torch
    F = torch.nn.functional
    rng = np.random.default_rng(seed)
    x, w, b = _conv_case(rng, (4, 3, 10, 10), (6, 3, 3, 3))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = F.conv2d(tx, tw, tb, stride=1, padding=1)
    out, cache = unpack("conv_forward_im2col", call("conv_forward_im2col", conv_forward,
                                                    x.copy(), w.copy(), b.copy(), 1, 1), 2)
    dout = rng.standard_normal(tuple(tout.shape))
    tout.backward(torch.tensor(dout))
    dx, dw, db = unpack("conv_backward_im2col", call("conv_backward_im2col", conv_backward,
                                                     dout.copy(), cache), 3)
    report = {"conv2d out": rel_error(out, tout.detach().numpy()), "conv2d dx": rel_error(dx, tx.grad.numpy()),
              "conv2d dw": rel_error(dw, tw.grad.numpy()), "conv2d db": rel_error(db, tb.grad.numpy())}
    px = torch.tensor(rng.standard_normal((4, 3, 8, 8)), requires_grad=True)
    tpool = F.max_pool2d(px, 2, 2)
    pooled, pcache = unpack("max_pool_forward", call("max_pool_forward", max_pool_forward,
                                                     px.detach().numpy().copy(), 2, 2), 2)
    dpool = rng.standard_normal(tuple(tpool.shape))
    tpool.backward(torch.tensor(dpool))
    report["max_pool2d out"] = rel_error(pooled, tpool.detach().numpy())
    report["max_pool2d dx"] = rel_error(call("max_pool_backward", max_pool_backward,
                                             dpool.copy(), pcache), px.grad.numpy())
    for name, err in report.items():
        if not err < 1e-10:
            raise CheckError(f"your {name} differs from PyTorch's: rel_error {err:.2g}.")
    lines = "".join(f"\n  {name:16s} rel_error vs PyTorch = {err:.1e}" for name, err in report.items())
    return "your convolution and max pooling agree with torch.nn.functional:" + lines, report


# --- 9. 1x1 convolution ---------------------------------------------------------------------

@checker("conv1x1_as_matmul", exercise=("conv.conv1x1_as_matmul",), builds_on=CONV_NAMES)
def conv1x1(fn, *, seed=0):
    """Check fn(x, w, b) -> the 1x1 convolution of x (N, C, H, W) with w (F, C), b (F,)."""
    rng = np.random.default_rng(seed)
    for n, c, h, w_, f in ((2, 3, 4, 5, 4), (1, 6, 3, 3, 2), (3, 2, 2, 4, 5)):
        x, w, b = rng.standard_normal((n, c, h, w_)), rng.standard_normal((f, c)), rng.standard_normal(f)
        got = call("conv1x1_as_matmul", fn, x.copy(), w.copy(), b.copy())
        exp = ref.conv1x1_as_matmul(x, w, b)
        scrambled = (x.reshape(n * h * w_, c) @ w.T + b).reshape(n, h, w_, f).transpose(0, 3, 1, 2)
        unarranged = (x.transpose(0, 2, 3, 1).reshape(n * h * w_, c) @ w.T + b).reshape(n, f, h, w_)
        compare(f"conv1x1_as_matmul (x {x.shape}, w {w.shape})", got, exp, mistakes=[
            (scrambled, "x.reshape(N*H*W, C) mixes channels and pixels: move the channel axis "
                        "last first, x.transpose(0, 2, 3, 1).reshape(N*H*W, C)."),
            (unarranged, "the product is (N*H*W, F) in (n, i, j) order: reshape to (N, H, W, F) "
                         "and transpose to (N, F, H, W).")])
    w, b = rng.standard_normal((2, 1)), rng.standard_normal(2)
    _refuse_loops("conv1x1_as_matmul", fn, lambda x: (x, w, b), "Use one matrix product for all pixels.")
    return "1x1 convolution = the same linear layer applied to every pixel's channel vector."


# --- 10. a tiny convnet ---------------------------------------------------------------------

def _convnet_mistakes(params, X, y):
    h, _ = ref.conv_forward_im2col(X, params["W1"], params["b1"], 1, 1)
    p, pool_cache = ref.max_pool_forward(np.maximum(h, 0))
    scores = p.reshape(len(X), -1) @ params["W2"] + params["b2"]
    nonrelu, _ = ref.max_pool_forward(h)
    out = [("scores", nonrelu.reshape(len(X), -1) @ params["W2"] + params["b2"],
            "you skipped the ReLU between the conv and the pool.")]
    if y is not None:
        from ..reference.layers import softmax_loss
        _, dscores = softmax_loss(scores, y)
        dp = (dscores @ params["W2"].T).reshape(p.shape)
        da = ref.max_pool_backward(dp, pool_cache)
        _, dw, db = ref.conv_backward_im2col(da, ref.conv_forward_im2col(X, params["W1"], params["b1"], 1, 1)[1])
        out += [("grads", dw, "dW1 ignores the ReLU: multiply by (conv output > 0) on the way back."),
                ("grads", db, "db1 ignores the ReLU: multiply by (conv output > 0) on the way back.")]
    return out


@checker("convnet_loss", exercise=("networks.convnet_loss",), builds_on=CONV_NAMES)
def convnet(convnet_loss, *, seed=0):
    """Check convnet_loss(params, X, y=None): conv3x3 - ReLU - maxpool2 - affine - softmax."""
    rng = np.random.default_rng(seed)
    cases = []
    for c, size, filters, classes in ((1, 6, 3, 4), (2, 4, 5, 3)):
        X = rng.standard_normal((3, c, size, size))
        params = ref_nets.init_convnet(c, size, filters, classes, seed=int(rng.integers(1 << 30)))
        params["b1"] = 0.1 * rng.standard_normal(filters)
        params["b2"] = 0.1 * rng.standard_normal(classes)
        cases.append((X, rng.integers(0, classes, 3), params))

    check_network("convnet_loss", convnet_loss, cases,
                  lambda p, X, y: ref_nets.convnet_loss(p, X, y), _convnet_mistakes)
    return ("convnet: scores, loss and the gradients of W1, b1, W2, b2 are right.")


__all__ = ["CONV_NAMES", "against_torch", "avg_pool", "conv1x1", "conv_backward", "conv_fast",
           "conv_forward",
           "convnet", "counts", "im2col", "max_pool", "output_size", "receptive_field", "trained"]
