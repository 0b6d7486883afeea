"""A per-layer summary of a PyTorch model: output shape, parameters, activation memory and
multiply-adds, with totals, measured by running one batch through the model.

Forward hooks on every leaf module record what each layer really produced. Conventions,
the lecture's:

- activations: the new values a layer's output holds for ONE image. An output that shares
  its storage with values already counted (an in-place ReLU, a Flatten view, dropout in eval
  mode) counts 0. The input image counts as its own row, and so does a value that a module
  computes in its own code rather than with a layer (the ``torch.cat`` of an inception module,
  the ``out + shortcut`` of a residual block), named "<module> (output)".
- memory: activations x the element size (4 bytes for float32); 1 MB = 10^6 bytes.
- MACs (multiply-adds) for one image: a conv's output values x (C_in / groups) x KH x KW, a
  linear layer's output values x in_features; every other layer counts 0 (comparisons,
  additions and normalisations are cheap by comparison).
- parameters: counted once per module even if it is called twice; the total equals
  ``sum(p.numel() for p in model.parameters())`` exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class LayerRow:
    name: str
    kind: str
    out_shape: tuple[int, ...]          # without the batch axis
    params: int
    activations: int                    # new values for one image
    macs: int                           # multiply-adds for one image
    bytes_per_value: int = 4

    @property
    def memory(self) -> int:
        return self.activations * self.bytes_per_value


@dataclass
class Summary:
    model: str
    rows: list[LayerRow] = field(default_factory=list)
    total_params: int = 0
    output_shape: tuple[int, ...] = ()

    @property
    def total_activations(self) -> int:
        return sum(r.activations for r in self.rows)

    @property
    def total_memory(self) -> int:
        return sum(r.memory for r in self.rows)

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.rows)

    def row(self, name: str) -> LayerRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no layer named {name!r}; layers: {[r.name for r in self.rows]}")

    def table(self, skip_empty: bool = True) -> str:
        """The table as text; skip_empty leaves out rows with no parameters, no new
        activations and no MACs (in-place ReLUs, views)."""
        w = max(14, 2 + max(len(r.name) for r in self.rows))
        head = f"{'layer':<{w}}{'type':<18}{'output shape':>18}{'params':>14}{'activations':>13}{'memory':>11}{'MACs':>16}"
        lines = [f"{self.model}", head, "-" * len(head)]
        for r in self.rows:
            if skip_empty and not (r.params or r.activations or r.macs):
                continue
            shape = "x".join(str(d) for d in r.out_shape)
            lines.append(f"{r.name:<{w}}{r.kind:<18}{shape:>18}{r.params:>14,}{r.activations:>13,}"
                         f"{_mb(r.memory):>11}{r.macs:>16,}")
        lines.append("-" * len(head))
        lines.append(f"{'total':<{w + 18}}{'':>18}{self.total_params:>14,}{self.total_activations:>13,}"
                     f"{_mb(self.total_memory):>11}{self.total_macs:>16,}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.2f} MB"


def _layer_macs(module: nn.Module, out: torch.Tensor, batch: int) -> int:
    per_image = out.numel() // batch
    if isinstance(module, nn.modules.conv._ConvNd):
        kernel = 1
        for k in module.kernel_size:
            kernel *= k
        return per_image * (module.in_channels // module.groups) * kernel
    if isinstance(module, nn.Linear):
        return per_image * module.in_features
    return 0


def _storage(t: torch.Tensor) -> int:
    """Which storage holds ``t``'s values (the same for a view or an in-place result): its
    storage's identity, which a model on the meta device has too (its data pointers are all 0)."""
    return t.untyped_storage()._cdata


def _shares_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    return _storage(a) == _storage(b)


def summary(model: nn.Module, input_size: tuple[int, ...], batch_size: int = 1,
            dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
            name: str | None = None) -> Summary:
    """Run a (batch_size, *input_size) batch of zeros through ``model`` (eval mode, no
    gradients; its mode is restored) and return the per-layer :class:`Summary`, titled
    ``name`` (the model's class name by default). A model built on the meta device (``with
    torch.device("meta"):``, shapes without values) is measured there: the same table, with no
    weights to initialise and nothing computed."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"summary needs a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(input_size, (tuple, list)) or not all(isinstance(d, int) and d > 0 for d in input_size):
        raise ValueError(f"input_size should be a tuple of positive ints without the batch axis, "
                         f"e.g. (3, 224, 224); got {input_size!r}")
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        device = "meta"
    x = torch.zeros((batch_size, *input_size), dtype=dtype, device=device)
    element = x.element_size()
    result = Summary(name or type(model).__name__)
    result.rows.append(LayerRow("input", "", tuple(input_size), 0, x.numel() // batch_size, 0, element))
    seen: set[int] = set()
    produced = {_storage(x)}                      # storages holding values already counted
    alive = [x]                                   # keep outputs alive so no storage is reused
    handles = []

    def leaf_hook(name):
        def record(module, inputs, output):
            out = output[0] if isinstance(output, (tuple, list)) else output
            if not isinstance(out, torch.Tensor):
                return
            ptr = _storage(out)
            new = 0 if ptr in produced else out.numel() // batch_size
            params = 0
            if id(module) not in seen:
                seen.add(id(module))
                params = sum(p.numel() for p in module.parameters(recurse=False))
            result.rows.append(LayerRow(name, type(module).__name__, tuple(out.shape[1:]), params,
                                        new, _layer_macs(module, out, batch_size), out.element_size()))
            produced.add(ptr)
            alive.append(out)
        return record

    def container_hook(name):
        def record(module, inputs, output):
            # values made by a module's own code rather than by a layer (torch.cat, x + shortcut)
            out = output[0] if isinstance(output, (tuple, list)) else output
            if not isinstance(out, torch.Tensor) or _storage(out) in produced:
                return
            result.rows.append(LayerRow(f"{name or type(module).__name__} (output)", type(module).__name__,
                                        tuple(out.shape[1:]), 0, out.numel() // batch_size, 0,
                                        out.element_size()))
            produced.add(_storage(out))
            alive.append(out)
        return record

    for name, module in model.named_modules():
        leaf = not any(True for _ in module.children())
        handles.append(module.register_forward_hook(leaf_hook(name or type(module).__name__) if leaf
                                                    else container_hook(name)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    result.output_shape = tuple(out.shape[1:])
    result.total_params = sum(p.numel() for p in model.parameters())
    other = result.total_params - sum(r.params for r in result.rows)
    if other:
        result.rows.append(LayerRow("(other)", "params of non-leaf or unused modules", (), other, 0, 0, element))
    return result
