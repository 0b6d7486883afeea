"""README's commands, typed as a newcomer types them: as subprocesses, exactly as written, in a
fresh copy of the repository (relative paths, default options), and checked for what a person
sees. Command 2 is what `.ci/run` runs, so CI itself is its test; command 1 builds a new venv
(pip reuses its cache, so about two minutes here) and runs the demo.
"""
import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from coursekit.grading.course.written import written_answers

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    """The two numbered commands of README's quick start, as written there."""
    text = (ROOT / "README.md").read_text()
    commands = re.findall(r"^\*\*[12]\. .*?```bash\n(.*?)\n```", text, re.MULTILINE | re.DOTALL)
    assert len(commands) == 2, "README should have **1.** and **2.** each with one ```bash block"
    return commands


def fresh_copy(dest: Path) -> Path:
    """The repository's files as a clone would have them (tracked and new, not ignored ones)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def table_rows(output: str) -> dict[str, tuple[float, float]]:
    """student -> (score, max) from the grade table a command printed."""
    rows = {}
    for line in output.splitlines():
        match = re.match(r"^(\S+)\s+(\d\d_\w+)\s+([\d.]+)\s+([\d.]+)\s", line + " ")
        if match:
            rows[match.group(1)] = (float(match.group(3)), float(match.group(4)))
    return rows


def test_ci_runs_exactly_readme_command_2():
    command = readme_commands()[1]
    assert command in (ROOT / ".ci" / "run").read_text().splitlines()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to list the repository's files")
def test_readme_command_1_on_a_fresh_copy(tmp_path):
    repo = fresh_copy(tmp_path / "coursekit")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    # python3 must be a Python >= 3.11 that is not this test's venv (a new venv is the point)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if Path(p).resolve() != Path(sys.executable).parent.resolve())
    run = subprocess.run(["bash", "-c", readme_commands()[0]], cwd=repo, env=env,
                         capture_output=True, text=True, timeout=1500)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    rows = table_rows(run.stdout)
    assert set(rows) == {"alice", "bob", "carol", "dave", "erin", "frank"}, run.stdout[-3000:]
    # alice: every point the grader gives; her written answers wait for a person (formgrader)
    by_hand = sum(w.points for w in written_answers(ROOT / "solutions" / "01_backprop.ipynb"))
    assert rows["alice"][0] == rows["alice"][1] - by_hand > 0
    assert re.search(rf"^alice .* {by_hand:g} points of written answers to grade by hand$", run.stdout, re.M)
    assert re.search(r"^\d+ written answer\(s\) \(\d+ points\) in \d+ submission\(s\) wait for grading by hand, "
                     r"in formgrader: cd \S+/course && jupyter lab", run.stdout, re.M), run.stdout[-2000:]
    assert all(score < top for student, (score, top) in rows.items() if student != "alice"), rows
    assert "could not be graded" not in output and "Traceback" not in output
    # the files it says it wrote are there, under the relative paths it printed
    said = re.search(r"grades in (\S+), feedback in (\S+?)<student>", run.stdout)
    assert said, run.stdout[-1500:]
    grades, feedback = repo / said.group(1), repo / said.group(2)
    with open(grades) as fh:
        written = {row["student"]: float(row["01_backprop"]) for row in csv.DictReader(fh)}
    assert written == {student: score for student, (score, _) in rows.items()}
    for student in rows:
        assert (feedback / student / "01_backprop.html").stat().st_size > 1000
    opened = re.search(r"open (\S+\.html)", run.stdout)
    assert opened and (repo / opened.group(1)).is_file()
