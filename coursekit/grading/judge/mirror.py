"""A student's ``nn.Module`` as the judge sees it.

When a graded test gets a module from the student's kernel (``SimpleNet()``, a ResNet block),
the judge builds a :class:`RemoteModule`: a real ``nn.Module`` with the same tree of
submodules, the same parameter and buffer names, and copies of their values, so the
checker's own torch does everything a checker does with a model (``isinstance``, counting
``nn.Conv2d`` layers, ``parameters()``, ``state_dict()``, ``load_state_dict``, ``train()`` and
``eval()``, an optimiser stepping its parameters). Only ``forward`` runs in the student's
kernel: each call first sends the judge's current parameters, buffers and train/eval flags,
runs the student's ``forward`` there and copies back the output (and the batch-norm
statistics it updated). When gradients are needed, the backward pass also runs there and
sends back the parameters' gradients, so ``loss.backward(); optimiser.step()`` in the judge
trains the student's network. (Gradients reach the module's parameters, not its inputs: no
checker needs more.)

The submodules are built from their class *names*: a name from ``torch.nn``, torchvision or
timm becomes an instance of the judge's class of that name (created without running its
``__init__``, and never run), anything else a plain :class:`Submodule`. Nothing the student's
kernel sends is run.

Modules go the other way too: a checker's own model (say, a pretrained backbone the student
must adapt) is rebuilt in the student's kernel from its *recipe*, a factory's import path and
arguments (:func:`coursekit.models.recipe.recipe`), and its weights.
"""
from __future__ import annotations

import contextlib
import importlib
from typing import Any

import torch
from torch import nn

from ...checks.student import Judged

#: Libraries whose module classes a mirror may be built from.
TRUSTED = ("torch.nn.", "torchvision.", "timm.")


class Submodule(nn.Module, Judged):
    """A submodule of a class the judge does not know (the student's own); ``remote_type`` is
    its class name."""

    def __init__(self, remote_type: str):
        super().__init__()
        self.remote_type = remote_type

    def forward(self, *args, **kwargs):
        raise RuntimeError(f"{self.remote_type} is a part of the student's model: run the whole model")

    def judged_type(self) -> str:
        return self.remote_type


class RemoteModule(nn.Module, Judged):
    """The judge's copy of a module in the student's kernel (see the module docstring)."""

    def __init__(self, judge, node: dict):
        super().__init__()
        object.__setattr__(self, "_judge", judge)
        object.__setattr__(self, "_node", node)
        object.__setattr__(self, "remote_type", str(node.get("name", "Module")))

    @property
    def __name__(self) -> str:
        return self.remote_type

    def judged_type(self) -> str:
        return self.remote_type

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name.startswith("_"):
                raise
        return self._judge.request({"op": "getattr", "obj": self._node, "name": name})  # e.g. a list

    def forward(self, *args, **kwargs):
        names = [name for name, p in self.named_parameters() if p.requires_grad]
        if torch.is_grad_enabled() and names:
            params = [self.get_parameter(name) for name in names]
            return _Forward.apply(self, args, kwargs, names, *params)
        return self._run(args, kwargs, grad=False, keep=None)[0]

    def _run(self, args, kwargs, grad: bool, keep: list | None):
        state = None if self.__dict__.get("_pushed") else state_of(self)
        answer = self._judge.request_values("forward", self._node, {
            "state": state, "args": list(args), "kwargs": dict(kwargs),
            "grad": grad, "keep": keep})
        _copy_buffers(self, answer["buffers"])
        out = answer["out"]
        if isinstance(out, torch.Tensor):
            out = out.detach()
        return out, answer["token"]

    def push(self) -> None:
        """Send the judge's parameters, buffers and modes to the student's module."""
        self._judge.request_values("load", self._node, {"state": state_of(self)})

    @contextlib.contextmanager
    def pushed(self):
        """Send the state once, then run forward passes without sending it again (evaluating a
        large model on many batches; nothing may change the judge's copy meanwhile)."""
        self.push()
        object.__setattr__(self, "_pushed", True)
        try:
            yield self
        finally:
            object.__setattr__(self, "_pushed", False)

    def pull(self) -> None:
        """Copy the student's module's current parameters, buffers and modes into this one."""
        state = self._judge.request_values("state", self._node, {})
        load_state(self, state)

    def __repr__(self) -> str:
        return f"<{self.remote_type} (a module in the student's kernel)>"


class _Forward(torch.autograd.Function):
    """The student's forward as one autograd node; its backward runs in the student's kernel."""

    @staticmethod
    def forward(ctx, mirror: RemoteModule, args, kwargs, names, *params):
        out, token = mirror._run(args, kwargs, grad=True, keep=names)
        if not isinstance(out, torch.Tensor) or not out.is_floating_point():
            raise TypeError(f"{mirror.remote_type}.forward returned {type(out).__name__}: a float tensor "
                            f"is needed to train it")
        ctx.mirror, ctx.token, ctx.count = mirror, token, len(params)
        return out

    @staticmethod
    def backward(ctx, grad):
        grads = ctx.mirror._judge.request_values("backward", ctx.mirror._node,
                                                 {"token": ctx.token, "grad": grad})
        if not isinstance(grads, list) or len(grads) != ctx.count:
            raise RuntimeError("the student's kernel sent no usable gradients")
        grads = [g if isinstance(g, torch.Tensor) else None for g in grads]
        return (None, None, None, None, *grads)


