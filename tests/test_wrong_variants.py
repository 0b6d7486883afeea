"""Grading notebooks 02 to 08 end to end: one class run per notebook through nbgrader.

The class holds the instructor's answers (full marks), the untouched release (0), and, for
every exercise, a plausible wrong variant of its answer (a missing transpose, a wrong axis, a
missing 1/N, an off-by-one, ...). Each must lose that exercise's points and keep every other
exercise's: a mistake costs once, even where later exercises build on the broken function.

To keep the class small, a submission carries up to three variants of exercises that are
independent of one another (:func:`independent`: no cell of one reads what the other's answer
defines, nor anything computed from it), so each variant's loss can only be its own, and the
submission must lose exactly those exercises.
"""
import re
import shutil

import nbformat
import pytest
import torch

from coursekit.grading.pipeline.autograde import autograde
from coursekit.grading.pipeline.results import PENDING
from coursekit.grading.classes.sample import student_notebook
from coursekit.grading.course.written import written_answers

TIMEOUT = 60


def replace(old, new):
    """An edit of an answer's source that fails loudly if the answer no longer holds ``old``."""
    def edit(src):
        assert old in src, f"the solution no longer contains {old!r}: update this variant"
        return src.replace(old, new)
    return edit


LOOPED_IM2COL = '''
def im2col(x, kh, kw, stride=1, pad=0):
    n, c, h, w = x.shape
    ho, wo = output_size(h, kh, stride, pad), output_size(w, kw, stride, pad)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((c * kh * kw, n, ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            cols[:, :, i, j] = patch.reshape(n, -1).T
    return cols.reshape(c * kh * kw, -1)
'''

# What a submission trying to hide a wrong answer does to its own kernel (the graded tests run
# in the judge's, so none of it may matter).
PATCHES = """

import numpy, torch, coursekit.checks.architectures as _arch, coursekit.checks.scenes as _scenes
torch.allclose = torch.equal = numpy.allclose = numpy.array_equal = lambda *a, **k: True
_arch.compare = _arch.resnet_blocks = _scenes.final_net = lambda *a, **k: None
_scenes._count = lambda *a, **k: 1
"""

