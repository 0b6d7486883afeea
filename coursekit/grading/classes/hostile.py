"""A class of hostile and broken submissions of notebook 01, with a control student graded last.

Each student is the instructor's answers with one behaviour added: resource abuse, reaching
for files it must not touch, tampering with what the tests rely on, editing the notebook's
structure, or calling the reference. ``deserved`` is the most the submission should score
(23 is full marks): a wrong answer loses its exercise whatever else the cell does, an attack
that fails costs nothing by itself. `tests/test_hostile.py` grades the class in one run and
checks every row, and that the gradebook, the course and every other submission are intact.
``python -m coursekit.grading.classes.hostile OUT`` grades it and prints the table.
"""
from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat

from .sample import NOTEBOOK, student_notebook

FULL = 23
POINTS = {"ex1": 2, "ex2a": 3, "ex2b": 2, "ex3a": 2, "ex3b": 3, "ex3c": 1, "ex4": 3, "ex5": 3,
          "ex6a": 3, "ex6b": 1}
#: Printed by an attack that worked; the test looks for it in every output.
LEAK = "HOSTILE-LEAK"


def _then(code: str) -> Callable[[str], str]:
    return lambda src: src + "\n\n" + code


def _deeper(start: int, count: int) -> str:
    """Code that goes ``start`` folders down the chain of folders named d (500 at a time) and makes
    it ``count`` folders deeper."""
    return (f"import os\nhome = os.getcwd()\nleft = {start}\nwhile left:\n    step = min(left, 500)\n"
            f"    os.chdir('/'.join(['d'] * step))\n    left -= step\n"
            f"for _ in range({count}):\n    os.mkdir('d')\n    os.chdir('d')\nos.chdir(home)")


def _first(code: str) -> Callable[[str], str]:
    return lambda src: code + "\n\n" + src


WRONG = {  # a wrong answer for each exercise used below, appended after the right one
    "ex3b": "def two_layer_backward(dy, cache):\n    x, h, y, params = cache\n"
            "    return {k: np.zeros_like(v) for k, v in params.items()}\n",
    "ex4": "def norm_sq_backward(df, cache):\n    x, W, q = cache\n    return W.T @ q, np.outer(x, q)\n",
    "ex5": "def softmax_nll(scores, y):\n    return 0.0, np.zeros_like(scores)\n",
    "ex6a": "def numerical_gradient(f, x, h=1e-5):\n    return np.zeros_like(x, dtype=float)\n",
    "ex6b": "def rel_error(a, b):\n    return 0.0\n",
}


#: The function each exercise's answer defines (one function, its reference backprop.<name>).
ANSWER_FUNCTION = {"ex3b": "two_layer_backward", "ex3c": "sgd_step", "ex5": "softmax_nll",
                   "ex6a": "numerical_gradient", "ex6b": "rel_error"}

