"""The student's side of judging: run what the judge asks for in the student's kernel.

The judge kernel (:mod:`.client`) runs the graded tests; whenever a test needs one of the
student's names or calls one of the student's functions, it writes a request into the exchange
folder and has the student's kernel run :func:`serve` on it (the ops: :mod:`.protocol`). The
answer goes back in the codec's format (:mod:`coursekit.values`). Nothing here is trusted by the
judge: a submission that changes this module only changes what its own functions appear to
return, which the judge checks like any other answer.
"""
from __future__ import annotations

import itertools
import sys
import time
import uuid
from pathlib import Path

from ...checks.student import student_line, using_references
from ...reference import _original, student_call_site
from ... import values as codec
from . import protocol
from .wakeup import FolderWatch

_HANDLES: dict[int, object] = {}


def _handle(value) -> dict:
    _HANDLES[id(value)] = value
    kind = ("class" if isinstance(value, type) else "module" if codec.is_module(value)
            else "function" if callable(value) else "object")
    name = getattr(value, "__name__", None) if kind in ("class", "function") else type(value).__name__
    node = {"k": "handle", "id": id(value), "kind": kind, "name": str(name or type(value).__name__)}
    return node


class _JudgeFunction:
    """A function of the judge's (say, the f a checker hands to your numerical_gradient):
    calling it asks the judge to run it and waits for the answer."""

    def __init__(self, node: dict, exchange: Path):
        self.id, self.__name__, self.exchange = node["id"], str(node.get("name", "f")), exchange

    def __call__(self, *args, **kwargs):
        arrays: list = []
        path = self.exchange / f"{protocol.CALLBACK_FILE}{uuid.uuid4().hex}.json"
        encode = lambda v: codec.encode(v, arrays, _handle, origins=True)  # noqa: E731
        codec.write(path, {"fn": self.id, "args": encode(list(args)), "kwargs": encode(dict(kwargs))}, arrays)
        reply = path.with_name(path.name + protocol.REPLY_SUFFIX)
        deadline, watch = time.monotonic() + 60, _watch(self.exchange)
        while not reply.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the grader did not answer a call of {self.__name__}")
            watch.wait(0.0005)
        tree, reply_arrays = codec.read(reply)
        reply.unlink(missing_ok=True)
        if "error" in tree:
            raise RuntimeError(f"{self.__name__}: {tree['error']['type']}: {tree['error']['message']}")
        decoded = lambda node: codec.decode(node, reply_arrays, _object, _original)  # noqa: E731
        codec.sync_arguments(args, kwargs, decoded(tree.get("args", {"k": "list", "v": []})),
                             decoded(tree.get("kwargs", {"k": "dict", "v": []})))  # what the judge's function changed
        return decoded(tree["ok"])


_EXCHANGE: list[Path] = []
_WATCHES: dict[str, FolderWatch] = {}


def _watch(folder: Path) -> FolderWatch:
    """This kernel's watch on the exchange ``folder`` (one, kept: it also holds the events that
    come between two waits)."""
    key = str(folder)
    if key not in _WATCHES:
        _WATCHES[key] = FolderWatch(folder)
    return _WATCHES[key]


def _object(node: dict):
    if node.get("k") == "judgefn":
        return _JudgeFunction(node, _EXCHANGE[-1])
    if node.get("k") == "module":
        from . import mirror

        return mirror.rebuild(node["factory"], node["args"], node["kwargs"], node["state"])
    try:
        return _HANDLES[node["id"]]
    except (KeyError, TypeError):
        raise codec.WireError("the judge referred to an object this kernel no longer holds") from None


def _namespace() -> dict:
    from IPython import get_ipython

    shell = get_ipython()
    return shell.user_ns if shell is not None else sys.modules["__main__"].__dict__


@student_call_site
def _invoke(fn, args, kwargs):
    return fn(*args, **kwargs)


# --- modules: the judge holds a copy (coursekit.grading.judge.mirror), forward runs here ----------------

_GRAPHS: dict[int, tuple] = {}   # token -> (output, parameters) of a forward the judge will backprop
_TOKENS = itertools.count()


