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


# --- counting --------------------------------------------------------------------------------

@reference("conv.conv_params")
def conv_params(c_in: int, filters: int, kernel: int) -> int:
    """Learnable parameters of a conv layer: F filters of C x K x K weights, plus F biases."""
    return filters * (c_in * kernel * kernel + 1)


@reference("conv.conv_macs")
def conv_macs(c_in: int, size: int, filters: int, kernel: int, stride: int = 1, pad: int = 0) -> int:
    """Multiply-adds of a conv layer on a (c_in, size, size) input: one C*K*K dot product per
    output value, F * H' * W' of them."""
    out = output_size(size, kernel, stride, pad)
    return filters * out * out * c_in * kernel * kernel


@reference("conv.receptive_field")
def receptive_field(layers) -> int:
    """Receptive field (in input pixels) of one output of a stack of layers, each a
    (kernel, stride) pair, conv or pool, first layer first: 1 + sum of (K_l - 1) times the
    product of the strides before layer l. L stacked K x K convs, stride 1: 1 + L (K - 1)."""
    field, jump = 1, 1
    for kernel, stride in layers:
        field += (kernel - 1) * jump
        jump *= stride
    return field


# --- naive convolution ----------------------------------------------------------------------

@reference("conv.conv_forward_naive")
def conv_forward_naive(x, w, b, stride=1, pad=0):
    """x: (N, C, H, W); w: (F, C, KH, KW); b: (F,). Returns (out (N, F, H', W'), cache).

    out[n, f, i, j] = sum(x_padded[n, :, i*S:i*S+KH, j*S:j*S+KW] * w[f]) + b[f]
    """
    _check_conv(x, w, b)
    n_images, _, h, wd = x.shape
    n_filters, _, kh, kw = w.shape
    ho, wo = output_size(h, kh, stride, pad), output_size(wd, kw, stride, pad)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((n_images, n_filters, ho, wo))
    for n in range(n_images):
        for f in range(n_filters):
            for i in range(ho):
                for j in range(wo):
                    patch = xp[n, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
                    out[n, f, i, j] = np.sum(patch * w[f]) + b[f]
    return out, (x, w, b, stride, pad)


@reference("conv.conv_backward_naive")
def conv_backward_naive(dout, cache):
    """dout: (N, F, H', W'). Returns (dx, dw, db) with the shapes of x, w and b."""
    x, w, b, stride, pad = cache
    _, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros_like(xp, dtype=float), np.zeros_like(w, dtype=float)
    n_images, n_filters, ho, wo = dout.shape
    for n in range(n_images):
        for f in range(n_filters):
            for i in range(ho):
                for j in range(wo):
                    rows, cols = slice(i * stride, i * stride + kh), slice(j * stride, j * stride + kw)
                    dw[f] += dout[n, f, i, j] * xp[n, :, rows, cols]
                    dxp[n, :, rows, cols] += dout[n, f, i, j] * w[f]
    dx = dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
    return dx, dw, dout.sum(axis=(0, 2, 3))


# --- im2col convolution ---------------------------------------------------------------------

@reference("conv.im2col")
def im2col(x, kh, kw, stride=1, pad=0):
    """Unfold x (N, C, H, W) into columns (C*KH*KW, N*H'*W'), one column per output position.

    Rows are ordered (c, ki, kj), as ``w.reshape(F, -1)`` flattens a filter; columns are
    ordered (n, i, j). The only loop is over the KH*KW offsets inside a filter: each offset
    takes one strided slice of every image at once.
    """
    if np.ndim(x) != 4:
        raise ValueError(f"im2col: x should be (N, C, H, W), got shape {np.shape(x)}")
    n, c, h, w = x.shape
    ho, wo = output_size(h, kh, stride, pad), output_size(w, kw, stride, pad)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((c, kh, kw, n, ho, wo), dtype=xp.dtype)
    for ki in range(kh):
        for kj in range(kw):
            window = xp[:, :, ki:ki + stride * ho:stride, kj:kj + stride * wo:stride]
            cols[:, ki, kj] = window.transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * ho * wo)


def col2im(cols, x_shape, kh, kw, stride=1, pad=0):
    """The adjoint of :func:`im2col`: add every column back onto the input positions it was
    taken from. cols: (C*KH*KW, N*H'*W'). Returns an array of shape x_shape (N, C, H, W)."""
    n, c, h, w = x_shape
    # the output size written out, not output_size: col2im is given while output_size is an exercise
    ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    cols = cols.reshape(c, kh, kw, n, ho, wo)
    xp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=cols.dtype)
    for ki in range(kh):
        for kj in range(kw):
            xp[:, :, ki:ki + stride * ho:stride, kj:kj + stride * wo:stride] += \
                cols[:, ki, kj].transpose(1, 0, 2, 3)
    return xp[:, :, pad:pad + h, pad:pad + w]


@reference("conv.conv_forward_im2col")
def conv_forward_im2col(x, w, b, stride=1, pad=0):
    """Same result as :func:`conv_forward_naive`, as one matrix product (F, C*KH*KW) @
    (C*KH*KW, N*H'*W'). Returns (out (N, F, H', W'), cache)."""
    _check_conv(x, w, b)
    n, _, h, wd = x.shape
    f, _, kh, kw = w.shape
    cols = im2col(x, kh, kw, stride, pad)
    ho, wo = output_size(h, kh, stride, pad), output_size(wd, kw, stride, pad)
    out = (w.reshape(f, -1) @ cols + b.reshape(-1, 1)).reshape(f, n, ho, wo).transpose(1, 0, 2, 3)
    return out, (x.shape, w, stride, pad, cols)


@reference("conv.conv_backward_im2col")
def conv_backward_im2col(dout, cache):
    """dout: (N, F, H', W'). Returns (dx, dw, db), as :func:`conv_backward_naive`."""
    x_shape, w, stride, pad, cols = cache
    f, _, kh, kw = w.shape
    d = dout.transpose(1, 0, 2, 3).reshape(f, -1)                # (F, N*H'*W')
    dw = (d @ cols.T).reshape(w.shape)
    dx = col2im(w.reshape(f, -1).T @ d, x_shape, kh, kw, stride, pad)
    return dx, dw, dout.sum(axis=(0, 2, 3))


@reference("conv.conv1x1_as_matmul")
def conv1x1_as_matmul(x, w, b):
    """A 1x1 convolution as a per-pixel linear layer. x: (N, C, H, W); w: (F, C); b: (F,).

    Every pixel's C channel values go through the same (C -> F) affine map.
    Returns out (N, F, H, W).
    """
    if np.ndim(x) != 4 or np.ndim(w) != 2 or np.shape(w)[1] != np.shape(x)[1] or np.shape(b) != (np.shape(w)[0],):
        raise ValueError(f"conv1x1_as_matmul: expected x (N, C, H, W), w (F, C) and b (F,) with "
                         f"the same C and F; got x {np.shape(x)}, w {np.shape(w)}, b {np.shape(b)}")
    n, c, h, wd = x.shape
    pixels = x.transpose(0, 2, 3, 1).reshape(n * h * wd, c)   # one row per pixel
    out = pixels @ w.T + b                                     # (N*H*W, F)
    return out.reshape(n, h, wd, -1).transpose(0, 3, 1, 2)


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
    nn, cc = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = x[:, :, i * stride:i * stride + size, j * stride:j * stride + size].reshape(n, c, -1)
            k = window.argmax(axis=2)                               # (N, C): where each max is
            r, s = i * stride + k // size, j * stride + k % size
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
