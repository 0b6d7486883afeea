"""Where the answers are: which reference implements which notebook's exercise, and a scan of
Python source for any of them.

Every exercise's answer is a reference function (``@reference("layers.affine_forward")``,
:mod:`coursekit.reference`), and the notebook it belongs to is the one whose checkers name it
(``checks/<notebook>.py``, ``@checker(..., exercise=(...))``). A distribution for students may
hold the answers of *unlocked* notebooks only (:func:`locked`); :func:`find_answers` proves it
by reading the source, not by trusting names: a function whose body is a reference's body,
with its local names renamed and its docstring dropped, counts as that reference.
"""
from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import textwrap
from dataclasses import dataclass
from pathlib import Path


def exercises_by_notebook(notebooks: list[str]) -> dict[str, list[str]]:
    """notebook ('02_layers') -> the reference names of its exercises, from its checkers."""
    from ...checks.checker import Checker

    found: dict[str, list[str]] = {}
    for notebook in notebooks:
        module = importlib.import_module(f"coursekit.checks.{notebook.split('_', 1)[1]}")
        names = [name for value in vars(module).values() if isinstance(value, Checker)
                 for name in value.exercise]
        found[notebook] = sorted(dict.fromkeys(names))
    return found


def locked(notebooks: list[str], unlocked: list[str]) -> dict[str, str]:
    """reference name -> its notebook, for every exercise of a notebook not in ``unlocked``."""
    return {name: notebook for notebook, names in exercises_by_notebook(notebooks).items()
            if notebook not in unlocked for name in names}


#: the modules of coursekit.reference (importing them registers their references)
REFERENCE_MODULES = ("backprop", "layers", "networks", "optim", "conv", "normalisation",
                     "initialisation", "architectures", "scenes")


# --- the scan ----------------------------------------------------------------------------------------

class _Canonical(ast.NodeTransformer):
    """A function's body with its arguments and local names numbered in order of appearance,
    its docstring dropped: two copies that differ only in those names dump alike."""

    def __init__(self, local: set[str]):
        self.local, self.names = local, {}

    def _name(self, name: str) -> str:
        return self.names.setdefault(name, f"_{len(self.names)}") if name in self.local else name

    def visit_Name(self, node):
        return ast.copy_location(ast.Name(id=self._name(node.id), ctx=node.ctx), node)

    def visit_arg(self, node):
        return ast.copy_location(ast.arg(arg=self._name(node.arg)), node)


def _locals(fn: ast.AST) -> set[str]:
    names = {a.arg for a in ast.walk(fn.args) if isinstance(a, ast.arg)} if hasattr(fn, "args") else set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
    return names - set(dir(builtins))


def fingerprint(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """The canonical dump of a function's arguments and body (see :class:`_Canonical`): not its
    name, decorators, annotations or docstring."""
    fn = ast.parse(textwrap.dedent(ast.unparse(fn))).body[0]  # a copy
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    canon = _Canonical(_locals(fn))
    args = canon.visit(fn.args)
    return ast.dump(args) + "".join(ast.dump(canon.visit(stmt)) for stmt in body)


def reference_fingerprints(names) -> dict[str, str]:
    """fingerprint -> reference name, from the instructor's coursekit (which holds them all)."""
    from ... import reference

    for module in REFERENCE_MODULES:
        importlib.import_module(f"coursekit.reference.{module}")
    prints = {}
    for name in names:
        source = textwrap.dedent(inspect.getsource(reference._original(name)))
        fn = next(node for node in ast.parse(source).body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)))
        prints[fingerprint(fn)] = name
    return prints


@dataclass
class Found:
    path: str
    line: int
    function: str
    answer: str      # the reference name whose body it is


def find_answers(folder: Path, names) -> list[Found]:
    """Every function under ``folder`` (.py files) whose body is the answer of one of ``names``."""
    prints = reference_fingerprints(names)
    found = []
    for path in sorted(Path(folder).rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(errors="replace"))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                hit = prints.get(fingerprint(node))
                if hit:
                    found.append(Found(str(path), node.lineno, node.name, hit))
    return found
