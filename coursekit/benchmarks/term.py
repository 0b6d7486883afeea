"""How long a week's run of a term takes when little changed, against grading the class afresh.

``coursekit bench term [--students 20] [--changed 2]`` builds a class of N students who hand in
notebook 01 (the instructor's answers, each student's file made distinct by a comment), grades
it into a fresh term (the full run), then runs again on the same folder with ``--changed`` of
the notebooks edited (the incremental run), then once more with nothing changed, and finally
grades the same class with every submission forced (``--regrade`` each student: a full regrade
in the same course). It checks that the gradebook after the incremental run equals a full
regrade's, and prints a table of wall times.
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
    from ..grading.classes.sample import NOTEBOOK, student_notebook
    from ..grading.course.directory import find_course_root
    from ..grading.course.release import release
    from ..grading.pipeline.autograde import autograde
    from ..grading.pipeline.results import gradebook_scores

    parser = argparse.ArgumentParser(prog="coursekit bench term", description=__doc__)
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--changed", type=int, default=2, help="submissions edited before the incremental run")
    parser.add_argument("--jobs", type=int, default=None, help="submissions graded at a time (default: the cores)")
    parser.add_argument("--timeout", type=int, default=10, help="per-cell time limit (s)")
    args = parser.parse_args(argv)
    root = find_course_root()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        release(root, tmp / "release")
        nb = student_notebook(tmp / "release" / f"{NOTEBOOK}.ipynb", root / "solutions" / f"{NOTEBOOK}.ipynb")
        students = [f"s{i:03d}" for i in range(args.students)]
        for i, student in enumerate(students):
            _write(nb, tmp / "class" / student / f"{NOTEBOOK}.ipynb", f"# {student}, version 1")
        rows = []

        def run(label: str, **kwargs):
            start = time.perf_counter()
            result = autograde(root, kwargs.pop("subs", tmp / "class"), tmp / "term", timeout=args.timeout,
                               jobs=args.jobs, progress=False, **kwargs)
            seconds = time.perf_counter() - start
            graded = sum(1 for r in result.results if not r.skipped)
            rows.append((label, seconds, graded, len(result.skipped), len(result.failed)))
            return result

        run("full run (a fresh term)")
        for student in students[:args.changed]:
            _write(nb, tmp / "class" / student / f"{NOTEBOOK}.ipynb", f"# {student}, version 2")
        run(f"incremental ({args.changed} changed)")
        incremental = gradebook_scores(tmp / "term")
        run("nothing changed")
        run("full regrade (--regrade every student)", subs=None, regrade=students)
        same = gradebook_scores(tmp / "term") == incremental
    print(f"{args.students} submissions of {NOTEBOOK} on {os.cpu_count()} cores\n")
    print("| run | seconds | graded | skipped | failed |\n|---|---|---|---|---|")
    for label, seconds, graded, skipped, failed in rows:
        print(f"| {label} | {seconds:.1f} | {graded} | {skipped} | {failed} |")
    print(f"\nincremental run {rows[-1][1] / rows[1][1]:.1f}x faster than a full regrade; "
          f"gradebook after the incremental run equals the full regrade's: {same}")
    return 0 if same and not any(r[4] for r in rows) else 1


def _write(nb, path: Path, comment: str) -> None:
    """The notebook with ``comment`` appended to its first code cell (a distinct file per student)."""
    copy = nbformat.from_dict(nb)
    first = next(c for c in copy.cells if c.cell_type == "code" and not c.metadata.get("nbgrader", {}).get("locked"))
    first.source = first.source.rstrip("\n") + f"\n{comment}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(copy, path)


if __name__ == "__main__":
    sys.exit(main())