# --- state -------------------------------------------------------------------------------------

def state_of(module: nn.Module) -> dict:
    """Parameters, buffers and train/eval flags of ``module`` by name (what the other side
    needs to make its copy equal)."""
    return {"params": {name: p.detach().requires_grad_(p.requires_grad) for name, p in module.named_parameters()},
            "buffers": {name: b for name, b in module.named_buffers()},
            "training": {name: m.training for name, m in module.named_modules()}}


def load_state(module: nn.Module, state: dict) -> None:
    """Make ``module`` hold ``state`` (from :func:`state_of`); names it lacks are an error."""
    if not isinstance(state, dict):
        raise TypeError("a module's state should be a dict")
    with torch.no_grad():
        for name, value in dict(state.get("params", {})).items():
            param = module.get_parameter(name)
            param.copy_(torch.as_tensor(value))
            param.requires_grad_(bool(getattr(value, "requires_grad", param.requires_grad)))
        _copy_buffers(module, state.get("buffers", {}))
    for name, flag in dict(state.get("training", {})).items():
        module.get_submodule(name).training = bool(flag)


def _copy_buffers(module: nn.Module, buffers) -> None:
    with torch.no_grad():
        for name, value in dict(buffers or {}).items():
            if isinstance(value, torch.Tensor):
                module.get_buffer(name).copy_(value)


# --- the tree ----------------------------------------------------------------------------------

_PLAIN = (bool, int, float, str, type(None))


def _plain(value) -> bool:
    if isinstance(value, (tuple, list)):
        return len(value) <= 16 and all(isinstance(v, _PLAIN) for v in value)
    return isinstance(value, _PLAIN)


def describe(module: nn.Module) -> dict:
    """The student's side: the tree of ``module`` (class names, plain attributes, parameters
    and buffers, shared submodules by first path) for :func:`build`."""
    seen: dict[int, str] = {}
    entries = []
    for path, m in module.named_modules(remove_duplicate=False):
        entry: dict[str, Any] = {"path": path}
        if id(m) in seen:
            entry["same_as"] = seen[id(m)]
        else:
            seen[id(m)] = path
            cls = type(m)
            entry.update({
                "module": cls.__module__, "qualname": cls.__qualname__,
                "attrs": {k: v for k, v in vars(m).items() if not k.startswith("_") and _plain(v)},
                "params": {k: p for k, p in m._parameters.items() if p is not None},
                "buffers": {k: b for k, b in m._buffers.items() if b is not None}})
        entries.append(entry)
    return {"modules": entries}


def build(judge, node: dict, tree: dict) -> RemoteModule:
    """The judge's side: a :class:`RemoteModule` for the description ``tree``."""
    entries = tree.get("modules") if isinstance(tree, dict) else None
    if not isinstance(entries, list) or not entries or entries[0].get("path") != "":
        raise ValueError("the student's kernel described its module wrongly")
    root = RemoteModule(judge, node)
    by_path: dict[str, nn.Module] = {}
    for entry in entries:
        path = str(entry["path"])
        if "same_as" in entry:
            module = by_path[str(entry["same_as"])]
        else:
            module = root if path == "" else _shadow(str(entry.get("module")), str(entry.get("qualname")))
            for key, value in dict(entry.get("attrs", {})).items():
                if not isinstance(key, str) or not key.isidentifier() or key.startswith("_") or not _plain(value):
                    continue  # the student's kernel is not trusted to name the judge's attributes
                if key == "training" or (not hasattr(type(module), key) and key not in module.__dict__):
                    object.__setattr__(module, key, bool(value) if key == "training" else value)
            for key, value in dict(entry.get("params", {})).items():
                if not isinstance(value, nn.Parameter):
                    raise ValueError(f"parameter {path}.{key} did not come as a parameter")
                module._parameters[key] = value
            for key, value in dict(entry.get("buffers", {})).items():
                if isinstance(value, torch.Tensor):
                    module._buffers[key] = value.detach()
        if path:
            parent, _, name = path.rpartition(".")
            by_path[parent]._modules[name] = module
        by_path[path] = module
    return root


def _shadow(module_name: str, qualname: str) -> nn.Module:
    """A submodule of the class ``module_name.qualname``: the judge's own class when it comes
    from a trusted library (built without running its ``__init__``), else a Submodule."""
    if module_name.startswith(TRUSTED) or module_name == "torch.nn":
        try:
            cls: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                cls = getattr(cls, part)
            if isinstance(cls, type) and issubclass(cls, nn.Module) and not issubclass(cls, RemoteModule):
                module = cls.__new__(cls)
                nn.Module.__init__(module)
                return module
        except (ImportError, AttributeError):
            pass
    return Submodule(qualname)


# --- the checker's modules, rebuilt in the student's kernel --------------------------------------

def rebuild(factory: str, args, kwargs, state: dict) -> nn.Module:
    """The student's side: make the checker's module from its recipe and its state."""
    module_name, _, name = factory.rpartition(".")
    target: Any = importlib.import_module(module_name)
    target = getattr(target, name)
    model = target(*args, **kwargs)
    load_state(model, state)
    return model
