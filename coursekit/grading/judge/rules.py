"""Which names a graded cell gets, and from where: the rules the judge grades by.

Before each graded cell, the judge kernel runs the **import statements of the locked cells**
above it (the instructor's, never the student's), and binds **every other free name** of the
cell to the student's value, fetched from the student's kernel. Two consequences a graded cell
must respect, checked at release (:func:`lint`, run by ``coursekit release``):

1. A name the cell reads must come from an import in a locked cell, from an answer the
   student writes, or from the cell itself. A name that a locked cell *assigns* (``x = ...``,
   ``def helper``) is fetched from the student's kernel, where the student can change it: the
   test would trust the student's value.
2. A name that is also a Python builtin is never bound (``len``, ``sum``, ``input`` stay the
   judge's own), so a graded cell must not rely on a notebook's own definition of such a name.
3. A student's ``nn.Module`` reaches the judge as a mirror (:mod:`.mirror`) whose submodules
   are stand-ins that cannot run: a graded cell calls the whole model, never one of its parts
   (``model.features(x)``).
"""
from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass


def modules(import_lines: list[str]) -> list[str]:
    """The modules the import statements ``import_lines`` load (absolute imports only)."""
    names = []
    for line in import_lines:
        for node in getattr(_parse(line), "body", []):
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.append(node.module)
    return list(dict.fromkeys(names))


def imports(cells) -> list[str]:
    """The import statements of the locked code cells among ``cells`` (the instructor's)."""
    lines = []
    for cell in cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("locked") or meta.get("solution"):
            continue
        tree = _parse(cell.source)
        lines += [ast.unparse(node) for node in getattr(tree, "body", [])
                  if isinstance(node, (ast.Import, ast.ImportFrom))]
    return lines


def free_names(source: str) -> list[str]:
    """Names a cell reads but does not define itself, in the order it first reads them."""
    tree = _parse(source)
    if tree is None:
        return []
    loaded, stored = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded.append(node.id) if isinstance(node.ctx, ast.Load) else stored.add(node.id))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            stored.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stored.add(node.name)
        elif isinstance(node, ast.arg):
            stored.add(node.arg)
    return [n for n in dict.fromkeys(loaded) if n not in stored]


def _parse(source: str):
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def _defined(source: str) -> tuple[set[str], set[str]]:
    """(names a cell binds by import, names it binds otherwise), at its top level."""
    tree = _parse(source)
    imported, assigned = set(), set()
    for node in getattr(tree, "body", []):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imported.update((a.asname or a.name).split(".")[0] for a in node.names)
        else:
            assigned.update(_stores(node))
    return imported, assigned


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.ListComp, ast.SetComp,
           ast.DictComp, ast.GeneratorExp)


def _stores(node):
    """The names a statement binds in the cell's (module) scope, not inside its functions."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name
        return
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
            yield child.id
        elif not isinstance(child, _SCOPES) or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                   ast.ClassDef)):
            yield from _stores(child)


#: Methods and attributes of nn.Module (and of any object) a graded cell may use on a student's model.
_MODULE_API = {name for name in dir(object)} | {
    "apply", "buffers", "children", "cpu", "cuda", "double", "eval", "float", "forward", "get_buffer",
    "get_parameter", "get_submodule", "half", "load_state_dict", "modules", "named_buffers",
    "named_children", "named_modules", "named_parameters", "parameters", "register_buffer",
    "register_forward_hook", "requires_grad_", "state_dict", "to", "train", "training", "type",
    "zero_grad", "weight", "bias"}


@dataclass
class Broken:
    """A graded cell that breaks a rule: which cell, which name, and why."""

    cell: str
    name: str
    why: str

    def __str__(self) -> str:
        return f"{self.cell}: `{self.name}` {self.why}"


def lint(nb, notebook: str = "") -> list[Broken]:
    """Every way a graded cell of the source notebook ``nb`` breaks the judge's rules."""
    imported: set[str] = set()     # by locked cells' imports so far
    assigned: set[str] = set()     # by locked cells' other statements so far
    answers: set[str] = set()      # by the student's answer cells so far
    broken: list[Broken] = []
    prefix = f"{notebook}: " if notebook else ""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        name = f"{prefix}graded cell {meta.get('grade_id') or index + 1}"
        if meta.get("grade") and not meta.get("solution"):
            broken += _check_graded(cell.source, name, imported, assigned, answers)
        cell_imports, cell_assigned = _defined(cell.source)
        if meta.get("solution") or not meta.get("locked"):
            answers |= cell_imports | cell_assigned
        else:
            imported |= cell_imports
            assigned |= cell_assigned
    return broken


def _check_graded(source: str, cell: str, imported: set, assigned: set, answers: set) -> list[Broken]:
    broken = []
    for name in free_names(source):
        if hasattr(builtins, name):
            if name in assigned or name in answers:
                broken.append(Broken(cell, name, "is a Python builtin that the notebook redefines: the "
                                     "judge never binds builtins, so the test would get Python's "
                                     f"{name}, not the notebook's. Rename it."))
            continue
        if name in imported:
            continue
        if name in answers:
            continue
        if name in assigned:
            broken.append(Broken(cell, name, "is set by a locked cell without an import: the judge "
                                 "re-runs only the locked cells' imports and takes every other name "
                                 "from the student's kernel, where the student can change it. Import "
                                 "it in a locked cell, or compute it in the graded cell."))
        else:
            broken.append(Broken(cell, name, "is defined by no cell above it (neither an import of a "
                                 "locked cell nor an answer): grading would raise NameError."))
    broken += _submodule_calls(source, cell, answers - imported)
    return broken


def _made_by_class(node, classes: set) -> bool:
    """Whether ``node`` is a call of one of the student's classes, ``SimpleNet(...)``."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in classes


def _part_called(func, objects: set, classes: set) -> bool:
    """Whether calling ``func`` calls a part of a student's object: ``net.features`` or
    ``net.features[0]`` for ``net`` one of ``objects``, or ``SimpleNet().features``."""
    attrs, indexed, node = [], False, func
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Attribute):
            attrs.append(node.attr)
        else:
            indexed = True
        node = node.value
    ours = (isinstance(node, ast.Name) and node.id in objects) or _made_by_class(node, classes)
    return ours and (indexed or len(attrs) > 1 or (len(attrs) == 1 and attrs[0] not in _MODULE_API))


def _submodule_calls(source: str, cell: str, student_names: set) -> list[Broken]:
    """Calls of a part of a student's model, ``net.features(x)`` (``net`` an answer's name, or
    made in the cell by ``net = SimpleNet()``), or ``SimpleNet().features(x)``: a mirrored
    module's parts cannot run in the judge. (What a student's *function* returns is a value:
    its methods are the judge's own.)"""
    tree = _parse(source) or ast.Module(body=[], type_ignores=[])
    classes = {name for name in student_names if name[:1].isupper()}
    objects = set(student_names)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _made_by_class(node.value, classes):
            objects.update(t.id for t in node.targets if isinstance(t, ast.Name))
    broken = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _part_called(node.func, objects, classes):
            broken.append(Broken(cell, ast.unparse(node.func), "calls a part of the student's model: "
                                 "a student's nn.Module is judged through a mirror whose submodules "
                                 "cannot run. Call the whole model, or pass it to a checker."))
    return broken
