"""Reference convolution and pooling for notebook 03 (numpy, layout N, C, H, W).

Naive versions loop over output positions and say exactly what a convolution computes; the
fast versions unfold the input with im2col so that the convolution becomes one matrix
product, with no Python loop over output positions. Same contract as every layer:
``forward(...) -> (out, cache)``, ``backward(dout, cache) -> gradients``.
"""
from __future__ import annotations

import numpy as np

from . import reference


@reference("conv.output_size")
def output_size(size: int, kernel: int, stride: int = 1, pad: int = 0) -> int:
    """(size - kernel + 2 pad) / stride + 1, or a ValueError saying why the filter does not fit."""
    span = size - kernel + 2 * pad
    if kernel < 1 or stride < 1 or pad < 0:
        raise ValueError(f"need kernel >= 1, stride >= 1 and pad >= 0, got kernel={kernel}, "
                         f"stride={stride}, pad={pad}")
    if span < 0:
        raise ValueError(f"a {kernel}-wide filter does not fit in an input of size {size} with "
                         f"padding {pad}: the padded input is only {size + 2 * pad} wide")
    if span % stride:
        raise ValueError(f"the filter does not tile the input: (W - K + 2P) / S = ({size} - {kernel} "
                         f"+ 2*{pad}) / {stride} = {span / stride:g} is not a whole number")
    return span // stride + 1


def _check_conv(x, w, b):
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv: x should be (N, C, H, W) and w (F, C, KH, KW); got x {x.shape}, w {w.shape}")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"conv: x has {x.shape[1]} channels but the filters w {w.shape} expect {w.shape[1]}")
    if b.shape != (w.shape[0],):
        raise ValueError(f"conv: b should have shape ({w.shape[0]},), one bias per filter, got {b.shape}")


# --- naive convolution ----------------------------------------------------------------------

@reference("conv.conv_forward_naive")
def conv_forward_naive(x, w, b, stride=1, pad=0):
    """x: (N, C, H, W); w: (F, C, KH, KW); b: (F,). Returns (out (N, F, H', W'), cache)."""
    _check_conv(x, w, b)
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


@reference("conv.conv_backward_naive")
def conv_backward_naive(dout, cache):
    """dout: (N, F, H', W'). Returns (dx, dw, db) with the shapes of x, w and b."""
    x, w, b, stride, pad = cache
    _, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros_like(xp, dtype=float), np.zeros_like(w, dtype=float)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows, cols = slice(i * stride, i * stride + kh), slice(j * stride, j * stride + kw)
            d = dout[:, :, i, j]                                        # (N, F)
            dw += np.tensordot(d, xp[:, :, rows, cols], axes=([0], [0]))
            dxp[:, :, rows, cols] += np.tensordot(d, w, axes=([1], [0]))
    dx = dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
    return dx, dw, dout.sum(axis=(0, 2, 3))


# --- im2col convolution ---------------------------------------------------------------------

def _im2col_indices(c, h, w, kh, kw, stride, pad):
    ho, wo = output_size(h, kh, stride, pad), output_size(w, kw, stride, pad)
    i0 = np.tile(np.repeat(np.arange(kh), kw), c)
    i1 = stride * np.repeat(np.arange(ho), wo)
    j0 = np.tile(np.arange(kw), kh * c)
    j1 = stride * np.tile(np.arange(wo), ho)
    rows = i0.reshape(-1, 1) + i1.reshape(1, -1)                 # (C*KH*KW, H'*W')
    cols = j0.reshape(-1, 1) + j1.reshape(1, -1)
    chans = np.repeat(np.arange(c), kh * kw).reshape(-1, 1)
    return chans, rows, cols, ho, wo


def im2col(x, kh, kw, stride=1, pad=0):
    """Unfold x (N, C, H, W) into columns (C*KH*KW, N*H'*W'), one column per output position."""
    n, c, h, w = x.shape
    chans, rows, cols, _, _ = _im2col_indices(c, h, w, kh, kw, stride, pad)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    patches = xp[:, chans, rows, cols]                           # (N, C*KH*KW, H'*W')
    return patches.transpose(1, 2, 0).reshape(c * kh * kw, -1)