def _forward(module, v: dict):
    import torch

    from .mirror import load_state

    if v["state"] is not None:   # None: the module holds the judge's state already (mirror.pushed)
        load_state(module, v["state"])
    with torch.set_grad_enabled(bool(v["grad"])):
        out = _invoke(module, v["args"], v["kwargs"])
    token = None
    if v.get("keep"):
        token = next(_TOKENS)
        _GRAPHS[token] = (out, [module.get_parameter(name) for name in v["keep"]])
        for old in sorted(_GRAPHS)[:-4]:
            del _GRAPHS[old]
    return {"out": out, "buffers": dict(module.named_buffers()), "token": token}


def _backward(v: dict):
    import torch

    if v["token"] not in _GRAPHS:
        raise RuntimeError("backward of a forward pass this kernel no longer holds")
    out, params = _GRAPHS.pop(v["token"])
    return list(torch.autograd.grad(out, params, v["grad"], allow_unused=True))


def _get(tree, decoded):
    namespace = _namespace()
    name = tree["name"]
    if name not in namespace:
        raise NameError(f"name '{name}' is not defined")
    return namespace[name]


def _call(tree, decoded):
    fn = _object(tree["fn"])
    args, kwargs = decoded(tree["args"]), decoded(tree["kwargs"])
    extra = decoded(tree.get("extra", {"k": "dict", "v": []}))
    with using_references(fn, {}, extra):  # the references it builds on: the judge's, called back
        value = _invoke(fn, args, kwargs)
    if tree.get("return_args"):  # what the judge syncs back: containers and arrays
        value = (value, *codec.left_as(args, kwargs))
    return value


def _module_op(tree, decoded):
    """The student's side of the judge's copy of a module (.mirror)."""
    from . import mirror

    op, module, v = tree["op"], _object(tree["obj"]), decoded(tree["v"])
    if op == "forward":
        return _forward(module, v)
    if op == "backward":
        return _backward(v)
    if op == "load":
        return mirror.load_state(module, v["state"])
    if op == "state":
        return mirror.state_of(module)
    return mirror.describe(module)


#: op -> its handler (tree, decode) -> value; the ops are those of protocol.OPS, no other
HANDLERS = {"get": _get, "call": _call,
            "getattr": lambda tree, decoded: getattr(_object(tree["obj"]), tree["name"]),
            **dict.fromkeys(("describe", "state", "load", "forward", "backward"), _module_op),
            "pause": lambda tree, decoded: None}


def serve(request: str) -> str | None:
    """Answer the request in the file ``request`` with ``<request>.reply``; returns its op
    (None if it could not be read)."""
    path = Path(request)
    _EXCHANGE[:] = [path.parent]
    arrays_out: list = []
    op = None
    try:
        tree, arrays = codec.read(path)
        op = tree.get("op") if isinstance(tree, dict) else None
        decoded = lambda node: codec.decode(node, arrays, _object, _original)  # noqa: E731
        handler = HANDLERS.get(op)
        if handler is None:
            raise codec.WireError(f"unknown request {op!r}")
        value = handler(tree, decoded)
        reply = {"ok": codec.encode(value, arrays_out, _handle, origins=True)}
    except BaseException as exc:  # everything goes back to the judge, nothing is shown here
        arrays_out = []
        reply = {"error": {"type": type(exc).__name__, "message": str(exc)[:2000], "where": student_line(exc)}}
    codec.write(path.with_name(path.name + protocol.REPLY_SUFFIX), reply, arrays_out)
    return op


def serve_loop(exchange: str, idle: float) -> None:
    """Answer each request the judge writes into ``exchange`` (:func:`serve`), in order, until
    the judge says "pause" (a graded cell has ended) or none has come for ``idle`` seconds (the
    judge starts the loop again when it asks next)."""
    folder = Path(exchange)
    served: set[str] = set()
    watch = _watch(folder)
    longest = min(0.005, idle) if watch.active else 0.0005   # with the watch, a request wakes it
    last, pause = time.monotonic(), 0.00005
    while True:
        fresh = [name for name in protocol.waiting(folder, protocol.REQUEST) if name not in served]
        if fresh:
            for name in fresh:
                served.add(name)
                if serve(str(folder / name)) == "pause":
                    return
            last, pause = time.monotonic(), 0.00005
        elif time.monotonic() - last > idle:
            return
        else:
            watch.wait(pause)
            pause = min(2 * pause, longest)
