"""The checkers of notebooks 04-06 pass the references and name the mistake in plausible
wrong answers."""

import numpy as np
import pytest
import torch
from torch import nn

from coursekit import models
from coursekit.checks import CheckError, ReferenceUsedError
from coursekit.checks import architectures as check_arch
from coursekit.checks import initialisation as check_init
from coursekit.checks import normalisation as check_norm
from coursekit.reference import _original
from coursekit.reference import normalisation as ref_norm

bn_forward = _original("normalisation.batchnorm_forward")


def test_references_pass(capsys):
    check_norm.batchnorm_forward(bn_forward)
    check_norm.batchnorm_backward(bn_forward, _original("normalisation.batchnorm_backward"))
    check_norm.batchnorm_backward_alt(bn_forward, _original("normalisation.batchnorm_backward_alt"))
    check_norm.spatial_batchnorm(_original("normalisation.spatial_batchnorm_forward"), _original("normalisation.spatial_batchnorm_backward"))
    check_norm.groupnorm(_original("normalisation.groupnorm_forward"), _original("normalisation.groupnorm_backward"))
    check_norm.fuse_batchnorm(_original("normalisation.fuse_batchnorm"))
    check_init.init_weights(_original("initialisation.init_weights"))
    check_init.dropout(_original("initialisation.dropout_forward"), _original("initialisation.dropout_backward"))
    check_arch.network_table(_original("architectures.network_table"))
    assert capsys.readouterr().out.count("✓") == 9


def _bn_with(**changes):
    """The reference batch norm forward with one step changed."""
    def forward(x, gamma, beta, state, mode="train", momentum=0.99, eps=1e-5):
        d = x.shape[1]
        rm, rv = state.setdefault("running_mean", np.zeros(d)), state.setdefault("running_var", np.ones(d))
        if mode == "train" or changes.get("test_uses_batch"):
            mu, var = x.mean(axis=0), x.var(axis=0, ddof=changes.get("ddof", 0))
            m = 1 - momentum if changes.get("swap") else momentum
            if mode == "train":
                state["running_mean"], state["running_var"] = m * rm + (1 - m) * mu, m * rv + (1 - m) * var
        else:
            mu, var = rm, rv
        out = gamma * (x - mu) / np.sqrt(var + (0 if changes.get("no_eps") else eps)) + beta
        return out, None
    return forward


@pytest.mark.parametrize("changes,phrase", [
    ({"ddof": 1}, "unbiased variance"),
    ({"swap": True}, "m and 1 - m are swapped"),
    ({"no_eps": True}, "you left out eps"),
    ({"test_uses_batch": True}, "running statistics, not the batch's"),
])
def test_batchnorm_forward_mistakes(changes, phrase):
    with pytest.raises(CheckError, match=phrase):
        check_norm.batchnorm_forward(_bn_with(**changes))


def test_batchnorm_backward_with_constant_statistics():
    def backward(dout, cache):
        x_hat, gamma, inv_std, _ = cache
        return dout * gamma * inv_std, np.sum(dout * x_hat, axis=0), dout.sum(axis=0)
    with pytest.raises(CheckError, match="treated them as constants"):
        check_norm.batchnorm_backward(bn_forward, backward)


def test_spatial_batchnorm_without_transpose():
    def forward(x, gamma, beta, state, mode="train", momentum=0.99, eps=1e-5):
        out, cache = bn_forward(x.reshape(-1, x.shape[1]), gamma, beta, state, mode, momentum, eps)
        return out.reshape(x.shape), cache
    with pytest.raises(CheckError, match="move C last"):
        check_norm.spatial_batchnorm(forward, _original("normalisation.spatial_batchnorm_backward"))


def test_groupnorm_as_instance_norm():
    def forward(x, gamma, beta, groups, eps=1e-5):
        return ref_norm.groupnorm_forward(x, gamma, beta, x.shape[1], eps)
    with pytest.raises(CheckError, match="each channel over \\(H, W\\) alone"):
        check_norm.groupnorm(forward, _original("normalisation.groupnorm_backward"))


def test_fuse_without_the_mean():
    def fuse(w, b, gamma, beta, mean, var, eps=1e-5):
        w2, _ = ref_norm.fuse_batchnorm(w, b, gamma, beta, mean, var, eps)
        return w2, gamma / np.sqrt(var + eps) * b + beta
    with pytest.raises(CheckError, match="forgot the running mean"):
        check_norm.fuse_batchnorm(fuse)


