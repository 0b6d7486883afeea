"""A Jupyter kernel manager whose kernels start inside the sandbox (:mod:`.sandbox`)."""
from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time
import uuid
from pathlib import Path
from queue import Empty

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async

from . import capped_output, zygote
from .sandbox import Policy

#: Run in a graded kernel before its first cell (binding no name): matplotlib's own warnings are
#: not the student's output. As a uid of its own under a folder its uid cannot search (a root
#: grader's /root or /tmp/pytest-of-root), matplotlib's access() check calls even the kernel's
#: own folder unwritable and says so, with the grader's paths, under the first cell that
#: imports it; it then works from a temporary folder, as it should.
QUIET_MATPLOTLIB = ['__import__("logging").getLogger("matplotlib").setLevel(40)']

#: The module that applies a policy and then becomes the kernel (``python -m SANDBOX POLICY -- CMD``).
SANDBOX = "coursekit.grading.kernel.sandbox"


class SandboxedKernelManager(AsyncKernelManager):
    """Starts the kernel through the sandbox with ``policy``; the kernel may bind its own five
    ports and nothing else."""

    policy: Policy | None = None
    role: str = "student"   # or "judge": which zygote forks it (kernel.zygote)
    policy_dir: str = ""
    boot_lines: tuple[str, ...] = ()   # code the kernel runs as it boots (binding no name)

    def shut_in(self, folder: Path, policy: Policy) -> None:
        """Start the kernel under ``policy``, with its connection file and policies in ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        self.connection_file = str(folder / f"kernel-{uuid.uuid4().hex}.json")
        self.policy, self.policy_dir = policy, str(folder)

    stderr_file: Path | None = None   # where the running kernel's process writes its errors

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        """Launch it with its stderr in a file of its own (a kernel that dies as it boots says
        why there: :func:`ready_client` quotes it)."""
        if self.policy is None:
            return await super()._async_launch_kernel(kernel_cmd, **kw)
        env = dict(kw.get("env") or os.environ)
        addresses = {role: env.pop(variable, "") for role, variable in zygote.ROLES.items()}   # not the kernel's
        address = addresses.get(self.role, "")
        kw = {**kw, "env": env}
        self.stderr_file = Path(self.policy_dir) / f"kernel-{uuid.uuid4().hex}.stderr"
        with open(self.stderr_file, "wb") as stderr:
            if address and await self._fork_from_zygote(address, kernel_cmd, env, kw.get("stdout"), stderr):
                return None
            return await super()._async_launch_kernel(kernel_cmd, **{**kw, "stderr": stderr})

    async def _fork_from_zygote(self, address: str, kernel_cmd: list[str], env: dict, stdout, stderr) -> bool:
        """Start the kernel as a child of the zygote (:mod:`.zygote`), under the same policy;
        False where it cannot (then it is started as a new interpreter)."""
        # kernel_cmd is [python, -m, SANDBOX, POLICY, --, python, -m, ipykernel_launcher, ...]
        argv = zygote.kernel_argv(kernel_cmd[5:]) if kernel_cmd[1:3] == ["-m", SANDBOX] else None
        if argv is None:
            return False
        out = stdout if isinstance(stdout, int) else (stdout.fileno() if stdout is not None else 1)  # None: inherit
        kernel = await asyncio.get_running_loop().run_in_executor(
            None, zygote.launch, address, kernel_cmd[3], argv, env, out, stderr.fileno())
        if kernel is None:
            return False
        provisioner = self.provisioner   # as jupyter_client's LocalProvisioner.launch_kernel leaves it
        provisioner.process, provisioner.pid, provisioner.pgid = kernel, kernel.pid, kernel.pid
        provisioner.cwd = self.policy.scratch
        self._reconcile_connection_info(provisioner.connection_info)
        return True

    async def _async_wait(self, pollinterval: float = 0.1) -> None:
        """Wait for the kernel to end, looking every 5 ms instead of jupyter_client's 100 ms
        (each graded notebook ends two kernels)."""
        await super()._async_wait(pollinterval=min(pollinterval, 0.005))

    def last_error(self) -> str:
        """The last line the kernel's process wrote to stderr ('' if none, or not known)."""
        try:
            lines = self.stderr_file.read_text(errors="replace").split("\n")
        except (AttributeError, OSError):
            return ""
        return next((line.strip() for line in reversed(lines) if line.strip()), "")[:300]

    async def start_again_on_new_ports(self) -> None:
        """Stop the kernel and start it as before, on ports picked anew. (jupyter_client's
        ``restart_kernel(newports=True)`` keeps the ports its provisioner cached at the first
        start, and its connection file, which the kernel reads them from.)"""
        await self.shutdown_kernel(now=True, restart=True)
        self.cleanup_connection_file()
        if self.provisioner is not None and hasattr(self.provisioner, "ports_cached"):
            self.provisioner.ports_cached = False   # the next launch picks (and caches) new ones
        await self.start_kernel(**self._launch_args)

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        if self.policy is None:
            return cmd
        ports = [self.shell_port, self.iopub_port, self.stdin_port, self.control_port, self.hb_port]
        limit = 2 * self.policy.limits.output_kb * 1024  # the grader still sees its budget run out
        # matplotlib's configuration and font cache in the kernel's own folder: one it cannot write
        # makes matplotlib warn, with the grader's paths, under the first cell that imports it
        mpl = str(Path(self.policy.scratch) / ".matplotlib")
        policy = dataclasses.replace(self.policy, ports=ports, grader=os.getpid(),
                                     read=[*self.policy.read, self.connection_file],
                                     env={**self.policy.env, capped_output.LIMIT: str(limit), "MPLCONFIGDIR": mpl})
        path = Path(self.policy_dir) / f"policy-{uuid.uuid4().hex}.json"
        policy.dump(path)
        if policy.uid and os.geteuid() == 0:  # the kernel, as its own uid, reads its connection file
            os.chown(self.connection_file, policy.uid, policy.uid)
        return [sys.executable, "-m", SANDBOX, str(path), "--", *cmd,
                f"--IPKernelApp.outstream_class={capped_output.__name__}.CappedOutStream",
                f"--IPKernelApp.exec_lines={QUIET_MATPLOTLIB + list(self.boot_lines)!r}"]


