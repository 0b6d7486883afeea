"""Waiting for the other kernel's next message in the exchange folder, woken as soon as it lands.

Each side of the judge's protocol (:mod:`.protocol`) waits for a file the other side writes: the
student's kernel for the judge's next request, the judge for its answer. Polling with sleeps cost
a round trip about 1.5 ms (a sleep of 50 us lasts 120 us here, and the sleeps grow while
nothing comes), most of a check's time where it makes hundreds of calls (a numerical gradient).
:class:`FolderWatch` waits on Linux's inotify instead: a message is written under a temporary
name and renamed (:func:`coursekit.values.write`), and the rename wakes the waiting side at once.

It only ever shortens a wait: :meth:`FolderWatch.wait` returns after at most its timeout, event or
not, and the caller checks for its file as before; where inotify is missing (not Linux) or
refused, a wait is a plain sleep of that timeout, as before.
"""
from __future__ import annotations

import ctypes
import os
import select
import sys
import time

IN_CLOSE_WRITE, IN_MOVED_TO = 0x00000008, 0x00000080
_libc = None


def _inotify():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)   # this process's own symbols: libc is among them
    return _libc


class FolderWatch:
    """Wakes :meth:`wait` when a file is renamed into, or written and closed in, ``folder``."""

    def __init__(self, folder) -> None:
        self.fd = -1
        if not sys.platform.startswith("linux"):
            return
        try:
            libc = _inotify()
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
            if fd < 0:
                return
            if libc.inotify_add_watch(fd, os.fsencode(os.fspath(folder)), IN_MOVED_TO | IN_CLOSE_WRITE) < 0:
                os.close(fd)
                return
            self.fd = fd
        except (OSError, AttributeError):   # no libc symbol, or no descriptors left: sleep instead
            self.fd = -1

    @property
    def active(self) -> bool:
        """Whether waits are woken by the folder's events (else they are plain sleeps)."""
        return self.fd >= 0

    def wait(self, timeout: float) -> None:
        """Return when a file lands in the folder (or has landed since the last wait), or after
        ``timeout`` seconds."""
        if self.fd < 0:
            time.sleep(timeout)
            return
        try:
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if ready:
                self._drain()
        except (OSError, ValueError):   # the descriptor was closed under us: sleep from now on
            self.fd = -1
            time.sleep(timeout)

    def _drain(self) -> None:
        """Take the events that woke the wait: one read, never a loop (a kernel that keeps
        writing files must not hold the other side here; what is left wakes the next wait)."""
        try:
            os.read(self.fd, 65536)
        except BlockingIOError:
            pass

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> "FolderWatch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
