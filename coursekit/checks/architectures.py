"""Checkers for notebook 06, architectures.

The formula exercises are compared with what :func:`coursekit.models.summary` measures on
real PyTorch layers and models (the lecture's AlexNet and VGG16, inception modules), not with
another formula. The PyTorch exercises (ResNet blocks, the residual MLP) are compared with
torchvision's and coursekit's modules carrying the same weights.
"""
from __future__ import annotations

import copy
import functools
import numpy as np
import torch
from torch import nn

from . import CheckError, ReferenceUsedError, personal
from .checker import checker
from .diagnose import compare
from .student import call, coursekit_class, type_name, unpack
from .. import models
from ..reference import architectures as ref  # noqa: F401  (registers the references ARCH_NAMES names)
from ..reference import conv as ref_conv

ARCH_NAMES = {name: f"architectures.{name}" for name in ("conv_stats", "pool_shape", "fc_stats")}
ARCH_NAMES["output_size"] = "conv.output_size"



@functools.lru_cache(maxsize=None)
def _measured(layers: tuple, in_shape: tuple):
    """The summary tool's rows (by name) of the model built from a layer list (on the meta
    device: shapes without values, no weights to initialise)."""
    with torch.device("meta"):
        model = models.build(list(layers), in_channels=in_shape[0])
    return {row.name: row for row in models.summary(model, in_shape).rows}


def _tuple(name, value):
    try:
        return tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise CheckError(f"{name} should be a shape, a tuple like (96, 55, 55); got {value!r}") from None


# --- 1. one layer by formula ----------------------------------------------------------------

