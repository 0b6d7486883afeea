"""coursekit: the shared helper package of the deep-learning-for-computer-vision course.

reference/  reference implementations of the exercises (calls from notebooks are recorded)
values.py   values as data, with no code (the judge's wire format; recorded self-check values)
checks/     the checkers behind every self-check and graded cell, with diagnostic messages
plotting/   figures the notebooks draw
grading/    the instructor's side: release, autograde (pipeline/, kernel/, judge/, course/, classes/)
cli.py      the `coursekit` command
"""
import os as _os
import sys as _sys

__version__ = "0.1.0"


def _calm_threads() -> None:
    """One thread for numpy's BLAS and for torch: the course's arrays and networks are small.

    Extra threads buy little on them, and on a laptop doing other things they spin waiting for
    each other: beside two busy processes on 2 cores, 04 ran 2.8x and 07 5.5x slower than on a
    quiet machine, for a loss of CPU share of about 1.5x; with one thread, 1.06x and 1.0x (and
    04 is faster even when quiet; 07 takes 29 s instead of 22 s). A thread count set in the
    environment (OMP_NUM_THREADS and the like; the grader sets one per kernel) is left as it is.
    """
    if any(name in _os.environ for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")):
        return
    _os.environ["OMP_NUM_THREADS"] = "1"  # torch imported later starts with one thread
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    if "torch" in _sys.modules:  # imported first: one thread from now on
        _sys.modules["torch"].set_num_threads(1)


_calm_threads()

if _os.environ.get("NBGRADER_EXECUTION"):
    # nbgrader scores a graded cell 0 if it writes anything to stderr: while grading,
    # silence warnings and progress bars so that a harmless warning costs no points.
    import warnings as _warnings

    _warnings.simplefilter("ignore")
    _os.environ.setdefault("TQDM_DISABLE", "1")
