"""Reference normalisation layers for notebook 04 (numpy).

Batch norm normalises each feature over the batch; spatial batch norm each channel over
(N, H, W); layer norm each sample over (C, H, W); instance norm each sample's channel over
(H, W); group norm each sample's group of channels. Same contract as every layer:
``forward(...) -> (out, cache)``, ``backward(dout, cache) -> (dx, dgamma, dbeta)``.

Batch norm keeps running statistics for test time, updated as in the lecture:
``running = m * running + (1 - m) * batch`` with momentum m (0.99 in the lecture). The running
variance uses the batch's biased variance, the one the forward pass normalises with.
"""
from __future__ import annotations

import numpy as np

from . import reference


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


# --- batch norm -----------------------------------------------------------------------------

@reference("normalisation.batchnorm_forward")
def batchnorm_forward(x, gamma, beta, state, mode="train", momentum=0.99, eps=1e-5):
    """x: (N, D); gamma, beta: (D,). state: a dict holding "running_mean" and "running_var"
    (D,), created as zeros and ones when missing, updated in place in train mode.

    mode "train": normalise with the batch's mean and (biased) variance; "test": with the
    running ones. Returns (out (N, D), cache).
    """
    x = np.asarray(x, dtype=float)
    _require(x.ndim == 2, f"batchnorm_forward: x should be (N, D), got shape {x.shape}")
    d = x.shape[1]
    _require(np.shape(gamma) == (d,) and np.shape(beta) == (d,),
             f"batchnorm_forward: gamma and beta should have shape ({d},), got "
             f"{np.shape(gamma)} and {np.shape(beta)}")
    _require(mode in ("train", "test"), f"batchnorm_forward: mode should be 'train' or 'test', got {mode!r}")
    running_mean = state.setdefault("running_mean", np.zeros(d))
    running_var = state.setdefault("running_var", np.ones(d))
    if mode == "train":
        mu = x.mean(axis=0)
        var = x.var(axis=0)
        state["running_mean"] = momentum * running_mean + (1 - momentum) * mu
        state["running_var"] = momentum * running_var + (1 - momentum) * var
    else:
        mu, var = running_mean, running_var
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mu) * inv_std
    out = gamma * x_hat + beta
    return out, (x_hat, gamma, inv_std, mode)


@reference("normalisation.batchnorm_backward")
def batchnorm_backward(dout, cache):
    """Backward through the computational graph of batch norm, node by node.

    dout: (N, D). Returns (dx, dgamma, dbeta). In test mode the statistics are constants.
    """
    x_hat, gamma, inv_std, mode = cache
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(dout * x_hat, axis=0)
    dx_hat = dout * gamma
    if mode == "test":
        return dx_hat * inv_std, dgamma, dbeta
    xmu = x_hat / inv_std                                   # x - mu
    # x_hat = xmu * inv_std, inv_std = (var + eps)^(-1/2), var = mean(xmu^2), xmu = x - mean(x)
    dinv_std = np.sum(dx_hat * xmu, axis=0)
    dvar = dinv_std * -0.5 * inv_std ** 3
    dxmu = dx_hat * inv_std + dvar * 2 * xmu / n
    dx = dxmu - dxmu.mean(axis=0)
    return dx, dgamma, dbeta


@reference("normalisation.batchnorm_backward_alt")
def batchnorm_backward_alt(dout, cache):
    """The simplified closed form: dx = (gamma * inv_std / N) * (N dout - sum(dout)
    - x_hat * sum(dout * x_hat)). Returns (dx, dgamma, dbeta)."""
    x_hat, gamma, inv_std, mode = cache
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(dout * x_hat, axis=0)
    if mode == "test":
        return dout * gamma * inv_std, dgamma, dbeta
    dx = (gamma * inv_std / n) * (n * dout - dbeta - x_hat * dgamma)
    return dx, dgamma, dbeta


# --- batch norm over images, and the per-sample norms ---------------------------------------

@reference("normalisation.spatial_batchnorm_forward")
def spatial_batchnorm_forward(x, gamma, beta, state, mode="train", momentum=0.99, eps=1e-5):
    """Batch norm for images: statistics per channel over (N, H, W). x: (N, C, H, W);
    gamma, beta: (C,). Returns (out (N, C, H, W), cache)."""
    x = np.asarray(x, dtype=float)
    _require(x.ndim == 4, f"spatial_batchnorm_forward: x should be (N, C, H, W), got shape {x.shape}")
    n, c, h, w = x.shape
    flat = x.transpose(0, 2, 3, 1).reshape(-1, c)          # one row per pixel, one column per channel
    out, cache = batchnorm_forward(flat, gamma, beta, state, mode, momentum, eps)
    return out.reshape(n, h, w, c).transpose(0, 3, 1, 2), (cache, x.shape)