# notebook -> {student: (exercise that must lose its points, answer cell, edit)}
VARIANTS = {
    "02_layers": {
        "dw-transposed": ("ex1", replace("dw = x.reshape(x.shape[0], -1).T @ dout",
                                         "dw = dout.T @ x.reshape(x.shape[0], -1)")),
        "dalpha-not-summed": ("ex2", replace("dalpha = np.sum(np.where(x > 0, 0.0, dout * x), axis=0)",
                                             "dalpha = np.where(x > 0, 0.0, dout * x)")),
        "tanh-twice": ("ex3", replace("return dout * (1 - out ** 2)",
                                      "return dout * (1 - np.tanh(out) ** 2)")),
        "softmax-no-1-over-N": ("ex4", replace("    dscores /= n\n", "")),
        "momentum-forgotten": ("ex5", replace('    state["delta"] = delta\n', "")),
        "relu-on-scores": ("ex6", replace('scores, cache2 = affine_forward(a, params["W2"], params["b2"])',
                                          'scores, cache2 = affine_forward(a, params["W2"], params["b2"])\n'
                                          '    scores = np.maximum(scores, 0)')),
        "params-not-stored": ("ex7", replace("params[name], states[name] = sgd_momentum(",
                                             "new_value, states[name] = sgd_momentum(")),
        "backward-off-by-one": ("ex8", replace("for i in range(depth, 0, -1):",
                                               "for i in range(depth, 1, -1):")),
        "dead-wrong-axis": ("ex9", replace("dead = np.all(h == 0, axis=0)",
                                           "dead = np.all(h == 0, axis=1)")),
    },
    "03_conv": {
        "size-off-by-one": ("ex1", replace("return span // stride + 1", "return span // stride")),
        "params-no-bias": ("ex2", replace("return filters * (c_in * kernel * kernel + 1)",
                                          "return filters * c_in * kernel * kernel")),
        "field-ignores-stride": ("ex3", replace("field += (kernel - 1) * jump",
                                                "field += kernel - 1")),
        "conv-no-bias": ("ex4", replace("np.sum(patch * w[f]) + b[f]", "np.sum(patch * w[f])")),
        "db-wrong-axis": ("ex5", replace("db = dout.sum(axis=(0, 2, 3))", "db = dout.sum(axis=0)")),
        "maxpool-spreads": ("ex6", replace("is_max * dout[:, :, i:i + 1, j:j + 1]",
                                           "dout[:, :, i:i + 1, j:j + 1]")),
        "avgpool-no-1-over-K2": ("ex7", replace("dout[:, :, i:i + 1, j:j + 1] / size ** 2",
                                                "dout[:, :, i:i + 1, j:j + 1]")),
        "im2col-wrong-axis": ("ex8a", replace("return cols.reshape(c * kh * kw, n * ho * wo)",
                                              "return cols.transpose(0, 1, 2, 4, 5, 3).reshape(c * kh * kw, n * ho * wo)")),
        "im2col-loops": ("ex8a", lambda src: LOOPED_IM2COL),
        "conv-dw-transposed": ("ex8b", replace("dw = (d @ cols.T).reshape(w.shape)",
                                               "dw = (cols @ d.T).reshape(w.shape)")),
        "conv1x1-no-transpose": ("ex9", replace("pixels = x.transpose(0, 2, 3, 1).reshape(n * h * wd, c)",
                                                "pixels = x.reshape(n * h * wd, c)")),
        "convnet-no-relu-mask": ("ex10", replace("dh = relu_backward(da, relu_cache)", "dh = da")),
    },
    "04_normalisation": {
        "momentum-swapped": ("ex1", replace("momentum * running_mean + (1 - momentum) * mu",
                                            "(1 - momentum) * running_mean + momentum * mu")),
        "mean-var-as-constants": ("ex2", replace("dx = dxmu + dmu / n", "dx = dx_hat / std")),
        "closed-form-no-N": ("ex3", replace("(n * dout - dbeta", "(dout - dbeta")),
        "spatial-no-transpose": ("ex4", replace("flat = x.transpose(0, 2, 3, 1).reshape(-1, c)",
                                                "flat = x.reshape(-1, c)")),
        "groups-interleaved": ("ex5", replace("g = x.reshape(n, groups, -1)",
                                              "g = x.reshape(n, -1, groups).transpose(0, 2, 1)")),
        "fuse-forgets-mean": ("ex6", replace("b_fused = scale * (b - running_mean) + beta",
                                             "b_fused = scale * b + beta")),
        "always-train-mode": ("ex7", replace("state.setdefault(i, {}), mode)",
                                             'state.setdefault(i, {}), "train")')),
    },
    "05_initialisation": {
        "xavier-fan-out": ("ex1", replace('"xavier": 1 / np.sqrt(fan_in)', '"xavier": 1 / np.sqrt(fan_out)')),
        "activation-before-product": ("ex2", replace("h = f(h @ W)", "h = f(h) @ W")),
        "no-local-gradient": ("ex3", replace("dz = dh * local", "dz = dh")),
        "dropout-not-inverted": ("ex4", replace("mask = (rng.random(x.shape) < keep) / keep",
                                                "mask = (rng.random(x.shape) < keep) * 1.0")),
        "l2-missing-2": ("ex5", replace("2 * lam * W", "lam * W")),
        "test-centred-on-itself": ("ex6", replace("return train - m, test - m, mean",
                                                  "return train - m, test - test.mean(axis=(0, 2, 3)).reshape(1, -1, 1, 1), mean")),
    },
    "06_architectures": {
        "conv-params-no-bias": ("ex1", replace("filters * (c * kernel * kernel + 1)", "filters * c * kernel * kernel")),
        "fc-input-not-flattened": ("ex2", replace("fc_stats(prod(shape), args[0])", "fc_stats(shape[0], args[0])")),
        "pool-branch-dropped": ("ex3", replace("return (c1 + c3 + c5 + pooled, h, w), macs",
                                               "return (c1 + c3 + c5, h, w), macs")),
        "no-relu-after-add": ("ex4", replace("return torch.relu(out + shortcut)", "return out + shortcut")),
        "field-n-times-k": ("ex5", replace("return 1 + n * (kernel - 1),", "return n * kernel,")),
        "relu-after-add": ("ex6", replace("h = h + torch.relu(block(h))", "h = torch.relu(h + block(h))")),
        # wrong, and covering it up in its own kernel: the judge compares with its own torch
        "no-relu-after-add-patches-torch": ("ex4", lambda src: replace(
            "return torch.relu(out + shortcut)", "return out + shortcut")(src) + PATCHES),
    },
    "07_scenes": {
        "averaged-batch-stds": ("ex1", replace("std = (total_sq / n - mean ** 2).sqrt()",
                                               "std = torch.tensor([0.1, 0.1, 0.1], dtype=torch.float64)")),
        "no-centre-crop": ("ex2", replace(" v2.CenterCrop(size),", "")),
        "three-convs": ("ex3", replace("nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(3))\n        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(800",
                                       "nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(3), nn.Conv2d(32, 32, 1))\n        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(800")),
        "no-dropout": ("ex4", replace("nn.Dropout(p), nn.Linear(800, 100), nn.ReLU(),\n                                        nn.Dropout(p),",
                                      "nn.Linear(800, 100), nn.ReLU(),\n                                       ")),
        "no-batch-norm": ("ex5", replace("nn.BatchNorm2d(cout), ", "")),
        "no-batch-norm-patches-torch": ("ex5", lambda src: replace("nn.BatchNorm2d(cout), ", "")(src) + PATCHES),
        "head-frozen-too": ("ex6", replace("    return backbone", "    for p in backbone.parameters():\n        p.requires_grad = False\n    return backbone")),
        "no-eval": ("ex7", replace("    model.eval()\n    out = []", "    out = []")),
        "transposed-confusion": ("ex8", replace("(y_true.long(), y_pred.long())", "(y_pred.long(), y_true.long())")),
        "least-confident-first": ("ex9", replace("argsort(descending=True, stable=True)", "argsort(stable=True)")),
    },
    "08_visualisation": {
        "filters-scaled-together": ("ex1", replace("lo = w.amin(dim=(1, 2, 3), keepdim=True)\n    hi = w.amax(dim=(1, 2, 3), keepdim=True)",
                                                   "lo = w.min()\n    hi = w.max()")),
        "saliency-without-abs": ("ex2", replace("return x.grad.abs().amax(dim=1)", "return x.grad.amax(dim=1)")),
        "grad-cam-without-relu": ("ex3", replace("cam = torch.relu((weights * a).sum(dim=1, keepdim=True))",
                                                 "cam = (weights * a).sum(dim=1, keepdim=True)")),
        "grad-cam-activation-weights": ("ex3", replace("weights = grads.mean(dim=(2, 3), keepdim=True)",
                                                       "weights = a.mean(dim=(2, 3), keepdim=True)")),
        "occlusion-transposed": ("ex4", replace("return probs.reshape(rows, cols)", "return probs.reshape(rows, cols).T")),
        "tsne-unnormalised": ("ex5", replace("f = F.normalize(torch.as_tensor(features).float(), dim=1).numpy()",
                                             "f = torch.as_tensor(features).float().numpy()")),
        "fgsm-sign-flipped": ("ex6", replace("return (x + eps * x.grad.sign()).clamp(0, 1).detach()",
                                             "return (x - eps * x.grad.sign()).clamp(0, 1).detach()")),
    },
}