#: trick -> (what it does, the body of ``_reach(name)``: the reference backprop.<name> reached
#: that way). Each of them computed the reference in one kernel (tests/test_hostile.py checks).
REFERENCE_TRICKS = {
    "original": ("the unwrapped function coursekit.reference._original",
                 "return R._original('backprop.' + name)"),
    "closure": ("the function in the wrapper's closure",
                "return next(c.cell_contents for c in getattr(_r, name).__closure__\n"
                "            if getattr(c.cell_contents, '__name__', '') == name)"),
    "exec-globals": ("code exec'd with coursekit-looking globals",
                     "g = {'__name__': 'coursekit.checks.student'}\n"
                     "exec(f'import coursekit.reference.backprop as r\\nf = r.{name}', g)\nreturn g['f']"),
    "helper": ("a coursekit helper that calls what it is given",
               "from coursekit.checks.student import call\n"
               "return lambda *a, **k: call('x', getattr(_r, name), *a, **k)"),
    "patch-guard": ("the recorder's guard and counters patched",
                    "R._called_from_coursekit = lambda frame: True\nR.recorded_calls = lambda n: 0\n"
                    "R.references_used = lambda names: {}\nR.set_uses = lambda uses: None\n"
                    "return getattr(_r, name)"),
    "clear-record": ("the record cleared after each call",
                     "return lambda *a, **k: (getattr(_r, name)(*a, **k), R.reset_recorded_calls())[0]"),
    "fake-globals": ("a copy of the wrapper with coursekit-looking globals",
                     "import types\nw = getattr(_r, name)\n"
                     "return types.FunctionType(w.__code__, {**w.__globals__, '__name__': 'coursekit.checks.student'},\n"
                     "                          name, w.__defaults__, w.__closure__)"),
    "exec-source": ("the reference module's own source exec'd",
                    "import ast\ntree = ast.parse(open(_r.__file__).read())\n"
                    "fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)\n"
                    "fn.decorator_list = []\nns = dict(vars(_r))\n"
                    "exec(compile(ast.Module([fn], []), _r.__file__, 'exec'), ns)\nreturn ns[name]"),
    "hidden-import": ("an import by a name built at run time",
                      "return getattr(__import__('course' + 'kit.reference.back' + 'prop', fromlist=['_']), name)"),
    "grader-copy": ("the grader's own coursekit looked for on disk",
                    "import os, ast, glob\n"
                    "places = [os.path.join(p, 'coursekit') for p in sys.path if p]\n"
                    "for finder in glob.glob(os.path.join(sys.prefix, 'lib', 'python*', 'site-packages', '*.py')):\n"
                    "    try:\n        places += [m for m in open(finder).read().split(\"'\") if m.endswith('coursekit')]\n"
                    "    except OSError:\n        pass\n"
                    "for top in ('/work', '/root', '/home', '/opt', '/srv', '/tmp'):\n"
                    "    places += glob.glob(os.path.join(top, *['*'] * 3, 'coursekit'))\n"
                    "for place in dict.fromkeys(places):\n"
                    "    try:\n        text = open(os.path.join(place, 'reference', 'backprop.py')).read()\n"
                    "    except OSError:\n        continue\n"
                    "    if 'locked_answer(' in text:\n        continue\n"
                    f"    print('{LEAK} read', place)\n"
                    "    fn = next(n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef) and n.name == name)\n"
                    "    fn.decorator_list = []\n    ns = dict(vars(_r))\n"
                    "    exec(compile(ast.Module([fn], []), 'x', 'exec'), ns)\n    return ns[name]\n"
                    "raise RuntimeError('no readable answer')"),
}

#: which tricks each of the two submissions plays, on which exercise
TRICKS_BY_SUBMISSION = {
    "a": {"original": "ex3b", "closure": "ex3c", "exec-globals": "ex5", "helper": "ex6a", "patch-guard": "ex6b"},
    "b": {"clear-record": "ex3b", "fake-globals": "ex3c", "exec-source": "ex5", "hidden-import": "ex6a",
          "grader-copy": "ex6b"},
}


def _reference_trick(trick: str, exercise: str) -> str:
    """Code that redefines the answer of ``exercise`` as the reference reached by ``trick``, at
    call time (so that defining it never fails and leaves the right answer in place)."""
    name = ANSWER_FUNCTION[exercise]
    body = "\n".join("    " + line for line in REFERENCE_TRICKS[trick][1].splitlines())
    return (f"import sys\nimport coursekit.reference as R\nimport coursekit.reference.backprop as _r\n"
            f"def _reach_{exercise}(name):\n{body}\n"
            f"def {name}(*args, **kwargs):\n    return _reach_{exercise}({name!r})(*args, **kwargs)\n")


def _wrong(exercise: str, tamper: str) -> dict[str, Callable[[str], str]]:
    return {f"{exercise}_answer": _then(WRONG[exercise] + "\n" + tamper)}