@reference("normalisation.spatial_batchnorm_backward")
def spatial_batchnorm_backward(dout, cache):
    """dout: (N, C, H, W). Returns (dx, dgamma (C,), dbeta (C,))."""
    bn_cache, (n, c, h, w) = cache
    dflat = dout.transpose(0, 2, 3, 1).reshape(-1, c)
    dx, dgamma, dbeta = batchnorm_backward_alt(dflat, bn_cache)
    return dx.reshape(n, h, w, c).transpose(0, 3, 1, 2), dgamma, dbeta


def _group_forward(x, gamma, beta, groups, eps):
    """Normalise each (sample, group of channels) over its channels and pixels; then scale and
    shift per channel. x: (N, C, H, W); gamma, beta: (C,)."""
    x = np.asarray(x, dtype=float)
    _require(x.ndim == 4, f"x should be (N, C, H, W), got shape {x.shape}")
    n, c, h, w = x.shape
    _require(c % groups == 0, f"{c} channels cannot be split into {groups} equal groups")
    _require(np.shape(gamma) == (c,) and np.shape(beta) == (c,),
             f"gamma and beta should have shape ({c},), one per channel, got "
             f"{np.shape(gamma)} and {np.shape(beta)}")
    g = x.reshape(n, groups, -1)                           # (N, G, C/G * H * W)
    mu = g.mean(axis=2, keepdims=True)
    inv_std = 1.0 / np.sqrt(g.var(axis=2, keepdims=True) + eps)
    x_hat = ((g - mu) * inv_std).reshape(x.shape)
    out = gamma.reshape(1, c, 1, 1) * x_hat + beta.reshape(1, c, 1, 1)
    return out, (x_hat, gamma, inv_std, groups)


def _group_backward(dout, cache):
    x_hat, gamma, inv_std, groups = cache
    n, c = dout.shape[:2]
    dbeta = dout.sum(axis=(0, 2, 3))
    dgamma = np.sum(dout * x_hat, axis=(0, 2, 3))
    dx_hat = (dout * gamma.reshape(1, c, 1, 1)).reshape(n, groups, -1)
    xh = x_hat.reshape(n, groups, -1)
    m = xh.shape[2]
    dx = (inv_std / m) * (m * dx_hat - dx_hat.sum(axis=2, keepdims=True)
                          - xh * np.sum(dx_hat * xh, axis=2, keepdims=True))
    return dx.reshape(dout.shape), dgamma, dbeta


@reference("normalisation.layernorm_forward")
def layernorm_forward(x, gamma, beta, eps=1e-5):
    """Per sample over (C, H, W): group norm with one group. Returns (out, cache)."""
    return _group_forward(x, gamma, beta, 1, eps)


@reference("normalisation.layernorm_backward")
def layernorm_backward(dout, cache):
    """Returns (dx, dgamma (C,), dbeta (C,))."""
    return _group_backward(dout, cache)


@reference("normalisation.instancenorm_forward")
def instancenorm_forward(x, gamma, beta, eps=1e-5):
    """Per sample and channel over (H, W): group norm with one group per channel."""
    return _group_forward(x, gamma, beta, np.shape(x)[1] if np.ndim(x) == 4 else 1, eps)


@reference("normalisation.instancenorm_backward")
def instancenorm_backward(dout, cache):
    return _group_backward(dout, cache)


@reference("normalisation.groupnorm_forward")
def groupnorm_forward(x, gamma, beta, groups, eps=1e-5):
    """Per sample and group of C/groups channels, over those channels and (H, W)."""
    return _group_forward(x, gamma, beta, groups, eps)


@reference("normalisation.groupnorm_backward")
def groupnorm_backward(dout, cache):
    return _group_backward(dout, cache)


# --- test-time fusion -----------------------------------------------------------------------

@reference("normalisation.fuse_batchnorm")
def fuse_batchnorm(w, b, gamma, beta, running_mean, running_var, eps=1e-5):
    """Fold a test-mode batch norm into the conv (w (F, C, KH, KW)) or linear layer (w (D, M),
    out = x w + b) before it: returns (w', b') with layer(x; w', b') = BN(layer(x; w, b)).

    Per output channel f: scale s = gamma / sqrt(var + eps); w' = s w; b' = s (b - mean) + beta.
    """
    scale = gamma / np.sqrt(running_var + eps)
    if np.ndim(w) == 4:                                     # conv: one filter per output channel
        w_fused = w * scale.reshape(-1, 1, 1, 1)
    elif np.ndim(w) == 2:                                   # linear: one column per output
        w_fused = w * scale.reshape(1, -1)
    else:
        raise ValueError(f"fuse_batchnorm: w should be a conv (F, C, KH, KW) or linear (D, M) "
                         f"weight, got shape {np.shape(w)}")
    return w_fused, scale * (b - running_mean) + beta
