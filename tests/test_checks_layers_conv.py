"""The checkers of notebooks 02 and 03: the references pass, and each common mistake gets a
message that names it. Student code is compiled into its own namespace, as in a notebook."""
import numpy as np
import pytest

from coursekit.checks import CheckError
from coursekit.checks import conv as conv_check
from coursekit.checks import layers as layer_check
from coursekit.checks.student import seconds_per_step, using_references
from coursekit.reference import conv as C
from coursekit.reference import layers as L
from coursekit.reference import networks as N
from coursekit.reference import optim


def notebook(source: str, **given) -> dict:
    """Run ``source`` like a notebook cell; returns its namespace."""
    ns = {"np": np, "__name__": "__main__", **given}
    exec(compile(source, "<cell>", "exec"), ns)
    return ns


def fails_with(phrase, check, *args, **kwargs):
    with pytest.raises(CheckError) as err:
        check(*args, **kwargs)
    assert phrase in str(err.value), str(err.value)


# --- the references pass every checker --------------------------------------------------------

def test_references_pass_the_layer_checkers():
    layer_check.affine(L.affine_forward, L.affine_backward, quiet=True)
    layer_check.relu_family(L.relu_forward, L.relu_backward, L.leaky_relu_forward, L.leaky_relu_backward,
                            L.prelu_forward, L.prelu_backward, quiet=True)
    layer_check.smooth_activations(L.sigmoid_forward, L.sigmoid_backward, L.tanh_forward, L.tanh_backward,
                                   L.elu_forward, L.elu_backward, quiet=True)
    layer_check.losses(L.euclidean_loss, L.softmax_loss, quiet=True)
    layer_check.sgd_momentum(optim.sgd_momentum, quiet=True)
    for isolate in (False, True):
        layer_check.two_layer_net(N.two_layer_loss, quiet=True, isolate=isolate)
        layer_check.train(N.train, quiet=True, isolate=isolate)
        layer_check.mlp(N.mlp_loss, quiet=True, isolate=isolate)
    layer_check.dead_fraction(L.dead_fraction, quiet=True)


def test_references_pass_the_conv_checkers():
    for isolate in (False, True):
        conv_check.output_size(C.output_size, quiet=True, isolate=isolate)
        conv_check.counts(C.conv_params, C.conv_macs, quiet=True, isolate=isolate)
        conv_check.receptive_field(C.receptive_field, quiet=True, isolate=isolate)
        conv_check.conv_forward(C.conv_forward_naive, quiet=True, isolate=isolate)
        conv_check.conv_backward(C.conv_forward_naive, C.conv_backward_naive, quiet=True, isolate=isolate)
        conv_check.max_pool(C.max_pool_forward, C.max_pool_backward, quiet=True, isolate=isolate)
        conv_check.avg_pool(C.avg_pool_forward, C.avg_pool_backward, quiet=True, isolate=isolate)
        conv_check.im2col(C.im2col, quiet=True, isolate=isolate)
        conv_check.conv_fast(C.conv_forward_im2col, C.conv_backward_im2col, quiet=True, isolate=isolate)
        conv_check.conv1x1(C.conv1x1_as_matmul, quiet=True, isolate=isolate)
        conv_check.convnet(N.convnet_loss, quiet=True, isolate=isolate)
    report = conv_check.against_torch(C.conv_forward_im2col, C.conv_backward_im2col, C.max_pool_forward,
                                      C.max_pool_backward, quiet=True)
    assert max(report.values()) < 1e-10


# --- notebook 02 mistakes ---------------------------------------------------------------------

AFFINE = '''
def affine_forward(x, w, b):
    return x.reshape(x.shape[0], -1) @ w + b, (x, w, b)
def affine_backward(dout, cache):
    x, w, b = cache
    x2 = x.reshape(x.shape[0], -1)
    return (dout @ w.T).reshape(x.shape), DW, DB
'''