#: 07's graded models are the instructor's files (trained on the stand-in) beside every answered
#: submission; a variant that changes a graded model's architecture also loses that model's cell (the
#: file no longer fits the class). The held-out cells' own cases: tests/test_held_out.py.
ALSO_LOST = {"07_scenes": {"three-convs": ["ex10_simple"], "no-batch-norm": ["ex10_regularised"],
                           "no-batch-norm-patches-torch": ["ex10_regularised"]}}
HELD_OUT_CELLS = {"07_scenes": {"ex10_simple", "ex10_regularised", "ex10_transfer"}}

#: the most variants one submission carries
PER_STUDENT = 3


def _names(source: str) -> set[str]:
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | \
        {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


def _assigned(source: str) -> set[str]:
    import ast

    found = set()
    for node in ast.parse(source).body:  # what the cell leaves defined, not a function's locals
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            found.add(node.name)
        else:
            found |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return found


def depends_on(solution, exercise: str) -> set[str]:
    """The exercises of ``solution`` (a notebook) whose cells read what ``exercise``'s answer
    defines, or anything a later cell computed from it: the answer's names, followed cell by
    cell through every name a cell assigns when it reads a followed one."""
    followed, reached = set(), set()
    seen_answer = False
    for cell in solution.cells:
        if cell.cell_type != "code":
            continue
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if grade_id == f"{exercise}_answer":
            followed |= _assigned(cell.source)
            seen_answer = True
            continue
        if not seen_answer or not _names(cell.source) & followed:
            continue
        followed |= _assigned(cell.source)
        owner = grade_id.rsplit("_", 1)[0]
        if grade_id.endswith(("_answer", "_selfcheck", "_tests")) and owner != exercise:
            reached.add(owner)
    return reached


def independent(solution, exercises) -> bool:
    """Whether no exercise among ``exercises`` reads what another one's answer defines."""
    return all(other not in depends_on(solution, exercise) for exercise in exercises for other in exercises)


def students_of(root, notebook) -> dict[str, list[str]]:
    """Submission name -> the variants it carries: up to PER_STUDENT, of distinct exercises
    independent of one another, in VARIANTS' order."""
    solution = nbformat.read(root / "solutions" / f"{notebook}.ipynb", as_version=4)
    groups: list[list[str]] = []
    for variant, (exercise, _) in VARIANTS[notebook].items():
        for group in groups:
            exercises = [VARIANTS[notebook][v][0] for v in group]
            if len(group) < PER_STUDENT and exercise not in exercises and independent(solution, [*exercises, exercise]):
                group.append(variant)
                break
        else:
            groups.append([variant])
    return {"+".join(group): group for group in groups}


def student_with(root, notebook, variant) -> str:
    """The submission that carries ``variant``."""
    return next(student for student, group in students_of(root, notebook).items() if variant in group)


def grade_variants(root, released, notebook, subs, out, progress=False):
    """Write the class of ``notebook`` (instructor, untouched, the variants in students_of)
    into ``subs`` and autograde it into ``out``."""
    release, solution = released / f"{notebook}.ipynb", root / "solutions" / f"{notebook}.ipynb"
    students = {"instructor": student_notebook(release, solution),
                "untouched": student_notebook(release, solution, answered=False)}
    for student, group in students_of(root, notebook).items():
        edits = {f"{VARIANTS[notebook][v][0]}_answer": VARIANTS[notebook][v][1] for v in group}
        students[student] = student_notebook(release, solution, edits)
    models = _instructor_models(out.parent / f"models-{notebook}") if notebook in HELD_OUT_CELLS else None
    for student, nb in students.items():
        (subs / student).mkdir(parents=True)
        nbformat.write(nb, subs / student / f"{notebook}.ipynb")
        if models is not None and student != "untouched":
            for path in models.iterdir():
                shutil.copyfile(path, subs / student / path.name)
    return autograde(root, subs, out, timeout=TIMEOUT, progress=progress)


def _instructor_models(folder):
    """07's three weights files as the instructor's answers train them on the generated stand-in
    (what the class run grades them on), in ``folder``."""
    from coursekit.benchmarks import scene_project
    from coursekit.data import fifteen_scene

    folder.mkdir(parents=True, exist_ok=True)
    home = folder / "data-home"
    data = fifteen_scene.load(fifteen_scene.generated(home), size=64, validation=0.2, progress=False)
    test = fifteen_scene.load(fifteen_scene.generated(home), size=64, progress=False).test
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # one core: the other xdist worker's tests have cell time limits
    try:
        scene_project.run(data, test, out=folder / "files", progress=False)
    finally:
        torch.set_num_threads(threads)
    return folder / "files"


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def graded(request, tmp_path_factory, root, released):
    notebook = request.param
    return notebook, grade_variants(root, released, notebook,
                                    tmp_path_factory.mktemp(f"submissions-{notebook}"),
                                    tmp_path_factory.mktemp(f"grading-{notebook}"))


def hidden_seeds(notebook):
    """The ``graded=N`` (seed N) of the hidden tests in solutions/<notebook>.ipynb: their secret inputs
    (the release's own code uses other seeds)."""
    import re
    from pathlib import Path

    from coursekit.grading.course.feedback import HIDDEN

    solution = Path(__file__).resolve().parents[1] / "solutions" / f"{notebook}.ipynb"
    release = solution.parents[1] / "notebooks" / solution.name
    hidden = {seed for cell in nbformat.read(solution, as_version=4).cells
              if cell.metadata.get("nbgrader", {}).get("grade")
              for region in HIDDEN.finditer(cell.source) for seed in re.findall(r"graded=\d+", region.group(0))}
    shown = set(re.findall(r"graded=\d+", release.read_text()))
    assert hidden and not hidden & shown
    return sorted(hidden)


def page_text(html):
    """What a browser shows of a page: its text without tags (code is highlighted in spans)."""
    import html as html_module
    import re

    return html_module.unescape(re.sub(r"<[^>]+>", "", html))


def _scores(result, student, notebook):
    """The grader's scores (written answers wait for people: tests/test_term.py grades one)."""
    return {e.grade_id: (e.score, e.max_score) for e in result.get(student, notebook).exercises
            if e.graded_by != PENDING}


def test_instructor_full_marks_and_untouched_release_zero(graded, root):
    notebook, result = graded
    full = result.get("instructor", notebook)
    written = sum(w.points for w in written_answers(root / "solutions" / f"{notebook}.ipynb"))
    assert full.max_score > 0 and full.score == full.max_score - written, full.problems
    assert full.awaiting == written > 0   # the model answers, for a person to grade
    assert full.problems == []
    # and every cell of the instructor's notebook ran: its feedback shows no traceback (a figure cell
    # that cannot read the grader's data, say)
    assert "Traceback (most recent call last)" not in page_text(full.feedback.read_text())
    untouched = result.get("untouched", notebook)
    assert untouched.score == 0 and len(untouched.exercises) == len(full.exercises)
    graded_cells = {g for g in _scores(result, "instructor", notebook)}
    # every graded cell of the notebook has a wrong variant in this test (07's models: test_held_out)
    assert graded_cells == {f"{ex}_tests" for ex, _ in VARIANTS[notebook].values()} | HELD_OUT_CELLS.get(notebook, set())


def test_each_wrong_variant_loses_exactly_its_exercise(graded, root):
    notebook, result = graded
    full = _scores(result, "instructor", notebook)
    lost, expected = {}, {}
    for student, group in students_of(root, notebook).items():
        scores = _scores(result, student, notebook)
        lost[student] = sorted(g for g, (score, top) in scores.items() if score < top)
        expected[student] = sorted({f"{VARIANTS[notebook][v][0]}_tests" for v in group}
                                   | {g for v in group for g in ALSO_LOST.get(notebook, {}).get(v, [])})
        for graded_id in expected[student]:
            assert scores[graded_id][0] == 0, (student, scores)
        assert result.get(student, notebook).score == result.get("instructor", notebook).score - \
            sum(full[g][1] for g in expected[student]), (student, lost[student])
    assert lost == expected


def test_experiments_run_with_the_grading_parameters(graded, root):
    """A notebook with experiments runs them at the course's smaller sizes while graded, and
    its feedback shows the cell that set them (the same full marks as above prove that no
    graded cell depended on their size)."""
    from traitlets.config.loader import PyFileConfigLoader

    from coursekit.grading.course.parameters import GradingParameters

    notebook, result = graded
    config = PyFileConfigLoader("nbgrader_config.py", path=str(root / "autograder")).load_config()
    values = GradingParameters(config=config).values.get(notebook)
    if not values:
        assert notebook in ("02_layers", "03_conv"), f"{notebook} has experiments but no grading parameters"
        return
    text = page_text(result.get("instructor", notebook).feedback.read_text())
    assert "Set by the grader" in text
    for name, value in values.items():
        assert f"{name} = {value!r}" in text, name


def test_a_submission_carries_only_variants_of_independent_exercises(root):
    """The grouping above is what makes a shared submission prove as much as one per variant:
    02's network (exercise 6) reads the layers of exercise 1, so no submission has both wrong;
    03's parameter count (exercise 2) and receptive field (3) are independent."""
    solution = nbformat.read(root / "solutions" / "02_layers.ipynb", as_version=4)
    assert "ex6" in depends_on(solution, "ex1") and not independent(solution, ["ex1", "ex6"])
    assert independent(nbformat.read(root / "solutions" / "03_conv.ipynb", as_version=4), ["ex2", "ex3"])
    for notebook in VARIANTS:
        groups = students_of(root, notebook)
        assert sorted(v for group in groups.values() for v in group) == sorted(VARIANTS[notebook])
        solution = nbformat.read(root / "solutions" / f"{notebook}.ipynb", as_version=4)
        for group in groups.values():
            exercises = [VARIANTS[notebook][v][0] for v in group]
            assert len(set(exercises)) == len(exercises) <= PER_STUDENT and independent(solution, exercises)


def test_feedback_names_the_mistake(graded, root):
    notebook, result = graded
    expected = {"02_layers": ("dw-transposed", "a missing transpose"),
                "03_conv": ("size-off-by-one", "you forgot the + 1"),
                "04_normalisation": ("momentum-swapped", "m and 1 - m are swapped"),
                "05_initialisation": ("xavier-fan-out", "not fan_out"),
                "06_architectures": ("conv-params-no-bias", "you forgot the biases"),
                "07_scenes": ("transposed-confusion", "your matrix is transposed"),
                "08_visualisation": ("grad-cam-without-relu", "apply ReLU to the weighted sum")}
    variant, phrase = expected[notebook]
    html = result.get(student_with(root, notebook, variant), notebook).feedback.read_text()
    assert phrase in html
    assert "BEGIN HIDDEN TESTS" not in html
    text = page_text(html)
    assert "Validate runs the line below" in text  # what the student may see is there...
    for seed in hidden_seeds(notebook):  # ...and not the hidden tests' inputs
        assert not re.search(rf"\b{seed}\b", text), seed


if __name__ == "__main__":
    # The table behind the tests: python tests/test_wrong_variants.py
    import sys
    import tempfile
    from pathlib import Path

    from coursekit.grading.course.directory import ensure_tools_on_path
    from coursekit.grading.course.release import release

    ensure_tools_on_path()
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        release(root, tmp / "release")
        for notebook in sys.argv[1:] or sorted(VARIANTS):
            result = grade_variants(root, tmp / "release", notebook, tmp / notebook / "subs",
                                    tmp / notebook / "out", progress=True)
            print(result.table())
            for student, group in students_of(root, notebook).items():
                wrong = ", ".join(VARIANTS[notebook][v][0] for v in group)
                lost = [f"{e.grade_id} ({e.score:g}/{e.max_score:g})"
                        for e in result.get(student, notebook).exercises
                        if e.score < e.max_score and e.graded_by != PENDING]
                print(f"  {student:60s} wrong in {wrong:15s} lost: {', '.join(lost) or 'nothing'}")
