"""coursekit: the shared helper package of the deep-learning-for-computer-vision course.

reference/  reference implementations of the exercises (calls from notebooks are recorded)
checks/     the checkers behind every self-check and graded cell, with diagnostic messages
plotting/   figures the notebooks draw
grading/    the instructor pipeline: release, autograde, sample class
cli.py      the `coursekit` command
"""
import os as _os

__version__ = "0.1.0"

if _os.environ.get("NBGRADER_EXECUTION"):
    # nbgrader scores a graded cell 0 if it writes anything to stderr: while grading,
    # silence warnings and progress bars so that a harmless warning costs no points.
    import warnings as _warnings

    _warnings.simplefilter("ignore")
    _os.environ.setdefault("TQDM_DISABLE", "1")
