"""nbgrader's Execute preprocessor, made to survive a kernel that dies.

Plain nbgrader fails the whole submission when a cell kills its kernel (``os._exit``, a
segfault, running out of memory): every grade stays empty, even for exercises the student
got right. :class:`RecoveringExecute` instead marks the cell with a ``KernelDied`` error
(so a graded cell scores 0), starts a fresh kernel, replays the cells before it (their new
outputs are discarded; cells that killed the kernel are skipped) and carries on.
"""
from __future__ import annotations

import copy

from jupyter_core.utils import run_sync
from nbclient.exceptions import DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute

KERNEL_DIED = "KernelDied"


class RecoveringExecute(Execute):

    def preprocess(self, nb, resources=None, km=None):
        self._dead_cells: set[int] = set()
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self.log.warning("The kernel died in cell %d; restarting it and replaying earlier "
                             "cells.", index)
            self._dead_cells.add(index)
            cell.outputs.append(NotebookNode(
                output_type="error", ename=KERNEL_DIED,
                evalue="the kernel died while running this cell (os._exit, a crash, or out of "
                       "memory); grading restarted it and went on",
                traceback=[f"{KERNEL_DIED}: the kernel died while running this cell"]))
            self._restart_and_replay(index)
            return cell, self.resources

    def _restart_and_replay(self, upto: int) -> None:
        run_sync(self.km.restart_kernel)(now=True)
        self.kc.stop_channels()
        self.start_new_kernel_client()
        for j, earlier in enumerate(self.nb.cells[:upto]):
            if earlier.cell_type != "code" or j in self._dead_cells:
                continue
            try:
                self.execute_cell(copy.deepcopy(earlier), j, store_history=False)
            except DeadKernelError:  # an earlier cell is not safe to replay after all
                self._dead_cells.add(j)
                run_sync(self.km.restart_kernel)(now=True)
                self.kc.stop_channels()
                self.start_new_kernel_client()
