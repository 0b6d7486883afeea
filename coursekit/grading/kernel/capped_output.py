"""The student's kernel's stdout and stderr, capped where the output is made.

The grader keeps ``Limits.output_kb`` of a submission's output and drops the rest
(:meth:`.execute.SandboxedExecute.output`), but a cell that prints hundreds of megabytes would
still send them all through the kernel's messages, and decoding them can take longer than the
cell's time limit: the cell is then stopped and what it defined is lost, although its answer was
right. :class:`CappedOutStream` (ipykernel's ``IPKernelApp.outstream_class`` in a graded kernel)
stops sending once the kernel has written ``COURSEKIT_OUTPUT_LIMIT`` characters (twice the
grader's budget, so the grader still sees the cut and says so); the code goes on running.
"""
from __future__ import annotations

import os

from ipykernel.iostream import OutStream

#: The environment variable holding the most characters a kernel sends (both streams together).
LIMIT = "COURSEKIT_OUTPUT_LIMIT"
_written = [0]  # shared by stdout and stderr


class CappedOutStream(OutStream):
    def write(self, string: str) -> int | None:
        if not isinstance(string, str):
            return super().write(string)  # its TypeError
        limit = int(os.environ.get(LIMIT, "0") or 0)
        if limit <= 0:
            return super().write(string)
        room = limit - _written[0]
        _written[0] += len(string)
        if room > 0:
            super().write(string[:room])
        return len(string)