@pytest.mark.parametrize("dw, db, phrase", [
    ("dout.T @ x2", "dout.sum(axis=0)", "a missing transpose"),
    ("x2.T @ dout", "dout.sum(axis=1)", "did you sum over the wrong axis"),
    ("x2.T @ dout", "dout", "did you forget to sum over an axis"),
    ("x2.T @ dout / x.shape[0]", "dout.sum(axis=0)", "a factor of 1/N"),
])
def test_affine_mistakes(dw, db, phrase):
    ns = notebook(AFFINE.replace("DW", dw).replace("DB", db))
    fails_with(phrase, layer_check.affine, ns["affine_forward"], ns["affine_backward"])


def test_activation_and_loss_mistakes():
    ns = notebook('''
def prelu_backward(dout, cache):
    x, alpha = cache
    return np.where(x > 0, dout, alpha * dout), np.where(x > 0, 0.0, dout * x)
def tanh_backward(dout, cache):
    return dout * (1 - np.tanh(cache) ** 2)
def naive_sigmoid(x):
    out = np.exp(x) / (1 + np.exp(x))
    return out, out
def softmax_loss(scores, y):
    p = np.exp(scores - scores.max(axis=1, keepdims=True)); p /= p.sum(axis=1, keepdims=True)
    n = len(y); loss = -np.log(p[np.arange(n), y]).mean(); p[np.arange(n), y] -= 1
    return loss, p          # the 1/N is missing
''')
    fails_with("forget to sum over an axis", layer_check.relu_family, L.relu_forward, L.relu_backward,
               L.leaky_relu_forward, L.leaky_relu_backward, L.prelu_forward, ns["prelu_backward"])
    fails_with("you applied tanh twice", layer_check.smooth_activations, L.sigmoid_forward, L.sigmoid_backward,
               L.tanh_forward, ns["tanh_backward"], L.elu_forward, L.elu_backward)
    fails_with("NaN or inf at x = +-1000", layer_check.smooth_activations, ns["naive_sigmoid"],
               L.sigmoid_backward, L.tanh_forward, L.tanh_backward, L.elu_forward, L.elu_backward)
    fails_with("a missing 1/N", layer_check.losses, L.euclidean_loss, ns["softmax_loss"])


def test_momentum_and_training_mistakes():
    ns = notebook('''
def sgd_momentum(w, dw, state=None, lr=1e-2, momentum=0.9):
    state = {} if state is None else state
    delta = momentum * state.get("delta", np.zeros_like(w)) + dw
    return w - lr * delta, state          # delta never stored
def train(params, loss_fn, X, y, *, epochs=300, lr=0.5, momentum=0.9):
    history = []
    for _ in range(epochs):
        loss, grads = loss_fn(params, X, y)
        history.append(loss)
        for name in params:
            new, _ = sgd_momentum(params[name], grads[name], None, lr=lr, momentum=momentum)
    return history
''')
    fails_with("keep delta in state between calls", layer_check.sgd_momentum, ns["sgd_momentum"])
    fails_with("train did not change params", layer_check.train, ns["train"], isolate=True)


LAYERS = {name: getattr(L, name) for name in ("affine_forward", "affine_backward", "relu_forward",
                                              "relu_backward", "softmax_loss")}
TWO_LAYER = '''
def two_layer_loss(params, X, y=None):
    h, c1 = affine_forward(X, params["W1"], params["b1"])
    a, cr = relu_forward(h)
    scores, c2 = affine_forward(a, params["W2"], params["b2"])
    if y is None:
        return scores
    loss, d = softmax_loss(scores, y)
    grads = {}
    da, grads["W2"], grads["b2"] = affine_backward(d, c2)
    _, grads["W1"], grads["b1"] = affine_backward(RELU_BACK, c1)
    return loss, grads
'''


