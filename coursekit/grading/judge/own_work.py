"""Whether a submission's own source uses coursekit's answer to an exercise: read by the judge.

Graded, the student's kernel holds no reference of a graded exercise (its coursekit is the
locked copy of :func:`coursekit.grading.course.distribution.grading_copy`), so no trick in an
answer cell can compute an answer with one: whatever the code does, it reaches a body that
raises. What is left to say is *why* such an answer fails, and that is read from the source
the student wrote (every code cell above the graded one that is not the instructor's), never
from anything the student's kernel reports about itself:

* ``from coursekit.reference.conv import im2col`` (or ``*``), under any alias;
* ``coursekit.reference.conv.im2col`` or ``R.conv.im2col``, ``C.im2col`` through a name bound
  to a coursekit module by an import;
* ``_original("conv.im2col")`` or any string naming the reference in full (``"conv.im2col"``)
  in code that imports from coursekit.
"""
from __future__ import annotations

import ast


def student_sources(cells) -> list[str]:
    """The code a student wrote among ``cells`` (nbgrader's cells of a submitted notebook):
    answer cells and cells they added, not the instructor's locked cells (which nbgrader's
    autograde restores from the release)."""
    sources = []
    for cell in cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") != "code" or (meta.get("locked") and not meta.get("solution")):
            continue
        sources.append(cell.get("source", ""))
    return sources


def _coursekit_aliases(tree: ast.AST) -> dict[str, str]:
    """Names bound to coursekit modules by the imports of ``tree``: alias -> module path."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "coursekit" or alias.name.startswith("coursekit."):
                    if alias.asname:
                        aliases[alias.asname] = alias.name
                    else:
                        aliases["coursekit"] = "coursekit"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("coursekit") and not node.level:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def _dotted(node: ast.AST) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def uses(source: str, reference: str) -> str:
    """How ``source`` reaches the reference ``reference`` ('conv.im2col', or 'models.BasicBlock'
    for a network of coursekit.models, imported from any of its modules): the construct, or ''."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ""
    name = reference.rpartition(".")[2]
    if reference.startswith("models."):
        full = f"coursekit.{reference}"
        matches = lambda path: path.startswith("coursekit.models.") and path.endswith(f".{name}")  # noqa: E731
    else:
        full = f"coursekit.reference.{reference}"
        matches = lambda path: path == full  # noqa: E731
    aliases = _coursekit_aliases(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("coursekit") and not node.level:
            for alias in node.names:
                if matches(f"{node.module}.{name if alias.name == '*' else alias.name}"):
                    return f"from {node.module} import {alias.name}"
        elif isinstance(node, ast.Attribute) and node.attr == name:
            dotted = _dotted(node)
            if dotted and dotted[0] in aliases and matches(".".join([aliases[dotted[0]], *dotted[1:]])):
                return ast.unparse(node)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and aliases:
            if node.value in (reference, full):
                return repr(node.value)
    return ""


def used(sources: list[str], references) -> dict[str, str]:
    """{reference: how the student's code uses it} for each of ``references`` it uses."""
    found = {}
    for reference in references:
        for source in sources:
            how = uses(source, reference)
            if how:
                found[reference] = how
                break
    return found
