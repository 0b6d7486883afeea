"""``coursekit bench grading --profile``: where a submission's grading time goes, per notebook.

Each notebook's class (N copies of the instructor's answers, one per student) is graded with
one job; every worker reports its phases (:mod:`coursekit.grading.timing`) and the table shows
their mean per submission. Bare ``nbgrader autograde`` of the same files (nbgrader's own
configuration: no sandbox, no judge, no feedback, all students in one process) is the floor.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

#: The phases in the order a submission goes through them (coursekit.grading.timing names).
PHASES = ("worker process", "course set-up", "student kernel start", "notebook cells", "judge start",
          "graded cells", "kernel shutdown", "nbgrader autograde (its own work)", "reading the grades",
          "feedback", "clean-up")


def _why(result) -> str:
    """Why a right-answer submission did not get full marks: the grader's problems, else the
    exercises that lost points (the feedback page says what their checks printed)."""
    lost = [f"{e.grade_id} {e.score:g}/{e.max_score:g}" for e in result.exercises if e.lost]
    where = f" (see {result.feedback})" if result.feedback else ""
    return "; ".join(result.problems) or (f"lost points in {', '.join(lost)}{where}" if lost else "no grades")


def profile(root: Path, notebooks: list[str] | None, students: int, timeout: int | None, bare: bool = True) -> int:
    from ..grading.classes.sample import student_notebook
    from ..grading.course.directory import assignments
    from ..grading.course.release import release
    from ..grading.pipeline.autograde import autograde

    names = notebooks or assignments(root)
    unknown = sorted(set(names) - set(assignments(root)))
    if unknown:
        print(f"no such notebook: {', '.join(unknown)} (the course has {', '.join(assignments(root))})")
        return 1
    columns, failed = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        release(root, tmp / "release")
        for name in names:
            nb = student_notebook(tmp / "release" / f"{name}.ipynb", root / "solutions" / f"{name}.ipynb")
            for i in range(students):
                (tmp / name / f"s{i:03d}").mkdir(parents=True)
                nbformat.write(nb, tmp / name / f"s{i:03d}" / f"{name}.ipynb")
            print(f"grading {students} submission(s) of {name} ...", flush=True)
            start = time.perf_counter()
            result = autograde(root, tmp / name, tmp / f"out-{name}", timeout=timeout, jobs=1, progress=False)
            wall = time.perf_counter() - start
            done = [r for r in result.results if not r.failed]
            failed += [f"{r.student}/{name}: {_why(r)}" for r in result.results
                       if r.failed or not r.full_marks]
            mean = {p: sum(r.phases.get(p, 0.0) for r in done) / max(1, len(done)) for p in PHASES}
            mean["per submission"] = sum(r.seconds + r.phases.get("worker process", 0.0)
                                         for r in done) / max(1, len(done))
            mean["class run, per submission"] = wall / students
            if bare:
                mean["bare nbgrader, per submission"] = bare_nbgrader(root, tmp / name, tmp / f"bare-{name}",
                                                                      root / "solutions" / f"{name}.ipynb",
                                                                      students, timeout)
            columns[name] = mean
    print(f"\nseconds per submission, mean of {students} right-answer submission(s) each, 1 job, "
          f"{os.cpu_count()} cores\n")
    rows = list(PHASES) + ["per submission", "class run, per submission"]
    if bare:
        rows += ["bare nbgrader, per submission"]
    short = [n.split("_")[0] for n in names]
    print("| phase | " + " | ".join(short) + " | mean |")
    print("|---|" + "---|" * (len(names) + 1))
    for row in rows:
        values = [columns[n][row] for n in names]
        bold = "**" if row in ("per submission",) else ""
        print(f"| {bold}{row}{bold} | " + " | ".join(f"{v:.2f}" for v in values)
              + f" | {sum(values) / len(values):.2f} |")
    if bare:
        ratios = [columns[n]["per submission"] / columns[n]["bare nbgrader, per submission"] for n in names]
        print("| coursekit / bare nbgrader | " + " | ".join(f"{r:.2f}x" for r in ratios) + " | |")
        # bare nbgrader autograde writes no feedback page; coursekit's run does
        ratios = [(columns[n]["per submission"] - columns[n]["feedback"]) / columns[n]["bare nbgrader, per submission"]
                  for n in names]
        print("| the same without the feedback page | " + " | ".join(f"{r:.2f}x" for r in ratios) + " | |")
    for line in failed:
        print(f"not full marks: {line}")
    return 1 if failed else 0


def bare_nbgrader(root: Path, class_dir: Path, course: Path, solution: Path, students: int, timeout: int | None) -> float:
    """Seconds per submission of plain ``nbgrader autograde`` (its own configuration, one process
    for the class) on the same submissions."""
    name = solution.stem
    (course / "source" / name).mkdir(parents=True)
    shutil.copyfile(solution, course / "source" / name / f"{name}.ipynb")
    for student in sorted(p.name for p in class_dir.iterdir()):
        target = course / "submitted" / student / name
        target.mkdir(parents=True)
        shutil.copyfile(class_dir / student / f"{name}.ipynb", target / f"{name}.ipynb")
    from ..grading.course.directory import nbgrader_api
    from ..grading.course.parameters import GradingParameters
    from ..grading.pipeline.prepare import prepare

    config = nbgrader_api(root, course / "config").config
    # nbgrader's own autograde steps, after the course's notebook parameters (the same smaller
    # experiments as the class run: the same notebook, graded without sandbox or judge)
    values = GradingParameters(config=config).values
    (course / "nbgrader_config.py").write_text(
        "from nbgrader.preprocessors import (Execute, IgnorePattern, LimitOutput, SaveAutoGrades,\n"
        "                                    AssignLatePenalties, CheckCellMetadata)\n"
        "from nbconvert.preprocessors import ClearMetadataPreprocessor\n"
        "from coursekit.grading.course.parameters import GradingParameters\n"
        f"c = get_config()\nc.CourseDirectory.course_id = 'bare'\nc.Execute.timeout = {(timeout or 30) * 3}\n"
        f"c.GradingParameters.values = {values!r}\n"
        "c.Autograde.autograde_preprocessors = [GradingParameters, Execute, IgnorePattern, ClearMetadataPreprocessor,\n"
        "    LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]\n")
    nbgrader = [sys.executable, "-m", "nbgrader"]
    # what the class run prepares for the notebook (07's dataset), prepared the same way
    prepared = prepare(config, course / "shared", [name])
    env = {**os.environ, **prepared.env, **prepared.judge_env, "MPLBACKEND": "agg"}
    subprocess.run(nbgrader + ["generate_assignment", name, "--force"], cwd=course, env=env,
                   check=True, capture_output=True)
    start = time.perf_counter()
    done = subprocess.run(nbgrader + ["autograde", name, "--force"], cwd=course, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        print(f"bare nbgrader autograde of {name} failed:\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
    return seconds / students
