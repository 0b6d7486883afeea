"""Notebook 05's references: the lecture's activation statistics (qualitative, with
tolerances), gradient norms, dropout, penalties and preprocessing; and notebook 04's
batch-norm experiment."""
import functools

import numpy as np
import pytest

from coursekit.checks.gradcheck import numerical_gradient_array
from coursekit.data import make_spirals
from coursekit.reference import initialisation as init
from coursekit.reference.networks import bn_mlp_loss, init_bn_mlp, init_mlp, mlp_loss, train


@pytest.fixture(scope="module")
def lecture():
    settings = [("small", "tanh"), ("large", "tanh"), ("xavier", "tanh"), ("xavier", "relu"), ("he", "relu")]
    return {key: init.lecture_experiment(*key) for key in settings}


def stds(lecture, key):
    return [s for _, s in init.layer_stats(lecture[key][2])]


def test_small_weights_collapse(lecture):
    s = stds(lecture, ("small", "tanh"))
    assert abs(s[0] - 0.21) < 0.02 and abs(s[1] - 0.048) < 0.005     # 0.21, 0.048, ...
    assert s[9] < 1e-5                                                 # ... ≈ 0 by layer 10
    assert all(b < 0.3 * a for a, b in zip(s, s[1:]))


def test_large_weights_saturate(lecture):
    s = stds(lecture, ("large", "tanh"))
    assert min(s) > 0.97                                               # std ≈ 0.98, at ±1
    h = lecture["large", "tanh"][2][-1]
    assert np.mean(np.abs(h) > 0.99) > 0.9


def test_xavier_tanh_and_relu(lecture):
    s = stds(lecture, ("xavier", "tanh"))
    assert abs(s[0] - 0.63) < 0.02 and abs(s[9] - 0.23) < 0.03        # 0.63 decaying to 0.23
    r = stds(lecture, ("xavier", "relu"))
    assert r[9] / r[0] < 0.1                                           # collapses toward 0


def test_he_relu_stays_constant(lecture):
    s = stds(lecture, ("he", "relu"))
    assert 0.5 < s[9] / s[0] < 2


def test_gradient_norms(lecture):
    rng = np.random.default_rng(1)
    norms = {}
    for key, (X, W, H) in lecture.items():
        norms[key] = init.backward_grad_norms(X, W, key[1], rng.standard_normal(H[-1].shape))
    big = norms["large", "tanh"]
    assert big[0] / big[-1] > 1e3                                      # grows on its way back
    for key in (("xavier", "tanh"), ("he", "relu")):
        assert max(norms[key]) / min(norms[key]) < 1.5                 # about even


def test_backward_grad_norms_match_a_numerical_gradient():
    rng = np.random.default_rng(0)
    X, W, dout = rng.standard_normal((4, 3)), [rng.standard_normal((3, 3)) for _ in range(2)], rng.standard_normal((4, 3))
    for act in ("tanh", "relu"):
        norms = init.backward_grad_norms(X, W, act, dout)
        for i in range(2):
            def f(w, i=i):
                ws = list(W)
                ws[i] = w
                return init.forward_activations(X, ws, act)[-1]
            assert np.isclose(norms[i], np.linalg.norm(numerical_gradient_array(f, W[i].copy(), dout)), rtol=1e-6)


def test_dropout_is_inverted():
    rng = np.random.default_rng(0)
    x = np.ones((400, 500))
    out, mask = init.dropout_forward(x, 0.6, "train", rng)
    assert abs(out.mean() - 1) < 0.01 and abs(np.mean(out != 0) - 0.6) < 0.01
    assert set(np.unique(out)) == {0.0, 1 / 0.6}
    assert np.array_equal(init.dropout_backward(np.ones_like(x), mask), mask)
    test_out, cache = init.dropout_forward(x, 0.6, "test", rng)
    assert test_out is x and cache is None
    with pytest.raises(ValueError, match="probability"):
        init.dropout_forward(x, 0, "train", rng)


def test_penalty_gradients_are_numerical_gradients():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((3, 4))
    for kind in ("l2", "l1"):
        _, dW = init.regularization(W, 0.3, kind)
        num = numerical_gradient_array(lambda w: np.array(init.regularization(w, 0.3, kind)[0]), W.copy(), np.array(1.0))
        assert np.allclose(dW, num, atol=1e-6)


def test_channel_means_come_from_training_data():
    rng = np.random.default_rng(0)
    train_x = rng.standard_normal((10, 3, 4, 4)) + np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1)
    test_x = rng.standard_normal((5, 3, 4, 4))
    tr, te, mean = init.channel_mean_subtract(train_x, test_x)
    assert np.allclose(tr.mean(axis=(0, 2, 3)), 0)
    assert np.allclose(te, test_x - mean.reshape(1, 3, 1, 1))
    with pytest.raises(ValueError, match="same C"):
        init.channel_mean_subtract(train_x, test_x[:, :2])


def test_unknown_scheme_is_refused():
    with pytest.raises(ValueError, match="xavier"):
        init.init_weights(3, 3, "glorot", np.random.default_rng(0))


def test_batch_norm_makes_every_setting_train():
    """Notebook 04's experiment, a corner of it: without BN, scale 0.01 never leaves ln 3 and
    scale 1.0 overflows; with BN both reach a low loss."""
    X, y = make_spirals(200, 3, seed=0)
    dims = [2] + [64] * 6 + [3]
    for scale in (0.01, 1.0):
        plain = init_mlp(dims, seed=1, scale=scale)
        with np.errstate(all="ignore"):
            loss = train(plain, mlp_loss, X, y, epochs=100, lr=0.1)[-1]
        assert not loss < 1.0                                              # stuck at ln 3, or NaN
        bn = init_bn_mlp(dims, seed=1, scale=scale)
        assert train(bn, functools.partial(bn_mlp_loss, state={}), X, y, epochs=100, lr=0.1)[-1] < 0.2


def test_the_training_loss_04_gives_is_the_nets_loss_built_on_the_batch_norm_given():
    """bn_mlp_training_loss(forward, backward) trains like bn_mlp_loss with the reference's batch
    norm, uses the batch norm it is given (the student's), and gives no scores."""
    from coursekit.reference import normalisation as norm
    from coursekit.reference.networks import bn_mlp_training_loss

    X, y = make_spirals(50, 3, seed=0)
    params = init_bn_mlp([2, 8, 8, 3], seed=0)
    loss_fn = bn_mlp_training_loss(norm.batchnorm_forward, norm.batchnorm_backward_alt)
    theirs_state, ours_state = {}, {}
    loss, grads = loss_fn(params, X, y, state=theirs_state, momentum=0.99)
    expected, expected_grads = bn_mlp_loss(params, X, y, state=ours_state, mode="train", momentum=0.99)
    assert loss == pytest.approx(expected) and grads.keys() == expected_grads.keys()
    for name in grads:
        np.testing.assert_allclose(grads[name], expected_grads[name])
    np.testing.assert_allclose(theirs_state[1]["running_mean"], ours_state[1]["running_mean"])
    calls = []

    def counted_forward(*args):
        calls.append(args[4])  # the mode it was asked for
        return norm.batchnorm_forward(*args)
    bn_mlp_training_loss(counted_forward, norm.batchnorm_backward_alt)(params, X, y, state={})
    assert calls == ["train", "train"]
    with pytest.raises(ValueError, match="give it the labels y .* predict with your own bn_mlp_forward"):
        loss_fn(params, X, None, state={})
