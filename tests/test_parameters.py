"""Notebook parameters: the course's grading values reach the parameters cell of each notebook."""
import ast

import nbformat
import pytest

from coursekit.grading.course.parameters import INJECTED, GradingParameters, inject, parameters_cell


def _course_values(root):
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root / "autograder")).load_config()
    return GradingParameters(config=config).values


def test_every_grading_value_names_a_parameter_of_its_notebook(root):
    """A value the course sets for a name its notebook's parameters cell does not define would
    change nothing (a typo): each one is defined there, and each notebook with experiments has
    values."""
    values = _course_values(root)
    assert set(values) == {"03_conv", "04_normalisation", "05_initialisation", "06_architectures", "07_scenes",
                           "08_visualisation"}
    for name, wanted in values.items():
        for folder in ("solutions", "notebooks"):
            nb = nbformat.read(root / folder / f"{name}.ipynb", as_version=4)
            index = parameters_cell(nb)
            assert index is not None, (folder, name)
            cell = nb.cells[index]
            assert cell.metadata["nbgrader"]["locked"] and "parameters" in cell.metadata["tags"]
            defined = {t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)
                       for t in node.targets}
            assert set(wanted) <= defined, (folder, name, set(wanted) - defined)


def test_inject_sets_the_values_after_the_parameters_cell(root):
    nb = nbformat.read(root / "solutions" / "07_scenes.ipynb", as_version=4)
    index = parameters_cell(nb)
    assert inject(nb, {"EPOCHS": 1, "REAL_DATA": False})
    cell = nb.cells[index + 1]
    assert cell.metadata["tags"] == [INJECTED] and cell.id == INJECTED
    namespace = {}
    exec(nb.cells[index].source + "\n" + cell.source, namespace)   # the grader's values win
    assert (namespace["EPOCHS"], namespace["REAL_DATA"], namespace["FINAL_EPOCHS"]) == (1, False, 6)
    nbformat.validate(nb)


def test_inject_refuses_what_is_not_a_plain_value_and_skips_a_notebook_without_parameters(root):
    nb = nbformat.read(root / "solutions" / "07_scenes.ipynb", as_version=4)
    with pytest.raises(ValueError, match="expected a Python name and a bool, number, string or None"):
        inject(nb, {"EPOCHS": [1]})
    with pytest.raises(ValueError, match="expected a Python name"):
        inject(nb, {"import os; x": 1})
    plain = nbformat.read(root / "solutions" / "01_backprop.ipynb", as_version=4)
    cells = len(plain.cells)
    assert not inject(plain, {"EPOCHS": 1}) and len(plain.cells) == cells
