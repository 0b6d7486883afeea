"""Grade one submission in a course directory of its own: ``python -m coursekit.grading.pipeline.worker JOB [PID]``.

`coursekit autograde` starts one worker per (student, notebook), several at a time. A worker
gets a private copy of the gradebook and the source notebook, runs nbgrader's autograde there
with the student's kernel shut in a sandbox (:mod:`coursekit.grading.kernel.sandbox`) whose only
writable folder is ``scratch/``, writes the feedback, and reports the scores as JSON. The
class gradebook is written by the parent alone, from these reports, so nothing a submission
does can reach it, and parallel grading gives the same gradebook as grading one at a time.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path

from traitlets.config import Config

from ...checks.personal import STUDENT_ENV
from ...checks.student import SUBMITTED_ENV
from ..course.directory import nbgrader_api
from ..kernel.outcomes import problems_in
from ..kernel.privileges import die_with_parent
from ..kernel.sandbox import capabilities
from ..kernel.scratch import remove_tree
from ..timing import phase, taken
from .jobs import Job, Report


def run(job: Job) -> Report:
    from nbgrader.api import Gradebook

    start = time.perf_counter()
    work = Path(job.work)
    course = work / "course"
    with phase("course set-up"):
        remove_tree(course)
        template = Path(job.template)
        shutil.copytree(template / "source" / job.notebook, course / "source" / job.notebook)
        shutil.copyfile(template / "gradebook.db", course / "gradebook.db")
        submitted = course / "submitted" / job.student / job.notebook / f"{job.notebook}.ipynb"
        submitted.parent.mkdir(parents=True)
        shutil.copyfile(job.submission, submitted)
        scratch, runtime = work / "scratch", work / "run"
        for folder in (scratch, runtime):
            remove_tree(folder)
            folder.mkdir(parents=True)
        judge_read, judge_env = list(job.judge_read), dict(job.judge_env)
        if job.files:   # the files handed in: the notebook finds them beside it, the judge its own copy
            for path in sorted(Path(job.files).iterdir()):
                shutil.copyfile(path, scratch / path.name)
            judge_read.append(job.files)
            judge_env[SUBMITTED_ENV] = job.files

    extra = Config()
    extra.SandboxedExecute.scratch = str(scratch)
    extra.SandboxedExecute.runtime_dir = str(runtime)
    extra.SandboxedExecute.read_paths = list(job.read)
    extra.SandboxedExecute.limits = dict(job.limits)
    # the hand calculations' numbers are the submission folder's student's (coursekit.checks.personal)
    extra.SandboxedExecute.kernel_env = {"HOME": str(scratch), "TMPDIR": str(scratch), **job.env,
                                         STUDENT_ENV: job.student}
    extra.SandboxedExecute.student_package = job.package
    extra.SandboxedExecute.judge_read_paths = judge_read
    extra.SandboxedExecute.judge_env = {**judge_env, STUDENT_ENV: job.student}
    with phase("course set-up"):
        api = nbgrader_api(Path(job.root), course, timeout=job.timeout, extra=extra)
    report = Report()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="nbgrader")
        warnings.filterwarnings("ignore", message=".*not in session.*")
        with phase("nbgrader autograde (its own work)"):
            graded = api.autograde(job.notebook, job.student, force=True, create=True)
        autograded = course / "autograded" / job.student / job.notebook / f"{job.notebook}.ipynb"
        if not graded["success"]:
            report.problems.append("could not be graded: " + _cause(graded))
        limits_timeout = api.config.Execute.timeout
        report.problems += problems_in(autograded, limits_timeout)
        if graded["success"]:
            report.graded = True
            report.autograded = str(autograded)
            with phase("reading the grades"), Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
                nb = gb.find_submission_notebook(job.notebook, job.notebook, job.student)
                for grade in nb.grades:
                    report.grades[grade.name] = [grade.auto_score, grade.max_score]
                for comment in nb.comments:
                    report.comments[comment.name] = comment.auto_comment
            with phase("feedback"):
                fed = api.generate_feedback(job.notebook, job.student, force=True)["success"]
            if fed:
                report.feedback = str(course / "feedback" / job.student / job.notebook / f"{job.notebook}.html")
    with phase("clean-up"):
        remove_tree(scratch)
    report.seconds = time.perf_counter() - start
    report.phases = taken()
    report.sandbox = capabilities()
    return report


def _cause(result: dict) -> str:
    """The line of nbgrader's log that says what failed (not its generic last line)."""
    text = "\n".join(filter(None, [result.get("log"), result.get("error")]))
    lines = [line.strip() for line in text.splitlines()
             if "Error" in line and "NbGraderException" not in line and "Traceback" not in line
             and not line.strip().startswith("[")]
    return lines[-1][:300] if lines else "unknown error"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job_file = Path(argv[0])
    if len(argv) > 1:  # the class run's pid: a worker dies with it (a killed run leaves no orphans)
        die_with_parent(int(argv[1]))
    job = Job(**json.loads(job_file.read_text()))
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    try:
        report = run(job)
    except Exception as exc:  # reported by the parent as this submission's failure
        report = Report(problems=[f"the grader failed on this submission: {type(exc).__name__}: {exc}"])
    report.retry = not report.graded
    tmp = job_file.with_name("report.json.tmp")
    tmp.write_text(json.dumps(asdict(report)))
    os.replace(tmp, job_file.with_name("report.json"))
    return 0


def forked(job_file: str, env: dict[str, str], cwd: str) -> None:
    """A worker forked by the pool's fork server (:mod:`.pool`): a fresh process, as with
    ``python -m``, with the grader's modules already imported. It takes the class run's
    environment and folder of the moment, leads a session of its own (the pool kills the session
    on a timeout), writes its output to ``worker.log`` beside the job, and dies with the fork
    server, which dies with the class run."""
    server = os.getppid()
    # the fork server's "alive" pipe: it exits when every holder has closed it, so a worker
    # holding it would keep it (and itself) alive after the class run was killed
    from multiprocessing import forkserver

    alive = getattr(forkserver._forkserver, "_forkserver_alive_fd", None)
    if alive is not None:
        try:
            os.close(alive)
        except OSError:
            pass
        forkserver._forkserver._forkserver_alive_fd = None
    die_with_parent(server)
    os.setsid()
    log = os.open(Path(job_file).with_name("worker.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.exit(main([job_file]))


if __name__ == "__main__":
    sys.exit(main())
