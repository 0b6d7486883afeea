"""Values as data, with no code in them: the wire format between the judge kernel and the
student's kernel (:mod:`coursekit.grading.judge`), and the form of the expected values that a
students' coursekit carries for its self-checks.

A message is one file: a JSON tree, then raw arrays of numeric dtypes (:func:`write`), so
reading what the student's kernel sent can never run its code.
Numbers, strings, None, lists, tuples and dicts of them, numpy arrays and scalars of numeric
dtypes, torch tensors and numpy random generators (their state) travel by value. Anything else
the student's kernel holds (a function, a class, a model) travels as a *handle*: a number the
judge can send back to call it or read an attribute of it. The judge sends its own functions
as handles the student's code calls back, and its own models as a recipe and weights
(:mod:`coursekit.grading.judge.mirror`).
"""
from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

MAX_DEPTH = 40
MAX_ITEMS = 200_000          # JSON nodes in one message
MAX_BYTES = 256 << 20        # arrays in one message
_KINDS = set("biufc")        # numpy dtype kinds that travel: bool, ints, floats, complex
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
#: What a call's arguments send back to the judge: what the student's function may change in place.
SYNCED = (dict, list, np.ndarray, np.random.Generator)


def sync(local, remote) -> None:
    """Make ``local`` (an argument a function was given) what the function left its copy as
    (``remote``): the judge's arguments after the student's function ran in the other kernel,
    a students' coursekit's after a recorded reference call; a generator gets its draws."""
    if isinstance(local, dict) and isinstance(remote, dict):
        for key, value in remote.items():
            if key in local and isinstance(local[key], SYNCED):
                sync(local[key], value)
            else:
                local[key] = value
    elif isinstance(local, list) and isinstance(remote, list) and len(local) == len(remote):
        for i, (a, b) in enumerate(zip(local, remote)):
            if isinstance(a, SYNCED):
                sync(a, b)
            else:
                local[i] = b
    elif isinstance(local, np.random.Generator) and isinstance(remote, np.random.Generator):
        local.bit_generator.state = remote.bit_generator.state  # the draws the student's code made
    elif (isinstance(local, np.ndarray) and isinstance(remote, np.ndarray) and local.shape == remote.shape
          and local.flags.writeable):
        np.copyto(local, remote, casting="unsafe")


def left_as(args, kwargs) -> tuple[list, dict]:
    """What a call left its arguments as, sent back for the caller's :func:`sync_arguments`:
    containers by value (a plain copy, not a subclass that would travel as the caller's own
    object and sync nothing), arrays and generators as they are, anything else None."""
    def one(value):
        if isinstance(value, dict):
            return dict(value)
        if isinstance(value, list):
            return list(value)
        return value if isinstance(value, SYNCED) else None
    return [one(a) for a in args], {k: one(a) for k, a in kwargs.items()}


def sync_arguments(args, kwargs, new_args, new_kwargs) -> None:
    """:func:`sync` each argument of a call with what the call left it as (:func:`left_as`)."""
    for local, remote in zip(args, new_args if isinstance(new_args, list) else []):
        sync(local, remote)
    new_kwargs = new_kwargs if isinstance(new_kwargs, dict) else {}
    for key in kwargs:
        sync(kwargs[key], new_kwargs.get(key))


def is_module(value) -> bool:
    """Whether ``value`` is a torch ``nn.Module`` (without importing torch where it is not)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.nn.Module)


class WireError(ValueError):
    """A message that is not in the wire format (or is too big)."""


class TooLarge(WireError):
    """A value the student's kernel sent that is larger or deeper than a message may be."""

    unsent = True  # coursekit.checks.student.call then says: the value, not the code, failed


class Carried:
    """A tuple, list or dict of a subclass (a namedtuple, an OrderedDict, torch.Size) from the
    student's kernel: its items travel by value, and ``origin``, a handle to the student's own
    object, is what goes back when the judge passes it on (a namedtuple cache reaches the
    student's backward as the namedtuple it was)."""

    origin = None

    def __getattr__(self, name: str):  # a namedtuple's fields, read in the student's kernel
        if name.startswith("__") or self.origin is None:
            raise AttributeError(name)
        return getattr(self.origin, name)

    def __deepcopy__(self, memo):
        import copy

        twin = type(self)(copy.deepcopy(type(self).__mro__[2](self), memo))
        twin.origin = self.origin
        return twin


class CarriedTuple(Carried, tuple):
    pass


class CarriedList(Carried, list):
    pass


class CarriedDict(Carried, dict):
    pass


def _carried(kind: str, items, origin):
    value = {"tuple": CarriedTuple, "list": CarriedList, "dict": CarriedDict}[kind](items)
    value.origin = origin
    return value