def _count_mistakes(row, in_shape, f: int, k: int) -> tuple[list, list]:
    """The wrong parameter and multiply-add counts of F filters K x K on ``in_shape`` (whose
    summary ``row`` holds the right ones), each with what it means."""
    c, h, w = in_shape
    return ([(row.params - f, "you forgot the biases, one per filter."),
             (f * (k * k + 1), "each filter spans all C input channels: C x K x K weights + 1 bias.")],
            [(f * h * w * c * k * k, "count one C*K*K dot product per OUTPUT value, F x H' x W' of them."),
             (row.macs // c, "each output value sums over all C input channels: C x K x K multiply-adds.")])


@checker("layer formulas",
         exercise=("architectures.conv_stats", "architectures.pool_shape", "architectures.fc_stats"),
         builds_on=ARCH_NAMES)
def layer_formulas(conv_stats, pool_shape, fc_stats, *, seed=0):
    """conv_stats / pool_shape / fc_stats against the summary of one PyTorch layer."""
    rng = np.random.default_rng(seed)
    cases = [((3, 227, 227), 96, 11, 4, 0), ((64, 57, 57), 128, 3, 2, 1), ((3, 32, 32), 10, 5, 1, 2)]
    for _ in range(2):
        k = int(rng.choice([1, 3, 5]))
        cases.append(((int(rng.integers(1, 20)), int(rng.integers(8, 20)), int(rng.integers(8, 20))),
                      int(rng.integers(1, 30)), k, 1, k // 2))
    for in_shape, f, k, s, p in cases:
        row = models.summary(nn.Conv2d(in_shape[0], f, k, s, p), in_shape).rows[1]
        where = f"conv_stats({in_shape}, {f}, {k}, {s}, {p})"
        out, params, macs = unpack(where, call("conv_stats", conv_stats, in_shape, f, k, s, p), 3)
        if _tuple(f"{where} out_shape", out) != row.out_shape:
            raise CheckError(f"{where}: out_shape {tuple(out)}, the layer gives {row.out_shape}"
                             + (": channels first, (F, H', W')." if tuple(out)[-1] == f else "."))
        params_wrong, macs_wrong = _count_mistakes(row, in_shape, f, k)
        compare(f"{where} parameters", params, row.params, mistakes=params_wrong)
        compare(f"{where} multiply-adds", macs, row.macs, mistakes=macs_wrong)
    for in_shape, k, s in (((96, 55, 55), 3, 2), ((64, 224, 224), 2, 2), ((5, 9, 9), 3, 3)):
        row = models.summary(nn.MaxPool2d(k, s), in_shape).rows[1]
        got = _tuple("pool_shape", call("pool_shape", pool_shape, in_shape, k, s))
        if got != row.out_shape:
            raise CheckError(f"pool_shape({in_shape}, {k}, {s}) = {got}, the layer gives {row.out_shape}"
                             + (": pooling keeps the channels." if got[1:] == row.out_shape[1:] else "."))
    for m, n in ((9216, 4096), (4096, 1000), (int(rng.integers(2, 50)), int(rng.integers(2, 50)))):
        row = models.summary(nn.Linear(m, n), (m,)).rows[1]
        params, macs = unpack("fc_stats", call("fc_stats", fc_stats, m, n), 2)
        compare(f"fc_stats({m}, {n}) parameters", params, row.params, mistakes=[
            (m * n, "you forgot the biases, one per output.")])
        compare(f"fc_stats({m}, {n}) multiply-adds", macs, row.macs)
    return ("conv_stats, pool_shape and fc_stats agree with the summary of real PyTorch layers "
            "(AlexNet's CONV1: 55x55x96, 34,944 parameters).")


@checker("layer by hand")
def layer_by_hand(*, shape, params, macs):
    """Check the output shape, parameters and multiply-adds of the student's own conv layer
    (:func:`coursekit.checks.personal.current`; AlexNet's CONV1 without an id), worked out by
    hand, against the summary of the PyTorch layer."""
    layer = personal.current().layer
    in_shape, f, k, s, p = (layer[key] for key in ("in_shape", "filters", "kernel", "stride", "pad"))
    row = models.summary(nn.Conv2d(in_shape[0], f, k, s, p), in_shape).rows[1]
    c, side = in_shape[0], in_shape[1]
    where = f"your layer ({f} filters {k}x{k}, stride {s}, pad {p}, on {'x'.join(map(str, in_shape))})"
    got = _tuple(f"{where}: its output shape", shape)
    if got != row.out_shape:
        hint = {(f, (side - k) // s + 1, (side - k) // s + 1): ": the zero padding counts.",
                (c,) + row.out_shape[1:]: ": a conv layer has F output channels, one per filter.",
                row.out_shape[1:] + (f,): ": channels first, (F, H', W')."}.get(got, ".")
        raise CheckError(f"{where}: output shape {got}, the layer gives {row.out_shape}{hint}")
    params_wrong, macs_wrong = _count_mistakes(row, in_shape, f, k)
    compare(f"{where}: its parameters", params, row.params, mistakes=params_wrong)
    compare(f"{where}: its multiply-adds", macs, row.macs, mistakes=macs_wrong)
    return (f"your layer by hand: output {'x'.join(map(str, row.out_shape))}, {row.params:,} parameters, "
            f"{row.macs:,} multiply-adds.")


# --- 2. a whole network ---------------------------------------------------------------------

@checker("network_table", exercise=("architectures.network_table",), builds_on=ARCH_NAMES)
def network_table(fn, *, seed=0):
    """The student's table for AlexNet, VGG16 and a random small net against the summary
    tool's measurement of the PyTorch models built from the same layer lists."""
    rng = np.random.default_rng(seed)
    small = [("c1", "conv", int(rng.integers(2, 9)), 3, 1, 1), ("p1", "pool", 2, 2),
             ("c2", "conv", int(rng.integers(2, 9)), *[(3, 1, 1), (2, 2, 0)][int(rng.integers(0, 2))]),
             ("f1", "fc", int(rng.integers(5, 20))), ("f2", "fc", 3)]
    nets = [("AlexNet", models.ALEXNET_INPUT, models.ALEXNET_LAYERS),
            ("VGG16", models.VGG16_INPUT, models.VGG16_LAYERS), ("a small net", (3, 16, 16), small)]
    for label, in_shape, layers in nets:
        rows = call("network_table", fn, in_shape, [tuple(layer) for layer in layers])
        if not isinstance(rows, (list, tuple)) or len(rows) != len(layers):
            raise CheckError(f"network_table should return one row per layer ({len(layers)} for "
                             f"{label}); got {type(rows).__name__} of length "
                             f"{len(rows) if hasattr(rows, '__len__') else '?'}.")
        measured = _measured(tuple(layers), tuple(in_shape))
        for row, layer in zip(rows, layers):
            name, out_shape, params, activations, macs = unpack(f"{label} row {layer[0]!r}", tuple(row), 5)
            want = measured[layer[0]]
            where = f"{label} {layer[0]}"
            if _tuple(f"{where} out_shape", out_shape) != want.out_shape:
                raise CheckError(f"{where}: output shape {tuple(out_shape)}, the model gives {want.out_shape}.")
            compare(f"{where} parameters", params, want.params,
                    mistakes=[(want.params - want.out_shape[0], "you forgot the biases.")] if want.params else [])
            compare(f"{where} activations", activations, want.activations, mistakes=[
                (4 * want.activations, "count values here, not bytes (memory = values x 4 bytes).")])
            compare(f"{where} multiply-adds", macs, want.macs)
    return ("network_table: every row of AlexNet and VGG16 agrees with the summary of the PyTorch "
            "models (shapes, parameters, activations, multiply-adds).")


# --- 3. inception ---------------------------------------------------------------------------

@checker("inception_stats", exercise=("architectures.inception_stats",), builds_on=ARCH_NAMES)
def inception_stats(fn, *, seed=0):
    """Output shape and multiply-adds of naive and bottleneck inception modules."""
    rng = np.random.default_rng(seed)
    cases = [((256, 28, 28), (128, 192, 96)), ((256, 28, 28), (128, 192, 96, 64, 64, 64)),
             ((int(rng.integers(4, 40)), 9, 9), tuple(int(v) for v in rng.integers(2, 20, 6)))]
    for in_shape, args in cases:
        torch.manual_seed(0)
        measured = models.summary(models.Inception(in_shape[0], *args), in_shape)
        where = f"inception_stats({in_shape}, {', '.join(map(str, args))})"
        out, macs = unpack(where, call("inception_stats", fn, in_shape, *args), 2)
        if _tuple(f"{where} out_shape", out) != measured.output_shape:
            pooled = "the pooling branch keeps all C input channels" if len(args) == 3 else \
                "the pooling branch's 1 x 1 conv gives pool_proj channels"
            raise CheckError(f"{where}: output shape {tuple(out)}, the module gives "
                             f"{measured.output_shape}: the branches are concatenated along "
                             f"channels, and {pooled}.")
        compare(f"{where} multiply-adds", macs, measured.total_macs)
    return ("inception_stats: the naive module on 28x28x256 gives 28x28x672 and 854M multiply-adds; "
            "with 1 x 1 bottlenecks 28x28x480 and 271M.")


# --- 4. ResNet blocks -----------------------------------------------------------------------

#: the networks of coursekit that are this notebook's answers (locked in the students' coursekit)
ANSWER_MODELS = (models.BasicBlock, models.Bottleneck, models.DeepMLP)


def _refuse_coursekit(cls, *ours):
    used = coursekit_class(cls, *ours)
    if used:
        raise ReferenceUsedError(f"{cls.__name__} is coursekit's {used} (or built on it): write your own.")


def _torchvision_block(kind, in_channels, planes, stride):
    from torchvision.models import resnet as tv
    block = tv.BasicBlock if kind == "basic" else tv.Bottleneck
    out = planes * block.expansion
    down = None
    if stride != 1 or in_channels != out:
        down = nn.Sequential(nn.Conv2d(in_channels, out, 1, stride, bias=False), nn.BatchNorm2d(out))
    return block(in_channels, planes, stride, down)


def _randomise_bn(module, gen):
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.5, generator=gen)
            m.running_var.uniform_(0.5, 2, generator=gen)
            m.weight.data.uniform_(0.5, 1.5, generator=gen)
            m.bias.data.normal_(0, 0.2, generator=gen)


def _block_variants(tv_block, kind, x):
    """Outputs of the usual mistakes, computed with torchvision's layers."""
    b = tv_block
    identity = x if b.downsample is None else b.downsample(x)
    out = b.relu(b.bn1(b.conv1(x)))
    if kind == "basic":
        out = b.bn2(b.conv2(out))
    else:
        out = b.bn3(b.conv3(b.relu(b.bn2(b.conv2(out)))))
    return [(out + identity, "apply a ReLU after adding the shortcut: out = relu(F(x) + x)."),
            (torch.relu(out), "you left out the shortcut: add x (or downsample(x)) before the last ReLU."),
            (torch.relu(out) + identity, "the last ReLU comes after the addition: relu(F(x) + x), "
                                          "not relu(F(x)) + x.")]


@checker("ResNet blocks", builds_on=ARCH_NAMES)
def resnet_blocks(BasicBlock, Bottleneck, *, seed=0):
    """Each block against torchvision's with the same weights: parameter count, output in
    train and eval mode, for stride 1 and for a shape-changing stride 2."""
    _refuse_coursekit(BasicBlock, models.BasicBlock, models.Bottleneck)
    _refuse_coursekit(Bottleneck, models.BasicBlock, models.Bottleneck)
    gen = torch.Generator().manual_seed(seed)
    names = {"basic": "conv1, bn1, conv2, bn2", "bottleneck": "conv1, bn1, conv2, bn2, conv3, bn3"}
    for kind, cls, configs in (("basic", BasicBlock, ((16, 16, 1), (16, 32, 2))),
                               ("bottleneck", Bottleneck, ((64, 16, 1), (32, 16, 2)))):
        label = str(getattr(cls, "__name__", kind))
        for in_channels, planes, stride in configs:
            where = f"{label}({in_channels}, {planes}, stride={stride})"
            torch.manual_seed(int(torch.randint(0, 2 ** 30, (1,), generator=gen)))
            tv_block = _torchvision_block(kind, in_channels, planes, stride)
            _randomise_bn(tv_block, gen)
            block = call(label, cls, in_channels, planes, stride)
            if not isinstance(block, nn.Module):
                raise CheckError(f"{where} should be an nn.Module, got {type_name(block)}.")
            mine = sum(p.numel() for p in block.parameters())
            theirs = sum(p.numel() for p in tv_block.parameters())
            if mine != theirs:
                biases = sum(m.out_channels for m in tv_block.modules() if isinstance(m, nn.Conv2d))
                hint = (": convs followed by batch norm need no bias (bias=False); BN's beta is the bias."
                        if mine - theirs == biases else
                        ": is the shortcut a 1 x 1 conv + BN exactly when the shape changes?"
                        if stride != 1 or in_channels != planes * tv_block.expansion else ".")
                raise CheckError(f"{where} has {mine:,} parameters, torchvision's block {theirs:,}{hint}")
            try:
                block.load_state_dict(tv_block.state_dict())
            except RuntimeError as err:
                raise CheckError(f"{where}: its layers are not named like torchvision's. Use "
                                 f"{names[kind]} and downsample (an nn.Sequential of the 1 x 1 conv "
                                 f"and its BN, or None). PyTorch said: {str(err).splitlines()[0]}") from None
            x = torch.randn(2, in_channels, 8, 8, generator=gen)
            for mode in ("train", "eval"):
                block.train(mode == "train")
                tv_block.train(mode == "train")
                with torch.no_grad():
                    got = call(f"{label}.forward", block, x.clone())
                    want = tv_block(x.clone())
                    mistakes = [(m.numpy(), msg) for m, msg in _block_variants(copy.deepcopy(tv_block), kind, x.clone())]
                if not isinstance(got, torch.Tensor):
                    raise CheckError(f"{where} returned {type(got).__name__}, expected a tensor.")
                compare(f"{where} output ({mode} mode)", got.detach().numpy(), want.numpy(),
                        rtol=1e-4, atol=1e-5, mistakes=mistakes)
    return ("BasicBlock and Bottleneck: same parameters and outputs as torchvision's, with and "
            "without a downsampling shortcut.")


# --- 5. stacked small convs -----------------------------------------------------------------

@checker("stack_stats", exercise=("architectures.stack_stats",), builds_on=ARCH_NAMES)
def stack_stats(fn, *, seed=0):
    """(receptive field, weights) of n stacked k x k convs against the summary tool and the
    receptive-field formula of notebook 03."""
    rng = np.random.default_rng(seed)
    cases = [(3, 3, 64), (1, 7, 64), (2, 3, 8), (int(rng.integers(1, 5)), int(rng.choice([3, 5])), int(rng.integers(2, 30)))]
    for n, k, c in cases:
        where = f"stack_stats({n}, {k}, {c})"
        field, weights = unpack(where, call("stack_stats", fn, n, k, c), 2)
        stack = nn.Sequential(*[nn.Conv2d(c, c, k, padding=k // 2, bias=False) for _ in range(n)])
        compare(f"{where} receptive field", field, ref_conv.receptive_field([(k, 1)] * n), mistakes=[
            (n * k, "stacking adds K - 1 per layer, not K: 1 + n (K - 1)."),
            (n * (k - 1), "one output sees 1 pixel plus K - 1 per layer: 1 + n (K - 1).")])
        compare(f"{where} weights", weights, sum(p.numel() for p in stack.parameters()), mistakes=[
            (n * k * k * c, "each filter spans all C input channels and there are C filters: n K^2 C^2."),
            (n * k * k * c * c + n * c, "count weights only (no biases), as the lecture does.")])
    return ("stack_stats: three 3 x 3 convs see 7 x 7 like one 7 x 7 conv, with 27 C^2 weights "
            "instead of 49 C^2.")


# --- 6. the residual MLP --------------------------------------------------------------------

def _deep_mlp_weights(in_features, width, depth, classes) -> dict[str, torch.Tensor]:
    """A DeepMLP's state dict, initialised as PyTorch initialises its layers (inp, the blocks,
    out, in that order)."""
    layers = {"inp": nn.Linear(in_features, width), **{f"blocks.{i}": nn.Linear(width, width) for i in range(depth)},
              "out": nn.Linear(width, classes)}
    return {f"{name}.{kind}": getattr(layer, kind).detach().clone() for name, layer in layers.items()
            for kind in ("weight", "bias")}


def _deep_mlp(weights: dict, x: torch.Tensor, kind: str) -> torch.Tensor:
    """The output of the DeepMLP with ``weights`` on x, as kind: 'plain' (h = relu(block(h))),
    'residual' (h = h + relu(block(h))), or the mistake 'relu after add' (h = relu(h + block(h)))."""
    linear = lambda name, h: h @ weights[f"{name}.weight"].T + weights[f"{name}.bias"]  # noqa: E731
    h = torch.relu(linear("inp", x))
    for i in range(sum(1 for key in weights if key.startswith("blocks.") and key.endswith(".weight"))):
        z = linear(f"blocks.{i}", h)
        h = {"plain": lambda: torch.relu(z), "residual": lambda: h + torch.relu(z),
             "relu after add": lambda: torch.relu(h + z)}[kind]()
    return linear("out", h)


@checker("DeepMLP", builds_on=ARCH_NAMES)
def deep_mlp(cls, *, seed=0):
    """The student's DeepMLP against the net it should be, with the checker's weights, plain
    and residual."""
    _refuse_coursekit(cls, models.DeepMLP)
    gen = torch.Generator().manual_seed(seed)
    for residual in (False, True):
        torch.manual_seed(seed + residual)
        weights = _deep_mlp_weights(3, 8, 4, 2)
        where = f"DeepMLP(3, 8, 4, 2, residual={residual})"
        theirs = call("DeepMLP", cls, 3, 8, 4, 2, residual)
        try:
            theirs.load_state_dict(weights)
        except (RuntimeError, AttributeError) as err:
            raise CheckError(f"{where}: name the layers inp, blocks (an nn.ModuleList of 4 Linear) "
                             f"and out. PyTorch said: {str(err).splitlines()[0]}") from None
        x = torch.randn(5, 3, generator=gen)
        with torch.no_grad():
            got = call("DeepMLP.forward", theirs, x.clone())
            want = _deep_mlp(weights, x, "residual" if residual else "plain")
            if residual:
                mistakes = [(_deep_mlp(weights, x, "relu after add"), "apply the ReLU to the block's output, "
                                                                      "then add: h = h + relu(block(h))."),
                            (_deep_mlp(weights, x, "plain"), "residual=True should add the shortcut: "
                                                             "h = h + relu(block(h)).")]
            else:
                mistakes = [(_deep_mlp(weights, x, "residual"), "with residual=False there is no shortcut: "
                                                               "h = relu(block(h)).")]
        compare(f"{where} output", got.numpy() if isinstance(got, torch.Tensor) else got, want.numpy(),
                rtol=1e-5, atol=1e-6, mistakes=[(m.numpy(), why) for m, why in mistakes])
    return "DeepMLP: right with and without residual connections."