def test_two_layer_net_mistake_and_a_broken_layer_counted_once():
    ns = notebook(TWO_LAYER.replace("RELU_BACK", "da"), **LAYERS)
    fails_with("dW1 ignores the ReLU", layer_check.two_layer_net, ns["two_layer_loss"])
    # right network code on top of a broken affine_backward (dw transposed): the self-check says
    # the network is right and a layer is not; the graded check passes the network
    broken = notebook(AFFINE.replace("DW", "(dout.T @ x2).T.T").replace("DB", "dout.sum(axis=0)"))
    ns = notebook(TWO_LAYER.replace("RELU_BACK", "relu_backward(da, cr)"),
                  **{**LAYERS, "affine_backward": broken["affine_backward"]})
    fails_with("your two_layer_loss is right, but a function it calls is not",
               layer_check.two_layer_net, ns["two_layer_loss"])
    layer_check.two_layer_net(ns["two_layer_loss"], quiet=True, isolate=True)
    assert ns["affine_backward"] is broken["affine_backward"]   # the namespace is restored


def test_mlp_off_by_one_and_dead_fraction_axis():
    ns = notebook('''
ACTIVATIONS = {"relu": (relu_forward, relu_backward), "tanh": (relu_forward, relu_backward)}
def mlp_loss(params, X, y=None, activation="relu"):
    forward, backward = ACTIVATIONS[activation]
    depth = len(params) // 2
    caches, h = [], X
    for i in range(1, depth + 1):
        h, ac = affine_forward(h, params[f"W{i}"], params[f"b{i}"])
        cc = None
        if i < depth:
            h, cc = forward(h)
        caches.append((ac, cc))
    if y is None:
        return h
    loss, dh = softmax_loss(h, y)
    grads = {}
    for i in range(depth, 1, -1):
        ac, cc = caches[i - 1]
        if cc is not None:
            dh = backward(dh, cc)
        dh, grads[f"W{i}"], grads[f"b{i}"] = affine_backward(dh, ac)
    return loss, grads
def dead_fraction(h):
    return float(np.mean(np.all(h == 0, axis=1)))
''', **LAYERS)
    fails_with("range off by one", layer_check.mlp, ns["mlp_loss"], isolate=True)
    fails_with("np.all over axis 0", layer_check.dead_fraction, ns["dead_fraction"])


# --- notebook 03 mistakes ---------------------------------------------------------------------

def test_shape_arithmetic_mistakes():
    ns = notebook('''
def no_plus_one(size, kernel, stride=1, pad=0):
    return (size - kernel + 2 * pad) // stride
def never_raises(size, kernel, stride=1, pad=0):
    return (size - kernel + 2 * pad) // stride + 1
def params_no_bias(c, f, k):
    return f * c * k * k
def field_no_stride(layers):
    return 1 + sum(k - 1 for k, s in layers)
''')
    fails_with("you forgot the + 1 (off by one)", conv_check.output_size, ns["no_plus_one"])
    fails_with("it should raise ValueError", conv_check.output_size, ns["never_raises"])
    fails_with("you forgot the biases", conv_check.counts, ns["params_no_bias"], C.conv_macs)
    fails_with("multiply each (K - 1) by the product of the strides", conv_check.receptive_field,
               ns["field_no_stride"])


def test_conv_and_pool_mistakes():
    def flipped(x, w, b, stride=1, pad=0):
        return C.conv_forward_naive(x, w[:, :, ::-1, ::-1].copy(), b, stride, pad)
    fails_with("you flipped the kernel", conv_check.conv_forward, flipped)

    def db_wrong(dout, cache):
        dx, dw, db = C.conv_backward_naive(dout, cache)
        return dx, dw, dout.sum(axis=0)
    fails_with("did you forget to sum over an axis", conv_check.conv_backward, C.conv_forward_naive, db_wrong)

    def spreads(dout, cache):
        x, size, stride = cache
        return C.avg_pool_backward(dout, (x.shape, size, stride)) * size * size
    fails_with("you gave it to every input in the window", conv_check.max_pool, C.max_pool_forward, spreads)

    def no_inverse_area(dout, cache):
        return C.avg_pool_backward(dout, cache) * cache[1] ** 2
    fails_with("a missing 1/K^2", conv_check.avg_pool, C.avg_pool_forward, no_inverse_area)


