"""nbgrader's Execute preprocessor, made to survive a kernel that dies or stops answering.

Plain nbgrader fails the whole submission when a cell kills its kernel (``os._exit``, a
segfault, running out of memory), or when a cell that ran past its time limit ignores the
interrupt (a loop around a bare ``except:`` swallows KeyboardInterrupt) so that the next
cell gets no answer: every grade stays empty, even for exercises the student got right.

:class:`RecoveringExecute` instead marks such a cell with an error (``KernelDied``, or the
usual ``CellTimeoutError`` plus ``KernelRestarted``) so that a graded cell scores 0, starts a
fresh kernel, replays the cells before it (their new outputs are discarded; cells that broke
the kernel, ran out of time or did not run in this kernel are skipped) and carries on with the
next cell.
"""
from __future__ import annotations

import copy
import os
import time
from pathlib import Path

from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader.preprocessors import Execute

from .outcomes import KERNEL_DIED, KERNEL_RESTARTED, LEFT_RUNNING, TIMED_OUT, error


class RecoveringExecute(Execute):

    def preprocess(self, nb, resources=None, km=None):
        self._skip_on_replay: set[int] = set()
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        try:
            super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self.log.warning("The kernel died in cell %d; restarting it.", index)
            cell.outputs.append(error(KERNEL_DIED, "the kernel died while running this cell "
                                      "(os._exit, a crash, or out of memory); grading "
                                      "restarted it and went on"))
            self._recover(index)
        except CellTimeoutError:  # interrupted, but never went idle: the interrupt was ignored
            self.log.warning("Cell %d ignored the interrupt; restarting the kernel.", index)
            cell.outputs.append(error(TIMED_OUT, "the cell ran past its time limit"))
            cell.outputs.append(error(KERNEL_RESTARTED, "the cell went on running after the "
                                      "interrupt; grading restarted the kernel and went on"))
            self._recover(index)
        else:
            if any(o.output_type == "error" and o.get("ename") == TIMED_OUT
                   for o in cell.get("outputs", [])):
                self._skip_on_replay.add(index)  # replaying it would only time out again
                if self._still_busy():  # the interrupt stopped the cell, not the threads it started
                    self.log.warning("Cell %d left threads running; restarting the kernel.", index)
                    cell.outputs.append(error(LEFT_RUNNING, "the cell left code running after the "
                                              "interrupt (threads); grading restarted the kernel "
                                              "and went on"))
                    self._recover(index)
        return cell, self.resources

    def _still_busy(self, window: float = 0.5) -> bool:
        """Whether the (idle) kernel process still uses more than half a core, i.e. the cell
        left threads spinning; False where /proc cannot tell."""
        pid = getattr(getattr(self.km, "provisioner", None), "pid", None)
        if pid is None or not Path(f"/proc/{pid}/stat").exists():
            return False
        before = _tree_cpu(pid)
        time.sleep(window)
        return _tree_cpu(pid) - before > window / 2

    def skip_on_replay(self, index: int) -> None:
        """Never replay cell ``index`` after a restart (it did not run in this kernel)."""
        self._skip_on_replay.add(index)

    def _execute_aside(self, cell, index: int) -> None:
        """Run ``cell`` as if at ``index`` without it taking that place in the notebook (nbclient
        stores every cell it runs into ``nb.cells[index]``): replays must not reach the
        autograded notebook or the feedback."""
        kept = self.nb.cells[index]
        try:
            self.execute_cell(cell, index, store_history=False)
        finally:
            self.nb.cells[index] = kept

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
                self._execute_aside(copy.deepcopy(earlier), j)
            except (DeadKernelError, CellTimeoutError):  # not safe to replay after all
                self._skip_on_replay.add(j)
                self._restart()


def _tree_cpu(pid: int) -> float:
    """CPU seconds used by ``pid`` and every process below it (a sandboxed kernel is a child,
    or grandchild, of the process Jupyter started); what /proc cannot tell counts as 0."""
    total, stack, seen = 0.0, [pid], set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            # utime, stime, and those of its children that have ended and been waited for
            total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total
