"""``coursekit bench grading --cluster local:N``: throughput on a Dask cluster against one job.

A class of ``--students`` submissions (default 60) of mixed notebooks (``--notebooks``, taken in
turn; each submission the instructor's answers, so every one should get full marks) is graded
twice into fresh terms: on this machine one submission at a time (the pool, 1 job), then on
the cluster. The table gives each run's wall time, submissions per minute and the parallel
efficiency against one job (speed-up / workers); the two gradebooks must be equal.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import nbformat


def bench(root: Path, cluster: str, students: int, notebooks: list[str], timeout: int) -> int:
    from ..grading.classes.sample import student_notebook
    from ..grading.course.release import release
    from ..grading.pipeline.autograde import autograde
    from ..grading.pipeline.results import gradebook_scores

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        release(root, tmp / "release")
        answers = {name: student_notebook(tmp / "release" / f"{name}.ipynb", root / "solutions" / f"{name}.ipynb")
                   for name in notebooks}
        for i in range(students):
            name = notebooks[i % len(notebooks)]
            (tmp / "class" / f"s{i:03d}").mkdir(parents=True)
            nbformat.write(answers[name], tmp / "class" / f"s{i:03d}" / f"{name}.ipynb")
        rows, gradebooks = [], []
        for label, workers, kwargs in (("1 job (this machine)", 1, {"jobs": 1}),
                                       (f"--cluster {cluster}", _workers(cluster), {"cluster": cluster})):
            print(f"grading {students} submissions with {label} ...", flush=True)
            start = time.perf_counter()
            result = autograde(root, tmp / "class", tmp / f"out-{len(rows)}", timeout=timeout,
                               progress=False, **kwargs)
            wall = time.perf_counter() - start
            full = sum(r.full_marks for r in result.handed_in)
            for r in result.handed_in:
                if not r.full_marks:
                    print(f"  {r.student} {r.notebook}: {r.score:g}/{r.max_score:g} {'; '.join(r.problems)[:300]}")
            rows.append((label, workers, wall, full))
            gradebooks.append(gradebook_scores(tmp / f"out-{len(rows) - 1}"))
    same = gradebooks[0] == gradebooks[1]
    mix = ", ".join(f"{sum(1 for i in range(students) if notebooks[i % len(notebooks)] == n)} x {n}"
                    for n in notebooks)
    print(f"\n{students} submissions ({mix}); this machine has {os.cpu_count()} cores\n")
    print("| run | workers | submissions | wall (s) | submissions per minute | efficiency | full marks |")
    print("|---|---|---|---|---|---|---|")
    base = rows[0][2]
    for label, workers, wall, full in rows:
        print(f"| {label} | {workers} | {students} | {wall:.1f} | {60 * students / wall:.1f} | "
              f"{base / wall / workers:.2f} | {full}/{students} |")
    print(f"\ngradebooks equal: {same}")
    for key in sorted(set(gradebooks[0]) | set(gradebooks[1])):
        if gradebooks[0].get(key) != gradebooks[1].get(key):
            print(f"  {key}: 1 job {gradebooks[0].get(key)}, cluster {gradebooks[1].get(key)}")
    return 0 if same and all(full == students for *_, full in rows) else 1


def _workers(cluster: str) -> int:
    """The number of workers of ``cluster`` (local:N, or a scheduler's, counted now)."""
    if cluster.startswith("local:"):
        return int(cluster.split(":", 1)[1])
    from distributed import Client

    with Client(cluster, timeout="15s") as client:
        return len(client.scheduler_info()["workers"])
