"""End to end: the sample class through nbgrader autograde, in one class run."""
import csv
import glob
import hashlib
import os
import re
import signal
import threading
import time
from pathlib import Path

import nbformat
import pytest

from coursekit.grading.pipeline.autograde import autograde
from coursekit.grading.pipeline.results import PENDING, gradebook_scores
from coursekit.grading.course.directory import CourseError
from coursekit.grading.classes.sample import NOTEBOOK, make_sample_class, student_notebook
from coursekit.grading.course.written import written_answers

TIMEOUT = 5    # the hanging students' limit
COURSE_TIMEOUT = 30   # where no one hangs: a right answer must not depend on how loaded CI is
#: the points of 01's written answers: graded by people, never by the class run
WRITTEN = sum(w.points for w in written_answers(Path(__file__).parents[1] / "solutions" / f"{NOTEBOOK}.ipynb"))
STUBBORN_LOOP = "import time\nwhile True:\n    try:\n        time.sleep(100)\n    except:\n        continue\n\n"


def _tree_digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, root, released):
    before = {d: _tree_digest(root / d) for d in ("solutions", "notebooks", "autograder")}
    subs = tmp_path_factory.mktemp("submissions")
    make_sample_class(released, root / "solutions", subs)
    ivan = student_notebook(released / f"{NOTEBOOK}.ipynb", root / "solutions" / f"{NOTEBOOK}.ipynb",
                            {"ex4_answer": lambda src: STUBBORN_LOOP + src})
    (subs / "ivan").mkdir()  # a loop whose bare except swallows the interrupt
    nbformat.write(ivan, subs / "ivan" / f"{NOTEBOOK}.ipynb")
    (subs / "gina").mkdir()  # a file that is not a notebook at all
    (subs / "gina" / f"{NOTEBOOK}.ipynb").write_text('{"cells": [ not json')
    (subs / "hank").mkdir()  # handed in a notebook under the wrong name only
    (subs / "hank" / "my_notes.ipynb").write_text((subs / "alice" / f"{NOTEBOOK}.ipynb").read_text())
    out = tmp_path_factory.mktemp("grading")
    result = autograde(root, subs, out, timeout=TIMEOUT, jobs=2, progress=False)
    result.subs = subs
    after = {d: _tree_digest(root / d) for d in ("solutions", "notebooks", "autograder")}
    return result, before, after


def _exercises(result, student):
    return {e.grade_id: e for e in result.get(student, NOTEBOOK).exercises}


def _lost(result, student):
    """Exercises where the student scored less than the maximum (written answers wait for people)."""
    return sorted(g for g, e in _exercises(result, student).items()
                  if e.score < e.max_score and e.graded_by != PENDING)


def test_instructor_answers_get_full_marks(graded):
    result = graded[0]
    alice = result.get("alice", NOTEBOOK)
    assert alice.max_score > 0 and alice.score == alice.max_score - WRITTEN
    assert alice.awaiting == WRITTEN > 0   # her written answers (the model answers) wait for a person
    assert alice.problems == []


def test_written_answers_wait_for_people_and_blank_ones_score_zero(graded):
    """nbgrader's manually graded answers: the class run gives them no score and says so (the
    table, grades_by_exercise.csv, the feedback page); one left as released scores 0 at once."""
    result = graded[0]
    alice, bob = result.get("alice", NOTEBOOK), result.get("bob", NOTEBOOK)
    written = {e.grade_id: e for e in alice.exercises if e.grade_id.startswith("written_")}
    assert len(written) >= 2 and {e.graded_by for e in written.values()} == {PENDING}
    assert all(e.score == 0 for e in written.values())
    assert bob.awaiting == 0 and all(e.graded_by == "grader" for e in bob.exercises)   # blank: 0, nothing to grade
    assert re.search(rf"^alice .* {WRITTEN:g} points of written answers to grade by hand$", result.table(), re.M)
    rows = list(csv.DictReader(open(result.out / "grades_by_exercise.csv")))
    mine = {r["exercise"]: r["graded_by"] for r in rows if r["student"] == "alice"}
    assert {mine[g] for g in written} == {PENDING} and mine["ex1_tests"] == "grader"
    subs = {r["student"]: r for r in csv.DictReader(open(result.out / "submissions.csv"))}
    assert float(subs["alice"]["to_grade_by_hand"]) == WRITTEN and float(subs["bob"]["to_grade_by_hand"]) == 0
    page = (result.out / "feedback" / "alice" / f"{NOTEBOOK}.html").read_text()
    assert page.count("to be graded by hand, 2 points") == 2 * len(written)   # contents and cell heading
    assert f"{len(written)} written answer(s), {WRITTEN:g} points, are still to be graded by hand" in page
    assert "to be graded by hand" not in (result.out / "feedback" / "bob" / f"{NOTEBOOK}.html").read_text()


