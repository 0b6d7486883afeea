"""Each checker passes the right answer and names the mistake in a plausible wrong one."""
import linecache

import numpy as np
import pytest

from coursekit.checks import CheckError, backprop as check
from coursekit.checks.diagnose import compare
from coursekit.reference import backprop as R

# --- the generic diagnoses -----------------------------------------------------------------

A = np.arange(12.0).reshape(3, 4) + 1


@pytest.mark.parametrize("got, kwargs, message", [
    (A.T, {}, "dW has shape (4, 3), expected (3, 4): a missing transpose?"),
    (A.sum(axis=0), {}, "did you sum or average over an axis you should have kept?"),
    (A * 3, {"n": 3}, "off by a factor of N = 3: did you sum instead of averaging"),
    (A / 3, {"n": 3}, "off by a factor of 1/N = 1/3: did you average instead of summing"),
    (A * 2, {}, "twice the expected value"),
    (A / 2, {}, "half the expected value: a missing factor of 2"),
    (-A, {}, "wrong sign"),
    (None, {}, "dW is None"),
    (..., {}, "still the placeholder"),
    ("abc", {}, "should be a number or an array of numbers"),
    (A * np.nan, {}, "NaN or inf"),
    (A + np.eye(3, 4), {}, "is wrong at index (0, 0): "),
    # the measure printed is the one tested: |got - expected| / |expected| against rtol
    (A * (1 + 3e-6), {}, "(relative error 3e-06; the check allows 1e-06)"),
    (A.astype(np.float32) * np.float32(1 + 2e-6), {}, "right only to float32 precision"),
    ((A + 0.3).astype(np.float32), {}, "your values are float32: compute in float64"),
])
def test_compare_names_the_mistake(got, kwargs, message):
    with pytest.raises(CheckError) as err:
        compare("dW", got, A, **kwargs)
    assert message in str(err.value)