def test_bn_net_in_train_mode_at_test_time():
    from coursekit.reference.networks import bn_mlp_loss

    def forward(params, state, X, mode):
        return bn_mlp_loss(params, X, state=state, mode="train", momentum=0.99)
    with pytest.raises(CheckError, match="train-mode scores"):
        check_norm.bn_mlp_forward(forward)


@pytest.mark.parametrize("scale,phrase", [
    (lambda i, o: 1 / np.sqrt(o), "not fan_out"),
    (lambda i, o: 1 / i, "1 / fan_in is the variance"),
])
def test_init_mistakes(scale, phrase):
    def init_weights(fan_in, fan_out, scheme, rng):
        s = {"small": 0.01, "large": 1.0, "xavier": scale(fan_in, fan_out), "he": np.sqrt(2 / fan_in)}[scheme]
        return rng.standard_normal((fan_in, fan_out)) * s
    with pytest.raises(CheckError, match=phrase):
        check_init.init_weights(init_weights)


def test_dropout_not_inverted():
    def forward(x, keep, mode, rng):
        if mode == "test":
            return x * keep, None
        mask = rng.random(x.shape) < keep
        return x * mask, mask
    with pytest.raises(CheckError, match="divides them by keep"):
        check_init.dropout(forward, lambda dout, mask: dout * mask)


def test_lecture_numbers_catch_a_wrong_experiment():
    stats = {key: [(0.0, 0.5)] * 10 for key in
             [("small", "tanh"), ("large", "tanh"), ("xavier", "tanh"), ("xavier", "relu"), ("he", "relu")]}
    with pytest.raises(CheckError, match="small \\+ tanh: layer 1"):
        check_init.lecture_numbers(stats)


def test_conv_stats_without_bias():
    def conv_stats(in_shape, filters, kernel, stride=1, pad=0):
        out, params, macs = _original("architectures.conv_stats")(in_shape, filters, kernel, stride, pad)
        return out, params - filters, macs
    with pytest.raises(CheckError, match="forgot the biases"):
        check_arch.layer_formulas(conv_stats, _original("architectures.pool_shape"), _original("architectures.fc_stats"))


def test_inception_without_the_pool_branch():
    def inception(in_shape, *args, **kwargs):
        (c, h, w), macs = _original("architectures.inception_stats")(in_shape, *args, **kwargs)
        return (c - in_shape[0], h, w), macs
    with pytest.raises(CheckError, match="concatenated along channels"):
        check_arch.inception_stats(inception)


class NoShortcut(nn.Module):
    expansion = 1

    def __init__(self, in_channels, planes, stride=1):
        super().__init__()
        inner = models.BasicBlock(in_channels, planes, stride)
        for name, child in inner.named_children():
            setattr(self, name, child)

    def forward(self, x):
        return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


def test_resnet_block_mistakes():
    with pytest.raises(CheckError, match="left out the shortcut"):
        check_arch.resnet_blocks(NoShortcut, _own_bottleneck())
    with pytest.raises(ReferenceUsedError):
        check_arch.resnet_blocks(type("Mine", (models.BasicBlock,), {}), _own_bottleneck())


def _own_bottleneck():
    source = open(models.resnet.__file__).read().replace("from __future__ import annotations", "")
    namespace = {}
    exec(source, namespace)
    return namespace["Bottleneck"]


def test_deep_mlp_relu_after_add():
    class Wrong(nn.Module):
        def __init__(self, i, w, d, c, residual):
            super().__init__()
            self.residual = residual
            self.inp, self.out = nn.Linear(i, w), nn.Linear(w, c)
            self.blocks = nn.ModuleList(nn.Linear(w, w) for _ in range(d))

        def forward(self, x):
            h = torch.relu(self.inp(x))
            for block in self.blocks:
                h = torch.relu(h + block(h)) if self.residual else torch.relu(block(h))
            return self.out(h)
    with pytest.raises(CheckError, match="apply the ReLU to the block's output"):
        check_arch.deep_mlp(Wrong)
    with pytest.raises(ReferenceUsedError):
        check_arch.deep_mlp(type("Mine", (models.DeepMLP,), {}))
