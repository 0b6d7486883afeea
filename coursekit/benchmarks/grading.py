"""How long grading a class takes, one submission at a time against several at a time, and
where a submission's time goes.

``coursekit bench grading [--students 30] [--jobs 1 2]`` builds a class of N copies of the
instructor's answers to notebook 01 (each a separate student), grades it once per --jobs value,
checks that every run gives the same gradebook, and prints a table of seconds.

``coursekit bench grading --cluster local:N [--students 60]`` compares a Dask cluster's
throughput with one job (:mod:`.cluster`).

``coursekit bench grading --profile [--students 2] [--notebooks 01_backprop ...]`` grades N
right-answer submissions of each notebook one at a time and prints, per notebook, the mean
seconds per submission in each phase of grading (:mod:`coursekit.grading.timing`), then the
same submissions graded by bare ``nbgrader autograde`` (no sandbox, no judge, no feedback:
the floor) and the ratio of the two.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat


def main(argv: list[str] | None = None) -> int:
    from ..grading.pipeline.autograde import autograde
    from ..grading.pipeline.results import gradebook_scores
    from ..grading.course.directory import find_course_root
    from ..grading.course.release import release
    from ..grading.classes.sample import NOTEBOOK, student_notebook

    parser = argparse.ArgumentParser(prog="coursekit bench grading", description=__doc__)
    parser.add_argument("--students", type=int, default=None, help="default 30 (2 with --profile)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--timeout", type=int, default=None,
                        help="per-cell time limit (s; default 10, with --profile and --cluster the course's 30)")
    parser.add_argument("--profile", action="store_true", help="where each notebook's grading time goes")
    parser.add_argument("--notebooks", nargs="+", default=None, help="with --profile (default: all)")
    parser.add_argument("--no-bare", action="store_true", help="with --profile: skip bare nbgrader")
    parser.add_argument("--cluster", default=None, metavar="ADDRESS|local:N",
                        help="throughput on a Dask cluster against 1 job, for a class of mixed notebooks "
                        "(--students, default 60; --notebooks, default 01_backprop 02_layers 03_conv)")
    args = parser.parse_args(argv)
    root = find_course_root()
    if args.cluster:
        from .cluster import bench
        return bench(root, args.cluster, args.students or 60,
                     args.notebooks or ["01_backprop", "02_layers", "03_conv"], args.timeout or 30)
    if args.profile:
        from .profile import profile
        return profile(root, args.notebooks, args.students or 2, args.timeout, bare=not args.no_bare)
    args.students = args.students or 30
    args.timeout = args.timeout or 10
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        release(root, tmp / "release")
        nb = student_notebook(tmp / "release" / f"{NOTEBOOK}.ipynb", root / "solutions" / f"{NOTEBOOK}.ipynb")
        for i in range(args.students):
            (tmp / "class" / f"s{i:03d}").mkdir(parents=True)
            nbformat.write(nb, tmp / "class" / f"s{i:03d}" / f"{NOTEBOOK}.ipynb")
        rows, gradebooks = [], []
        for jobs in args.jobs:
            start = time.perf_counter()
            result = autograde(root, tmp / "class", tmp / f"out-{jobs}", timeout=args.timeout,
                               jobs=jobs, progress=False)
            seconds = time.perf_counter() - start
            full = sum(r.full_marks for r in result.results)
            rows.append((jobs, seconds, full))
            gradebooks.append(gradebook_scores(tmp / f"out-{jobs}"))
    same = all(g == gradebooks[0] for g in gradebooks)
    print(f"{args.students} submissions of {NOTEBOOK} on {os.cpu_count()} cores\n")
    print("| jobs | seconds | per submission | full marks |\n|---|---|---|---|")
    for jobs, seconds, full in rows:
        print(f"| {jobs} | {seconds:.1f} | {seconds / args.students:.2f} | {full}/{args.students} |")
    print(f"\nspeed-up {rows[0][1] / rows[-1][1]:.2f}x; gradebooks identical across runs: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
