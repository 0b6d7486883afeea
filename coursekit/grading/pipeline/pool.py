"""Run the class's jobs, a few worker processes at a time, with a wall-time limit each."""
from __future__ import annotations

import json
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


def run_workers(jobs: list[tuple[str, str, Path]], concurrency: int, wall: float,
                progress: bool, on_report=None) -> dict[tuple[str, str], Report]:
    """Run each (student, notebook, job file) with ``python -m WORKER``, ``concurrency`` at a
    time; a worker past ``wall`` seconds is killed with everything it started. Each report is
    handed to ``on_report(key, report)`` as soon as its worker ends."""
    reports: dict[tuple[str, str], Report] = {}
    pending = list(jobs)
    running: dict[tuple[str, str], tuple[subprocess.Popen, float, Path]] = {}
    bar = tqdm(total=len(jobs), desc="grading", unit="notebook", disable=not progress)
    while pending or running:
        while pending and len(running) < concurrency:
            student, name, job_file = pending.pop(0)
            log = open(job_file.with_name("worker.log"), "wb")
            proc = subprocess.Popen([sys.executable, "-m", WORKER, str(job_file), str(os.getpid())],
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            running[(student, name)] = (proc, time.monotonic(), job_file)
        time.sleep(0.05)
        for key, (proc, started, job_file) in list(running.items()):
            overdue = time.monotonic() - started > wall
            if proc.poll() is None and not overdue:
                continue
            if proc.poll() is None:
                _kill_group(proc)
            del running[key]
            reports[key] = _read_report(job_file, proc.returncode, overdue, wall)
            if on_report is not None:
                on_report(key, reports[key])
            bar.update(1)
    bar.close()
    return reports


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.wait()


def _read_report(job_file: Path, returncode: int | None, overdue: bool, wall: float) -> Report:
    path = job_file.with_name("report.json")
    if overdue:
        return Report(problems=[f"grading this notebook took more than {wall:g} s and was stopped"])
    try:
        return Report(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        log = job_file.with_name("worker.log")
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        return Report(problems=[f"the grader's worker stopped (exit status {returncode})"
                                + (f": {tail[0][:200]}" if tail else "")])
