"""Grade a class on a Dask cluster: ``coursekit autograde SUBS --cluster tcp://HOST:8786|local:N``.

The workers share no file system with the instructor's machine. The class run packs, once,
what grading needs besides the submission (:func:`pack`: ``autograder/``, the run's course
template with its gradebook snapshot, the coursekit each notebook's kernels import) and sends
it to the cluster once (``scatter``); each task carries one submission's bytes and its job,
unpacks the pack once per worker, prepares a notebook's data there once per worker (the
course's ``GradingPreparation``: 07's dataset is made on the worker, not sent), grades the
submission in a worker process of its own exactly as a local run does (sandbox, judge, wall-time
limit), and returns the report with the autograded notebook and the feedback page. Only the
instructor's process writes the gradebook, as each task ends (:mod:`.gradebook`).

A worker that dies in the middle of a submission (kill -9, a lost machine) has its task run
again on another worker by the scheduler; the instructor's process records each submission
once, whichever worker finished it. A submission whose grading killed its worker
``distributed.scheduler.allowed-failures`` times is reported failed, not retried further. Ctrl-C
cancels what is left: everything finished is in the gradebook, and the next run grades the rest.

Workers need the same coursekit (and nbgrader) installed as the instructor; get them with
``dask worker tcp://HOST:8786`` on each machine, ``dask-jobqueue`` (SLURM, PBS) or
``dask-kubernetes`` (README, *A large class on a cluster*).
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import zipfile
from dataclasses import asdict
from pathlib import Path

from tqdm.auto import tqdm

from ..course.directory import CourseError
from .jobs import Job, Report
from .prepare import Prepared

#: How long to wait for a scheduler to answer, and for a first worker to join it.
CONNECT_SECONDS = 15


def _reachable(address: str) -> None:
    """Raise OSError at once if nothing accepts a TCP connection at ``address``
    (``tcp://host:port``; other protocols are left to Dask)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address)
    if parts.scheme == "tcp" and parts.hostname and parts.port:
        socket.create_connection((parts.hostname, parts.port), timeout=CONNECT_SECONDS).close()


class Cluster:
    """A Dask client (and the LocalCluster behind it, for ``local:N``)."""

    def __init__(self, spec: str):
        from distributed import Client, LocalCluster

        self.spec, self.local, self._packed = spec, None, None
        logging.getLogger("distributed").setLevel(logging.ERROR)
        if spec.startswith("local:"):
            try:
                n = int(spec.split(":", 1)[1])
                if n < 1:
                    raise ValueError
            except ValueError:
                raise CourseError(f"--cluster {spec}: expected local:N with N a number of workers "
                                  "(1 or more), or a scheduler's address such as tcp://host:8786") from None
            self.local = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                      dashboard_address=None, silence_logs=logging.ERROR)
            self.client = Client(self.local)
        else:
            try:
                _reachable(spec)   # a refused connection is said at once (Dask would retry)
                self.client = Client(spec, timeout=f"{CONNECT_SECONDS}s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise CourseError(f"--cluster {spec}: no Dask scheduler answered there ({type(exc).__name__}: "
                                  f"{str(exc)[:200]}); start one with `dask scheduler` and workers with "
                                  "`dask worker ADDRESS`, or grade with --cluster local:N") from None
        try:
            self.client.wait_for_workers(1, timeout=CONNECT_SECONDS)
        except (TimeoutError, OSError):
            self.close()
            raise CourseError(f"--cluster {spec}: the scheduler has no workers (none joined within "
                              f"{CONNECT_SECONDS} s); start some with `dask worker {spec}`") from None
        try:
            missing = {w: v for w, v in self.client.run(_coursekit_version).items() if v != _coursekit_version()}
        except Exception as exc:  # a worker without coursekit cannot even unpickle the function
            self.close()
            raise CourseError(f"--cluster {spec}: the workers could not run coursekit ({type(exc).__name__}: "
                              f"{str(exc)[:200]}); install the same coursekit on every worker") from None
        if missing:
            self.close()
            raise CourseError(f"--cluster {spec}: these workers have another coursekit than this one "
                              f"({_coursekit_version()}): {missing}; install the same on every worker")
        # Dask's own connections are not authenticated: a submission that could open a TCP
        # connection could run code on the cluster. The workers' sandboxes must keep it off the net.
        open_net = sorted(w for w, caps in self.client.run(_capabilities).items() if not caps.get("network"))
        if open_net:
            self.close()
            raise CourseError(f"--cluster {spec}: on {', '.join(open_net)} the sandbox cannot keep a "
                              "submission off the network (Landlock ABI 4, Linux 6.7 or newer, is needed), "
                              "and Dask's ports would be within its reach; grade there without --cluster")

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.local is not None:
                self.local.close()

    def run_jobs(self, plan, progress: bool, on_report, jobs=None, desc: str = "grading") -> dict:
        """Grade ``jobs`` (default: every job of ``plan``) on the cluster; each report goes to
        ``on_report(key, report)`` as its task ends. Returns the reports."""
        from distributed import as_completed

        jobs = plan.jobs if jobs is None else jobs
        if not jobs:
            return {}
        if self._packed is None or self._packed[0].status != "finished":   # (lost with every worker holding it)
            packed = pack(plan)
            sha = hashlib.sha256(packed).hexdigest()
            # on every worker: a worker that dies takes no task's pack with it
            self._packed = self.client.scatter(packed, hash=False, broadcast=True), sha
        pack_future, sha = self._packed
        futures = {}
        for student, name, job_file in jobs:
            job = json.loads(Path(job_file).read_text())
            relative = _relative_job(job, plan.work)
            handed = ({p.name: p.read_bytes() for p in sorted(Path(job["files"]).iterdir())}
                      if job.get("files") else {})   # the files handed in beside it (07's models)
            future = self.client.submit(grade_on_worker, pack_future, sha, relative,
                                        Path(job["submission"]).read_bytes(), plan.wall, handed,
                                        key=f"coursekit-grade-{student}-{name}-{sha[:8]}-{time.time_ns()}",
                                        pure=False)
            futures[future] = (student, name, Path(job_file))
        reports, per_worker = {}, {}
        bar = tqdm(total=len(futures), desc=desc, unit="notebook", disable=not progress)
        try:
            for future in as_completed(list(futures)):
                student, name, job_file = futures.pop(future)
                report = self._report(future, job_file)
                reports[(student, name)] = report
                on_report((student, name), report)
                per_worker[report.worker or "?"] = per_worker.get(report.worker or "?", 0) + 1
                bar.set_postfix_str(", ".join(f"{_short(w)}: {n}" for w, n in sorted(per_worker.items())),
                                    refresh=False)
                bar.update(1)
        finally:  # Ctrl-C, an error: what is left is cancelled (the next run grades it)
            if futures:
                self.client.cancel(list(futures), force=True)
            bar.close()
        return reports

    @staticmethod
    def _report(future, job_file: Path) -> Report:
        """The task's report, with its files written beside the local job (where the gradebook's
        recorder reads them); a task that failed becomes a failed report."""
        try:
            done = future.result()
        except Exception as exc:  # KilledWorker: its grading killed workers again and again
            name = type(exc).__name__
            why = ("the workers grading it died each time it was tried" if name == "KilledWorker"
                   else f"{name}: {str(exc)[:200]}")
            # a KilledWorker was tried again and again by the scheduler already
            return Report(problems=[f"the grader's worker stopped: {why}"], retry=name != "KilledWorker")
        report = Report(**done["report"])
        for field, suffix in (("autograded", ".autograded.ipynb"), ("feedback", ".html")):
            if done.get(field) is not None:
                path = job_file.with_name(f"{job_file.parent.name}{suffix}")
                path.write_bytes(done[field])
                setattr(report, field, str(path))
            else:
                setattr(report, field, "")
        return report


def _short(worker: str) -> str:
    return worker.rsplit("/", 1)[-1]


def _capabilities() -> dict:
    from ..kernel.sandbox import capabilities

    return capabilities()


def _coursekit_version() -> str:
    import coursekit

    return coursekit.__version__


# --- the instructor's side: what the cluster needs, packed once -----------------------------------

def pack(plan) -> bytes:
    """A zip of what every task needs besides its submission: ``course/autograder/`` (the
    course configuration), ``template/`` (the run's course template: source notebooks and the
    gradebook snapshot) and ``packages/<notebook>/`` (the coursekit its kernels import)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for folder, prefix in ((Path(plan.root) / "autograder", "course/autograder"),
                               (plan.work / "template", "template"),
                               (plan.work / "shared" / "coursekit", "packages")):
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    archive.write(path, f"{prefix}/{path.relative_to(folder).as_posix()}")
    return buffer.getvalue()


def _relative_job(job: dict, work: Path) -> dict:
    """The job with its paths made relative to the pack (``@pack/...``), or dropped where the
    worker makes its own (the submission, the job's folder, the prepared data)."""
    def inside(path: str) -> str:
        relative = Path(path).relative_to(work)
        if relative.parts[:2] == ("shared", "coursekit"):
            return "@pack/packages/" + "/".join(relative.parts[2:])
        return "@pack/" + relative.as_posix()

    return {**job, "root": "@pack/course", "template": inside(job["template"]),
            "package": inside(job["package"]) if job["package"] else "",
            "submission": "", "work": "", "read": []}


# --- the worker's side --------------------------------------------------------------------------

_unpack_lock = threading.Lock()


def grade_on_worker(packed: bytes, sha: str, job: dict, submission: bytes, wall: float,
                    handed: dict[str, bytes] | None = None) -> dict:
    """Grade one submission on this Dask worker (see the module docstring); returns the
    report (as a dict), the autograded notebook's and the feedback page's bytes, and where."""
    from distributed import get_worker

    from .pool import Worker, read_report

    here = get_worker()
    base = _unpacked(packed, sha, Path(here.local_directory))
    prepared = _prepared(base, job["notebook"])
    read, env = prepared.read, prepared.env
    threads = str(max(1, (os.cpu_count() or 1) // max(1, here.state.nthreads)))
    work = Path(tempfile.mkdtemp(prefix="coursekit-task-", dir=here.local_directory))
    try:
        (work / f"{job['notebook']}.ipynb").write_bytes(submission)
        if handed:
            (work / "files").mkdir()
            for name, content in handed.items():
                (work / "files" / Path(name).name).write_bytes(content)
        real = Job(**{**job, "root": _local(job["root"], base), "template": _local(job["template"], base),
                      "package": _local(job["package"], base) if job["package"] else "",
                      "submission": str(work / f"{job['notebook']}.ipynb"), "work": str(work), "read": read,
                      "judge_read": prepared.judge_read, "judge_env": prepared.judge_env,
                      "files": str(work / "files") if handed else "",
                      "env": {**job["env"], **env, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
                              "OPENBLAS_NUM_THREADS": threads}})
        job_file = work / "job.json"
        job_file.write_text(json.dumps(asdict(real)))
        worker, started = Worker(job_file), time.monotonic()
        while worker.poll() is None and time.monotonic() - started < wall:
            time.sleep(0.05)
        overdue = worker.poll() is None
        if overdue:
            worker.kill()
        report = read_report(job_file, worker.poll(), overdue, wall)
        report.phases["worker process"] = max(0.0, time.monotonic() - started - report.seconds)
        report.worker = here.address
        files = {field: Path(getattr(report, field)).read_bytes() if getattr(report, field) else None
                 for field in ("autograded", "feedback")}
        return {"report": asdict(report), **files, "host": socket.gethostname()}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _local(path: str, base: Path) -> str:
    return str(base / path.removeprefix("@pack/"))


def _unpacked(packed: bytes, sha: str, local: Path) -> Path:
    """The pack, unpacked once on this worker (by its hash)."""
    target = local / "coursekit-packs" / sha
    with _unpack_lock:
        if not target.is_dir():
            staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=target.parent if target.parent.is_dir()
                                            else _mkdir(target.parent)))
            with zipfile.ZipFile(io.BytesIO(packed)) as archive:
                for info in archive.infolist():
                    path = Path(archive.extract(info, staging))
                    # the packages' compiled files are valid for sources of the same time
                    stamp = time.mktime((*info.date_time, 0, 0, -1))
                    os.utime(path, (stamp, stamp))
            os.replace(staging, target)
    return target


def _mkdir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _prepared(base: Path, notebook: str) -> Prepared:
    """What the course prepares for ``notebook`` (its ``GradingPreparation``), made once on this
    worker for this pack."""
    from ..course.directory import nbgrader_api
    from .prepare import prepare

    done = base / "shared" / f".{notebook}.prepared.json"
    with _unpack_lock:
        if not done.is_file():
            config = nbgrader_api(base / "course", base / "config").config
            done.parent.mkdir(parents=True, exist_ok=True)
            done.write_text(json.dumps(asdict(prepare(config, base / "shared", [notebook]))))
    return Prepared(**json.loads(done.read_text()))
