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

import contextlib
import copy
import dataclasses
import json
import os
import shutil
import sys
import threading
import time
import uuid
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Bool, Dict, List, Unicode

from .sandbox import Limits, Policy, make_cgroup, make_cpu_cgroup, remove_cgroup

KERNEL_DIED = "KernelDied"
TIMED_OUT = "CellTimeoutError"
KERNEL_RESTARTED = "KernelRestarted"
LEFT_RUNNING = "LeftRunning"


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
                if self._still_busy():  # the interrupt stopped the cell, not the threads it started
                    self.log.warning("Cell %d left threads running; restarting the kernel.", index)
                    cell.outputs.append(_error(LEFT_RUNNING, "the cell left code running after the "
                                               "interrupt (threads); grading restarted the kernel "
                                               "and went on"))
                    self._recover(index)
        return cell, self.resources

    def _still_busy(self, window: float = 0.5) -> bool:
        """Whether the (idle) kernel process still uses more than half a core, i.e. the cell
        left threads spinning; False where /proc cannot tell."""
        pid = getattr(getattr(self.km, "provisioner", None), "pid", None)
        if pid is None:
            return False
        stat = Path(f"/proc/{pid}/stat")

        def cpu() -> float:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        try:
            before = cpu()
            time.sleep(window)
            return cpu() - before > window / 2
        except (OSError, ValueError, IndexError):
            return False

    def _judged(self, cell) -> bool:
        """Whether ``cell`` runs in a judge kernel rather than the student's (see SandboxedExecute)."""
        return False

    def _execute_aside(self, cell, index: int) -> None:
        """Run ``cell`` as if at ``index`` without it taking that place in the notebook (nbclient
        stores every cell it runs into ``nb.cells[index]``): replays and the judge's setup code
        must not reach the autograded notebook or the feedback."""
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
            if earlier.cell_type != "code" or j in self._skip_on_replay or self._judged(earlier):
                continue
            try:
                self._execute_aside(copy.deepcopy(earlier), j)
            except (DeadKernelError, CellTimeoutError):  # not safe to replay after all
                self._skip_on_replay.add(j)
                self._restart()


# --- shut in: the kernel runs in a sandbox, within a time, disk and output budget -------------

NOTEBOOK_TIME = "NotebookTimeLimit"
DISK_LIMIT = "DiskLimit"
OUTPUT_CUT = "output cut"


