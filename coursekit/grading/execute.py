"""nbgrader's Execute preprocessor, made to survive a kernel that dies or stops answering.

Plain nbgrader fails the whole submission when a cell kills its kernel (``os._exit``, a
segfault, running out of memory), or when a cell that ran past its time limit ignores the
interrupt (a loop around a bare ``except:`` swallows KeyboardInterrupt) so that the next
cell gets no answer: every grade stays empty, even for exercises the student got right.

:class:`RecoveringExecute` instead marks such a cell with an error (``KernelDied``, or the
usual ``CellTimeoutError`` plus ``KernelRestarted``) so that a graded cell scores 0, starts a fresh kernel, replays the
cells before it (their new outputs are discarded; cells that broke the kernel or ran out of
time are skipped)
and carries on with the next cell.
"""
from __future__ import annotations

import copy

from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute

KERNEL_DIED = "KernelDied"
TIMED_OUT = "CellTimeoutError"
KERNEL_RESTARTED = "KernelRestarted"


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"{ename}: {evalue}"])


class RecoveringExecute(Execute):

    def preprocess(self, nb, resources=None, km=None):
        self._skip_on_replay: set[int] = set()
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        try:
            super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self.log.warning("The kernel died in cell %d; restarting it.", index)
            cell.outputs.append(_error(KERNEL_DIED, "the kernel died while running this cell "
                                       "(os._exit, a crash, or out of memory); grading "
                                       "restarted it and went on"))
            self._recover(index)
        except CellTimeoutError:  # interrupted, but never went idle: the interrupt was ignored
            self.log.warning("Cell %d ignored the interrupt; restarting the kernel.", index)
            cell.outputs.append(_error(TIMED_OUT, "the cell ran past its time limit"))
            cell.outputs.append(_error(KERNEL_RESTARTED, "the cell went on running after the "
                                       "interrupt; grading restarted the kernel and went on"))
            self._recover(index)
        else:
            if any(o.output_type == "error" and o.get("ename") == TIMED_OUT
                   for o in cell.get("outputs", [])):
                self._skip_on_replay.add(index)  # replaying it would only time out again
        return cell, self.resources

    def _restart(self) -> None:
        run_sync(self.km.restart_kernel)(now=True)
        self.kc.stop_channels()
        self.start_new_kernel_client()

    def _recover(self, index: int) -> None:
        """Restart the kernel and replay the cells before ``index`` (but not ``index``)."""
        self._skip_on_replay.add(index)
        self._restart()
        for j, earlier in enumerate(self.nb.cells[:index]):
            if earlier.cell_type != "code" or j in self._skip_on_replay:
                continue
            try:
                self.execute_cell(copy.deepcopy(earlier), j, store_history=False)
            except (DeadKernelError, CellTimeoutError):  # not safe to replay after all
                self._skip_on_replay.add(j)
                self._restart()
