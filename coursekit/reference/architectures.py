"""Reference answers for notebook 06: the arithmetic of architectures by formula (shapes,
parameters, activations, multiply-adds), checked there against :mod:`coursekit.models`'s
summary tool, which measures the same things on real PyTorch models."""
from __future__ import annotations

from math import prod

from . import reference
from .conv import output_size


@reference("architectures.conv_stats")
def conv_stats(in_shape, filters, kernel, stride=1, pad=0, bias=True):
    """in_shape (C, H, W). Returns (out_shape (F, H', W'), parameters, multiply-adds)."""
    c, h, w = in_shape
    out = (filters, output_size(h, kernel, stride, pad), output_size(w, kernel, stride, pad))
    params = filters * c * kernel * kernel + (filters if bias else 0)
    return out, params, prod(out) * c * kernel * kernel


@reference("architectures.pool_shape")
def pool_shape(in_shape, kernel, stride):
    """in_shape (C, H, W) -> (C, H', W'): pooling keeps the channels."""
    c, h, w = in_shape
    return (c, output_size(h, kernel, stride), output_size(w, kernel, stride))


@reference("architectures.fc_stats")
def fc_stats(in_features, out_features):
    """Returns (parameters, multiply-adds) of a fully connected layer."""
    return out_features * (in_features + 1), in_features * out_features


@reference("architectures.network_table")
def network_table(in_shape, layers):
    """One row (name, out_shape, params, activations, macs) per layer of a layer list (see
    :mod:`coursekit.models.lecture`); activations = the values of the output, for one image."""
    rows, shape = [], tuple(in_shape)
    for name, kind, *args in layers:
        params = macs = 0
        if kind == "conv":
            shape, params, macs = conv_stats(shape, *args)
        elif kind == "pool":
            shape = pool_shape(shape, *args)
        elif kind == "fc":
            params, macs = fc_stats(prod(shape), args[0])
            shape = (args[0],)
        rows.append((name, shape, params, prod(shape), macs))
    return rows


@reference("architectures.inception_stats")
def inception_stats(in_shape, c1, c3, c5, reduce3=None, reduce5=None, pool_proj=None):
    """The inception module of :class:`coursekit.models.Inception` (convs keep the size).
    Returns (out_shape, multiply-adds)."""
    c, h, w = in_shape
    macs = conv_stats(in_shape, c1, 1)[2]
    for filters, kernel, reduce in ((c3, 3, reduce3), (c5, 5, reduce5)):
        shape = in_shape
        if reduce:
            shape, _, m = conv_stats(shape, reduce, 1)
            macs += m
        macs += conv_stats(shape, filters, kernel, 1, kernel // 2)[2]
    pooled = c
    if pool_proj:
        macs += conv_stats(in_shape, pool_proj, 1)[2]
        pooled = pool_proj
    return (c1 + c3 + c5 + pooled, h, w), macs


@reference("architectures.stack_stats")
def stack_stats(n, kernel, channels):
    """n stacked kernel x kernel convs, stride 1, channels -> channels, no biases.
    Returns (receptive_field, weights)."""
    return 1 + n * (kernel - 1), n * kernel * kernel * channels * channels