def test_untouched_release_gets_zero_without_crashing(graded):
    bob = graded[0].get("bob", NOTEBOOK)
    assert bob.score == 0 and bob.max_score > 0
    assert not any("could not be graded" in p for p in bob.problems)
    assert len(bob.exercises) == len(_exercises(graded[0], "alice"))


@pytest.mark.parametrize("student, exercise", [
    ("carol", "ex4_tests"),   # one wrong answer
    ("dave", "ex6a_tests"),   # an answer cell that never finishes
    ("erin", "ex2b_tests"),   # an answer cell that kills the kernel
    ("frank", "ex5_tests"),   # calls the reference implementation
    ("ivan", "ex4_tests"),    # never finishes and ignores the interrupt
])
def test_one_broken_answer_loses_exactly_that_exercise(graded, student, exercise):
    result = graded[0]
    assert _lost(result, student) == [exercise], result.get(student, NOTEBOOK).problems
    assert _exercises(result, student)[exercise].score == 0
    r, full = result.get(student, NOTEBOOK), result.get("alice", NOTEBOOK)
    assert r.score == full.score - _exercises(result, "alice")[exercise].max_score


def test_problems_are_reported(graded):
    result = graded[0]
    assert any("ex6a_answer" in p and f"{TIMEOUT} s cell time limit" in p
               for p in result.get("dave", NOTEBOOK).problems)
    assert any("ex2b_answer" in p and "killed its kernel" in p
               for p in result.get("erin", NOTEBOOK).problems)
    assert any("ex5_tests" in p and "reference" in p for p in result.get("frank", NOTEBOOK).problems)
    assert any("ex4_answer" in p and "ignored the interrupt" in p for p in result.get("ivan", NOTEBOOK).problems)
    assert "dave" in result.table() and "killed its kernel" in result.table()


def test_broken_and_missing_submissions_score_zero_and_say_why(graded):
    result = graded[0]
    gina, hank = result.get("gina", NOTEBOOK), result.get("hank", NOTEBOOK)
    assert gina.score == 0 and gina.max_score > 0
    assert any(p.startswith("not a valid notebook") for p in gina.problems)
    assert hank.score == 0 and hank.problems == ["no submission"]
    assert any("hank: ignored my_notes.ipynb" in n for n in result.notes)
    assert result.get("alice", NOTEBOOK).score == result.get("alice", NOTEBOOK).max_score - WRITTEN