@dataclass
class Case:
    story: str
    deserved: int
    edits: dict[str, Callable[[str], str]] = field(default_factory=dict)
    notebook: Callable[[nbformat.NotebookNode], nbformat.NotebookNode] | None = None
    raw: bytes | None = None                 # the file as handed in, instead of a notebook
    file_name: str = f"{NOTEBOOK}.ipynb"
    hostile: bool = True                     # False: honest but broken, keeps what it earned


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _delete(grade_id):
    def edit(nb):
        nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != grade_id]
        return nb
    return edit


def _to_markdown(grade_id):
    def edit(nb):
        i = nb.cells.index(_cell(nb, grade_id))
        old = nb.cells[i]
        nb.cells[i] = nbformat.v4.new_markdown_cell(old.source, metadata=copy.deepcopy(old.metadata))
        return nb
    return edit


def _set_source(grade_id, source):
    def edit(nb):
        _cell(nb, grade_id).source = source
        return nb
    return edit


def _metadata(nb):
    tests = _cell(nb, "ex3a_tests").metadata.nbgrader
    tests["points"] = 100
    answer = _cell(nb, "ex3a_answer").metadata.nbgrader
    answer.update(grade=True, points=50)
    return nb


def _duplicate(nb):
    i = nb.cells.index(_cell(nb, "ex1_answer"))
    nb.cells.insert(i + 1, copy.deepcopy(nb.cells[i]))
    return nb


FIND_FILES = """
import os
def _everything(top="/"):
    for folder, dirs, files in os.walk(top, onerror=lambda e: None):
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")]
        for name in files:
            yield os.path.join(folder, name)
"""

