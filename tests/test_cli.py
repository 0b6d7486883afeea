"""The `coursekit` command: subcommands work and bad input gets a one-line error, not a traceback."""
import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from coursekit.cli import main


def test_release_command_writes_the_release(tmp_path, root, capsys):
    assert main(["--course", str(root), "release", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "01_backprop.ipynb").read_bytes() == (root / "notebooks" / "01_backprop.ipynb").read_bytes()
    assert "released" in capsys.readouterr().out


def test_missing_submissions_is_a_clear_error(tmp_path, root, capsys):
    code = main(["--course", str(root), "autograde", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("coursekit: no submissions at") and "Traceback" not in err


def test_a_folder_that_is_not_a_course_is_a_clear_error(tmp_path, capsys):
    code = main(["--course", str(tmp_path), "release"])
    err = capsys.readouterr().err
    assert code == 1 and "is not a course: expected solutions/" in err


def test_grading_mode_keeps_stderr_clean():
    """nbgrader scores a graded cell 0 if it writes to stderr: importing coursekit under
    NBGRADER_EXECUTION silences warnings."""
    code = "import coursekit, warnings, numpy as np; warnings.warn('noisy'); np.log(np.zeros(1))"
    env = dict(os.environ, NBGRADER_EXECUTION="autograde")
    quiet = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert quiet.returncode == 0 and quiet.stderr == ""
    env.pop("NBGRADER_EXECUTION")
    noisy = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert "noisy" in noisy.stderr


def test_data_fetch_reports_a_broken_archive_without_a_traceback(tmp_path, capsys):
    from coursekit.cli import main

    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 this is not the rest of a zip")
    assert main(["data", "fetch", "15-scene", "--from", str(broken), "--home", str(tmp_path / "home"),
                 "--sha256", "", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "not a complete zip archive" in err and "Traceback" not in err
    assert not (tmp_path / "home" / "15-scene").exists()
    assert main(["data", "fetch", "imagenet"]) == 1
    assert "unknown dataset 'imagenet'" in capsys.readouterr().err


COURSEKIT = str(Path(sys.executable).parent / "coursekit")


def _coursekit(*args, cwd):
    return subprocess.run([COURSEKIT, *args], cwd=cwd, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("where", ["repository root", "a folder outside it"])
def test_autograde_with_its_default_out_grades_from_anywhere(tmp_path, root, where):
    """`coursekit sample-class subs` then `coursekit autograde subs`, relative paths and the
    default --out, from a copy of the repository's root and from a folder that is no course."""
    if where == "repository root":
        cwd = tmp_path / "course"
        for part in ("solutions", "autograder"):
            shutil.copytree(root / part, cwd / part)
    else:
        cwd = tmp_path / "elsewhere"
        cwd.mkdir()
    made = _coursekit("sample-class", "subs", cwd=cwd)
    assert made.returncode == 0, made.stderr
    graded = _coursekit("autograde", "subs", "--no-progress", cwd=cwd)
    assert graded.returncode == 0, graded.stdout[-2000:] + graded.stderr[-2000:]
    assert "could not be graded" not in graded.stdout
    assert "grades in grading-output/grades.csv, feedback in grading-output/feedback/" in graded.stdout
    with open(cwd / "grading-output" / "grades.csv") as fh:
        scores = {row["student"]: float(row["01_backprop"]) for row in csv.DictReader(fh)}
    assert scores["alice"] == 23 and all(s < 23 for name, s in scores.items() if name != "alice")
    assert (cwd / "grading-output" / "feedback" / "carol" / "01_backprop.html").is_file()


def test_a_run_that_could_not_grade_exits_non_zero(tmp_path, capsys):
    """A submission the grader could not grade makes the command fail and say which."""
    from coursekit.cli import _report
    from coursekit.grading.pipeline.results import ClassResult, NotebookResult
    from coursekit.grading.course.directory import CourseError

    result = ClassResult([NotebookResult("ann", "01_backprop", 23, 23),
                          NotebookResult("ben", "01_backprop", 0, 23, failed=True,
                                         problems=["could not be graded: OSError: disk full"])], tmp_path)
    with pytest.raises(CourseError, match=r"1 submission\(s\) could not be graded: "
                                          r"ben/01_backprop: could not be graded: OSError: disk full"):
        _report(result, 1.0)
    assert "graded 1 of 2 submission(s)" in capsys.readouterr().out
    assert "Exit status: 0 when every submission was graded" in _coursekit("autograde", "--help", cwd=tmp_path).stdout
    missing = _coursekit("autograde", "no-such-folder", cwd=tmp_path)
    assert missing.returncode == 1 and "coursekit: no submissions at" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_the_grading_profile_prints_every_phase_and_the_ratios_to_bare_nbgrader(tmp_path, root):
    """`coursekit bench grading --profile` (a script, not a timed test: here only that it runs and
    says what it should, for one submission of 01)."""
    done = _coursekit("--course", str(root), "bench", "grading", "--profile", "--students", "1",
                     "--notebooks", "01_backprop", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    from coursekit.benchmarks.profile import PHASES

    rows = {line.split("|")[1].strip().strip("*"): line for line in done.stdout.splitlines()
            if line.startswith("| ")}
    for row in (*PHASES, "per submission", "bare nbgrader, per submission",
                "coursekit / bare nbgrader", "the same without the feedback page"):
        assert row in rows, f"no row {row!r} in:\n{done.stdout}"
    assert float(rows["bare nbgrader, per submission"].split("|")[2]) > 0
    assert rows["coursekit / bare nbgrader"].split("|")[2].strip().endswith("x")


def test_rubrics_prints_each_written_answer_for_the_people_grading(root):
    """README: `coursekit rubrics -n 03`, from the course's folder: the questions, model answers and
    rubrics of the written answers, which the release never shows."""
    done = _coursekit("rubrics", "-n", "03", cwd=root)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# 03_conv: 2 written answer(s), 4 points, graded by hand in formgrader")
    assert "## written_pooling: Written answer · Why pooling tolerates small shifts (2 points)" in done.stdout
    assert done.stdout.count("**Rubric (2 points).**") == 2 and "Model answer: " in done.stdout
    assert "BEGIN SOLUTION" not in done.stdout
    every = _coursekit("rubrics", cwd=root)
    assert every.returncode == 0 and every.stdout.count("\n# ") + 1 == len(list((root / "solutions").glob("*.ipynb")))
    wrong = _coursekit("rubrics", "-n", "42", cwd=root)
    assert wrong.returncode == 1 and "--notebook 42: expected one of 01_backprop" in wrong.stderr
    assert "Traceback" not in wrong.stderr
