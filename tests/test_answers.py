"""Which reference is which notebook's answer, and the source scan that proves a folder of
Python holds none of the locked ones (coursekit.grading.course.answers). The scan must be able
to fail: it finds every answer in the instructor's package, and a renamed copy anywhere."""
from pathlib import Path

import coursekit
from coursekit.grading.course.answers import exercises_by_notebook, find_answers, locked
from coursekit.grading.course.directory import assignments


def test_every_exercise_belongs_to_exactly_one_notebook(root):
    by_notebook = exercises_by_notebook(assignments(root))
    assert set(by_notebook) == set(assignments(root)) and all(by_notebook.values())
    names = [name for names in by_notebook.values() for name in names]
    assert len(names) == len(set(names)), "an exercise claimed by two notebooks"
    assert "layers.affine_forward" in by_notebook["02_layers"]
    assert "conv.im2col" in by_notebook["03_conv"]


def test_unlocking_a_notebook_unlocks_its_answers_only(root):
    notebooks = assignments(root)
    everything = locked(notebooks, [])
    after_two = locked(notebooks, ["01_backprop", "02_layers"])
    assert set(after_two) == {n for n, nb in everything.items() if nb not in ("01_backprop", "02_layers")}
    assert "backprop.softmax_nll" in everything and "backprop.softmax_nll" not in after_two


def test_the_scan_finds_every_answer_in_the_instructors_package(root):
    names = locked(assignments(root), [])
    found = find_answers(Path(coursekit.__file__).parent, names)
    assert {name for f in found for name in f.answers} == set(names)


def test_the_scan_sees_through_renamed_names_and_a_dropped_docstring(root, tmp_path):
    """A student's copy of softmax_nll (other local names, no docstring, another function name)
    is found; a given function is not an answer."""
    (tmp_path / "copied.py").write_text(
        "import numpy as np\n\n"
        "def my_loss(s, labels):\n"
        "    z = s - s.max(axis=1, keepdims=True)\n"
        "    lp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))\n"
        "    m = s.shape[0]\n"
        "    total = -lp[np.arange(m), labels].mean()\n"
        "    grad = np.exp(lp)\n"
        "    grad[np.arange(m), labels] -= 1.0\n"
        "    return float(total), grad / m\n")
    (tmp_path / "given.py").write_text("def add_forward(x, y):\n    return x + y, None\n")
    found = find_answers(tmp_path, locked(assignments(root), []))
    assert [(Path(f.path).name, f.function, f.answer) for f in found] == [
        ("copied.py", "my_loss", "backprop.softmax_nll")]
