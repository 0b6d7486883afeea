"""The judge's waits (coursekit.grading.judge.wakeup): woken as soon as the other kernel's
message lands in the exchange, never later than the timeout, and a plain sleep without inotify."""
import subprocess
import sys
import threading
import time

import pytest

from coursekit import values as codec
from coursekit.grading.judge.wakeup import FolderWatch

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


@linux_only
def test_a_message_written_by_another_process_wakes_the_wait_at_once(tmp_path):
    with FolderWatch(tmp_path) as watch:
        assert watch.active
        writer = subprocess.Popen([sys.executable, "-c",
                                   "import pathlib, sys, time; from coursekit import values; time.sleep(0.5); "
                                   "values.write(pathlib.Path(sys.argv[1]), {'ok': 1}, [])", str(tmp_path / "request-1.json")])
        try:
            start = time.monotonic()
            while not (tmp_path / "request-1.json").exists() and time.monotonic() - start < 60:
                assert writer.poll() in (None, 0), "the writer failed"
                watch.wait(20)   # a long wait: only the message can end it early
            waited = time.monotonic() - start
        finally:
            writer.wait(timeout=30)
    assert 0.4 < waited < 10, waited
    assert codec.read(tmp_path / "request-1.json")[0] == {"ok": 1}


@linux_only
def test_a_message_that_landed_before_the_wait_is_not_missed(tmp_path):
    with FolderWatch(tmp_path) as watch:
        codec.write(tmp_path / "reply.json", {"ok": 2}, [])   # between the look and the wait
        start = time.monotonic()
        watch.wait(30)
        assert time.monotonic() - start < 1
        start = time.monotonic()   # and the events were used up: the next wait waits
        watch.wait(0.2)
        assert time.monotonic() - start >= 0.15


def test_without_an_event_a_wait_lasts_its_timeout(tmp_path):
    with FolderWatch(tmp_path) as watch:
        start = time.monotonic()
        watch.wait(0.2)
        assert 0.15 <= time.monotonic() - start < 5


def test_a_watch_that_cannot_watch_sleeps_instead(tmp_path):
    watch = FolderWatch(tmp_path / "missing")   # no such folder: inotify refuses it
    assert not watch.active
    start = time.monotonic()
    watch.wait(0.1)
    assert time.monotonic() - start >= 0.08
    broken = FolderWatch(tmp_path)
    broken.close()
    broken.close()   # twice is harmless
    assert not broken.active
    threading.Thread(target=broken.wait, args=(0.01,)).start()   # and a closed one still waits


@linux_only
def test_a_kernel_that_keeps_writing_files_cannot_hold_a_wait(tmp_path):
    """A hostile kernel flooding the exchange with files only wakes the other side often: each
    wait still returns at once, so its deadline checks keep running."""
    stop = threading.Event()

    def flood():
        k = 0
        while not stop.is_set():
            (tmp_path / f"f{k % 50}").write_bytes(b"x")
            k += 1

    with FolderWatch(tmp_path) as watch:
        writers = [threading.Thread(target=flood) for _ in range(3)]
        for w in writers:
            w.start()
        try:
            longest = 0.0
            for _ in range(200):
                start = time.monotonic()
                watch.wait(0.01)
                longest = max(longest, time.monotonic() - start)
        finally:
            stop.set()
            for w in writers:
                w.join()
    assert longest < 1, longest
