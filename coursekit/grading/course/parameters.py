"""Notebook parameters: the experiments of a notebook run small while it is graded.

A notebook's experiments (training runs, sweeps) earn no points: the graded cells test the
student's functions. So that grading a class does not re-run every experiment at full size,
a notebook keeps the sizes of its experiments in one cell, tagged ``parameters`` (papermill's
convention; locked, so nbgrader restores it as released), and the course configuration names
smaller values::

    c.GradingParameters.values = {"07_scenes": {"EPOCHS": 1, "REAL_DATA": False}}

While a submission is graded, :class:`GradingParameters` inserts a cell after the parameters
cell that sets those values (tagged ``injected-parameters``, as papermill does). The student
sees the parameters in their notebook and the grader's values in their feedback; no cell of
the notebook branches on whether it is being graded.
"""
from __future__ import annotations

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Dict

TAG, INJECTED = "parameters", "injected-parameters"
_PLAIN = (bool, int, float, str, type(None))


def parameters_cell(nb) -> int | None:
    """The index of the notebook's parameters cell (its nbgrader id, or the tag), or None."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and (cell.metadata.get("nbgrader", {}).get("grade_id") == TAG
                                         or TAG in cell.metadata.get("tags", [])):
            return i
    return None


def inject(nb, values: dict, source: str = "") -> bool:
    """Insert, after ``nb``'s parameters cell, a cell that sets ``values`` (name -> a plain
    value). Returns whether it did: False where there is nothing to set or no parameters cell."""
    index = parameters_cell(nb)
    if not values or index is None:
        return False
    for name, value in values.items():
        if not name.isidentifier() or not isinstance(value, _PLAIN):
            raise ValueError(f"notebook parameter {name!r} = {value!r}: expected a Python name and "
                             "a bool, number, string or None")
    by = f" ({source})" if source else ""
    lines = [f"# Set by the grader{by}: smaller experiments, on which no points depend."]
    lines += [f"{name} = {value!r}" for name, value in values.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": [INJECTED]})
    cell.id = INJECTED
    nb.cells.insert(index + 1, cell)
    return True


class GradingParameters(NbGraderPreprocessor):
    """Runs each notebook with the values its course configuration gives its parameters."""

    values = Dict(Dict(), {}, help="notebook -> {parameter: value}: the values a notebook's "
                  "parameters cell gets while it is graded").tag(config=True)

    def preprocess(self, nb, resources):
        name = resources.get("nbgrader", {}).get("notebook", "")
        wanted = self.values.get(name, {})
        if wanted and not inject(nb, wanted):   # the student's feedback shows it: no config names
            self.log.warning("%s has no parameters cell: graded with its experiments at full size", name)
        return nb, resources
