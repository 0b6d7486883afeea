"""The package's structure: what imports what, and every string that names a module.

* no import cycle in ``coursekit/`` (counting imports inside functions too: a lazy import is an
  import), and ``checks/`` and ``reference/`` import nothing from ``grading/``;
* every import resolves, and every dotted ``coursekit.…`` name in the code, the course
  configuration, the notebooks and the README names a module (or an attribute of one) that
  exists: a renamed module cannot leave a stale ``python -m`` or kernel-code string behind.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "coursekit"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def import_graph() -> dict[str, set[str]]:
    """coursekit module -> the coursekit modules it imports (anywhere in its code)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        edges = graph.setdefault(module, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, _is_package(path), node)
                # `from pkg import sub` imports the submodule; `from mod import name` the module
                targets = [f"{base}.{a.name}" if _exists(f"{base}.{a.name}") else base for a in node.names]
            else:
                continue
            edges.update(t for t in targets if t == "coursekit" or t.startswith("coursekit."))
    return graph


def test_every_import_of_coursekit_resolves():
    missing = sorted(f"{module} imports {target}" for module, targets in import_graph().items()
                     for target in targets if not _exists(target))
    assert not missing, "\n".join(missing)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt == node:
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if not state.get(nxt):
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if not state.get(node):
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycles():
    cycle = _cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("layer", ["coursekit.checks", "coursekit.reference"])
def test_checks_and_references_do_not_import_grading(layer):
    wrong = sorted(f"{module} imports {target}" for module, targets in import_graph().items()
                   if module == layer or module.startswith(layer + ".")
                   for target in targets if target.startswith("coursekit.grading"))
    assert not wrong, "\n".join(wrong)


# --- strings that name modules ------------------------------------------------------------------

DOTTED = re.compile(r"(?<![\w./-])coursekit(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def _texts():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, path.read_text()
    for path in [*sorted((ROOT / "autograder").glob("*.py")), ROOT / "README.md",
                 *sorted((ROOT / "tests").glob("*.py")), *sorted((ROOT / ".ci").glob("*"))]:
        if path != Path(__file__).resolve():  # this file names stale modules on purpose
            yield path, path.read_text()
    for folder in ("solutions", "notebooks"):
        for path in sorted((ROOT / folder).glob("*.ipynb")):
            yield path, "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
    for path in sorted(PACKAGE.rglob("*.j2")):
        yield path, path.read_text()


def _names_something(dotted: str) -> bool:
    """Whether ``dotted`` is a module, or a module followed by attributes it has."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module = ".".join(parts[:cut])
        if not _exists(module):
            continue
        target = importlib.import_module(module)
        for attr in parts[cut:]:
            if not hasattr(target, attr):
                return False
            target = getattr(target, attr)
        return True
    return False


def test_every_dotted_coursekit_name_exists():
    stale = []
    for path, text in _texts():
        for match in DOTTED.finditer(text):
            dotted = match.group(0)
            if dotted.endswith((".html", ".j2", ".json", ".ipynb", ".whl")) or dotted == "coursekit.html":
                continue   # file names, not modules
            if not _names_something(dotted):
                line = text.count("\n", 0, match.start()) + 1
                stale.append(f"{path.relative_to(ROOT)}:{line}: {dotted}")
    assert not stale, "names of modules that do not exist:\n" + "\n".join(stale)


def test_every_module_function_target_exists():
    """Course configuration names functions as 'module:function' (GradingPreparation.prepare)."""
    found = 0
    for path, text in _texts():
        for module, function in re.findall(r"[\"'](coursekit(?:\.\w+)+):(\w+)[\"']", text):
            found += 1
            assert hasattr(importlib.import_module(module), function), f"{path}: {module}:{function}"
    assert found, "the course configuration names no preparation function"


def test_the_module_name_check_finds_a_stale_name():
    assert _names_something("coursekit.grading.pipeline.worker")
    assert _names_something("coursekit.reference.backprop.softmax_nll")
    assert not _names_something("coursekit.grading.worker")
    assert not _names_something("coursekit.reference.backprop.no_such_function")


def test_module_names_follow_the_notebooks():
    """notebook slug = module name in reference/ and checks/ (01_backprop -> backprop.py)."""
    slugs = {p.stem.split("_", 1)[1] for p in (ROOT / "solutions").glob("*.ipynb")}
    for folder in ("reference", "checks"):
        modules = {p.stem for p in (PACKAGE / folder).glob("*.py")}
        assert slugs <= modules, f"{folder}/ lacks {sorted(slugs - modules)}"