CASES: dict[str, Case] = {
    # --- resources: stopped by limits, keeps the points earned elsewhere ------------------------
    "hang-sleep": Case("sleeps forever in exercise 6b", FULL - POINTS["ex6b"],
                       {"ex6b_answer": _first("import time\ntime.sleep(10**6)")}, hostile=False),
    "busy-threads": Case("spins 8 threads in exercise 3c", FULL - POINTS["ex3c"],
                         {"ex3c_answer": _first("import threading\ndef spin():\n    while True:\n        pass\n"
                                                "for _ in range(8):\n    threading.Thread(target=spin, daemon=True).start()\n"
                                                "while True:\n    pass")}, hostile=False),
    "exit-kernel": Case("os._exit in exercise 3c", FULL - POINTS["ex3c"],
                        {"ex3c_answer": _first("import os\nos._exit(3)")}, hostile=False),
    "segfault": Case("segfaults its kernel in exercise 6b", FULL - POINTS["ex6b"],
                     {"ex6b_answer": _first("import ctypes\nctypes.string_at(0)")}, hostile=False),
    "memory-hog": Case("allocates without end in exercise 4", FULL - POINTS["ex4"],
                       {"ex4_answer": _first("hog = []\nwhile True:\n    hog.append(np.ones(1 << 24))")},
                       hostile=False),
    "disk-filler": Case("writes file after file in exercise 5", FULL - POINTS["ex5"],
                        {"ex5_answer": _first("for i in range(10**6):\n    with open(f'fill{i}.bin', 'wb') as fh:\n"
                                              "        fh.write(b'0' * (32 << 20))")}, hostile=False),
    "fork-bomb": Case("forks without end in exercise 3b", FULL - POINTS["ex3b"],
                      {"ex3b_answer": _first("import os, time\nwhile True:\n    if os.fork() == 0:\n"
                                             "        time.sleep(120)\n        os._exit(0)")}, hostile=False),
    "print-flood": Case("prints 200 MB in exercise 2b (answers right)", FULL,
                        # after the answer: on a loaded machine 200 MB can take longer than the 5 s
                        # cell limit, and a flood cut short must not cost the answer above it
                        {"ex2b_answer": _then("line = 'x' * (1 << 20)\nfor _ in range(200):\n    print(line)")},
                        hostile=False),
    # --- files and network: cannot reach anything outside its submission ------------------------
    "delete-gradebook": Case("deletes every gradebook.db it can find (answers right)", FULL, {
        "ex1_answer": _then(FIND_FILES + "for path in [*_everything(), '../../../gradebook.db']:\n"
                            "    if path.endswith('gradebook.db'):\n        try:\n            os.remove(path)\n"
                            f"            print('{LEAK} deleted', path)\n        except OSError:\n            pass")}),
    "overwrite-classmates": Case("overwrites every notebook it can find (answers right)", FULL, {
        "ex1_answer": _then(FIND_FILES + "for path in _everything():\n    if path.endswith('.ipynb'):\n"
                            "        try:\n            open(path, 'w').write('{}')\n"
                            f"            print('{LEAK} overwrote', path)\n        except OSError:\n            pass")}),
    "read-hidden-tests": Case("looks for the hidden tests; answers 5 wrong", FULL - POINTS["ex5"], {
        "ex5_answer": _then(WRONG["ex5"] + FIND_FILES + "for path in _everything():\n"
                            "    if path.endswith(('.ipynb', '.db')) and 'scratch' not in path:\n        try:\n"
                            "            text = open(path, 'rb').read()\n"
                            f"            if b'HIDDEN' in text:\n                print('{LEAK} read', path)\n"
                            "        except OSError:\n            pass")}),
    "network": Case("opens connections (answers right)", FULL, {
        "ex1_answer": _then("import socket\nfor host, port in [('127.0.0.1', 22), ('127.0.0.1', 8888), ('1.1.1.1', 53)]:\n"
                            "    try:\n        socket.create_connection((host, port), timeout=1).close()\n"
                            f"        print('{LEAK} connected', host, port)\n    except OSError:\n        pass")}),
    "link-to-template": Case("links the judge exchange's names to the run's template, the course, the gradebook and the control student (answers right)", FULL, {
        "ex1_answer": _then("import os\nfor name in ('.coursekit-judge', 'judge-exchange', 'exchange'):\n"
                            "    for target in ('../../../../template/source/01_backprop', '../../../../template',\n"
                            "                   '../../../../../course', '../../../../../course/gradebook.db',\n"
                            "                   '../run/judge-exchange', '../../../zz-control/01_backprop'):\n"
                            "        try:\n            os.symlink(target, f'{name}-{abs(hash(target)) % 97}' if os.path.lexists(name) else name)\n"
                            "        except OSError:\n            pass")}),
    "deep-folders": Case("leaves a 5,000-deep chain of folders, 60,000 empty files, a FIFO and odd names (answers right)", FULL, {
        # the work is spread over cells (at most 2,500 folders or 10,000 files each; a folder costs
        # more the deeper it is, so the deep end of the chain is split over three cells): one cell
        # doing it all can pass a loaded machine's 5 s cell limit, which is not what this case is about
        "ex1_answer": _then("import os\nhome = os.getcwd()\nfor _ in range(2500):\n    os.mkdir('d')\n    os.chdir('d')\n"
                            "os.chdir(home)\nos.mkdir('many')\nos.mkfifo('fifo')\nopen('odd \\n name \\x01', 'w').close()"),
        "ex2a_answer": _then(_deeper(2500, 850)),
        "ex6a_answer": _then(_deeper(3350, 850)),
        "ex6b_answer": _then(_deeper(4200, 800)),
        **{f"{ex}_answer": _then(f"for i in range({k * 10_000}, {(k + 1) * 10_000}):\n    open(f'many/{{i}}', 'w').close()")
           for k, ex in enumerate(("ex2b", "ex3a", "ex3b", "ex3c", "ex4", "ex5"))}}, hostile=False),
    "escalate": Case("tries to renice, unshare, mount, setuid(0) and read other processes' environment (answers right)", FULL, {
        "ex1_answer": _then("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                            "for name, attempt in [('renice', lambda: os.nice(-10)), ('setuid', lambda: os.setuid(0)),\n"
                            "                      ('unshare', lambda: libc.unshare(0x10000000) == 0 or 1 / 0),\n"
                            "                      ('mount ns', lambda: libc.unshare(0x20000) == 0 or 1 / 0),\n"
                            "                      ('mount', lambda: libc.mount(b'none', b'.', b'tmpfs', 0, None) == 0 or 1 / 0)]:\n"
                            "    try:\n        attempt()\n"
                            f"        print('{LEAK}', name)\n    except Exception:\n        pass\n"
                            "for pid in os.listdir('/proc'):\n    if pid.isdigit() and int(pid) != os.getpid():\n"
                            "        try:\n            if open(f'/proc/{pid}/environ', 'rb').read():\n"
                            f"                print('{LEAK} environ of', pid)\n        except OSError:\n            pass")}),
    # --- tampering with what the tests rely on: wrong answers stay wrong ------------------------
    "patch-numpy": Case("answers 5 wrong and patches numpy's comparisons", FULL - POINTS["ex5"], _wrong("ex5",
        "np.allclose = lambda *a, **k: True\nnp.isclose = lambda a, b, *r, **k: np.ones(np.shape(a), bool)\n"
        "np.testing.assert_allclose = lambda *a, **k: None\nnp.array_equal = lambda *a, **k: True")),
    "patch-checkers": Case("answers 4 wrong and replaces the checkers", FULL - POINTS["ex4"], _wrong("ex4",
        "import coursekit.checks as ck, coursekit.checks.backprop as cb\n"
        "for name in dir(cb):\n    if not name.startswith('_') and callable(getattr(cb, name)):\n"
        "        setattr(cb, name, lambda *a, **k: None)\n"
        "ck.assert_own_work = lambda *a: None\nck.CheckError = type('CheckError', (Exception,), {})")),
    "patch-builtins": Case("answers 3b wrong and patches builtins", FULL - POINTS["ex3b"], _wrong("ex3b",
        "import builtins\nbuiltins.abs = lambda x: 0\nbuiltins.max = lambda *a, **k: 0\n"
        "builtins.AssertionError = type('AssertionError', (Exception,), {})")),
    "ipython-hooks": Case("answers 6a wrong, swallows exceptions and rewrites cells", FULL - POINTS["ex6a"], _wrong("ex6a",
        "ip = get_ipython()\nip.set_custom_exc((BaseException,), lambda *a, **k: None)\n"
        "ip.input_transformers_cleanup.append(lambda lines: ['pass\\n'] if any('check.' in l for l in lines) else lines)\n"
        "ip.events.register('post_run_cell', lambda result: setattr(result, 'error_in_exec', None))")),
    "excepthook": Case("answers 6b wrong and replaces sys.excepthook", FULL - POINTS["ex6b"], _wrong("ex6b",
        "import sys\nsys.excepthook = lambda *a: None\nsys.stderr = open('/dev/null', 'w')")),
    "redefine-names": Case("answers 6b wrong and redefines check and assert_own_work", FULL - POINTS["ex6b"], _wrong("ex6b",
        "class _Pass:\n    def __getattr__(self, name):\n        return lambda *a, **k: None\n"
        "check = _Pass()\nassert_own_work = lambda *a: None")),
    # --- the notebook's structure: restored, scored on what is there ----------------------------
    "edited-test-cell": Case("answers 5 wrong and empties its test cell", FULL - POINTS["ex5"],
                             _wrong("ex5", ""), notebook=_set_source("ex5_tests", "pass")),
    "deleted-test-cell": Case("answers 4 wrong and deletes its test cell", FULL - POINTS["ex4"],
                              _wrong("ex4", ""), notebook=_delete("ex4_tests")),
    "test-to-markdown": Case("answers 6a wrong and turns its test cell into markdown", FULL - POINTS["ex6a"],
                             _wrong("ex6a", ""), notebook=_to_markdown("ex6a_tests")),
    "metadata-edited": Case("raises its test's points and makes an answer cell graded", FULL,
                            notebook=_metadata),
    "duplicate-grade-id": Case("duplicates an answer cell, grade id and all", FULL, notebook=_duplicate,
                               hostile=False),
    "deleted-answer": Case("deleted the answer cell of exercise 6b", FULL - POINTS["ex6b"],
                           notebook=_delete("ex6b_answer"), hostile=False),
    "huge-value": Case("answers 2b right but makes df_dw a list of 300,000 numbers; keeps a 1e6-item list", FULL - POINTS["ex2b"],
                       {"ex2b_answer": _then("df_dw = [float(df_dw)] * 300_000\nunrelated = list(range(10**6))")},
                       hostile=False),
    "invalid-json": Case("hands in a file that is not JSON", 0, raw=b'{"cells": [ {"cell_type": ', hostile=False),
    "wrong-name": Case("hands in the notebook under another name", 0, file_name="01_backprop_final.ipynb",
                       hostile=False),
    # --- the reference -------------------------------------------------------------------------
    "calls-reference": Case("computes exercise 5 with the reference", FULL - POINTS["ex5"], {
        "ex5_answer": _then("import coursekit.reference.backprop as _r\n"
                            "def softmax_nll(scores, y):\n    return _r.softmax_nll(scores, y)")}),
    # ten ways to reach the reference that worked in one kernel, five per submission, each on
    # an exercise of its own (REFERENCE_TRICKS): each of those exercises scores 0
    **{f"reference-tricks-{part}": Case(
        "computes " + ", ".join(f"{ex} with {REFERENCE_TRICKS[trick][0]}" for trick, ex in tricks.items()),
        FULL - sum(POINTS[ex] for ex in tricks.values()),
        {f"{ex}_answer": _then(_reference_trick(trick, ex)) for trick, ex in tricks.items()})
       for part, tricks in TRICKS_BY_SUBMISSION.items()},
    # --- the control, graded after all of them -------------------------------------------------
    "zz-control": Case("every answer right, graded last", FULL, hostile=False),
}


ROW_LOOP_IM2COL = """
import sys
def im2col(x, kh, kw, stride=1, pad=0):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    cols = np.empty((c, kh, kw, n, ho, wo))
    for i in range(ho):  # one output row at a time
        for ki in range(kh):
            for kj in range(kw):
                cols[:, ki, kj, :, i, :] = xp[:, :, i * stride + ki, kj:kj + stride * wo:stride].transpose(1, 0, 2)
    return cols.reshape(c * kh * kw, n * ho * wo)
sys.settrace = lambda tracer: None  # no line counter sees the loop
import coursekit.checks.student as _student
_student.busiest_line = lambda fn, *a, **k: (0, "", fn(*a, **k))
"""

SELF_NAME = """
def conv_forward_naive(*args, **kwargs):  # graded alone, is this name coursekit's?
    found = globals().get("conv_forward_naive")
    if found is not _mine:
        return found(*args, **kwargs)
    raise NotImplementedError
_mine = conv_forward_naive
"""

#: What a student's kernel once said about itself and decided points by (its line counts, the
#: class ancestry of its networks, a reference put in place of the function graded): one
#: submission per notebook, each attack on an exercise of its own. notebook -> (story, the
#: exercises it should lose, answer edits)
SELF_REPORTS: dict[str, tuple[str, tuple[str, ...], dict[str, Callable[[str], str]]]] = {
    "03_conv": ("im2col loops over output rows with the tracer and the line counter disabled; "
                "conv_forward_naive uses the reference if grading puts one under its own name",
                ("ex8a", "ex4"), {"ex8a_answer": _then(ROW_LOOP_IM2COL), "ex4_answer": _then(SELF_NAME)}),
    "06_architectures": ("BasicBlock and Bottleneck are functions that return coursekit's blocks; DeepMLP "
                         "subclasses coursekit's, imported by a name built at run time",
                         ("ex4", "ex6"), {
        "ex4_answer": _then("import importlib\n_m = importlib.import_module('course' + 'kit.models')\n"
                            "def BasicBlock(*args, **kwargs):\n    return getattr(_m, 'Basic' + 'Block')(*args, **kwargs)\n"
                            "def Bottleneck(*args, **kwargs):\n    return getattr(_m, 'Bottle' + 'neck')(*args, **kwargs)\n"
                            "Bottleneck.expansion = 4"),
        "ex6_answer": _then("class DeepMLP(getattr(__import__('coursekit.models', fromlist=['_']), 'Deep' + 'MLP')):\n"
                            "    __module__ = '__main__'")}),
    "07_scenes": ("SimpleNet returns coursekit's network, imported by a name built at run time; "
                  "SimpleNetFinal is coursekit's, imported plainly", ("ex3", "ex5"), {
        "ex3_answer": _then("def SimpleNet(*args, **kwargs):\n"
                            "    return getattr(__import__('coursekit.models.scene_nets', fromlist=['_']), 'Simple' + 'Net')(*args, **kwargs)"),
        "ex5_answer": _then("from coursekit.models.scene_nets import SimpleNetFinal")}),
    "08_visualisation": ("saliency is coursekit's reference, found by a name built at run time; fgsm and "
                         "fool are coursekit's, imported plainly", ("ex2", "ex6"), {
        "ex2_answer": _then("saliency = getattr(__import__('.'.join(['coursekit', 'reference', 'visualisation']), fromlist=['_']), "
                            "'sal' + 'iency')"),
        "ex6_answer": _then("from coursekit.reference.visualisation import fgsm, fool")}),
}


def make_self_report_class(release_dir: Path, solutions_dir: Path, out: Path) -> dict[str, tuple]:
    """Write out/self-report/<notebook>.ipynb for every notebook of SELF_REPORTS."""
    (out / "self-report").mkdir(parents=True, exist_ok=True)
    for notebook, (_, _, edits) in SELF_REPORTS.items():
        nb = student_notebook(release_dir / f"{notebook}.ipynb", solutions_dir / f"{notebook}.ipynb", edits)
        nbformat.write(nb, out / "self-report" / f"{notebook}.ipynb")
    return dict(SELF_REPORTS)


def make_hostile_class(release_dir: Path, solutions_dir: Path, out: Path) -> dict[str, Case]:
    """Write out/<student>/<file> for every case. Returns student -> case."""
    release = release_dir / f"{NOTEBOOK}.ipynb"
    solution = solutions_dir / f"{NOTEBOOK}.ipynb"
    for student, case in CASES.items():
        folder = out / student
        folder.mkdir(parents=True, exist_ok=True)
        if case.raw is not None:
            (folder / case.file_name).write_bytes(case.raw)
            continue
        nb = student_notebook(release, solution, case.edits)
        if case.notebook is not None:
            nb = case.notebook(nb)
        nbformat.write(nb, folder / case.file_name)
    return dict(CASES)


def main(argv: list[str] | None = None) -> int:
    """Grade the hostile class into OUT and print (case, score, deserved, notes)."""
    import argparse
    import time

    from ..pipeline.autograde import autograde
    from ..kernel.scratch import remove_tree
    from ..course.directory import find_course_root
    from ..course.release import release

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--timeout", type=int, default=5, help="per-cell time limit (s)")
    args = parser.parse_args(argv)
    root = find_course_root()
    released = args.out / "release"
    release(root, released)
    make_hostile_class(released, root / "solutions", args.out / "submissions")
    if not remove_tree(args.out / "grading"):  # graded afresh, not added to an earlier run's term
        raise SystemExit(f"could not remove {args.out / 'grading'}")
    start = time.perf_counter()
    result = autograde(root, args.out / "submissions", args.out / "grading", timeout=args.timeout,
                       jobs=args.jobs, progress=True)
    seconds = time.perf_counter() - start
    print(f"| case | what it does | score | deserved | notes |\n|---|---|---|---|---|")
    for student, case in CASES.items():
        r = result.get(student, NOTEBOOK)
        print(f"| {student} | {case.story} | {r.score:g} | {case.deserved} | {'; '.join(r.problems)[:200]} |")
    print(f"\n{len(CASES)} submissions graded in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
