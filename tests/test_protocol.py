"""The judge's protocol is declared once (coursekit.grading.judge.protocol): the student's
side answers exactly the ops the table lists, and anything else comes back as an error."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from coursekit.checks.checker import Checker
from coursekit import values as codec
from coursekit.grading.judge import protocol, server

ROOT = Path(__file__).resolve().parents[1]


def test_the_server_answers_exactly_the_ops_of_the_table():
    assert set(server.HANDLERS) == set(protocol.OPS)


def _ask(tmp_path, message):
    path = tmp_path / f"{protocol.REQUEST}test.json"
    codec.write(path, message, [])
    server.serve(str(path))
    tree, _ = codec.read(path.with_name(path.name + protocol.REPLY_SUFFIX))
    return tree


@pytest.mark.parametrize("op", ["release", "exec", None])
def test_an_op_not_in_the_table_is_an_error(tmp_path, op):
    tree = _ask(tmp_path, {"op": op})
    assert tree["error"]["type"] == "WireError" and "unknown request" in tree["error"]["message"]


def test_a_listed_op_is_answered(tmp_path):
    import __main__

    __main__.answer_for_the_protocol_test = 42
    try:
        tree = _ask(tmp_path, {"op": "get", "name": "answer_for_the_protocol_test"})
    finally:
        del __main__.answer_for_the_protocol_test
    assert codec.decode(tree["ok"], [], lambda node: None) == 42


def test_the_code_sent_to_kernels_runs_the_declared_modules():
    assert protocol.SERVER in protocol.loop_code("/x") and protocol.CLIENT in protocol.install_code({}, "/x")
    # what the student's kernel runs is server.serve_loop on the exchange folder
    assert protocol.loop_code("/ex") == (
        f"__import__('importlib').import_module('{server.__name__}').serve_loop('/ex', {protocol.LOOP_IDLE!r})")


def test_every_check_a_notebook_calls_is_a_checker():
    """One way to write a checker: every `check.NAME(` of the course's notebooks is made by
    coursekit.checks.checker.checker, and every graded cell calls its check with graded=."""
    import importlib

    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        setup = next(c.source for c in nb.cells if "as check" in c.source)
        module = importlib.import_module(re.search(r"from (coursekit\.checks) import (\w+) as check", setup)
                                         .expand(r"\1.\2"))
        for cell in nb.cells:
            for name in re.findall(r"\bcheck\.(\w+)\(", cell.source):
                if name == "speed_ratio":  # a measurement (a number), not a check
                    continue
                assert isinstance(getattr(module, name), Checker), (path.name, name)
            if cell.metadata.get("nbgrader", {}).get("grade") and cell.cell_type == "code":   # not written answers
                calls = re.findall(r"\bcheck\.\w+\((?:[^()]|\([^()]*\))*\)", cell.source)
                assert calls and all(re.search(r"graded=(True|\d+)\)$", c) for c in calls), cell.source
                assert "quiet=" not in cell.source and "isolate=" not in cell.source
                assert "assert_own_work" not in cell.source


def test_the_judge_kernel_starts_without_torch():
    """What a judge kernel imports to start (protocol.install_code) loads no torch: a notebook
    without a model pays nothing for it (importing it cost about 1 s per graded notebook)."""
    import subprocess
    import sys

    code = f"import importlib, sys; importlib.import_module({protocol.CLIENT!r}); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# --- the wire format: one file a message, read without trusting it -------------------------------

def test_a_message_is_one_file_and_comes_back_as_it_went(tmp_path):
    import numpy as np

    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3), np.array(True), np.zeros((0, 4))]
    path = tmp_path / "request-0.json"
    codec.write(path, {"op": "call", "args": [1, "a"]}, arrays)
    assert [p.name for p in tmp_path.iterdir()] == ["request-0.json"]   # no arrays file, no leftover
    tree, back = codec.read(path)
    assert tree == {"op": "call", "args": [1, "a"]}
    assert [(a.dtype, a.shape) for a in back] == [(a.dtype, a.shape) for a in arrays]
    assert all(np.array_equal(a, b) for a, b in zip(arrays, back))
    back[0][0, 0] = 7.0   # writeable: a function may change its argument in place


def test_a_message_that_is_a_link_too_large_or_malformed_is_refused(tmp_path, monkeypatch):
    import os

    import numpy as np

    good = tmp_path / "good.json"
    codec.write(good, {"ok": 1}, [np.ones(4)])
    os.symlink(good, tmp_path / "link.json")
    with pytest.raises(codec.WireError, match="may not be a link"):
        codec.read(tmp_path / "link.json")
    head = b'{"tree": {"ok": 1}, "arrays": [["<f8", [5], 0, 40]]}\n'
    (tmp_path / "short.json").write_bytes(head + b"\0" * 32)   # says 5 doubles, holds 4
    with pytest.raises(codec.WireError, match="does not fit the bytes sent"):
        codec.read(tmp_path / "short.json")
    (tmp_path / "object.json").write_bytes(b'{"tree": 1, "arrays": [["|O", [1], 0, 8]]}\n' + b"\0" * 8)
    with pytest.raises(codec.WireError, match="does not fit"):
        codec.read(tmp_path / "object.json")
    (tmp_path / "no-header.json").write_bytes(b'{"ok": 1}\n')
    with pytest.raises(codec.WireError, match="malformed message"):
        codec.read(tmp_path / "no-header.json")
    monkeypatch.setattr(codec, "MAX_BYTES", 16)
    with pytest.raises(codec.WireError, match="too large"):
        codec.read(good)


def test_the_answering_loop_ends_when_the_judge_pauses_it(tmp_path):
    """At the end of a graded cell the judge says "pause": the student's kernel stops answering
    at once (not after its idle time), so the notebook's next cell does not wait for it; what
    comes after the pause is left for the loop the judge starts next."""
    import threading

    codec.write(tmp_path / f"{protocol.REQUEST}00000001-a.json", {"op": "get", "name": "__name__"}, [])
    codec.write(tmp_path / f"{protocol.REQUEST}00000002-b.json", {"op": "pause"}, [])
    codec.write(tmp_path / f"{protocol.REQUEST}00000003-c.json", {"op": "get", "name": "__name__"}, [])
    loop = threading.Thread(target=server.serve_loop, args=(str(tmp_path), 60.0))
    loop.start()
    loop.join(timeout=20)
    assert not loop.is_alive(), "the loop went on answering after the pause"
    replies = sorted(p.name for p in tmp_path.glob("*" + protocol.REPLY_SUFFIX))
    assert replies == [f"{protocol.REQUEST}00000001-a.json.reply", f"{protocol.REQUEST}00000002-b.json.reply"]
    assert codec.read(tmp_path / replies[1])[0] == {"ok": {"k": "none"}}   # None, encoded


def test_a_message_is_never_written_through_a_link_and_a_fifo_or_bad_header_is_refused_at_once(tmp_path):
    """The other kernel writes in the same folder: a link it plants where a message is to go is
    replaced, not followed (the judge's files stay the judge's); what it leaves to be read (a
    FIFO, a folder, no header line, a tree nested past Python's recursion limit) is a
    WireError at once, never a hang or a crash of the reader."""
    import os
    import threading

    import numpy as np

    victim = tmp_path / "victim.py"
    victim.write_text("# the judge's own file\n")
    os.symlink(victim, tmp_path / "callback-x.json.reply")
    for guess in ("callback-x.json.reply.tmp", ".callback-x.json.reply.tmp"):   # where a temporary file might go
        os.symlink(victim, tmp_path / guess)
    codec.write(tmp_path / "callback-x.json.reply", {"ok": 1}, [np.ones(2)])
    assert victim.read_text() == "# the judge's own file\n"
    assert not (tmp_path / "callback-x.json.reply").is_symlink()
    assert codec.read(tmp_path / "callback-x.json.reply")[0] == {"ok": 1}
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == [
        ".callback-x.json.reply.tmp", "callback-x.json.reply.tmp"]   # only the planted links

    os.mkfifo(tmp_path / "fifo.json")
    os.mkdir(tmp_path / "folder.json")
    (tmp_path / "no-newline.json").write_bytes(b'{"tree": 1, "arrays": []}')
    (tmp_path / "deep.json").write_bytes(b'{"tree": ' + b"[" * 100_000 + b"]" * 100_000 + b', "arrays": []}\n')
    outcomes = {}

    def read_all():
        for name in ("fifo.json", "folder.json", "no-newline.json", "deep.json"):
            try:
                codec.read(tmp_path / name)
                outcomes[name] = "read"
            except codec.WireError as exc:
                outcomes[name] = str(exc)

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert not reader.is_alive(), f"reading hung after {outcomes}"
    assert outcomes["fifo.json"] == outcomes["folder.json"] == "a message must be a plain file"
    assert outcomes["no-newline.json"] == "malformed message: no header line"
    assert outcomes["deep.json"].startswith("malformed message: RecursionError")
