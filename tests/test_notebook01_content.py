"""Notebook 01's printed hand calculation agrees with the reference implementation."""
import re

import nbformat
import numpy as np

from coursekit.checks.backprop import TWO_LAYER_LR, TWO_LAYER_T, TWO_LAYER_X, two_layer_params
from coursekit.reference import backprop as R


def test_hand_calculation_table_matches_the_reference(root):
    nb = nbformat.read(root / "solutions" / "01_backprop.ipynb", as_version=4)
    table = next(c.source for c in nb.cells if c.id == "ex3_hand")
    rows = [line.split("|")[2] for line in table.splitlines()
            if line.startswith("|") and re.search(r"\d", line.split("|")[2])]
    written = [[float(v) for v in re.findall(r"[−-]?\d+\.\d\d", row.replace("−", "-"))]
               for row in rows]

    p = two_layer_params()
    x, t, lr = TWO_LAYER_X, TWO_LAYER_T, TWO_LAYER_LR
    z1 = p["W1"] @ x + p["b1"]
    y, cache = R.two_layer_forward(x, p)
    C, dy = R.euclidean_loss(y, t)
    g = R.two_layer_backward(dy, cache)
    new = R.sgd_step(p, g, lr)
    dh = p["W2"].T @ dy
    expected = [z1, cache[1], y, C, dy, g["W2"], g["b2"], dh, g["b1"], g["W1"], g["b1"],
                new["W1"], new["b1"], new["W2"], new["b2"]]
    assert len(written) == len(expected)
    for row, got, want in zip(rows, written, expected):
        assert np.allclose(got, np.round(np.ravel(want), 2), atol=1e-9), f"row {row!r}"
