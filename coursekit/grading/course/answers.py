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


def notebook_of_every_reference(notebooks: list[str]) -> dict[str, str]:
    """reference name -> its notebook: the one whose checkers name it, or, for a reference no
    checker names (layernorm_backward: checked through the forward's checker), the notebook
    that claims most of its module's references."""
    from collections import Counter

    from ... import reference

    _load_references()
    owner = {name: notebook for notebook, names in exercises_by_notebook(notebooks).items() for name in names}
    for name in reference._ORIGINALS:
        if name not in owner:
            module = name.split(".")[0]
            votes = Counter(nb for other, nb in owner.items() if other.split(".")[0] == module)
            if votes:
                owner[name] = votes.most_common(1)[0][0]
    return owner


def answer_models(notebooks: list[str]) -> dict[str, tuple[str, list[str]]]:
    """The modules of coursekit.models that hold an answer -> (the notebook, the classes that
    are its answers), e.g. 'coursekit.models.resnet': ('06_architectures', ['BasicBlock',
    'Bottleneck']), from each checkers module's ``ANSWER_MODELS``."""
    found: dict[str, tuple[str, list[str]]] = {}
    for notebook in notebooks:
        module = importlib.import_module(f"coursekit.checks.{notebook.split('_', 1)[1]}")
        for cls in getattr(module, "ANSWER_MODELS", ()):
            found.setdefault(cls.__module__, (notebook, []))[1].append(cls.__name__)
    return found


def locked(notebooks: list[str], unlocked: list[str]) -> dict[str, str]:
    """reference name -> its notebook, for every reference of a notebook not in ``unlocked``."""
    return {name: notebook for name, notebook in notebook_of_every_reference(notebooks).items()
            if notebook not in unlocked}


def _references_called(fn, seen: set) -> set[str]:
    """The references ``fn`` calls, directly or through functions of coursekit.reference."""
    import types

    names, stack = set(), [fn.__code__]
    while stack:
        code = stack.pop()
        names |= set(code.co_names)
        stack += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    found = set()
    for name in names:
        value = fn.__globals__.get(name)
        if isinstance(getattr(value, "reference_name", None), str):
            found.add(value.reference_name)
        elif inspect.isfunction(value) and value.__module__.startswith("coursekit.reference") and value not in seen:
            seen.add(value)
            found |= _references_called(value, seen)
    return found


def with_dependencies(notebooks: list[str], unlocked: list[str]) -> list[str]:
    """``unlocked`` and every notebook whose answers the answers of those call (02's
    softmax_loss calls 01's softmax_nll: unlocking 02 unlocks 01), in course order."""
    from ... import reference

    owner = notebook_of_every_reference(notebooks)
    needs: dict[str, set[str]] = {}
    for name, original in reference._ORIGINALS.items():
        if name in owner:
            needs.setdefault(owner[name], set()).update(
                owner[r] for r in _references_called(original, set()) if r in owner)
    chosen, stack = set(unlocked), list(unlocked)
    while stack:
        for other in needs.get(stack.pop(), ()):
            if other not in chosen:
                chosen.add(other)
                stack.append(other)
    return [nb for nb in notebooks if nb in chosen]


def helpers_of(tree: ast.Module, locked_names) -> dict[str, str]:
    """The module's private functions (``_group_backward``) that are part of a locked answer:
    called, directly or through other private functions, by a locked reference and by nothing
    that stays (a given function, an unlocked reference). name -> the locked reference."""
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    calls = {name: {n.func.id for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                    and n.func.id in functions and n.func.id.startswith("_")} for name, fn in functions.items()}

    def reach(starts):
        seen, stack = set(), list(starts)
        while stack:
            for callee in calls.get(stack.pop(), ()):
                if callee not in seen:
                    seen.add(callee)
                    stack.append(callee)
        return seen

    names = {name: _reference_of(fn) for name, fn in functions.items()}
    answers = [name for name, ref in names.items() if ref in locked_names]
    staying = [name for name, ref in names.items() if ref not in locked_names and not name.startswith("_")]
    kept = reach(staying)
    return {helper: names[answer] for answer in answers for helper in reach([answer]) if helper not in kept}


def _reference_of(fn: ast.FunctionDef) -> str | None:
    """The name in ``@reference("name")`` above ``fn``, or None."""
    for decorator in fn.decorator_list:
        if (isinstance(decorator, ast.Call) and getattr(decorator.func, "id", "") == "reference"
                and decorator.args and isinstance(decorator.args[0], ast.Constant)):
            return decorator.args[0].value
    return None


#: the modules of coursekit.reference (importing them registers their references)
REFERENCE_MODULES = ("backprop", "layers", "networks", "optim", "conv", "normalisation",
                     "initialisation", "architectures", "scenes", "visualisation")


def _load_references() -> None:
    """Import every reference module: importing one registers its references."""
    for module in REFERENCE_MODULES:
        importlib.import_module(f"coursekit.reference.{module}")


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


def reference_fingerprints(names) -> dict[str, tuple[str, ...]]:
    """fingerprint -> the reference names whose body it is, from the instructor's coursekit (which holds them all):
    each reference of ``names`` and each private helper that is part of one (:func:`helpers_of`)."""
    from ... import reference

    _load_references()
    prints: dict[str, tuple[str, ...]] = {}
    for name in sorted(names):  # three norms share one backward body: one print, three names
        source = textwrap.dedent(inspect.getsource(reference._original(name)))
        fn = next(node for node in ast.parse(source).body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)))
        body = fingerprint(fn)
        prints[body] = prints.get(body, ()) + (name,)
    given = set()
    for module in REFERENCE_MODULES:  # the private helpers that hold part of an answer
        tree = ast.parse(inspect.getsource(importlib.import_module(f"coursekit.reference.{module}")))
        functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
        helpers = helpers_of(tree, names)
        for helper, name in helpers.items():
            prints.setdefault(fingerprint(functions[helper]), (name,))
        given |= {fingerprint(fn) for fn_name, fn in functions.items()
                  if fn_name not in helpers and _reference_of(fn) not in names}
    # a body that students are given elsewhere (a two-line _require) gives nothing away
    return {body: name for body, name in prints.items() if body not in given}


@dataclass
class Found:
    path: str
    line: int
    function: str
    answers: tuple[str, ...]   # the reference names whose body it is

    @property
    def answer(self) -> str:
        return self.answers[0]


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