def test_im2col_order_loops_and_fast_conv_mistakes():
    ns = notebook('''
def looped(x, kh, kw, stride=1, pad=0):
    n, c, h, w = x.shape
    ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((c * kh * kw, n, ho, wo))
    for i in range(ho):
        for j in range(wo):
            cols[:, :, i, j] = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw].reshape(n, -1).T
    return cols.reshape(c * kh * kw, -1)
''')
    fails_with("is not vectorised", conv_check.im2col, ns["looped"])
    # timed by the caller: a loop over output positions costs far more per extra row than im2col
    small, large = (np.zeros(s) for s in conv_check.LOOP_SHAPES["rows"])
    looped, _ = seconds_per_step("im2col", ns["looped"], (small, 2, 2), (large, 2, 2), conv_check.STEPS)
    vectorised, _ = seconds_per_step("im2col", C.im2col, (small, 2, 2), (large, 2, 2), conv_check.STEPS)
    assert looped > conv_check.STEP_SECONDS > vectorised * 4

    def rows_by_offset(x, kh, kw, stride=1, pad=0):
        cols = C.im2col(x, kh, kw, stride, pad)
        return cols.reshape(x.shape[1], kh * kw, -1).transpose(1, 0, 2).reshape(cols.shape)
    fails_with("(ki, kj, c) order", conv_check.im2col, rows_by_offset)

    def dw_transposed(dout, cache):
        x_shape, w, stride, pad, cols = cache
        dx, _, db = C.conv_backward_im2col(dout, cache)
        d = dout.transpose(1, 0, 2, 3).reshape(w.shape[0], -1)
        return dx, (cols @ d.T).reshape(w.shape), db
    fails_with("a missing transpose", conv_check.conv_fast, C.conv_forward_im2col, dw_transposed)

    def conv1x1_scrambled(x, w, b):
        n, c, h, wd = x.shape
        return (x.reshape(n * h * wd, c) @ w.T + b).reshape(n, h, wd, -1).transpose(0, 3, 1, 2)
    fails_with("move the channel axis last first", conv_check.conv1x1, conv1x1_scrambled)
    looped = notebook('''
def conv1x1(x, w, b):
    out = np.zeros((x.shape[0], w.shape[0]) + x.shape[2:])
    for i in range(x.shape[2]):
        for j in range(x.shape[3]):
            out[:, :, i, j] = x[:, :, i, j] @ w.T + b
    return out
''')
    fails_with("not vectorised: each of 20,000 more output rows", conv_check.conv1x1, looped["conv1x1"])


def test_a_wrong_output_size_costs_only_its_own_exercise():
    # the student's conv calls their own (wrong) output_size: graded, the conv is right
    ns = notebook('''
def output_size(size, kernel, stride=1, pad=0):
    return (size - kernel + 2 * pad) // stride
def conv_forward_naive(x, w, b, stride=1, pad=0):
    n, _, h, wd = x.shape
    f, _, kh, kw = w.shape
    ho, wo = output_size(h, kh, stride, pad), output_size(wd, kw, stride, pad)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((n, f, ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, b, stride, pad)
''')
    fails_with("your conv_forward_naive is right, but a function it calls is not",
               conv_check.conv_forward, ns["conv_forward_naive"])
    conv_check.conv_forward(ns["conv_forward_naive"], quiet=True, isolate=True)
    with using_references(ns["conv_forward_naive"], {"output_size": "conv.output_size"}):
        assert ns["output_size"](5, 3) == 3
    assert ns["output_size"](5, 3) == 2   # restored


def test_trained_reports_accuracy_and_fails_below_target():
    X, y = np.eye(3), np.arange(3)
    params = {"W1": np.eye(3) * 5, "b1": np.zeros(3)}
    assert layer_check.trained(N.mlp_loss, params, X, y, target=0.9, quiet=True) == 1.0
    fails_with("below the target 90%", layer_check.trained, N.mlp_loss, params, X, (y + 1) % 3, target=0.9)
