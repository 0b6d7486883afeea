"""A trained model's weights in a file: what a student hands in beside notebook 07.

The format is safetensors (``<name>.safetensors``): the model's ``state_dict`` tensors and a
few strings of metadata, and nothing that runs when it is read (no pickle). The architecture is
not in the file: it is the student's own ``nn.Module`` class, in the notebook. The metadata
says how an image must be prepared for the model::

    format       "coursekit-weights/1"
    image_size   the side, in pixels, the network sees (the 64-pixel images resized to it)
    mean, std    the per-channel normalisation, as JSON lists of 3 floats

    save_weights(model, "simple.safetensors", image_size=64, mean=MEAN, std=STD)
    info = load_weights(SimpleNet(), "simple.safetensors")     # a WeightsInfo

Every way a file can be wrong (missing, too large, not safetensors, another model's weights,
bad metadata) is a :class:`WeightsError` whose message says what was expected.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

FORMAT = "coursekit-weights/1"
SUFFIX = ".safetensors"
#: The largest weights file read by default (bytes); a course sets its own limit for grading.
MAX_BYTES = 64 << 20


class WeightsError(ValueError):
    """A weights file that cannot be used, with what was expected."""


@dataclass(frozen=True)
class WeightsInfo:
    """What a weights file says about its model's input, and its size."""
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    bytes: int
    tensors: int


def _three(name: str, values) -> tuple[float, float, float]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3 or not all(math.isfinite(v) for v in out):
        raise WeightsError(f"{name} should be 3 finite numbers (one per colour channel), got {values!r}")
    if name == "std" and min(out) <= 0:
        raise WeightsError(f"std should be 3 positive numbers, got {values!r}")
    return out


def _size(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 8 <= value <= 1024:
        raise WeightsError(f"image_size should be a whole number of pixels from 8 to 1024, got {value!r}")
    return value


def save_weights(model: nn.Module, path: str | os.PathLike, *, image_size: int, mean, std) -> Path:
    """Write ``model``'s weights (its ``state_dict``, on the CPU, contiguous) and how its input
    is prepared to ``path`` (``.safetensors`` is added if missing), atomically. Returns the path."""
    from safetensors.torch import save_file

    if not isinstance(model, nn.Module):
        raise TypeError(f"save_weights needs the model (an nn.Module), got {type(model).__name__}")
    meta = {"format": FORMAT, "image_size": str(_size(image_size)),
            "mean": json.dumps(_three("mean", mean)), "std": json.dumps(_three("std", std))}
    path = Path(path)
    if path.suffix != SUFFIX:
        path = path.with_name(path.name + SUFFIX)
    tensors, seen = {}, {}
    for name, value in model.state_dict().items():
        value = value.detach().cpu()
        key = (value.untyped_storage().data_ptr(), value.storage_offset(), tuple(value.shape))
        # tied weights (one tensor under two names) are stored twice: safetensors shares nothing
        tensors[name] = value.clone().contiguous() if key in seen else value.contiguous()
        seen[key] = name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def read_weights(path: str | os.PathLike, max_bytes: int = MAX_BYTES) -> tuple[dict, WeightsInfo]:
    """(state dict of CPU tensors, :class:`WeightsInfo`) from a file :func:`save_weights` wrote."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"there is no file {path.name} (save it with save_weights(model, "
                           f"{path.name!r}, ...) or the notebook's training cell, next to the notebook)")
    size = path.stat().st_size
    if size > max_bytes:
        raise WeightsError(f"{path.name} is {size / 2**20:.1f} MB, larger than the limit of "
                           f"{max_bytes / 2**20:.0f} MB: save only the model's weights (its state_dict), "
                           f"in float32 or smaller")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{path.name} is not a readable safetensors weights file ({exc}): write it "
                           f"with save_weights, not torch.save or pickle") from None
    if meta.get("format") != FORMAT:
        raise WeightsError(f"{path.name} is a safetensors file without coursekit's metadata (format "
                           f"{meta.get('format')!r}, expected {FORMAT!r}): write it with save_weights, "
                           f"which records the image size and normalisation the model expects")
    try:
        info = WeightsInfo(_size(int(meta.get("image_size", ""))), _three("mean", json.loads(meta["mean"])),
                           _three("std", json.loads(meta["std"])), size, len(tensors))
    except (KeyError, ValueError) as exc:
        raise WeightsError(f"{path.name} has unreadable metadata: {exc}") from None
    return tensors, info


def load_weights(model: nn.Module, path: str | os.PathLike, max_bytes: int = MAX_BYTES) -> WeightsInfo:
    """Load the weights in ``path`` into ``model`` (every tensor, with its exact shape: no more,
    no fewer) and return what the file says about the input."""
    state, info = read_weights(path, max_bytes)
    fit_weights(model, state, Path(path).name)
    return info


def fit_weights(model: nn.Module, state: dict, name: str = "the weights file", what: str = "") -> None:
    """``model.load_state_dict(state)``, or a WeightsError that lists what does not fit (``what``:
    the model's class name, when ``type(model)`` is not it)."""
    want = model.state_dict()
    missing = [k for k in want if k not in state]
    extra = [k for k in state if k not in want]
    wrong = [f"{k}: file {tuple(state[k].shape)}, model {tuple(want[k].shape)}"
             for k in want if k in state and tuple(state[k].shape) != tuple(want[k].shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} tensors of the model are not in the file (e.g. {', '.join(missing[:3])})")
    if extra:
        problems.append(f"{len(extra)} tensors of the file are not in the model (e.g. {', '.join(extra[:3])})")
    if wrong:
        problems.append(f"{len(wrong)} have another shape ({'; '.join(wrong[:3])})")
    if problems:
        raise WeightsError(f"{name} does not hold the weights of this {what or type(model).__name__}: "
                           + "; ".join(problems) + ". Save the model built from the same class, after training it.")
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise WeightsError(f"{name} holds NaN or infinite values (in {', '.join(bad[:3])}): the "
                           f"training diverged; lower the learning rate and train again")
    model.load_state_dict(state)
