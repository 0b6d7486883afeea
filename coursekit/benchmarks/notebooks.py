"""How long each solutions notebook runs, on a quiet machine and beside CPU hogs.

``python -m coursekit.benchmarks.notebooks [--hogs 2] [NOTEBOOK ...]`` runs
``jupyter nbconvert --to notebook --execute`` on each notebook of solutions/ once on its own and once
while ``--hogs`` processes spin on the CPU, and prints per notebook: the wall time of each run,
the slowdown, the share of the CPU the notebook could expect beside the hogs, and the longest
cell of each run. A notebook that oversubscribes its cores (BLAS or OpenMP threads spinning on
contended cores) slows down far more than its loss of CPU share.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from datetime import datetime
from pathlib import Path


def _spin() -> None:
    while True:
        pass


def run_notebook(path: Path, timeout: int = 600) -> tuple[float, str, float]:
    """``jupyter nbconvert --to notebook --execute`` the notebook at ``path`` (in its own folder,
    the result in a temporary one); returns (wall seconds, grade id or number of its longest
    cell, that cell's seconds)."""
    import subprocess
    import tempfile

    import nbformat

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / path.name
        start = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "jupyter"), "nbconvert", "--to", "notebook",
                        "--execute", f"--ExecutePreprocessor.timeout={timeout}", "--output", str(out),
                        str(path)], cwd=path.parent, check=True, capture_output=True)
        wall = time.perf_counter() - start
        nb = nbformat.read(out, as_version=4)
    longest, seconds = "", 0.0
    for index, cell in enumerate(nb.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            took = (_when(timing["shell.execute_reply"]) - _when(timing["iopub.execute_input"]))
            if took > seconds:
                longest = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index}"
                seconds = took
    return wall, longest, seconds


def _when(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def main(argv: list[str] | None = None) -> int:
    from ..grading.course.directory import find_course_root

    parser = argparse.ArgumentParser(prog="python -m coursekit.benchmarks.notebooks", description=__doc__)
    parser.add_argument("notebooks", nargs="*", help="e.g. 04_normalisation (default: every notebook)")
    parser.add_argument("--hogs", type=int, default=2, help="busy processes beside the loaded run (default 2)")
    parser.add_argument("--course", type=Path, default=None)
    args = parser.parse_args(argv)
    root = find_course_root(args.course)
    names = args.notebooks or sorted(p.stem for p in (root / "solutions").glob("*.ipynb"))
    cores = os.cpu_count() or 1
    # one notebook kernel beside the hogs: what it can expect of the cores it had to itself
    share = min(1.0, cores / (args.hogs + 1))
    print(f"{cores} cores; loaded runs beside {args.hogs} busy processes (a single-threaded kernel "
          f"gets about {share:.2f} of a core there, a kernel that used all {cores} cores "
          f"about {cores / (args.hogs + cores):.2f} of them)")
    rows = [("notebook", "quiet s", "longest cell (quiet)", "loaded s", "longest cell (loaded)", "slowdown")]
    for name in names:
        path = root / "solutions" / f"{name}.ipynb"
        if not path.is_file():
            print(f"no notebook {path}", file=sys.stderr)
            return 1
        quiet = run_notebook(path)
        hogs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.hogs)]
        for hog in hogs:
            hog.start()
        try:
            loaded = run_notebook(path)
        finally:
            for hog in hogs:
                hog.terminate()
                hog.join()
        rows.append((name, f"{quiet[0]:.1f}", f"{quiet[1]} {quiet[2]:.1f} s", f"{loaded[0]:.1f}",
                     f"{loaded[1]} {loaded[2]:.1f} s", f"{loaded[0] / quiet[0]:.2f}x"))
        print("  ".join(rows[-1]), flush=True)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