#: How many times a kernel that dies as it boots is started (on new ports each time).
STARTS = 3


class KernelStartError(RuntimeError):
    """A kernel died before it answered, every time it was started (the grader's fault, not
    the submission's: none of its code has run yet)."""


async def answers(kc, km, timeout: float) -> None:
    """Wait until the kernel answers ``kernel_info`` and its IOPub channel is connected, as
    jupyter_client's ``wait_for_ready`` does, less its last step: waiting for IOPub to be silent
    for 0.2 s (0.4 s a submission, two kernels). What IOPub still brings about that request is
    ignored by whoever runs cells next (nbclient and the judge match each message to their own
    request). RuntimeError if the kernel dies or is silent past ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        kc.kernel_info()
        try:
            reply = await ensure_async(kc.shell_channel.get_msg(timeout=1))
        except Empty:
            reply = None
        if reply is not None and reply["msg_type"] == "kernel_info_reply":
            try:   # IOPub connected? (its messages about this request come; else ask again)
                await ensure_async(kc.iopub_channel.get_msg(timeout=0.2))
            except Empty:
                pass
            else:
                kc._handle_kernel_info_reply(reply)
                while True:   # what has come so far
                    try:
                        await ensure_async(kc.iopub_channel.get_msg(timeout=0))
                    except Empty:
                        return
        if not await ensure_async(km.is_alive()):
            raise RuntimeError("Kernel died before replying to kernel_info")
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")


async def ready_client(km: SandboxedKernelManager, timeout: float, log=None):
    """A started client of ``km``'s (launched) kernel once it answers ``kernel_info``.

    A kernel may die before answering without any fault of the notebook's: jupyter_client
    picks its five ports by binding and releasing them, and between that and the kernel's own
    bind another process may take one (an outgoing connection's ephemeral port; several
    kernels boot at once when submissions are graded side by side), so the kernel exits with
    "Address already in use". Such a kernel is started again on new ports, up to
    :data:`STARTS` times in all; a kernel that is alive but silent past ``timeout`` is not."""
    for start in range(1, STARTS + 1):
        kc = km.client()
        await ensure_async(kc.start_channels())
        try:
            await answers(kc, km, timeout)
            return kc
        except RuntimeError as exc:
            await ensure_async(kc.stop_channels())
            if await ensure_async(km.is_alive()):   # alive but not answering: starting again would not help
                raise
            why = km.last_error() or str(exc)
            if start == STARTS:
                raise KernelStartError(f"the kernel died as it started, {STARTS} times: {why}") from exc
            if log is not None:
                log.warning("The kernel died as it started (%s); starting it again on new ports.", why)
            await km.start_again_on_new_ports()
