"""Grading on a Dask cluster: a real `dask scheduler` and two `dask worker` processes on
127.0.0.1, each in a temporary folder of its own and unable to see the instructor's folders
(a mount namespace lays an empty tmpfs over them), grade a class of mixed notebooks; the
gradebook equals a local sequential run's. A worker killed with kill -9 mid-class: every
submission is still graded, exactly once."""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from coursekit.grading.classes.sample import student_notebook
from coursekit.grading.course.directory import CourseError
from coursekit.grading.pipeline.autograde import autograde
from coursekit.grading.pipeline.results import gradebook_scores

DASK = str(Path(sys.executable).with_name("dask"))

#: (student, notebook, answers right?, an edit) — a class of mixed notebooks, small for CI.
CLASS = [("alice", "01_backprop", True, None), ("alice", "02_layers", True, None),
         ("carol", "01_backprop", True, {"ex4_answer": lambda s: s.replace("np.outer(q, x)", "np.outer(x, q)")}),
         ("bob", "02_layers", False, None)]


def _can_hide() -> str:
    """'' where a process can be started in a mount namespace with a folder hidden, else why not."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return "hiding the class folder from the workers needs root and unshare(1)"
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True)
    return "" if done.returncode == 0 else f"no mount namespaces here: {done.stderr.decode()[:200]}"


pytestmark = pytest.mark.skipif(bool(_can_hide()), reason=_can_hide() or "")


class DaskCluster:
    """`dask scheduler` and `dask worker`s, as an instructor starts them, on 127.0.0.1."""

    def __init__(self, folder: Path, hide: Path, workers: int = 2):
        self.folder, self.hide = folder, hide
        folder.mkdir(parents=True, exist_ok=True)
        info = folder / "scheduler.json"
        self.scheduler = subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(info)], cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            if info.is_file() and info.stat().st_size:
                break
            time.sleep(0.1)
        self.address = json.loads(info.read_text())["address"]
        self.workers = [self.start_worker(f"w{i + 1}") for i in range(workers)]
        from distributed import Client

        with Client(self.address, timeout="30s") as client:   # every worker joined
            client.wait_for_workers(workers, timeout=120)

    def start_worker(self, name: str) -> subprocess.Popen:
        home = self.folder / name
        home.mkdir(exist_ok=True)
        # the worker sees an empty folder where the instructor's class and course are
        hidden = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                  'mount -t tmpfs -o size=1m tmpfs "$0" && exec "$@"', str(self.hide)]
        return subprocess.Popen(hidden + [DASK, "worker", self.address, "--name", name, "--nthreads", "1",
                                          "--no-nanny", "--no-dashboard", "--host", "127.0.0.1",
                                          "--local-directory", str(home)],
                                cwd=home, stdout=self._log(home / "worker.log"), stderr=subprocess.STDOUT)

    def _log(self, path: Path):
        self.logs = getattr(self, "logs", [])
        self.logs.append(open(path, "wb"))
        return self.logs[-1]

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in getattr(self, "logs", []):
            log.close()


@pytest.fixture(scope="module")
def instructor(tmp_path_factory, root, released):
    """The instructor's folder: the class (mixed notebooks) and, later, the terms."""
    folder = tmp_path_factory.mktemp("instructor")
    for student, name, right, edits in CLASS:
        nb = student_notebook(released / f"{name}.ipynb", root / "solutions" / f"{name}.ipynb", edits,
                              answered=right)
        (folder / "class" / student).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / "class" / student / f"{name}.ipynb")
    return folder


@pytest.fixture(scope="module")
def sequential(instructor, root):
    """The same class graded on this machine, one submission at a time."""
    autograde(root, instructor / "class", instructor / "sequential", jobs=1, timeout=30, progress=False)
    return gradebook_scores(instructor / "sequential")


def _ledger(out: Path) -> list[tuple]:
    with sqlite3.connect(out / "course" / "gradebook.db") as db:
        return sorted(db.execute("SELECT student, notebook, status FROM coursekit_graded").fetchall())


