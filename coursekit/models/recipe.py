"""How to rebuild a module elsewhere: its factory's import path and arguments.

A checker marks a model it makes with :func:`recipe` (``recipe(timm.create_model(...),
"timm.create_model", "efficientnet_lite0")``) so that, under grading, the same model can be
built in the student's kernel from that recipe and its weights, rather than sent as code.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing this module does not import torch
    from torch import nn


def recipe(module: nn.Module, factory: str, *args, **kwargs) -> nn.Module:
    """Mark ``module`` as made by ``factory(*args, **kwargs)`` (``factory`` an import path,
    ``"timm.create_model"``). Returns it."""
    module.__dict__["wire_recipe"] = (factory, args, kwargs)
    return module


def recipe_of(module: nn.Module) -> tuple[str, tuple, dict]:
    """How to rebuild ``module``: its :func:`recipe`, or its class called without arguments."""
    made = module.__dict__.get("wire_recipe")
    if made:
        return made
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}", (), {}