def test_compare_spots_transposed_values_and_accepts_right_answer():
    S = np.array([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(CheckError, match="transposed values"):
        compare("dW", S.T, S)
    compare("dW", S.copy(), S)
    compare("db", np.float64(2.5), 2.5)


def test_bias_gradient_without_batch_sum():
    with pytest.raises(CheckError, match="forget to sum over an axis"):
        compare("db", np.ones((5, 3)), np.ones(3))


# --- notebook 01 checkers ------------------------------------------------------------------

def test_reference_answers_pass_every_checker(capsys):
    check.scalar_graph(**R.scalar_graph(-2.0, 5.0, -4.0))
    check.gates(R.add_backward, R.mul_backward, R.max_backward)
    check.gate_graph(**R.gate_graph(3.0, -4.0, 2.0, -1.0))
    check.two_layer_forward(R.two_layer_forward, R.euclidean_loss)
    check.two_layer_backward(R.two_layer_backward)
    check.sgd_step(R.sgd_step)
    check.norm_sq(R.norm_sq_forward, R.norm_sq_backward)
    check.softmax_nll(R.softmax_nll)
    check.numerical_gradient(R.numerical_gradient)
    check.rel_error(R.rel_error)
    assert capsys.readouterr().out.count("✓") == 10


SCALAR = R.scalar_graph(-2.0, 5.0, -4.0)
GRAPH = R.gate_graph(3.0, -4.0, 2.0, -1.0)


def _mul_not_switched(dout, cache):
    x, y = cache
    return x * dout, y * dout


def _max_to_smaller(dout, cache):
    dx, dy = R.max_backward(dout, cache)
    return dy, dx


def _backward_dW1_transposed(dy, cache):
    g = dict(R.two_layer_backward(dy, cache))
    x, h, _, params = cache
    g["W1"] = np.outer(x, (params["W2"].T @ dy) * h * (1 - h))
    return g


def _backward_no_hidden_sigmoid(dy, cache):
    x, h, _, params = cache
    dh = params["W2"].T @ dy
    return dict(W1=np.outer(dh, x), b1=dh, W2=np.outer(dy, h), b2=dy)


def _forward_output_sigmoid(x, params):
    y, cache = R.two_layer_forward(x, params)
    return R.sigmoid(y), cache


def _norm_sq_dW_transposed(df, cache):
    x, W, q = cache
    return 2 * W.T @ q * df, 2 * np.outer(x, q) * df


def _softmax_sum_not_mean(scores, y):
    loss, d = R.softmax_nll(scores, y)
    return loss, d * len(y)


def _softmax_returns_p(scores, y):
    loss, d = R.softmax_nll(scores, y)
    d = d * len(y)
    d[np.arange(len(y)), y] += 1
    return loss, d / len(y)


def _softmax_unstable(scores, y):
    with np.errstate(all="ignore"):
        p = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
        d = p.copy()
        d[np.arange(len(y)), y] -= 1
        return -np.log(p[np.arange(len(y)), y]).mean(), d / len(y)


def _forward_difference(f, x, h=1e-5):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        fx = f(x)
        x[i] = old + h
        g[i] = (f(x) - fx) / h
        x[i] = old
    return g


def _no_restore(f, x, h=1e-5):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        x[i] += h
        fp = f(x)
        x[i] -= 2 * h
        g[i] = (fp - f(x)) / (2 * h)
    return g


def _missing_half(f, x, h=1e-5):
    return 2 * R.numerical_gradient(f, x, h)


def _flat_loop(f, x, h=1e-5):
    g = np.zeros_like(x)
    for i in range(x.size):
        old = x[i].copy()
        x[i] = old + h
        fp = f(x)
        x[i] = old - h
        g[i] = (fp - f(x)) / (2 * h)
        x[i] = old
    return g


def _ignores_h(f, x, h=1e-5):
    return R.numerical_gradient(f, x, 1e-5)


def _rel_error_mean(a, b):
    return float(np.mean(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def _sgd_plus(params, grads, lr):
    return {k: params[k] + lr * grads[k] for k in params}


def _sgd_in_place(params, grads, lr):
    for k in params:
        params[k] -= lr * grads[k]
    return params


def _not_implemented(*args):
    raise NotImplementedError()


@pytest.mark.parametrize("run, message", [
    (lambda: check.scalar_graph(**{**SCALAR, "df_dz": -4.0}), "switches"),
    (lambda: check.scalar_graph(**{**SCALAR, "df_dx": 1.0}), "only the local gradient"),
    (lambda: check.scalar_graph(**{**SCALAR, "q": None}), "q is None"),
    (lambda: check.gates(R.add_backward, _mul_not_switched, R.max_backward), "mul_backward dx: the multiply gate switches"),
    (lambda: check.gates(R.add_backward, R.mul_backward, _max_to_smaller), "routed it to the smaller input"),
    (lambda: check.gates(_not_implemented, R.mul_backward, R.max_backward), "add_backward is not implemented yet"),
    (lambda: check.gate_graph(**{**GRAPH, "df_dw": 2.0}), "w < z gets 0"),
    (lambda: check.gate_graph(**{**GRAPH, "df_dx": 6.0}), "df_dx = y * df_da"),
    (lambda: check.two_layer_forward(_forward_output_sigmoid, R.euclidean_loss), "the output unit is linear"),
    (lambda: check.two_layer_backward(_backward_dW1_transposed), "the transpose of dz x^T"),
    (lambda: check.two_layer_backward(_backward_no_hidden_sigmoid), "derivative of the hidden sigmoids"),
    (lambda: check.sgd_step(_sgd_plus), "gradient descent subtracts"),
    (lambda: check.sgd_step(_sgd_in_place), "changed params['W1'] in place"),
    (lambda: check.norm_sq(R.norm_sq_forward, _norm_sq_dW_transposed), "dW must have W's shape"),
    (lambda: check.softmax_nll(_softmax_sum_not_mean), "a missing 1/N"),
    (lambda: check.softmax_nll(_softmax_returns_p), "subtract 1 at the true class"),
    (lambda: check.softmax_nll(_softmax_unstable), "subtract each row's max"),
    (lambda: check.numerical_gradient(_forward_difference), "use the centred difference"),
    (lambda: check.numerical_gradient(_no_restore), "changed x: restore x[i]"),
    (lambda: check.numerical_gradient(_missing_half), "twice the expected value"),
    (lambda: check.numerical_gradient(_flat_loop), "loop over every element with np.ndindex"),
    (lambda: check.numerical_gradient(_ignores_h), "ignored the h argument"),
    (lambda: check.rel_error(_rel_error_mean), "mean relative error"),
])
def test_checker_names_the_mistake(run, message):
    with pytest.raises(CheckError) as err:
        run()
    assert message in str(err.value)


def test_student_exception_points_at_their_line():
    src = "def norm_sq_backward(df, cache):\n    x, W, q = cache\n    dx = 2 * W[:, 5] * q\n    return dx, 2 * np.outer(q, x)\n"
    namespace = {"np": np, "__name__": "__main__"}
    filename = "/tmp/ipykernel_1/cell.py"  # IPython puts each cell's source in linecache too
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
    exec(compile(src, filename, "exec"), namespace)
    with pytest.raises(CheckError) as err:
        check.norm_sq(R.norm_sq_forward, namespace["norm_sq_backward"])
    msg = str(err.value)
    assert "norm_sq_backward raised IndexError" in msg and "in your code, line 3: dx = 2 * W[:, 5] * q" in msg


def test_check_error_renders_without_traceback():
    lines = CheckError("dW has shape (4, 3), expected (3, 4): a missing transpose?")._render_traceback_()
    assert len(lines) == 1 and "a missing transpose?" in lines[0]


def test_compare_names_floor_division():
    want = np.array([[0.5, 1.5], [2.25, 3.0]])
    with pytest.raises(CheckError, match=r"floor\) division // where / was meant"):
        compare("dx", np.floor(want), want)
