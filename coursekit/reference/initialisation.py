"""Reference implementations for notebook 05: weight initialisation, activation and gradient
statistics through a deep net, dropout, weight penalties and input preprocessing (numpy).

The lecture's experiment: a 1000 x 500 unit-Gaussian input through 10 layers of 500 units
(no biases), h_i = f(h_{i-1} W_i), with W_i drawn by each scheme of :data:`SCHEMES`.
"""
from __future__ import annotations

import numpy as np

from . import reference

#: scheme -> the weights' standard deviation as a function of fan_in
SCHEMES = {
    "small": lambda fan_in: 0.01,
    "large": lambda fan_in: 1.0,
    "xavier": lambda fan_in: 1.0 / np.sqrt(fan_in),
    "he": lambda fan_in: np.sqrt(2.0 / fan_in),
}

ACTIVATIONS = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0)}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@reference("initialisation.init_weights")
def init_weights(fan_in: int, fan_out: int, scheme: str, rng: np.random.Generator) -> np.ndarray:
    """A (fan_in, fan_out) weight matrix N(0, 1) * std, std from :data:`SCHEMES`."""
    _require(scheme in SCHEMES, f"unknown scheme {scheme!r}: expected one of {sorted(SCHEMES)}")
    return rng.standard_normal((fan_in, fan_out)) * SCHEMES[scheme](fan_in)


@reference("initialisation.forward_activations")
def forward_activations(X, weights, activation="tanh"):
    """h_0 = X (N, D); h_i = f(h_{i-1} @ W_i). Returns [h_1, ..., h_L] (the input not included)."""
    _require(activation in ACTIVATIONS, f"unknown activation {activation!r}: expected one of {sorted(ACTIVATIONS)}")
    f = ACTIVATIONS[activation]
    h, hs = X, []
    for W in weights:
        _require(h.shape[1] == W.shape[0], f"a layer's weights are {W.shape} but its input has "
                                           f"{h.shape[1]} features")
        h = f(h @ W)
        hs.append(h)
    return hs


@reference("initialisation.backward_grad_norms")
def backward_grad_norms(X, weights, activation, dout):
    """Backpropagate ``dout`` (the gradient on h_L) through the net of
    :func:`forward_activations`; returns [||dW_1||, ..., ||dW_L||] (Frobenius norms, layer 1
    first)."""
    hs = [X] + forward_activations(X, weights, activation)
    norms = []
    dh = dout
    for i in range(len(weights), 0, -1):
        h = hs[i]
        dz = dh * (1 - h ** 2) if activation == "tanh" else dh * (h > 0)
        norms.append(float(np.linalg.norm(hs[i - 1].T @ dz)))
        dh = dz @ weights[i - 1].T
    return norms[::-1]


def lecture_experiment(scheme: str, activation: str, seed: int = 0, layers: int = 10,
                       units: int = 500, n: int = 1000):
    """The lecture's net: X (n, units) ~ N(0, 1), ``layers`` layers of ``units``. Returns
    (X, weights, activations)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, units))
    weights = [init_weights(units, units, scheme, rng) for _ in range(layers)]
    return X, weights, forward_activations(X, weights, activation)


def layer_stats(activations) -> list[tuple[float, float]]:
    """[(mean, std)] of each layer's values."""
    return [(float(np.mean(h)), float(np.std(h))) for h in activations]


# --- dropout --------------------------------------------------------------------------------

@reference("initialisation.dropout_forward")
def dropout_forward(x, keep, mode, rng):
    """Inverted dropout: in train mode keep each value with probability ``keep`` and divide
    the kept ones by ``keep`` (so the expected value is unchanged and test mode is the
    identity). Returns (out, cache); cache is the mask (None in test mode)."""
    _require(0 < keep <= 1, f"keep is a probability in (0, 1], got {keep}")
    _require(mode in ("train", "test"), f"mode should be 'train' or 'test', got {mode!r}")
    if mode == "test":
        return x, None
    mask = (rng.random(np.shape(x)) < keep) / keep
    return x * mask, mask


@reference("initialisation.dropout_backward")
def dropout_backward(dout, cache):
    """dx = dout * mask (dout itself in test mode)."""
    return dout if cache is None else dout * cache


# --- weight penalties and preprocessing -----------------------------------------------------

@reference("initialisation.regularization")
def regularization(W, lam, kind):
    """L2: (lam * sum(W^2), 2 lam W); L1: (lam * sum|W|, lam sign(W))."""
    _require(kind in ("l2", "l1"), f"kind should be 'l2' or 'l1', got {kind!r}")
    if kind == "l2":
        return float(lam * np.sum(W * W)), 2 * lam * W
    return float(lam * np.sum(np.abs(W))), lam * np.sign(W)


@reference("initialisation.channel_mean_subtract")
def channel_mean_subtract(train, test):
    """Subtract the training set's per-channel mean (over N, H, W) from both sets.
    train, test: (N, C, H, W). Returns (train_centred, test_centred, mean (C,))."""
    _require(np.ndim(train) == 4 and np.ndim(test) == 4 and np.shape(train)[1] == np.shape(test)[1],
             f"train and test should be (N, C, H, W) with the same C, got {np.shape(train)} and {np.shape(test)}")
    mean = np.mean(train, axis=(0, 2, 3))
    m = mean.reshape(1, -1, 1, 1)
    return train - m, test - m, mean

