"""The executor `coursekit autograde` grades with: a recovering Execute, shut in a sandbox.

:class:`SandboxedExecute` is the ``Execute`` preprocessor of ``autograder/nbgrader_config.py``.
With ``scratch`` empty it is :class:`.recovering.RecoveringExecute` (plain nbgrader use).
Otherwise the student's kernel works in ``scratch`` under ``limits`` (:mod:`.sandbox`); the
notebook's cells share one wall-time budget; output past the budget is dropped; a scratch
folder that outgrows its disk budget gets the kernel killed (and restarted, as for any kernel
death) and is emptied; and each graded cell runs in a judge kernel of its own
(:class:`..judge.session.JudgeSession`) that never runs the student's code.
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from pathlib import Path

from jupyter_core.utils import run_sync
from nbclient.util import run_hook
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from traitlets import Bool, Dict, List, Unicode

from ..judge import protocol, rules
from ..judge.session import JudgeSession, JudgeStartError
from ..timing import phase
from .manager import SandboxedKernelManager, ready_client
from .privileges import sandbox_uid
from .outcomes import DISK_LIMIT, INCIDENTS, JUDGE_FAILED, KERNEL_DIED, NOTEBOOK_TIME, OUTPUT_CUT, error
from .recovering import RecoveringExecute
from .sandbox import Limits, Policy, make_cgroup, make_cpu_cgroup, remove_cgroup
from .scratch import folder_size, remove_tree


class CoursekitGradingFailed(RuntimeError):
    """Grading one submission through `coursekit autograde` (from formgrader) did not succeed."""


class SandboxedExecute(RecoveringExecute):
    """RecoveringExecute with the kernel in a sandbox and graded cells in a judge (see above)."""

    scratch = Unicode("", help="The one folder the student's kernel may write.").tag(config=True)
    runtime_dir = Unicode("", help="Where policies and connection files go.").tag(config=True)
    read_paths = List(Unicode(), [], help="Folders the kernel may read besides Python's.").tag(config=True)
    limits = Dict({}, help="coursekit.grading.kernel.sandbox.Limits fields.").tag(config=True)
    judge_read_paths = List(Unicode(), [], help="Folders only the judge kernel may read (the "
                            "held-out test images, the files handed in).").tag(config=True)
    judge_env = Dict({}, help="Environment variables for the judge kernel alone.").tag(config=True)
    cell_timeouts = Dict({}, help="'notebook:grade_id' -> seconds: cells that may run longer than the per-cell "
                         "limit (Execute.timeout), e.g. 07's graded models classifying the test "
                         "split; the notebook's own budget still applies").tag(config=True)
    kernel_env = Dict({}, help="Environment variables for the kernel.").tag(config=True)
    student_package = Unicode("", help="A folder holding the coursekit the student's kernel imports "
                              "(coursekit.grading.course.distribution.grading_copy: the answers "
                              "locked); only with the judge, where the checkers run.").tag(config=True)
    judge = Bool(True, help="Run graded cells in a judge kernel that never runs the student's "
                 "code (coursekit.grading.judge); only with a sandbox.").tag(config=True)
    term = Dict({}, help="{'course': the course repository, 'out': the term's folder}: set in the "
                "term's course directory (coursekit.grading.course.directory.COURSE_CONFIG), where "
                "nbgrader's own autograde (formgrader's Autograde button) grades the submission with "
                "`coursekit autograde --regrade STUDENT/NOTEBOOK` instead of running it unconfined "
                "here.").tag(config=True)
    in_kernel = List(Unicode(), [], help="Graded cells ('notebook:grade_id') whose checkers "
                     "run in the student's kernel, as in plain nbgrader (for a checker the judge "
                     "cannot run; coursekit's need none).").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        if self.term and not self.scratch:
            return self._grade_through_coursekit(nb, resources)
        self._limits = Limits(**self.limits)
        self._deadline = time.monotonic() + self._limits.notebook_seconds
        self._output_bytes = 0
        self._output_cut = False
        self._disk_exceeded = threading.Event()
        self._incidents: list[str] = []
        self._judge: JudgeSession | None = None
        if self.scratch:
            self.kernel_manager_class = SandboxedKernelManager
            self.shutdown_kernel = "immediate"   # a graded kernel's state is of no use afterwards
        return super().preprocess(nb, resources, km)

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        if self.scratch:
            name = f"coursekit-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            self._group, self._cpu_group = make_cgroup(name, self._limits.processes), make_cpu_cgroup(name)
            write = []
            if self.judge:  # the student's kernel answers the judge's requests in the exchange
                self._exchange().mkdir(parents=True, exist_ok=True)
                self._exchange().chmod(0o777)  # both kernels' uids write (and remove) messages there
                write.append(str(self._exchange()))
            km.shut_in(Path(self.runtime_dir or self.scratch),
                       Policy(scratch=self.scratch, write=write, read=list(self.read_paths),
                              limits=self._limits, cgroup=self._group, cpu_group=self._cpu_group,
                              env=dict(self.kernel_env), uid=self._uid(),
                              package=self.student_package if self.judge and not self.in_kernel else ""))
        return km

    async def async_start_new_kernel(self, **kwargs):
        """Start the student's kernel, and launch the judge's beside it (once: a restarted
        student's kernel gets a judge when a graded cell needs one) so the two boot together."""
        await super().async_start_new_kernel(**kwargs)
        if self._judge is None and self.scratch and any(self._in_judge(c) for c in self.nb.cells):
            self._judge = self._judge_session()
            with phase("judge start"):
                await self._judge.launch()

    start_new_kernel = run_sync(async_start_new_kernel)

    async def async_start_new_kernel_client(self):
        """nbclient's, except that a kernel which dies as it boots is started again on new
        ports (:func:`.manager.ready_client`); the judge launched beside it, given the old
        ports, is then stopped (a graded cell starts a new one)."""
        if not self.scratch:
            return await super().async_start_new_kernel_client()
        ports = self.km.shell_port
        try:
            self.kc = await ready_client(self.km, self.startup_timeout, self.log)
        except Exception:
            await self._async_cleanup_kernel()
            raise
        if self.km.shell_port != ports and self._judge is not None:
            stale, self._judge = self._judge, None
            await stale.async_stop()
        self.kc.allow_stdin = False
        await run_hook(self.on_notebook_start, notebook=self.nb)
        return self.kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def _judge_session(self) -> JudgeSession:
        judge = JudgeSession(
            self.km, config=self.config, kernel_name=self.kernel_name,
            extra_arguments=self.extra_arguments, startup_timeout=self.startup_timeout,
            folder=Path(self.runtime_dir or self.scratch) / "judge", exchange=self._exchange(),
            read=[*self.read_paths, *self.judge_read_paths], limits=self._limits,
            env={**self.kernel_env, **self.judge_env}, uid=self._uid("judge"))
        judge.preload = rules.modules(rules.imports(self.nb.cells))
        return judge

    def setup_kernel(self, **kwargs):
        if self.scratch:
            kwargs["cwd"] = self.scratch
        stop = threading.Event()
        watcher = threading.Thread(target=self._watch_disk, args=(stop,), daemon=True)
        watcher.start()
        kernel = super().setup_kernel(**kwargs)
        try:
            with phase("student kernel start"):
                try:
                    kernel.__enter__()
                except BaseException:
                    self._stop_judge()   # launched beside a kernel that never came up
                    raise
            try:
                try:
                    yield
                finally:
                    with phase("kernel shutdown"):
                        self._stop_judge()
            except BaseException as exc:
                with phase("kernel shutdown"):
                    if not kernel.__exit__(type(exc), exc, exc.__traceback__):
                        raise
            else:
                with phase("kernel shutdown"):
                    kernel.__exit__(None, None, None)
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
        pause = 0.25
        while not stop.wait(pause):
            scan = time.monotonic()
            used = folder_size(Path(self.scratch), limit) + folder_size(self._exchange(), limit)
            # a scratch folder of many files takes a while to scan: at most a fifth of the time
            # goes to scanning, so the grader's own work (the judge's calls) is not slowed down
            pause = max(0.25, 4 * (time.monotonic() - scan))
            if used > limit and self.km is not None:
                self._disk_exceeded.set()
                try:
                    run_sync(self.km.kill_kernel)()
                except Exception:  # already gone
                    pass

    def _get_timeout(self, cell):
        timeout = super()._get_timeout(cell)
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") if cell is not None else None
        notebook = (self.resources or {}).get("nbgrader", {}).get("notebook", "")
        if gid and f"{notebook}:{gid}" in self.cell_timeouts:   # one the course gives longer (07's models)
            timeout = int(self.cell_timeouts[f"{notebook}:{gid}"])
        left = max(1, int(self._deadline - time.monotonic()))
        return left if timeout is None else min(timeout, left)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and time.monotonic() >= self._deadline:
            cell.outputs = [error(NOTEBOOK_TIME, f"not run: the notebook's {self._limits.notebook_seconds} s "
                                  "were spent before this cell")]
            return cell, self.resources
        if self._in_judge(cell):
            with phase("graded cells"):
                result = self._judge_cell(cell, index)
        else:
            with phase("notebook cells"):
                result = super().preprocess_cell(cell, resources, index)
        if self._disk_exceeded.is_set():
            self._disk_exceeded.clear()
            cell.outputs.append(error(DISK_LIMIT, f"the kernel was stopped: it wrote more than "
                                      f"{self._limits.disk_mb} MB of files"))
            self._empty_scratch()
        self._note_incidents(cell, index)
        return result

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
        what = [INCIDENTS[cell.outputs[i].get("ename")] for i in errors
                if cell.outputs[i].get("ename") in INCIDENTS]
        if what:
            self._incidents.append(f"{_cell_name(cell, index)} {' and '.join(dict.fromkeys(what))}")

    def _uid(self, role: str = "student") -> int:
        """The uid of this submission's kernel of ``role`` (when grading as root)."""
        return sandbox_uid(self.scratch, role)

    def _exchange(self) -> Path:
        """The judge exchange: in the worker's runtime folder, where the student's kernel may
        write files but cannot create, replace or link the folder itself."""
        return Path(self.runtime_dir or self.scratch) / protocol.EXCHANGE

    def _empty_scratch(self) -> None:
        remove_tree(Path(self.scratch), keep_root=True)
        remove_tree(self._exchange(), keep_root=True)

    def output(self, outs, msg, display_id, cell_index):
        if self._output_cut:
            return None
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

    def _grade_through_coursekit(self, nb, resources):
        """nbgrader's autograde asked for in the term's course (formgrader's Autograde button): the
        submission is graded by `coursekit autograde --regrade STUDENT/NOTEBOOK`, in its sandbox
        and judge, and what it made of the notebook is handed back to nbgrader's next steps."""
        import subprocess
        import sys

        info = (resources or {}).get("nbgrader", {})
        student, notebook = info.get("student"), info.get("notebook")
        out = Path(self.term["out"])
        command = [sys.executable, "-m", "coursekit.cli", "--course", self.term["course"], "autograde",
                   "--regrade", f"{student}/{notebook}", "--out", str(out), "--no-progress"]
        self.log.info("Grading %s/%s with coursekit: %s", student, notebook, " ".join(command))
        done = subprocess.run(command, capture_output=True, text=True)
        graded = out / "course" / "autograded" / student / notebook / f"{notebook}.ipynb"
        if done.returncode != 0 or not graded.is_file():   # a refused file leaves none
            raise CoursekitGradingFailed(f"coursekit autograde --regrade {student}/{notebook} did not grade "
                                         f"it (exit status {done.returncode}):\n"
                                         f"{(done.stdout + done.stderr).strip()[-1500:]}")
        self.log.info("%s", done.stdout.strip())
        import nbformat

        return nbformat.read(graded, as_version=4), resources

    # --- graded cells: in the judge ---------------------------------------------------------------

    def _in_judge(self, cell) -> bool:
        """Whether the graded ``cell`` runs in the judge (with a sandbox, unless listed in in_kernel)."""
        meta = cell.metadata.get("nbgrader", {})
        notebook = (self.resources or {}).get("nbgrader", {}).get("notebook", "")
        return bool(self.judge and self.scratch and cell.cell_type == "code" and meta.get("grade")
                    and f"{notebook}:{meta.get('grade_id')}" not in self.in_kernel)

    def _judge_cell(self, cell, index: int):
        if self._judge is None:
            self._judge = self._judge_session()
        self.skip_on_replay(index)  # it ran in the judge: a restart of the student's kernel never replays it
        try:
            self._judge.run(cell, index, self.nb.cells, self._get_timeout(cell))
        except JudgeStartError:  # the grader's trouble: this submission is not graded (a rerun grades it)
            self._stop_judge()
            raise
        except (DeadKernelError, CellTimeoutError):
            cell.outputs.append(error(JUDGE_FAILED, "the graded tests could not finish"))
            self._stop_judge()
        except Exception as exc:  # this cell's tests only: a fresh judge runs the next one
            cell.outputs.append(error(JUDGE_FAILED, f"the graded tests could not run "
                                      f"({type(exc).__name__}: {str(exc)[:300]})"))
            try:
                self._stop_judge()
            except Exception:
                self._judge = None
        if not run_sync(self.km.is_alive)():
            cell.outputs.append(error(KERNEL_DIED, "your kernel died while the tests ran your code; "
                                      "grading restarted it and went on"))
            self._recover(index)
        return cell, self.resources

    def _stop_judge(self) -> None:
        if self._judge is not None:
            self._judge.stop()
            self._judge = None


def _cell_name(cell, index: int) -> str:
    """How a student recognises a cell: 'your answer to exercise 6a', or 'cell 12'."""
    import re

    grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
    match = re.fullmatch(r"ex(\w+?)_answer", grade_id)
    return f"your answer to exercise {match.group(1)}" if match else f"cell {index + 1}"
