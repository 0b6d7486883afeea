"""Run the class's jobs, a few worker processes at a time, with a wall-time limit each.

Each job gets a fresh worker process. Where the platform can fork (Linux, macOS), it is forked
from a fork server that has imported the grader once (:mod:`.warm`; multiprocessing's
"forkserver"), instead of a new interpreter importing nbgrader for every submission; elsewhere
it is ``python -m WORKER JOB_FILE``.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from .jobs import Report

#: The module each worker process runs: ``python -m WORKER JOB_FILE``.
WORKER = "coursekit.grading.pipeline.worker"
#: What the fork server imports before it forks workers.
PRELOAD = ["coursekit.grading.pipeline.warm"]


def run_workers(jobs: list[tuple[str, str, Path]], concurrency: int, wall: float,
                progress: bool, on_report=None, desc: str = "grading") -> dict[tuple[str, str], Report]:
    """Run each (student, notebook, job file) with ``python -m WORKER``, ``concurrency`` at a
    time; a worker past ``wall`` seconds is killed with everything it started. Each report is
    handed to ``on_report(key, report)`` as soon as its worker ends."""
    reports: dict[tuple[str, str], Report] = {}
    pending = list(jobs)
    running: dict[tuple[str, str], tuple[Worker, float, Path]] = {}
    bar = tqdm(total=len(jobs), desc=desc, unit="notebook", disable=not progress)
    try:
        while pending or running:
            while pending and len(running) < concurrency:
                student, name, job_file = pending.pop(0)
                job_file.with_name("report.json").unlink(missing_ok=True)   # a try before this one's
                running[(student, name)] = (Worker(job_file), time.monotonic(), job_file)
            time.sleep(0.05)
            for key, (worker, started, job_file) in list(running.items()):
                overdue = time.monotonic() - started > wall
                if worker.poll() is None and not overdue:
                    continue
                if worker.poll() is None:
                    worker.kill()
                del running[key]
                reports[key] = read_report(job_file, worker.poll(), overdue, wall)
                # the worker's own start and end: its wall time less what it timed itself
                reports[key].phases["worker process"] = max(
                    0.0, time.monotonic() - started - reports[key].seconds)
                if on_report is not None:
                    on_report(key, reports[key])
                bar.update(1)
    finally:  # stopped (Ctrl-C, an error): what is still grading goes, kernels and all
        for worker, _, _ in running.values():
            worker.kill()
        bar.close()
    return reports


class Worker:
    """One job's worker process: forked from the fork server, or a fresh interpreter (also
    inside a daemonic process, such as a Dask worker, which multiprocessing lets have none)."""

    def __init__(self, job_file: Path):
        environment = {**os.environ, **_zygote(job_file)}
        context = _fork_server()
        if context is not None and not multiprocessing.current_process().daemon:
            from . import worker

            try:
                self.process = context.Process(target=worker.forked, name=f"coursekit worker {job_file.parent.name}",
                                               args=(str(job_file), environment, os.getcwd()))
                self.process.start()
            except Exception:  # no fork server after all: a fresh interpreter, now and from now on
                _no_fork_server()
                context = None
            else:
                self.pid = self.process.pid
        if context is None or multiprocessing.current_process().daemon:
            with open(job_file.with_name("worker.log"), "wb") as log:
                self.process = subprocess.Popen([sys.executable, "-m", WORKER, str(job_file), str(os.getpid())],
                                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                                env=environment)
            self.pid = self.process.pid

    def poll(self) -> int | None:
        """The exit status, or None while it runs."""
        if isinstance(self.process, subprocess.Popen):
            return self.process.poll()
        return self.process.exitcode

    def kill(self) -> None:
        """Kill it and everything it started (its session: kernels, sandboxes)."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:  # not yet its own session leader, or gone
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
        if isinstance(self.process, subprocess.Popen):
            self.process.wait()
        else:
            self.process.join()


def _zygote(job_file: Path) -> dict[str, str]:
    """The worker's pointers to this process's zygotes for the job's kernels (started with the
    first job if not before: :mod:`..kernel.zygote`); {} where kernels are not forked, or the
    job cannot be read."""
    from ..kernel import zygote

    try:
        env = json.loads(job_file.read_text())["env"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return zygote.for_grading(env)


_server = None


def _fork_server():
    """multiprocessing's forkserver context, with the grader preloaded; None where there is
    none, or where it would be within a submission's reach.

    The fork server forks whatever a client sends through its Unix socket, unauthenticated
    (before Python 3.14); the socket is its owner's alone (0600 in a 0700 folder). So it is used
    only when the grader is root and each kernel runs as a uid of its own, which cannot open
    it; a grader running as a user, whose kernels share its uid, starts ``python -m`` workers."""
    global _server
    if _server is None:
        from ..kernel import privileges

        if ("forkserver" not in multiprocessing.get_all_start_methods() or os.geteuid() != 0
                or not privileges._can_become()):
            _server = False
        else:
            _server = multiprocessing.get_context("forkserver")
            _server.set_forkserver_preload(PRELOAD)
    return _server or None


def _no_fork_server() -> None:
    """The fork server failed (it died, or could not start): ``python -m`` workers from now on."""
    global _server
    _server = False


def read_report(job_file: Path, returncode: int | None, overdue: bool, wall: float) -> Report:
    """The worker's report; a worker past the wall time or stopped without one gives a failed
    report (the latter worth one more try: :attr:`Report.retry`)."""
    path = job_file.with_name("report.json")
    if overdue:
        return Report(problems=[f"grading this notebook took more than {wall:g} s and was stopped"])
    try:
        return Report(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        log = job_file.with_name("worker.log")
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        return Report(problems=[f"the grader's worker stopped (exit status {returncode})"
                                + (f": {tail[0][:200]}" if tail else "")], retry=True)
