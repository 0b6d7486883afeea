"""The numerical gradient check the checkers run on a student's own forward
(coursekit.checks.gradcheck): right gradients pass, wrong ones are named, and a large input
costs a bounded number of calls of the forward (each one a round trip through the judge)."""
import numpy as np
import pytest

from coursekit.checks import CheckError
from coursekit.checks.gradcheck import NUMERICAL_ENTRIES, check_gradients, sample_entries


def _affine(x, w, b):
    return x @ w + b, None


def _case(n=20, d=30, m=10, seed=0):
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((n, d)), rng.standard_normal((d, m)), rng.standard_normal(m)
    dout = rng.standard_normal((n, m))
    return {"x": x, "w": w, "b": b}, {"x": dout @ w.T, "w": x.T @ dout, "b": dout.sum(axis=0)}, dout


def test_sample_entries_takes_all_of_a_small_input_and_distinct_ones_of_a_large():
    assert sample_entries((2, 3), 12, np.random.default_rng(0)) == [(i, j) for i in range(2) for j in range(3)]
    picked = sample_entries((20, 30), 12, np.random.default_rng(0))
    assert len(set(picked)) == 12 and all(0 <= i < 20 and 0 <= j < 30 for i, j in picked)
    assert picked == sample_entries((20, 30), 12, np.random.default_rng(0))
    assert sample_entries((), 12, np.random.default_rng(0)) == [()]


def test_right_gradients_pass_with_a_bounded_number_of_forward_calls():
    inputs, grads, dout = _case()
    calls = []

    def forward(**kw):
        calls.append(1)
        return _affine(**kw)

    assert check_gradients("affine", forward, inputs, grads, dout) < 1e-7
    # x has 600 entries and w 300: each costs 2 calls of the forward, so all of them would be 1,820
    assert len(calls) == 1 + 2 * (NUMERICAL_ENTRIES + NUMERICAL_ENTRIES + 10)


@pytest.mark.parametrize("name, wrong, message", [
    ("w", lambda g, x, dout: 2 * g, "dw disagrees with the numerical gradient of your forward"),
    ("b", lambda g, x, dout: dout.mean(axis=0), "db disagrees with the numerical gradient"),
    ("x", lambda g, x, dout: g[:, :5], r"dx has shape \(20, 5\); it should have x's shape \(20, 30\)"),
])
def test_a_wrong_gradient_is_named(name, wrong, message):
    inputs, grads, dout = _case()
    grads[name] = wrong(grads[name], inputs["x"], dout)
    with pytest.raises(CheckError, match=message):
        check_gradients("affine", _affine, inputs, grads, dout)


def test_a_float32_forward_is_told_why_its_gradient_disagrees():
    inputs, grads, dout = _case()
    with pytest.raises(CheckError, match="computes in float32"):
        check_gradients("affine", lambda x, w, b: _affine(x.astype(np.float32), w.astype(np.float32),
                                                          b.astype(np.float32)), inputs, grads, dout)
