"""The judge's protocol: every message between the judge kernel and the student's kernel.

Both kernels share one folder, the exchange (:data:`EXCHANGE`, in the worker's runtime folder,
not in the student's scratch: both kernels may write files in it, neither can replace or link
the folder itself, and the judge kernel may write nothing else). A message
is one file: a JSON tree in the codec's format (:mod:`coursekit.values`: values only, no code),
then its arrays' bytes; its answer goes beside it as ``<name>.reply``.

*The judge asks* (:mod:`.client` writes ``request-*.json``; the student's kernel answers it in
:func:`.server.serve_loop`, which the judge starts with :func:`loop_code` and which answers
request after request until none has come for :data:`LOOP_IDLE` seconds, so a check's hundreds
of calls cost a file each way, not a kernel execution each). The ops, with the fields of the
request and what the answer's ``ok`` holds:
"""
from __future__ import annotations

import os

#: op -> (fields of the request, what comes back). ``fn``/``obj`` are handles the student's kernel
#: sent; ``extra`` holds what an isolated check runs the function with (the references of the
#: exercises it builds on, as functions of the judge's that the student's code calls back).
OPS: dict[str, tuple[tuple[str, ...], str]] = {
    "get": (("name",), "the value the student's kernel holds under that name"),
    "call": (("fn", "args", "kwargs", "extra", "return_args"),
             "fn(*args, **kwargs); with return_args, (value, args, kwargs) so the judge sees what "
             "the function changed in its arguments"),
    "getattr": (("obj", "name"), "the attribute's value"),
    # a student's nn.Module, seen by the judge through a mirror (:mod:`.mirror`)
    "describe": (("obj", "v"), "the module's tree: classes, parameters, buffers, plain attributes"),
    "state": (("obj", "v"), "its parameters and buffers"),
    "load": (("obj", "v"), "None, after loading v['state'] into it"),
    "forward": (("obj", "v"), "{'out', 'buffers', 'token'}: a forward pass on v['args'] with the judge's state"),
    "backward": (("obj", "v"), "the parameters' gradients of the forward pass v['token']"),
    # the end of a graded cell: the loop returns at once, so the notebook's next cell need not
    # wait LOOP_IDLE for it (the judge starts it again when it asks next)
    "pause": ((), "None, and the answering loop ends"),
}

#: *The student's code asks back* when it calls a function the judge passed it (the ``f`` of a
#: numerical gradient): ``callback-*.json`` with these fields, answered by the judge while it
#: waits for its own request.
CALLBACK = ("fn", "args", "kwargs")

#: Every answer is one of these: the value, or the exception the code raised.
REPLY = {"ok": "the value (codec tree)", "error": "{'type', 'message', 'where'}"}

#: The exchange folder's name, in the worker's runtime folder.
EXCHANGE = "judge-exchange"
REQUEST, CALLBACK_FILE, REPLY_SUFFIX = "request-", "callback-", ".reply"

#: The modules each kernel runs (a test checks that these exist).
SERVER = "coursekit.grading.judge.server"
CLIENT = "coursekit.grading.judge.client"


def waiting(folder: str, prefix: str) -> list[str]:
    """The names of the messages in the exchange ``folder`` whose names start with ``prefix``
    (:data:`REQUEST` or :data:`CALLBACK_FILE`), in order; not their replies or partial writes."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.name.startswith(prefix) and e.name.endswith(".json"))


#: How long the student's kernel keeps answering requests after the last one (seconds): a
#: check's calls come back to back; after a pause the kernel is free for the notebook's next cell.
LOOP_IDLE = 0.05


def loop_code(exchange: str) -> str:
    """The code the student's kernel runs to answer the requests in the folder ``exchange``."""
    return f"__import__('importlib').import_module({SERVER!r}).serve_loop({exchange!r}, {LOOP_IDLE!r})"


def install_code(connection: dict, exchange: str) -> str:
    """The code that makes a fresh kernel the judge of the student's kernel at ``connection``."""
    return (f"__judge__ = __import__('importlib').import_module({CLIENT!r})"
            f".install({connection!r}, {exchange!r})")


def bind_code(imports: list[str], names: list[str], student_code: list[str]) -> str:
    """The code run in the judge before a graded cell: the instructor's imports, then each
    other name the cell reads, bound to the student's value (:meth:`.client.Judge.bind`), and
    the source of the student's cells above it (:mod:`.own_work` reads it)."""
    return "\n".join([*imports, f"__judge__.student_code = {student_code!r}",
                      f"__judge__.bind(globals(), {names!r})"])