def col2im(cols, x_shape, kh, kw, stride=1, pad=0):
    """The adjoint of im2col: add each column back to the input positions it was taken from."""
    n, c, h, w = x_shape
    chans, rows, colidx, _, _ = _im2col_indices(c, h, w, kh, kw, stride, pad)
    xp = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    patches = cols.reshape(c * kh * kw, -1, n).transpose(2, 0, 1)
    np.add.at(xp, (slice(None), chans, rows, colidx), patches)
    return xp[:, :, pad:pad + h, pad:pad + w]


@reference("conv.conv_forward_im2col")
def conv_forward_im2col(x, w, b, stride=1, pad=0):
    """Same result as :func:`conv_forward_naive`, as one matrix product. Returns (out, cache)."""
    _check_conv(x, w, b)
    n, _, h, wd = x.shape
    f, _, kh, kw = w.shape
    cols = im2col(x, kh, kw, stride, pad)
    ho, wo = output_size(h, kh, stride, pad), output_size(wd, kw, stride, pad)
    out = (w.reshape(f, -1) @ cols + b.reshape(-1, 1)).reshape(f, ho, wo, n).transpose(3, 0, 1, 2)
    return out, (x.shape, w, stride, pad, cols)


@reference("conv.conv_backward_im2col")
def conv_backward_im2col(dout, cache):
    """Returns (dx, dw, db), as :func:`conv_backward_naive`."""
    x_shape, w, stride, pad, cols = cache
    f, _, kh, kw = w.shape
    d = dout.transpose(1, 2, 3, 0).reshape(f, -1)                # (F, H'*W'*N)
    dw = (d @ cols.T).reshape(w.shape)
    dx = col2im(w.reshape(f, -1).T @ d, x_shape, kh, kw, stride, pad)
    return dx, dw, dout.sum(axis=(0, 2, 3))


# --- pooling --------------------------------------------------------------------------------

@reference("conv.max_pool_forward")
def max_pool_forward(x, size=2, stride=2):
    """Max over size x size windows. x: (N, C, H, W). Returns (out (N, C, H', W'), cache)."""
    if x.ndim != 4:
        raise ValueError(f"max_pool_forward: x should be (N, C, H, W), got shape {x.shape}")
    n, c, h, w = x.shape
    ho, wo = output_size(h, size, stride), output_size(w, size, stride)
    out = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            out[:, :, i, j] = x[:, :, i * stride:i * stride + size, j * stride:j * stride + size].max(axis=(2, 3))
    return out, (x, size, stride)


@reference("conv.max_pool_backward")
def max_pool_backward(dout, cache):
    """Routes each gradient to the (first) maximum of its window. Returns dx (shape of x)."""
    x, size, stride = cache
    dx = np.zeros_like(x, dtype=float)
    n, c = x.shape[:2]
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = x[:, :, i * stride:i * stride + size, j * stride:j * stride + size].reshape(n, c, -1)
            k = window.argmax(axis=2)
            r, s = i * stride + k // size, j * stride + k % size
            nn, cc = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
            np.add.at(dx, (nn, cc, r, s), dout[:, :, i, j])
    return dx


@reference("conv.avg_pool_forward")
def avg_pool_forward(x, size=2, stride=2):
    """Mean over size x size windows. Returns (out, cache)."""
    if x.ndim != 4:
        raise ValueError(f"avg_pool_forward: x should be (N, C, H, W), got shape {x.shape}")
    ho, wo = output_size(x.shape[2], size, stride), output_size(x.shape[3], size, stride)
    out = np.zeros(x.shape[:2] + (ho, wo))
    for i in range(ho):
        for j in range(wo):
            out[:, :, i, j] = x[:, :, i * stride:i * stride + size, j * stride:j * stride + size].mean(axis=(2, 3))
    return out, (x.shape, size, stride)


@reference("conv.avg_pool_backward")
def avg_pool_backward(dout, cache):
    """Spreads each gradient evenly over its window. Returns dx."""
    x_shape, size, stride = cache
    dx = np.zeros(x_shape)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            dx[:, :, i * stride:i * stride + size, j * stride:j * stride + size] += \
                dout[:, :, i, j][:, :, None, None] / size ** 2
    return dx
