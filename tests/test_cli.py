"""The `coursekit` command: subcommands work and bad input gets a one-line error, not a traceback."""
import os
import subprocess
import sys

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
