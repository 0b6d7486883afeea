"""The `coursekit` command: the instructor's pipeline.

  coursekit release                  solutions/ -> notebooks/ (the student release)
  coursekit release --wheel DIR      ... and the students' coursekit wheel (--unlock 01,02)
  coursekit autograde SUBMISSIONS    grade what is new or changed into the term's course; CSVs, feedback
  coursekit export                   the term's grades for Canvas, Moodle and nbgrader (--roster)
  coursekit feedback                 each student's feedback pages as one zip, for the LMS
  coursekit similarity SUBS -n 03    pairs of students whose answers look alike (for a person to look at)
  coursekit sample-class OUT         write the bundled sample class of submissions
  coursekit demo                     release + sample class + autograde, in build/demo
  coursekit data fetch 15-scene      download (or --from ARCHIVE) the 15-Scene dataset
  coursekit bench scenes             train the project's models on 15-Scene, one row each
  coursekit bench project            07's graded models as the notebook trains them: accuracy, time to threshold
  coursekit bench grading            grading time, one submission at a time vs several
  coursekit bench neighbour          a CPU-hogging submission's effect on the one beside it
  coursekit bench term               an incremental week's run against a full regrade of the class
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from .data.download import DataError
from .grading.course.directory import CourseError, find_course_root


def _report(result, seconds: float) -> None:
    """Print the class table and where the files are; a CourseError if any submission could not
    be graded (the run did not do its job, so the command exits non-zero)."""
    print(result.table())
    if result.leaderboard:
        from .grading.pipeline.results import leaderboard_text

        print("\n" + leaderboard_text(result.leaderboard))
    skipped = len(result.skipped)
    handed = len(result.handed_in) - skipped    # what this run was to grade
    done = handed - len([r for r in result.failed if not r.missing])
    where = f"grades in {_shown(result.out / 'grades.csv')}"
    if (result.out / "feedback").is_dir():
        where += f", feedback in {_shown(result.out / 'feedback')}{os.sep}<student>{os.sep}"
    kept = f", skipped {skipped} unchanged since graded" if skipped else ""
    print(f"\ngraded {done} of {handed} submission(s) in {seconds:.1f} s{kept}; {where}")
    from .grading.pipeline.results import hand_grading_note

    waiting = hand_grading_note(result.results, _shown(result.out / "course"))
    if waiting:
        print(waiting)
    if result.failed:
        listed = "; ".join(f"{r.student}/{r.notebook}: {r.problems[-1] if r.problems else 'not graded'}"
                           for r in result.failed[:5])
        more = f" (and {len(result.failed) - 5} more)" if len(result.failed) > 5 else ""
        raise CourseError(f"{len(result.failed)} submission(s) could not be graded: {listed}{more}")


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (as the user typed it)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _release(args) -> None:
    from .grading.course.release import release

    from .grading.course.distribution import build_student_wheel, unlock_list

    root = find_course_root(args.course)
    if args.unlock and args.wheel is None:
        raise CourseError("--unlock says which answers the students' wheel holds: give --wheel DIR too")
    unlocked = unlock_list(root, args.unlock)  # before anything is written
    released = release(root, args.out)
    for path in released:
        print(f"released {path}")
    if args.wheel is not None:
        from .grading.course.answers import locked, with_dependencies
        from .grading.course.directory import assignments
        from .grading.course.distribution import given_but_locked

        needed = with_dependencies(assignments(root), unlocked)
        if set(needed) != set(unlocked):
            print(f"note: {', '.join(nb for nb in needed if nb not in unlocked)} unlocked too: the "
                  f"answers of {', '.join(unlocked)} call them")
            unlocked = needed
        for line in given_but_locked(Path(released[0]).parent, locked(assignments(root), unlocked)):
            print(f"note: {line}, locked: it does not run from this wheel until that is unlocked")
        wheel = build_student_wheel(root, args.wheel, unlocked, Path(released[0]).parent)
        print(f"built {_shown(wheel)}: coursekit for students, the answers of "
              f"{', '.join(unlocked) or 'no notebook'} unlocked; the others locked")


def _autograde(args) -> None:
    from .grading.pipeline.autograde import autograde

    root = find_course_root(args.course)
    start = time.perf_counter()
    limits = {k: v for k, v in (("memory_mb", args.memory_mb), ("notebook_seconds", args.notebook_seconds),
                                ("disk_mb", args.disk_mb)) if v is not None}
    if args.roster is not None and not args.roster.is_file():
        raise CourseError(f"no roster at {args.roster}: expected a CSV with a student_id column")
    result = autograde(root, args.submissions, args.out, timeout=args.timeout, jobs=args.jobs,
                       limits=limits, progress=not args.no_progress, regrade=args.regrade or [],
                       regrade_outdated=args.regrade_outdated, roster=args.roster, cluster=args.cluster,
                       data=args.data)
    _report(result, time.perf_counter() - start)


def _export(args) -> None:
    from .grading.lms.exports import FORMATS, export

    formats = [f.strip() for f in args.format.split(",") if f.strip()] if args.format else list(FORMATS)
    if args.roster is not None and not args.roster.is_file():
        raise CourseError(f"no roster at {args.roster}: expected a CSV with a student_id column")
    done = export(args.out, formats, args.roster, args.to)
    for fmt, path in done.files.items():
        print(f"wrote {_shown(path)} ({fmt})")
    for fmt, students in done.left_out.items():
        for line in students:
            print(f"not in {fmt}: {line}")
    if done.not_in_roster:
        print(f"graded but not in the roster (left out of the LMS files, kept in nbgrader.csv): "
              f"{', '.join(done.not_in_roster)}")
    for student, names in done.no_submission.items():
        print(f"in the roster, nothing graded for {', '.join(names)} (0 in the files): {student}")


def _feedback(args) -> None:
    from .grading.lms.bundles import bundle

    made = bundle(args.out, args.to)
    if not made:
        raise CourseError(f"no feedback pages under {_shown(args.out / 'feedback')}")
    folder = next(iter(made.values())).parent
    print(f"wrote {len(made)} zip(s) of feedback pages into {_shown(folder)}{os.sep}: "
          f"one per student ({', '.join(list(made)[:5])}{' ...' if len(made) > 5 else ''})")


def _notebook(names: list[str], given: str) -> str:
    """The course notebook ``--notebook`` names: its full name or its number (03_conv, 03, 3)."""
    chosen = [n for n in names if n == given or n.split("_")[0] == given.zfill(2)]
    if len(chosen) != 1:
        raise CourseError(f"--notebook {given}: expected one of {', '.join(names)} (or its number)")
    return chosen[0]


def _similarity(args) -> None:
    from .grading.course.directory import assignments
    from .grading.review.similarity import similarity

    root = find_course_root(args.course)
    names = assignments(root)
    notebook = _notebook(names, args.notebook)
    page, table, pairs = similarity(args.submissions, notebook, root / "notebooks" / f"{notebook}.ipynb",
                                    root / "solutions" / f"{notebook}.ipynb", args.out, names)
    print(f"{len(pairs)} pairs of students compared on {notebook}'s answer cells; the most similar:")
    for p in pairs[:5]:
        print(f"  {p.score:4.0%}  {p.first} and {p.second}")
    print(f"wrote {_shown(page)} and {_shown(table)}: pairs for a person to look at, never a verdict")


def _rubrics(args) -> None:
    from .grading.course.directory import assignments
    from .grading.course.written import rubrics_text

    root = find_course_root(args.course)
    names = assignments(root)
    print(rubrics_text(root / "solutions", [_notebook(names, args.notebook)] if args.notebook else names), end="")


def _sample_class(args) -> None:
    from .grading.course.release import release
    from .grading.classes.sample import make_sample_class

    root = find_course_root(args.course)
    with tempfile.TemporaryDirectory() as tmp:
        release(root, Path(tmp))
        stories = make_sample_class(Path(tmp), root / "solutions", args.out)
    for student, story in stories.items():
        print(f"{args.out / student}: {story}")


def _demo(args) -> None:
    from .grading.pipeline.autograde import autograde
    from .grading.course.release import release
    from .grading.classes.sample import FULL_MARKS, make_sample_class

    root = find_course_root(args.course)
    out = args.out
    print(f"1/3 releasing solutions/ with nbgrader into {out / 'release'}")
    release(root, out / "release")
    print(f"2/3 writing the sample class into {out / 'submissions'}")
    for student, story in make_sample_class(out / "release", root / "solutions",
                                            out / "submissions").items():
        print(f"    {student:6s} {story}")
    print(f"3/3 autograding the sample class (cell time limit {args.timeout} s)")
    from .grading.kernel.scratch import remove_tree

    if not remove_tree(out / "grading"):  # the demo grades afresh; a term's course is kept
        raise CourseError(f"could not remove {out / 'grading'} left by an earlier demo: remove it and retry")
    start = time.perf_counter()
    result = autograde(root, out / "submissions", out / "grading", timeout=args.timeout,
                       progress=not args.no_progress)
    print()
    _report(result, time.perf_counter() - start)
    full = {r.student: r.full_marks for r in result.results}
    wrong = [s for s, ok in full.items() if ok != (s in FULL_MARKS)]
    if wrong:
        raise CourseError(f"the demo did not grade as expected ({', '.join(FULL_MARKS)} full marks, "
                          f"every other student less): {', '.join(wrong)} did not")
    print(f"{', '.join(FULL_MARKS)} has every point the grader gives (written answers wait for a person) "
          f"and every other student less, as expected; open "
          f"{_shown(result.out / 'feedback' / 'carol' / '01_backprop.html')} to see what a student gets back")


def _data_fetch(args) -> None:
    from .data import fifteen_scene as scenes

    if args.dataset != "15-scene":
        raise CourseError(f"unknown dataset {args.dataset!r}; the course has: 15-scene")
    sha = args.sha256 if args.sha256 is not None else scenes.ARCHIVE_SHA256
    root = scenes.fetch(args.source, url=args.url, sha256=sha or None, home=args.home,
                        force=args.force, progress=not args.no_progress)
    counts = scenes.count(root)
    print(f"15-Scene is in {root}: {sum(counts['train'].values())} training and "
          f"{sum(counts['test'].values())} test images (standard split), "
          f"{len(scenes.CLASSES)} classes, per-class counts checked")
    print(scenes.duplicate_report(root))


def _bench(args) -> None:
    if args.which == "grading":
        from .benchmarks import grading as bench
    elif args.which == "neighbour":
        from .benchmarks import neighbour as bench
    elif args.which == "term":
        from .benchmarks import term as bench
    elif args.which == "project":
        from .benchmarks import scene_project as bench
    else:
        from .benchmarks import scene_training as bench

    if bench.main(args.rest) != 0:
        raise CourseError("the bench failed (see above)")


EXIT_STATUS = ("Exit status: 0 when every submission was graded (one that was not handed in, or is "
               "not a notebook, gets 0 and a note: that is a grade); 1, with the reason on stderr, "
               "when the command could not do its job: bad input (no such folder, not a course) or "
               "a submission the grader itself could not grade.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coursekit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--course", type=Path, default=None,
                        help="the course repository (default: found from the working directory)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="generate notebooks/ from solutions/ with nbgrader")
    p.add_argument("--out", type=Path, default=None, help="where to write (default: notebooks/)")
    p.add_argument("--wheel", type=Path, default=None, metavar="DIR",
                   help="also build the students' coursekit wheel into DIR: no answer of a locked "
                   "notebook, no grading side (not for students yet: the self-checks of locked "
                   "notebooks cannot compute what they expect from it)")
    p.add_argument("--unlock", default="", metavar="01,02",
                   help="notebooks whose answers the wheel holds (numbers or names, comma-separated; "
                   "published solutions that later notebooks build on)")
    p.set_defaults(func=_release)

    p = sub.add_parser("autograde", help="autograde a class of submissions", epilog=EXIT_STATUS,
                       description="Grade what is new or changed under SUBMISSIONS with nbgrader, each "
                       "submission in its own sandbox, into the term's course under --out (created by the "
                       "first run, added to by each later one: grade notebook 02 next week into the same "
                       "--out); write grades.csv (every student and notebook so far, and a total), "
                       "submissions.csv (late penalties, status), grades_by_exercise.csv and feedback/, "
                       "and print the table of this run.")
    p.add_argument("submissions", type=Path, nargs="?", default=None,
                   help="a folder with one folder per student (timestamp.txt beside a notebook gives "
                   "its submission time), or an LMS zip of notebooks; may be left out with --regrade")
    p.add_argument("--out", type=Path, default=Path("grading-output"),
                   help="the term's folder: grades, feedback and the nbgrader course (default: grading-output)")
    p.add_argument("--regrade", action="append", metavar="STUDENT[/NOTEBOOK]",
                   help="grade again what the course holds of STUDENT (every notebook, or one), even if "
                   "unchanged (repeatable)")
    p.add_argument("--regrade-outdated", action="store_true",
                   help="grade again every submission graded against an older solutions/ notebook "
                   "(the run lists them)")
    p.add_argument("--roster", type=Path, default=None, metavar="ROSTER.csv",
                   help="the class roster (student_id, first_name, last_name, email, ...): names for "
                   "formgrader and the gradebook, kept for `coursekit export`")
    p.add_argument("--timeout", type=int, default=None,
                   help="per-cell time limit in seconds (default: autograder/nbgrader_config.py, 30)")
    p.add_argument("--jobs", type=int, default=None,
                   help="submissions graded at a time (default: the number of cores, at most 8)")
    p.add_argument("--cluster", default=None, metavar="ADDRESS|local:N",
                   help="grade on the workers of a running Dask scheduler (tcp://host:8786), or on N "
                   "local Dask workers (local:N); default: worker processes on this machine (--jobs)")
    p.add_argument("--notebook-seconds", type=int, default=None,
                   help="wall-time budget of one notebook (default 600)")
    p.add_argument("--memory-mb", type=int, default=None, help="memory per kernel process (default 4096)")
    p.add_argument("--disk-mb", type=int, default=None, help="files one submission may write (default 256)")
    p.add_argument("--data", type=Path, default=None, metavar="DIR|ZIP",
                   help="the 15-Scene dataset (a folder made by `coursekit data fetch 15-scene`, or its "
                   "zip) whose test split grades 07's saved models; default: c.HeldOutData.data, else "
                   "the generated stand-in")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_autograde)

    p = sub.add_parser("export", help="the term's grades as Canvas, Moodle and nbgrader CSVs",
                       description="Write the gradebook under --out as Canvas's gradebook CSV, Moodle's "
                       "grade-import CSV and nbgrader's CSV (into OUT/export/), names and LMS ids from "
                       "the roster; students missing from the roster or from the submissions are listed.")
    p.add_argument("--out", type=Path, default=Path("grading-output"), help="the term's folder (default: grading-output)")
    p.add_argument("--roster", type=Path, default=None, metavar="ROSTER.csv",
                   help="the class roster (default: the one the last `coursekit autograde --roster` was given)")
    p.add_argument("--format", default="", metavar="canvas,moodle,nbgrader",
                   help="which files (default: all three)")
    p.add_argument("--to", type=Path, default=None, help="where to write them (default: OUT/export)")
    p.set_defaults(func=_export)

    p = sub.add_parser("feedback", help="each student's feedback pages as one zip, for the LMS",
                       description="Bundle OUT/feedback/<student>/*.html into OUT/feedback-zips/<student>.zip.")
    p.add_argument("--out", type=Path, default=Path("grading-output"), help="the term's folder (default: grading-output)")
    p.add_argument("--to", type=Path, default=None, help="where to write the zips (default: OUT/feedback-zips)")
    p.set_defaults(func=_feedback)

    p = sub.add_parser("similarity", help="pairs of students whose answer cells look alike: an HTML report "
                       "and a CSV, for a person to look at, never a verdict",
                       description="Compare every pair of students' answer cells of one notebook with "
                       "copydetect (renaming does not hide a copy; code from the release or the instructor's "
                       "answers is not counted) and write similarity-<notebook>.html and .csv into --out.")
    p.add_argument("submissions", type=Path, help="a folder of student folders, each with <notebook>.ipynb")
    p.add_argument("--notebook", "-n", required=True, help="e.g. 03_conv or 03")
    p.add_argument("--out", type=Path, default=Path("similarity"), help="where to write (default: similarity/)")
    p.set_defaults(func=_similarity)

    p = sub.add_parser("rubrics", help="the written answers' questions, model answers and rubrics, for "
                       "the people who grade them in formgrader",
                       description="Print each written answer (a markdown cell graded by hand) of the course's "
                       "notebooks: its question, the model answer and the rubric, from solutions/.")
    p.add_argument("--notebook", "-n", default=None, help="one notebook, e.g. 03_conv or 03 (default: all)")
    p.set_defaults(func=_rubrics)

    p = sub.add_parser("sample-class", help="write the bundled sample class of submissions")
    p.add_argument("out", type=Path)
    p.set_defaults(func=_sample_class)

    p = sub.add_parser("demo", help="release, build the sample class and autograde it",
                       epilog=EXIT_STATUS + " The demo also fails if the sample class is not graded "
                       "as expected (alice full marks, every other student less).")
    p.add_argument("--out", type=Path, default=Path("build/demo"))
    p.add_argument("--timeout", type=int, default=10, help="per-cell time limit (default 10 s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_demo)

    p = sub.add_parser("data", help="datasets: coursekit data fetch 15-scene [--from ARCHIVE]")
    p.add_argument("action", choices=["fetch"])
    p.add_argument("dataset", help="15-scene")
    p.add_argument("--from", dest="source", default=None,
                   help="a local zip archive or unpacked folder instead of downloading")
    p.add_argument("--url", default=None, help="download from here (default: $COURSEKIT_15SCENE_URL "
                   "or the dataset's public address)")
    p.add_argument("--sha256", default=None, help="expected sha256 of the archive ('' skips the check)")
    p.add_argument("--home", type=Path, default=None,
                   help="data folder (default: $COURSEKIT_DATA, else the project's data/)")
    p.add_argument("--force", action="store_true", help="fetch again even if already there")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_data_fetch)

    p = sub.add_parser("bench", help="coursekit bench scenes|grading|neighbour|term [...]: the 15-scene "
                       "benchmark, grading time sequential vs parallel, a CPU hog's effect on the "
                       "submission graded beside it, or a term's incremental run against a full regrade")
    p.add_argument("which", choices=["scenes", "project", "grading", "neighbour", "term"])
    p.add_argument("rest", nargs=argparse.REMAINDER, help="options of python -m coursekit.benchmarks.scene_training")
    p.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (CourseError, DataError) as exc:
        print(f"coursekit: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