def encode(value: Any, arrays: list, handle: Callable[[Any], dict] | None = None,
           reference_name: Callable[[Any], str | None] | None = None, depth: int = 0,
           origins: bool = False) -> dict:
    """``value`` as a JSON-able tree; arrays go into ``arrays``. Objects that do not travel by
    value become ``handle(value)`` (the student's side) or, when ``reference_name`` knows them,
    a reference by name (the judge's side). ``origins`` (the student's side): a tuple, list or
    dict of a subclass also carries a handle to itself (see :class:`Carried`)."""
    if depth > MAX_DEPTH:
        raise WireError("nested too deeply")
    sub = lambda v: encode(v, arrays, handle, reference_name, depth + 1, origins)  # noqa: E731
    if isinstance(value, Carried) and value.origin is not None and handle is not None:
        return handle(value.origin)  # back to the student's kernel as the object it was
    if value is None:
        return {"k": "none"}
    if value is Ellipsis:
        return {"k": "ellipsis"}
    if isinstance(value, bool):
        return {"k": "bool", "v": value}
    if isinstance(value, np.generic) and np.dtype(type(value)).kind in _KINDS:
        arrays.append(np.asarray(value))
        return {"k": "npscalar", "i": len(arrays) - 1}
    if isinstance(value, int):
        return {"k": "int", "v": str(int(value))}
    if isinstance(value, float):
        return {"k": "float", "v": repr(float(value))}
    if isinstance(value, complex):
        return {"k": "complex", "v": [repr(value.real), repr(value.imag)]}
    if isinstance(value, str):
        return {"k": "str", "v": str(value)}
    if isinstance(value, np.ndarray) and value.dtype.kind in _KINDS:
        arrays.append(np.ascontiguousarray(value))
        return {"k": "array", "i": len(arrays) - 1}
    if type(value).__module__.startswith("torch") and type(value).__name__ in ("Tensor", "Parameter"):
        import torch

        tensor = value.detach().cpu()
        dtype = str(tensor.dtype).replace("torch.", "")
        if tensor.dtype in (torch.bfloat16, torch.float16):
            tensor = tensor.float()
        arrays.append(tensor.numpy().copy())
        return {"k": "tensor", "i": len(arrays) - 1, "dtype": dtype,
                "grad": bool(value.requires_grad), "param": type(value).__name__ == "Parameter"}
    if isinstance(value, (list, tuple, dict)):
        if isinstance(value, dict):
            node = {"k": "dict", "v": [[sub(k), sub(v)] for k, v in value.items()]}
        else:
            node = {"k": "tuple" if isinstance(value, tuple) else "list", "v": [sub(v) for v in value]}
        if origins and handle is not None and type(value) not in (list, tuple, dict):
            node["h"] = handle(value)
        return node
    if isinstance(value, np.random.Generator):  # by its state: the student draws from a copy
        bitgen = type(value.bit_generator).__name__
        return {"k": "rng", "bitgen": bitgen, "v": sub(value.bit_generator.state)}
    if type(value).__module__.startswith("PIL.") and hasattr(value, "mode"):
        arrays.append(np.asarray(value))
        return {"k": "image", "i": len(arrays) - 1, "mode": value.mode}
    name = reference_name(value) if reference_name else None
    if name:
        return {"k": "reference", "v": name}
    if reference_name is not None and hasattr(value, "__next__"):  # the judge's iterator: its items
        return {"k": "iter", "v": [sub(v) for v in value]}
    if handle is not None:
        return handle(value)
    raise WireError(f"a {type(value).__name__} cannot be sent to the student's kernel")


def decode(tree: Any, arrays, handle: Callable[[dict], Any] | None = None,
           reference: Callable[[str], Any] | None = None) -> Any:
    """The value ``encode`` made. Only the kinds listed above are accepted."""
    count = [0]

    def walk(node, depth):
        count[0] += 1
        if count[0] > MAX_ITEMS:
            raise TooLarge(f"it holds more than {MAX_ITEMS:,} values in lists, tuples and dicts "
                           "(a numpy array of any size counts as one: use an array)")
        if depth > MAX_DEPTH:
            raise TooLarge(f"it is nested more than {MAX_DEPTH} levels deep")
        if not isinstance(node, dict) or not isinstance(node.get("k"), str):
            raise WireError("malformed message")
        kind, v = node["k"], node.get("v")
        if kind == "none":
            return None
        if kind == "ellipsis":
            return Ellipsis
        if kind == "bool" and isinstance(v, bool):
            return v
        if kind == "int" and isinstance(v, str) and len(v) < 5000:
            return int(v)
        if kind == "float" and isinstance(v, str):
            return float(v)
        if kind == "complex" and isinstance(v, list) and len(v) == 2:
            return complex(float(v[0]), float(v[1]))
        if kind == "str" and isinstance(v, str):
            return v
        origin = node.get("h")
        if kind in ("list", "tuple", "dict") and isinstance(origin, dict) and handle is not None:
            return _carried(kind, walk({"k": kind, "v": v}, depth), handle(origin))
        if kind in ("list", "tuple", "iter") and isinstance(v, list):
            items = [walk(item, depth + 1) for item in v]
            return tuple(items) if kind == "tuple" else iter(items) if kind == "iter" else items
        if kind == "dict" and isinstance(v, list):
            out = {}
            for pair in v:
                if not isinstance(pair, list) or len(pair) != 2:
                    raise WireError("malformed dict")
                key = walk(pair[0], depth + 1)
                if not isinstance(key, (str, int, float, bool, tuple, type(None))):
                    raise WireError("unhashable dict key")
                out[key] = walk(pair[1], depth + 1)
            return out
        if kind in ("array", "npscalar", "tensor", "image"):
            array = _array(arrays, node.get("i"))
            if kind == "array":
                return array
            if kind == "npscalar":
                return array[()] if array.ndim == 0 else array
            if kind == "image":
                from PIL import Image

                return Image.fromarray(array, mode=str(node.get("mode")))
            import torch

            tensor = torch.from_numpy(array.copy())
            dtype = getattr(torch, str(node.get("dtype")), None)
            if isinstance(dtype, torch.dtype):
                tensor = tensor.to(dtype)
            if node.get("param"):
                return torch.nn.Parameter(tensor, requires_grad=bool(node.get("grad")))
            return tensor.requires_grad_(bool(node.get("grad")) and tensor.is_floating_point())
        if kind == "rng" and node.get("bitgen") in _BIT_GENERATORS:
            bitgen = getattr(np.random, node["bitgen"])()
            bitgen.state = walk(v, depth + 1)
            return np.random.Generator(bitgen)
        if kind in ("handle", "judgefn") and handle is not None:
            return handle(node)
        if kind == "module" and handle is not None:  # the judge's model, rebuilt by the student's side
            return handle({"k": kind, "factory": str(node.get("factory")),
                           **{key: walk(node.get(key), depth + 1) for key in ("args", "kwargs", "state")}})
        if kind == "reference" and reference is not None and isinstance(v, str):
            return reference(v)
        raise WireError(f"unexpected kind {kind!r}")

    return walk(tree, 0)


