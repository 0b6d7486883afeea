"""The `coursekit` command: the instructor's pipeline.

  coursekit release                  solutions/ -> notebooks/ (the student release)
  coursekit autograde SUBMISSIONS    grade a class; grades.csv, feedback, summary table
  coursekit sample-class OUT         write the bundled sample class of submissions
  coursekit demo                     release + sample class + autograde, in build/demo
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from .grading.course import CourseError, find_course_root


def _report(result, seconds: float) -> None:
    print(result.table())
    print(f"\ngraded {len(result.results)} submission(s) in {seconds:.1f} s; grades in "
          f"{result.out / 'grades.csv'}, feedback in {result.out / 'feedback'}")


def _release(args) -> None:
    from .grading.release import release

    root = find_course_root(args.course)
    for path in release(root, args.out):
        print(f"released {path}")


def _autograde(args) -> None:
    from .grading.autograde import autograde

    root = find_course_root(args.course)
    start = time.perf_counter()
    result = autograde(root, args.submissions, args.out, timeout=args.timeout,
                       progress=not args.no_progress)
    _report(result, time.perf_counter() - start)


def _sample_class(args) -> None:
    from .grading.release import release
    from .grading.sample_class import make_sample_class

    root = find_course_root(args.course)
    with tempfile.TemporaryDirectory() as tmp:
        release(root, Path(tmp))
        stories = make_sample_class(Path(tmp), root / "solutions", args.out)
    for student, story in stories.items():
        print(f"{args.out / student}: {story}")


def _demo(args) -> None:
    from .grading.autograde import autograde
    from .grading.release import release
    from .grading.sample_class import make_sample_class

    root = find_course_root(args.course)
    out = args.out
    print(f"1/3 releasing solutions/ with nbgrader into {out / 'release'}")
    release(root, out / "release")
    print(f"2/3 writing the sample class into {out / 'submissions'}")
    for student, story in make_sample_class(out / "release", root / "solutions",
                                            out / "submissions").items():
        print(f"    {student:6s} {story}")
    print(f"3/3 autograding the sample class (cell time limit {args.timeout} s)")
    start = time.perf_counter()
    result = autograde(root, out / "submissions", out / "grading", timeout=args.timeout,
                       progress=not args.no_progress)
    print()
    _report(result, time.perf_counter() - start)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coursekit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--course", type=Path, default=None,
                        help="the course repository (default: found from the working directory)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="generate notebooks/ from solutions/ with nbgrader")
    p.add_argument("--out", type=Path, default=None, help="where to write (default: notebooks/)")
    p.set_defaults(func=_release)

    p = sub.add_parser("autograde", help="autograde a class of submissions")
    p.add_argument("submissions", type=Path,
                   help="a folder with one folder per student, or an LMS zip of notebooks")
    p.add_argument("--out", type=Path, default=Path("grading-output"),
                   help="where grades, feedback and the nbgrader course go (default: grading-output)")
    p.add_argument("--timeout", type=int, default=None,
                   help="per-cell time limit in seconds (default: autograder/nbgrader_config.py, 30)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_autograde)

    p = sub.add_parser("sample-class", help="write the bundled sample class of submissions")
    p.add_argument("out", type=Path)
    p.set_defaults(func=_sample_class)

    p = sub.add_parser("demo", help="release, build the sample class and autograde it")
    p.add_argument("--out", type=Path, default=Path("build/demo"))
    p.add_argument("--timeout", type=int, default=10, help="per-cell time limit (default 10 s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except CourseError as exc:
        print(f"coursekit: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
