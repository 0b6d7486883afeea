"""The executor's side of the judge: one judge kernel per graded notebook, and its client.

:class:`JudgeSession` starts the judge kernel (in the sandbox, allowed to reach only the
student's kernel and to write only the exchange folder), makes it the judge of the student's
kernel (:func:`.client.install`), and runs each graded cell there: first the instructor's
imports and the binding of the cell's other names (:mod:`.rules`), then the cell itself, with
nbgrader's own Execute so that the cell's outputs and errors are recorded exactly as nbgrader
records them in the student's kernel.
"""
from __future__ import annotations

from pathlib import Path

from jupyter_core.utils import run_sync
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute

from ..kernel.manager import SandboxedKernelManager, ready_client
from ..kernel.sandbox import Limits, Policy
from ..kernel.scratch import remove_tree
from ..timing import phase
from . import own_work, protocol, rules

#: Seconds the judge may take to free the student's kernel after a graded cell (its own wait for
#: the student's answer is client.CALL_TIMEOUT, shorter).
PAUSE_TIMEOUT = 30


class JudgeError(RuntimeError):
    """The judge kernel could not be set up (the grader's fault, not the student's)."""


class JudgeStartError(JudgeError):
    """The judge kernel could not be started, twice: the submission cannot be graded here (a
    graded cell must not lose its points to the grader's trouble)."""


class JudgeSession:
    """The judge kernel of one notebook, owned here from :meth:`run`'s first call to :meth:`stop`."""

    def __init__(self, student_km, *, config, kernel_name: str, extra_arguments: list,
                 startup_timeout: float, folder: Path, exchange: Path, read: list[str],
                 limits: Limits, env: dict, uid: int = 0):
        self.student_km = student_km
        self.config, self.kernel_name, self.extra_arguments = config, kernel_name, extra_arguments
        self.startup_timeout = startup_timeout
        self.folder, self.exchange = folder, exchange
        self.read, self.limits, self.env = read, limits, env
        self.uid = uid  # its own, not the student's kernel's
        self.km = None
        self.executor: Execute | None = None
        self.ready_upto = 0   # the cells whose imports the judge has run
        self._launched = None  # a kernel launch() started and start() has not taken yet
        self.preload: list[str] = []   # modules to import as the judge boots (rules.modules)

    async def launch(self) -> None:
        """Start the judge kernel's process (it boots while the student's kernel does, and
        while the notebook's own cells run); :meth:`start` finishes the job."""
        self.exchange.mkdir(parents=True, exist_ok=True)
        student = self.student_km
        km = SandboxedKernelManager(kernel_name=self.kernel_name, config=self.config)
        km.role = "judge"
        # what the judge will import, imported as it boots (while the notebook's cells run)
        km.boot_lines = (f"__import__('importlib').import_module({protocol.CLIENT!r})"
                         f".preload({self.preload!r})",)
        km.shut_in(self.folder, Policy(scratch=str(self.folder), write=[str(self.exchange)],
                                       read=[*self.read, student.connection_file],
                                       connect=[student.shell_port, student.control_port],
                                       limits=self.limits, env=dict(self.env), uid=self.uid))
        await km.start_kernel(extra_arguments=self.extra_arguments, cwd=str(self.folder))
        self._launched = km

    def start(self) -> None:
        """Start the judge kernel (unless :meth:`launch` did) and make it the judge of the
        student's kernel."""
        km, self._launched = self._launched, None
        if km is None or not run_sync(km.is_alive)():
            if km is not None:
                run_sync(_shutdown)(km)
            run_sync(self.launch)()
            km, self._launched = self._launched, None
        try:
            kc = run_sync(ready_client)(km, self.startup_timeout)
        except BaseException:
            run_sync(_shutdown)(km)
            raise
        self.km = km
        self.executor = Execute(config=self.config)
        self.executor.nb = NotebookNode(cells=[], metadata={})
        self.executor.km, self.executor.kc = km, kc
        self.ready_upto = 0
        info = self.student_km.get_connection_info(session=False)
        info = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in info.items()}
        self._setup(protocol.install_code(info, str(self.exchange)), int(self.startup_timeout))

    def _start_or_fail(self) -> None:
        """:meth:`start`, and once more with a fresh kernel if that fails (nothing of the
        student's takes part: it launches a kernel and connects it to the student's); then
        :class:`JudgeStartError`."""
        for attempt in (1, 2):
            try:
                self.start()
                return
            except Exception as exc:
                self.stop()
                if attempt == 2:
                    raise JudgeStartError(f"the judge kernel could not start, twice: "
                                          f"{type(exc).__name__}: {str(exc)[:300]}") from exc

    async def async_stop(self) -> None:
        launched, self._launched = self._launched, None
        if launched is not None:   # launched, never started
            await _shutdown(launched)
        if self.km is None:
            return
        try:
            self.executor.kc.stop_channels()
        except Exception:  # already dead
            pass
        await _shutdown(self.km)
        self.km = self.executor = None

    stop = run_sync(async_stop)

    def run(self, cell, index: int, cells_above: list, timeout: int | None) -> None:
        """Run the graded ``cell`` (at ``index``, below ``cells_above``) in the judge; its outputs
        land in ``cell``. Raises nbclient's DeadKernelError or CellTimeoutError if the judge
        kernel dies or does not finish."""
        if self.km is None:
            with phase("judge start"):
                self._start_or_fail()
        remove_tree(self.exchange, keep_root=True)  # left by an earlier, interrupted call
        imports = rules.imports(cells_above[self.ready_upto:index])
        self.ready_upto = index
        self._setup(protocol.bind_code(imports, rules.free_names(cell.source),
                                       own_work.student_sources(cells_above[:index])), timeout)
        self._execute(cell, timeout, store_history=True)
        self._pause()

    def _pause(self) -> None:
        """Free the student's kernel for the notebook's next cell (:meth:`.client.Judge.pause`).
        A judge that cannot do that is stopped: the next graded cell starts a new one."""
        pause = NotebookNode(cell_type="code", source="__judge__.pause()", metadata={}, outputs=[],
                             execution_count=None)
        try:
            self._execute(pause, PAUSE_TIMEOUT, store_history=False)
            failed = any(o.output_type == "error" for o in pause.outputs)
        except Exception:
            failed = True
        if failed:
            self.stop()

    def _execute(self, cell, timeout: int | None, store_history: bool) -> None:
        self.executor.timeout = timeout
        self.executor.nb.cells = [cell]
        self.executor.execute_cell(cell, 0, store_history=store_history)

    def _setup(self, code: str, timeout: int | None) -> None:
        """Run setup code in the judge; an error there is the grader's, so it is raised."""
        cell = NotebookNode(cell_type="code", source=code, metadata={}, outputs=[], execution_count=None)
        self._execute(cell, timeout, store_history=False)
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if errors:
            raise JudgeError(f"the judge kernel could not be set up: {errors[0].ename}: {errors[0].evalue}")


async def _shutdown(km) -> None:
    try:
        await km.shutdown_kernel(now=True)
    except Exception:  # already dead
        pass