def _array(arrays, index) -> np.ndarray:
    if not isinstance(index, int) or not 0 <= index < len(arrays):
        raise WireError("missing array")
    array = arrays[index]
    if array.dtype.kind not in _KINDS:
        raise WireError(f"arrays of dtype {array.dtype} do not travel")
    return array


#: The most a message's first line (its JSON tree and the arrays' places) may take.
MAX_HEADER = 16 << 20


def write(path: Path, tree: dict, arrays: list) -> None:
    """Write a message as the file ``path``, atomically: one JSON line (``tree`` and each
    array's dtype, shape and place), then the arrays' raw bytes. One file a message: a check's
    hundreds of calls cost a create and a rename each way, not two. The file is made under a
    fresh random name that no link can be waiting at (``O_EXCL | O_NOFOLLOW``: the other kernel
    may write in the same folder), then renamed over ``path`` (a link there is replaced, not
    followed)."""
    arrays = [np.asarray(a, order="C") for a in arrays]  # (ascontiguousarray makes 0-d arrays 1-d)
    places, offset = [], 0
    for a in arrays:
        places.append([a.dtype.str, list(a.shape), offset, a.nbytes])
        offset += a.nbytes
    tmp = path.with_name(f".{path.name}.{os.urandom(8).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(json.dumps({"tree": tree, "arrays": places}).encode() + b"\n")
            for a in arrays:
                out.write(memoryview(a).cast("B") if a.nbytes else b"")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read(path: Path) -> tuple[dict, list]:
    """Read a message written by :func:`write`; refuses anything but a plain file (a link, a
    FIFO, a folder), anything too large or not plain data (only numeric dtypes: no object
    arrays, nothing unpickled), with :class:`WireError`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if os.path.islink(path):
            raise WireError("a message may not be a link") from None
        raise exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
        os.close(fd)
        raise WireError("a message must be a plain file" if not stat.S_ISREG(info.st_mode) else "message too large")
    with os.fdopen(fd, "rb") as file:
        data = bytearray(file.read(MAX_BYTES + 1))  # writeable: an argument may be changed in place
    if len(data) > MAX_BYTES:
        raise WireError("message too large")
    header_end = data.find(b"\n", 0, MAX_HEADER + 1)
    if header_end < 0:
        raise WireError("malformed message: no header line" if len(data) <= MAX_HEADER else "header too large")
    try:
        head = json.loads(bytes(data[:header_end]))
        tree, places = head["tree"], head["arrays"]
        start = header_end + 1
        arrays = []
        for dtype, shape, offset, nbytes in places:
            dtype = np.dtype(str(dtype))
            shape = tuple(int(n) for n in shape)
            if dtype.kind not in _KINDS or dtype.fields is not None or min(shape, default=0) < 0 \
                    or int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != nbytes \
                    or not 0 <= offset <= len(data) - start - nbytes:
                raise ValueError("an array's dtype, shape or place does not fit the bytes sent")
            arrays.append(np.frombuffer(data, dtype, int(np.prod(shape, dtype=np.int64)),
                                        start + offset).reshape(shape))
    except (TypeError, ValueError, KeyError, RecursionError, OverflowError, MemoryError) as exc:
        raise WireError(f"malformed message: {type(exc).__name__}: {str(exc)[:200]}") from None
    return tree, arrays