def test_two_dask_workers_without_the_class_folder_grade_as_a_local_sequential_run(
        instructor, sequential, root, tmp_path):
    cluster = DaskCluster(tmp_path / "cluster", hide=instructor)
    try:
        # the workers really cannot see the class
        probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                'mount -t tmpfs -o size=1m tmpfs "$0" && ls -A "$0"', str(instructor)],
                               capture_output=True, text=True)
        assert probe.returncode == 0 and probe.stdout.strip() == ""
        result = autograde(root, instructor / "class", instructor / "on-dask", timeout=30, progress=False,
                           cluster=cluster.address)
    finally:
        cluster.stop()
    assert not result.failed, [r.problems for r in result.failed]
    assert gradebook_scores(instructor / "on-dask") == sequential
    workers = {r.worker for r in result.results if not r.missing}
    assert workers <= {w for w in workers if w.startswith("tcp://127.0.0.1:")} and len(workers) == 2, workers
    for r in result.results:
        if not r.missing:   # each worker reported its own sandbox, per submission, and its phases
            assert r.sandbox and set(r.sandbox) >= {"files", "processes", "unprivileged kernel"}
            assert {"student kernel start", "judge start", "notebook cells", "graded cells",
                    "feedback", "worker process"} <= set(r.phases), r.phases
            timed = sum(v for k, v in r.phases.items() if k != "worker process")
            assert 0.8 * r.seconds <= timed <= r.seconds + 0.01, (timed, r.seconds, r.phases)
    assert any(n.startswith("graded on tcp://127.0.0.1:") for n in result.notes), result.notes
    scores = {(r.student, r.notebook): r.score for r in result.results}
    assert scores[("alice", "01_backprop")] == 23 and scores[("carol", "01_backprop")] == 20
    assert scores[("alice", "02_layers")] == 24 and scores[("bob", "02_layers")] == 0


def test_a_worker_killed_mid_class_leaves_every_submission_graded_exactly_once(
        instructor, sequential, root, tmp_path):
    cluster = DaskCluster(tmp_path / "cluster", hide=instructor)
    killed = []

    def busy(i):
        try:
            return any((tmp_path / "cluster" / f"w{i + 1}").rglob("coursekit-task-*/run"))
        except OSError:   # a folder the worker renamed or removed while it was read
            return False

    def kill_when_busy():
        # kill -9 the first worker found in the middle of a submission
        for _ in range(1200):
            for i, worker in enumerate(cluster.workers):
                if busy(i):
                    time.sleep(1.0)
                    os.kill(worker.pid, signal.SIGKILL)
                    killed.append(worker)
                    return
            time.sleep(0.1)

    import threading

    killer = threading.Thread(target=kill_when_busy, daemon=True)
    killer.start()
    try:
        result = autograde(root, instructor / "class", instructor / "killed", timeout=30, progress=False,
                           cluster=cluster.address)
    finally:
        killer.join(timeout=5)
        cluster.stop()
    assert killed, "no worker started grading"
    victim = killed[0]
    assert victim.returncode == -signal.SIGKILL
    print(f"killed worker pid {victim.pid} mid-submission; rows: "
          + ", ".join(f"{r.student}/{r.notebook}={r.score} on {r.worker}" for r in result.handed_in))
    assert not result.failed, [r.problems for r in result.failed]
    assert gradebook_scores(instructor / "killed") == sequential
    # exactly once: one ledger row per submission, all graded
    rows = _ledger(instructor / "killed")
    assert rows == sorted((s, n, "graded") for s, n, _, _ in CLASS), rows
    with sqlite3.connect(instructor / "killed" / "course" / "gradebook.db") as db:
        per = db.execute("SELECT student.id, assignment.name, COUNT(*) FROM submitted_assignment "
                         "JOIN student ON student.id = submitted_assignment.student_id "
                         "JOIN assignment ON assignment.id = submitted_assignment.assignment_id "
                         "GROUP BY student.id, assignment.name").fetchall()
    assert sorted(per) == sorted((s, n, 1) for s, n, _, _ in CLASS)


def test_an_unreachable_scheduler_is_a_clear_error_before_anything_is_written(instructor, root, tmp_path):
    out = tmp_path / "nothing"
    with pytest.raises(CourseError, match="no Dask scheduler answered"):
        autograde(root, instructor / "class", out, progress=False, cluster="tcp://127.0.0.1:9")
    assert not out.exists()
    done = subprocess.run([sys.executable, "-m", "coursekit.cli", "autograde", str(instructor / "class"),
                           "--out", str(out), "--cluster", "tcp://127.0.0.1:9"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode != 0 and "no Dask scheduler answered" in done.stderr + done.stdout
    assert not out.exists()


def test_readme_cluster_command_grades_on_local_dask_workers(instructor, tmp_path):
    """README's `coursekit autograde subs --cluster local:4`, typed in a folder of one's own
    (with 2 workers and one student: CI's budget)."""
    shutil.copytree(instructor / "class" / "carol", tmp_path / "subs" / "carol")
    done = subprocess.run([str(Path(sys.executable).with_name("coursekit")), "autograde", "subs",
                           "--cluster", "local:2", "--no-progress"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "carol    01_backprop  20     27" in done.stdout, done.stdout   # 27: with 4 points of written answers
    assert "graded on tcp://127.0.0.1:" in done.stdout and "its sandbox enforced every limit" in done.stdout
    assert (tmp_path / "grading-output" / "grades.csv").read_text().splitlines()[1].startswith("carol,20")