def test_hanging_cell_is_cut_off_by_the_timeout(graded):
    """The cell that never ends ran for the time limit and a moment more (nbclient's own timing
    of the cell, from its start to the kernel's reply after the interrupt): not the whole
    notebook's time, which a loaded machine stretches."""
    from datetime import datetime

    result = graded[0]
    dave = result.get("dave", NOTEBOOK)
    nb = nbformat.read(result.out / "course" / "autograded" / "dave" / NOTEBOOK / f"{NOTEBOOK}.ipynb", 4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex6a_answer")
    timing = {k: datetime.fromisoformat(v.replace("Z", "+00:00")) for k, v in cell.metadata.execution.items()}
    ran = (timing["shell.execute_reply"] - timing["iopub.status.busy"]).total_seconds()
    # the kernel's "busy" comes a moment after nbclient starts the cell's clock (4.9992 s was seen)
    assert TIMEOUT - 0.5 <= ran < TIMEOUT + 5, ran
    assert dave.seconds >= TIMEOUT


def test_grades_csv_and_feedback(graded):
    result = graded[0]
    with open(result.out / "grades.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["student"] for r in rows} == {"alice", "bob", "carol", "dave", "erin", "frank",
                                            "gina", "hank", "ivan"}
    by_student = {r["student"]: r for r in rows}
    assert float(by_student["alice"]["01_backprop"]) == 23 and float(by_student["alice"]["max_total"]) == 23 + WRITTEN
    assert float(by_student["bob"]["01_backprop"]) == 0
    for r in result.results:
        if r.student in ("gina", "hank"):
            assert r.feedback is None
            continue
        html = r.feedback.read_text()
        assert "<html" in html.lower() and NOTEBOOK in html
        # the hidden tests stay hidden: neither their markers nor their seeds reach the student
        assert "HIDDEN TESTS" not in html and not re.search(r"graded=\d", html)
        assert "hidden tests ran here" in html
        # no matplotlib warning naming the grader's folders under the first cell
        assert "not a writable directory" not in html and "Matplotlib created a temporary" not in html
    carol = result.get("carol", NOTEBOOK).feedback.read_text()
    assert "CheckError: dW: the transpose of 2 q x^T" in carol  # the diagnosis does reach them


def test_feedback_is_for_the_student(graded):
    """No grading internals, the self-checks' own words for unanswered answers, a line where an
    earlier cell was stopped, exercises named in the contents, math that needs no network."""
    result = graded[0]
    pages = {r.student: r.feedback.read_text() for r in result.results if r.feedback}
    for student, html in pages.items():
        assert "__judge__" not in html and "Remote" not in html, student
        assert "cdnjs" not in html and "<script src=" not in html, student  # nothing from a CDN
        assert html.count("<math") > 20, student  # LaTeX became MathML
        assert "Test cell" not in html and "Grade cell:" not in html, student
        assert '<a href="#ex4_tests">Exercise 4 · Vectorised gradients' in html, student
        # the student's kernel holds no answer, yet its self-checks say what they said at home;
        # only frank, whose answer calls the reference, is told it is not there
        if student != "frank":
            assert "LockedAnswer" not in html and "not unlocked in this copy" not in html, student
    assert "coursekit.reference.backprop.softmax_nll is the answer to an exercise of notebook 01_backprop" \
        in pages["frank"]
    assert "q is still the placeholder `...`: replace it with your answer." in pages["bob"]
    assert "rel_error is not implemented yet" in pages["bob"]
    # dave's ex6a answer was stopped: ex6b's graded cell, which uses it, says why it fails
    dave = pages["dave"]
    assert dave.count("Note: an earlier cell did not finish") >= 1
    assert "your answer to exercise 6a was stopped at the cell time limit" in dave
    assert "Note: an earlier cell did not finish" not in pages["alice"]
    # the intro is the notebook's own first cell, not grading code put in its place
    assert "Every network in this course learns by" in pages["alice"]


def test_repository_is_not_modified(graded):
    _, before, after = graded
    assert before == after


def test_parallel_grading_gives_the_same_gradebook_as_sequential(graded, tmp_path, root):
    parallel = graded[0]
    sequential = autograde(root, parallel.subs, tmp_path / "seq", timeout=TIMEOUT, jobs=1, progress=False)
    rows = gradebook_scores(parallel.out)
    graded_students = {r.student for r in parallel.results if r.exercises}
    assert len(graded_students) == 7 and {key[0] for key in rows} == graded_students, \
        [(r.student, r.problems) for r in parallel.results if not r.exercises]
    assert rows == gradebook_scores(tmp_path / "seq")
    assert [(r.student, r.score) for r in sequential.results] == [(r.student, r.score) for r in parallel.results]


def test_lms_zip_is_collected(tmp_path, root, released):
    import zipfile

    from coursekit.grading.classes.sample import solution_sources

    assert solution_sources(root / "solutions" / f"{NOTEBOOK}.ipynb")
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        nb = student_notebook(released / f"{NOTEBOOK}.ipynb", root / "solutions" / f"{NOTEBOOK}.ipynb")
        zf.writestr(f"ann_12345_assignsubmission_file_{NOTEBOOK}.ipynb", nbformat.writes(nb))
    result = autograde(root, archive, tmp_path / "out", timeout=COURSE_TIMEOUT, progress=False)
    ann = result.get("ann", NOTEBOOK)
    assert ann.score == ann.max_score - WRITTEN > 0


def test_bad_submissions_path_gives_a_clear_error(tmp_path, root):
    with pytest.raises(CourseError, match="no submissions at"):
        autograde(root, tmp_path / "nope", tmp_path / "out", progress=False)
    (tmp_path / "truncated.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CourseError, match="not a valid zip archive"):
        autograde(root, tmp_path / "truncated.zip", tmp_path / "out2", progress=False)


def test_a_report_that_cannot_be_recorded_marks_only_its_submission(tmp_path, root, released):
    """The class run trusts no worker's report: one whose grades name a cell the gradebook does
    not have (a worker gone wrong) marks that submission, leaves no half-written submission in
    the gradebook, and the other student is recorded and grades.csv written as usual."""
    from coursekit.grading.pipeline.gradebook import Recorder, class_gradebook
    from coursekit.grading.pipeline.plan import plan_class
    from coursekit.grading.pipeline.pool import run_workers
    from coursekit.grading.pipeline.results import write_csvs

    nb = student_notebook(released / f"{NOTEBOOK}.ipynb", root / "solutions" / f"{NOTEBOOK}.ipynb")
    for student in ("good", "spoilt"):
        (tmp_path / "subs" / student).mkdir(parents=True)
        nbformat.write(nb, tmp_path / "subs" / student / f"{NOTEBOOK}.ipynb")
    plan = plan_class(root, tmp_path / "subs", tmp_path / "out", timeout=COURSE_TIMEOUT, jobs=2, limits=None)

    def spoil(key, report):
        if key == ("spoilt", NOTEBOOK):
            report.grades["no_such_cell"] = [1.0, 1.0]
        recorder.report(key, report)

    with class_gradebook(plan) as gb:
        recorder = Recorder(plan, gb)
        run_workers(plan.jobs, plan.concurrency, plan.wall, progress=False, on_report=spoil)
        recorder.finish()
        write_csvs(plan.out, gb, plan.releases, {k: v.content for k, v in plan.stored.items()})
    plan.lock.close()
    good, spoilt = plan.results[("good", NOTEBOOK)], plan.results[("spoilt", NOTEBOOK)]
    assert (good.score, good.failed) == (good.max_score - WRITTEN, False) and good.max_score > 0
    assert spoilt.failed and any("could not record this submission" in p for p in spoilt.problems)
    scores = gradebook_scores(tmp_path / "out")
    assert {s for s, _, _ in scores} == {"good"}  # nothing half-written for spoilt
    rows = list(csv.DictReader(open(tmp_path / "out" / "grades.csv")))
    assert {r["student"] for r in rows} == {"good", "spoilt"}


def _kill_worker_of(log, killed: list, within: float = 120) -> None:
    """SIGKILL the grader's worker process writing ``log`` (not the kernels it started), a
    second after it starts: a worker lost mid-submission, as the kernel's OOM killer would."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for fd in glob.glob("/proc/[0-9]*/fd/1"):
            try:
                if os.readlink(fd) != str(log):
                    continue
                pid = int(fd.split("/")[2])
                cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
            except (OSError, ValueError):
                continue
            if b"forkserver" in cmdline or b"pipeline.worker" in cmdline:
                time.sleep(1)
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
        time.sleep(0.05)


def test_a_worker_lost_mid_submission_is_graded_again(tmp_path, root, released):
    """The grader's own trouble (here its worker process killed while it grades) costs no grade:
    that submission is graded once more after the others, the run says so, and the gradebook
    holds it once, with full marks."""
    nb = student_notebook(released / f"{NOTEBOOK}.ipynb", root / "solutions" / f"{NOTEBOOK}.ipynb")
    for student in ("alice", "bob"):
        (tmp_path / "subs" / student).mkdir(parents=True)
        nbformat.write(nb, tmp_path / "subs" / student / f"{NOTEBOOK}.ipynb")
    out, killed = tmp_path / "out", []
    killer = threading.Thread(target=_kill_worker_of, daemon=True,
                              args=(out / "work" / "jobs" / "alice" / NOTEBOOK / "worker.log", killed))
    killer.start()
    result = autograde(root, tmp_path / "subs", out, timeout=COURSE_TIMEOUT, jobs=2, progress=False)
    killer.join()
    assert killed, "alice's worker was never seen"
    for student in ("alice", "bob"):
        r = result.get(student, NOTEBOOK)
        assert (r.score, r.failed) == (r.max_score - WRITTEN, False) and r.max_score > 0, (student, r.problems)
    assert [n for n in result.notes if n.startswith(f"alice/{NOTEBOOK}: the grader failed on it (the grader's "
                                                    "worker stopped (exit status -9)")
            and n.endswith("and graded the second time")], result.notes
    scores = gradebook_scores(out)
    assert sum(1 for s, _, _ in scores if s == "alice") == len(result.get("alice", NOTEBOOK).exercises)
    rows = list(csv.DictReader(open(out / "grades.csv")))
    assert sorted(r["student"] for r in rows) == ["alice", "bob"]
