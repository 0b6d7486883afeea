"""Does a submission that hogs the CPU slow the one graded beside it?

``coursekit bench neighbour [--notebook 06_architectures] [--threads 12]`` grades the
instructor's answers alone, then again at the same time as (--jobs 2) a copy whose first answer
cell also starts ``--threads`` threads that multiply matrices forever, and prints the honest
submission's seconds and score both times. When grading as root, each submission's kernel is in
its own cpu cgroup (coursekit.grading.kernel.sandbox), so the hog should slow only itself.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nbformat

HOG = '''

import threading, numpy as _np

def _spin():
    a = _np.random.rand(300, 300)
    while True:
        a @ a

for _ in range({threads}):
    threading.Thread(target=_spin, daemon=True).start()
'''


def main(argv: list[str] | None = None) -> int:
    from ..grading.pipeline.autograde import autograde
    from ..grading.course.directory import find_course_root
    from ..grading.course.release import release
    from ..grading.classes.sample import student_notebook

    parser = argparse.ArgumentParser(prog="coursekit bench neighbour", description=__doc__)
    parser.add_argument("--notebook", default="06_architectures")
    parser.add_argument("--threads", type=int, default=12)
    parser.add_argument("--timeout", type=int, default=60, help="per-cell time limit (s)")
    args = parser.parse_args(argv)
    root = find_course_root()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        release(root, tmp / "release")
        released, solution = tmp / "release" / f"{args.notebook}.ipynb", root / "solutions" / f"{args.notebook}.ipynb"
        honest = student_notebook(released, solution)
        hog = student_notebook(released, solution, {"ex1_answer": lambda src: src + HOG.format(threads=args.threads)})
        for label, students in (("alone", {"honest": honest}), ("beside a hog", {"honest": honest, "hog": hog})):
            subs = tmp / label.replace(" ", "-")
            for student, nb in students.items():
                (subs / student).mkdir(parents=True)
                nbformat.write(nb, subs / student / f"{args.notebook}.ipynb")
            start = time.perf_counter()
            result = autograde(root, subs, tmp / f"out-{label.replace(' ', '-')}", timeout=args.timeout,
                               jobs=len(students), progress=False)
            wall = time.perf_counter() - start
            mine = result.get("honest", args.notebook)
            rows.append((label, mine.seconds, mine.score, mine.max_score, "; ".join(mine.problems) or "none", wall))
    print(f"the instructor's {args.notebook}, graded alone and beside a submission running "
          f"{args.threads} busy threads\n")
    print("| run | honest seconds | honest score | problems | run seconds |\n|---|---|---|---|---|")
    for label, seconds, score, top, problems, wall in rows:
        print(f"| {label} | {seconds:.1f} | {score:g}/{top:g} | {problems} | {wall:.1f} |")
    return 0 if rows[-1][2] == rows[-1][3] else 1


if __name__ == "__main__":
    sys.exit(main())
