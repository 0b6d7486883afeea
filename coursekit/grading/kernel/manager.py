"""A Jupyter kernel manager whose kernels start inside the sandbox (:mod:`.sandbox`)."""
from __future__ import annotations

import dataclasses
import os
import sys
import uuid
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

from . import capped_output
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
    policy_dir: str = ""
    boot_lines: tuple[str, ...] = ()   # code the kernel runs as it boots (binding no name)

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
        limit = 2 * self.policy.limits.output_kb * 1024  # the grader still sees its budget run out
        # matplotlib's configuration and font cache in the kernel's own folder: one it cannot write
        # makes matplotlib warn, with the grader's paths, under the first cell that imports it
        mpl = str(Path(self.policy.scratch) / ".matplotlib")
        policy = dataclasses.replace(self.policy, ports=ports,
                                     read=[*self.policy.read, self.connection_file],
                                     env={**self.policy.env, capped_output.LIMIT: str(limit), "MPLCONFIGDIR": mpl})
        path = Path(self.policy_dir) / f"policy-{uuid.uuid4().hex}.json"
        policy.dump(path)
        if policy.uid and os.geteuid() == 0:  # the kernel, as its own uid, reads its connection file
            os.chown(self.connection_file, policy.uid, policy.uid)
        return [sys.executable, "-m", SANDBOX, str(path), "--", *cmd,
                f"--IPKernelApp.outstream_class={capped_output.__name__}.CappedOutStream",
                f"--IPKernelApp.exec_lines={QUIET_MATPLOTLIB + list(self.boot_lines)!r}"]
