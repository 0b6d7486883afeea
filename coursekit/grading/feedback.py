"""Feedback HTML that does not give the hidden tests away.

nbgrader restores the hidden tests into the autograded notebook, and generate_feedback renders
that notebook, so the tests' source (their inputs, their seeds) and tracebacks quoting it would
reach the student. :class:`HideHiddenTests` runs before the HTML is written: in every graded
cell it replaces the hidden region with a one-line note and cuts error tracebacks down to
their message, which is what tells the student what went wrong.
"""
from __future__ import annotations

import re

from nbgrader.preprocessors import NbGraderPreprocessor

HIDDEN = re.compile(r"^([ \t]*)### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[ \t]*$",
                    re.MULTILINE | re.DOTALL)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class HideHiddenTests(NbGraderPreprocessor):

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            cell.source = HIDDEN.sub(r"\1# (hidden tests ran here)", cell.source)
            for out in cell.get("outputs", []):
                if out.output_type == "error":
                    out.traceback = [f"{out.ename}: {ANSI.sub('', out.evalue)}"]
        return cell, resources