class SandboxedKernelManager(AsyncKernelManager):
    """Starts the kernel through :mod:`coursekit.grading.sandbox` with ``policy`` (set by
    :class:`SandboxedExecute`); the kernel may bind its own five ports and nothing else."""

    policy: Policy | None = None
    policy_dir: str = ""

    def shut_in(self, folder: Path, policy: Policy) -> None:
        """Start the kernel under ``policy``, with its connection file and policies in ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        self.connection_file = str(folder / f"kernel-{uuid.uuid4().hex}.json")
        self.policy, self.policy_dir = policy, str(folder)

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        if self.policy is None:
            return cmd
        ports = [self.shell_port, self.iopub_port, self.stdin_port, self.control_port, self.hb_port]
        policy = dataclasses.replace(self.policy, ports=ports,
                                     read=[*self.policy.read, self.connection_file])
        path = Path(self.policy_dir) / f"policy-{uuid.uuid4().hex}.json"
        policy.dump(path)
        return [sys.executable, "-m", "coursekit.grading.sandbox", str(path), "--", *cmd]


def folder_size(folder: Path, stop: int) -> int:
    """Bytes in ``folder`` (not following links); stops counting once past ``stop``."""
    total, stack = 0, [str(folder)]
    while stack and total <= stop:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    else:
                        total += entry.stat(follow_symlinks=False).st_blocks * 512
        except OSError:
            continue
    return total


class SandboxedExecute(RecoveringExecute):
    """RecoveringExecute with the kernel in a sandbox (see :mod:`coursekit.grading.sandbox`).

    ``scratch`` empty: no sandbox (plain nbgrader use). Otherwise the kernel works in
    ``scratch`` under ``limits``; the notebook's cells share one wall-time budget; output past
    the budget is dropped; a scratch folder that outgrows its disk budget gets the kernel killed
    (and restarted, as for any kernel death) and is emptied.
    """

    scratch = Unicode("", help="The one folder the student's kernel may write.").tag(config=True)
    runtime_dir = Unicode("", help="Where policies and connection files go.").tag(config=True)
    read_paths = List(Unicode(), [], help="Folders the kernel may read besides Python's.").tag(config=True)
    limits = Dict({}, help="coursekit.grading.sandbox.Limits fields.").tag(config=True)
    kernel_env = Dict({}, help="Environment variables for the kernel.").tag(config=True)
    judge = Bool(True, help="Run graded cells in a judge kernel that never runs the student's "
                 "code (coursekit.grading.judge); only with a sandbox.").tag(config=True)
    in_kernel = List(Unicode(), [], help="Graded cells ('notebook:grade_id') whose checkers "
                     "run in the student's kernel, as in plain nbgrader (for a checker the judge "
                     "cannot run; coursekit's need none).").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._limits = Limits(**self.limits)
        self._deadline = time.monotonic() + self._limits.notebook_seconds
        self._output_bytes = 0
        self._output_cut = False
        self._disk_exceeded = threading.Event()
        self._incidents: list[str] = []
        if self.scratch:
            self.kernel_manager_class = SandboxedKernelManager
        return super().preprocess(nb, resources, km)

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        if self.scratch:
            name = f"coursekit-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            self._group, self._cpu_group = make_cgroup(name, self._limits.processes), make_cpu_cgroup(name)
            km.shut_in(Path(self.runtime_dir or self.scratch),
                       Policy(scratch=self.scratch, read=list(self.read_paths), limits=self._limits,
                              cgroup=self._group, cpu_group=self._cpu_group, env=dict(self.kernel_env)))
        return km

    def setup_kernel(self, **kwargs):
        self._jkm = self._jkc = None
        if self.scratch:
            kwargs["cwd"] = self.scratch
        stop = threading.Event()
        watcher = threading.Thread(target=self._watch_disk, args=(stop,), daemon=True)
        watcher.start()
        try:
            with super().setup_kernel(**kwargs):
                try:
                    yield
                finally:
                    self._stop_judge()
        finally:
            stop.set()
            watcher.join()
            remove_cgroup(getattr(self, "_group", ""))
            remove_cgroup(getattr(self, "_cpu_group", ""))

    setup_kernel = contextlib.contextmanager(setup_kernel)

    def _watch_disk(self, stop: threading.Event) -> None:
        if not self.scratch:
            return
        limit = self._limits.disk_mb << 20
        while not stop.wait(0.25):
            if folder_size(Path(self.scratch), limit) > limit and self.km is not None:
                self._disk_exceeded.set()
                try:
                    run_sync(self.km.kill_kernel)()
                except Exception:  # already gone
                    pass

    def _get_timeout(self, cell):
        timeout = super()._get_timeout(cell)
        left = max(1, int(self._deadline - time.monotonic()))
        return left if timeout is None else min(timeout, left)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and time.monotonic() >= self._deadline:
            cell.outputs = [_error(NOTEBOOK_TIME, f"not run: the notebook's {self._limits.notebook_seconds} s "
                                   "were spent before this cell")]
            return cell, self.resources
        if self._judged(cell):
            result = self._judge_cell(cell, resources, index)
        else:
            result = super().preprocess_cell(cell, resources, index)
        if self._disk_exceeded.is_set():
            self._disk_exceeded.clear()
            cell.outputs.append(_error(DISK_LIMIT, f"the kernel was stopped: it wrote more than "
                                       f"{self._limits.disk_mb} MB of files"))
            self._empty_scratch()
        self._note_incidents(cell, index)
        return result

    #: what an error output of these kinds says happened to the cell
    INCIDENTS = {TIMED_OUT: "was stopped at the cell time limit", KERNEL_DIED: "killed its kernel",
                 KERNEL_RESTARTED: "ignored the interrupt and had its kernel restarted",
                 LEFT_RUNNING: "left threads running and had its kernel restarted",
                 NOTEBOOK_TIME: "was not run (the notebook's time budget was spent)",
                 DISK_LIMIT: "wrote too many files and had its kernel restarted",
                 "MemoryError": "ran out of memory"}

    def _note_incidents(self, cell, index: int) -> None:
        """Remember what stopped an ungraded cell; a graded cell that fails after such a cell
        says so above its error, so that a NameError there is not a mystery."""
        if cell.cell_type != "code":
            return
        errors = [i for i, o in enumerate(cell.outputs) if o.output_type == "error"]
        if cell.metadata.get("nbgrader", {}).get("grade"):
            if errors and self._incidents:
                lines = "".join(f"  {incident}.\n" for incident in self._incidents)
                cell.outputs.insert(errors[0], NotebookNode(output_type="stream", name="stdout", text=(
                    "Note: an earlier cell did not finish, so what it defines may be missing here:\n"
                    + lines)))
            return
        what = [self.INCIDENTS[cell.outputs[i].get("ename")] for i in errors
                if cell.outputs[i].get("ename") in self.INCIDENTS]
        if what:
            self._incidents.append(f"{_cell_name(cell, index)} {' and '.join(dict.fromkeys(what))}")

    def _empty_scratch(self) -> None:
        for entry in Path(self.scratch).iterdir():
            if entry == self._exchange() and entry.is_dir() and not entry.is_symlink():
                continue  # the judge's rights are on this folder: keep it (its files go below)
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    def output(self, outs, msg, display_id, cell_index):
        size = len(json.dumps(msg.get("content", {}), default=str))
        self._output_bytes += size
        if self._output_bytes > self._limits.output_kb * 1024:
            if not self._output_cut:
                self._output_cut = True
                outs.append(NotebookNode(output_type="stream", name="stdout", text=(
                    f"\n[{OUTPUT_CUT}: this submission printed more than {self._limits.output_kb} KB; "
                    "the rest of its output was dropped]\n")))
            return None
        return super().output(outs, msg, display_id, cell_index)

    # --- the judge: graded cells run in a kernel of their own ------------------------------------

    def _judged(self, cell) -> bool:
        meta = cell.metadata.get("nbgrader", {})
        notebook = (self.resources or {}).get("nbgrader", {}).get("notebook", "")
        return bool(self.judge and self.scratch and cell.cell_type == "code" and meta.get("grade")
                    and f"{notebook}:{meta.get('grade_id')}" not in self.in_kernel)

    def _exchange(self) -> Path:
        return Path(self.scratch) / ".coursekit-judge"

    def _start_judge(self) -> None:
        scratch = Path(self.runtime_dir or self.scratch) / "judge"
        self._exchange().mkdir(exist_ok=True)
        km = SandboxedKernelManager(kernel_name=self.kernel_name, config=self.config)
        student = self.km
        km.shut_in(scratch, Policy(scratch=str(scratch), write=[str(self._exchange())],
                                   read=[*self.read_paths, student.connection_file],
                                   connect=[student.shell_port, student.control_port],
                                   limits=self._limits, env=dict(self.kernel_env)))
        run_sync(km.start_kernel)(extra_arguments=self.extra_arguments, cwd=str(scratch))
        kc = km.client()
        kc.start_channels()
        run_sync(kc.wait_for_ready)(timeout=self.startup_timeout)
        self._jkm, self._jkc = km, kc
        self._judge_ready_upto = 0
        info = student.get_connection_info(session=False)
        info = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in info.items()}
        self._run_in_judge(
            "import coursekit.grading.judge as __judge_module__\n"
            f"__judge__ = __judge_module__.install({info!r}, {str(self._exchange())!r})")

    def _stop_judge(self) -> None:
        if self._jkm is None:
            return
        try:
            self._jkc.stop_channels()
            run_sync(self._jkm.shutdown_kernel)(now=True)
        except Exception:  # already dead
            pass
        self._jkm = self._jkc = None

    def _run_in_judge(self, code: str) -> None:
        """Run setup code in the judge; an error there is the grader's, so it is raised."""
        cell = NotebookNode(cell_type="code", source=code, metadata={}, outputs=[], execution_count=None)
        self._with_judge(lambda: self._execute_aside(cell, 0))
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if errors:
            raise RuntimeError(f"the judge kernel could not be set up: {errors[0].ename}: {errors[0].evalue}")

    def _with_judge(self, action):
        saved = self.km, self.kc
        self.km, self.kc = self._jkm, self._jkc
        try:
            return action()
        finally:
            self.km, self.kc = saved

    def _judge_cell(self, cell, resources, index):
        if self._jkm is None:
            self._start_judge()
        for stale in self._exchange().glob("*"):  # left by an earlier, interrupted call
            if stale.is_symlink() or not stale.is_dir():
                stale.unlink(missing_ok=True)
        imports = _imports(self.nb.cells[self._judge_ready_upto:index])
        names = _free_names(cell.source)
        self._judge_ready_upto = index
        self._run_in_judge("\n".join(imports + [f"__judge__.bind(globals(), {names!r})"]))
        try:
            self._with_judge(lambda: Execute.preprocess_cell(self, cell, resources, index))
        except (DeadKernelError, CellTimeoutError):
            cell.outputs.append(_error("JudgeFailed", "the graded tests could not finish"))
            self._stop_judge()
        if not run_sync(self.km.is_alive)():
            cell.outputs.append(_error(KERNEL_DIED, "your kernel died while the tests ran your code; "
                                       "grading restarted it and went on"))
            self._recover(index)
        return cell, self.resources


def _cell_name(cell, index: int) -> str:
    """How a student recognises a cell: 'your answer to exercise 6a', or 'cell 12'."""
    import re

    grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
    match = re.fullmatch(r"ex(\w+?)_answer", grade_id)
    return f"your answer to exercise {match.group(1)}" if match else f"cell {index + 1}"


def _imports(cells) -> list[str]:
    """The import statements of the locked code cells among ``cells`` (the instructor's)."""
    import ast

    lines = []
    for cell in cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("locked") or meta.get("solution"):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        lines += [ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    return lines


def _free_names(source: str) -> list[str]:
    """Names a cell reads but does not define itself."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    loaded, stored = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded.append(node.id) if isinstance(node.ctx, ast.Load) else stored.add(node.id))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            stored.update((a.asname or a.name).split(".")[0] for a in node.names)
    return [n for n in dict.fromkeys(loaded) if n not in stored]
