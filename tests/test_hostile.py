"""A class of hostile and broken submissions, graded in one run with a control student last
(coursekit.grading.classes.hostile): nobody scores more than they deserve, the honest-but-broken
keep what they earned, and nothing outside each submission changes."""
import hashlib
import sqlite3

import nbformat
import pytest

from coursekit.grading.pipeline.autograde import autograde
from coursekit.grading.classes.hostile import (ANSWER_FUNCTION, CASES, FULL, LEAK, POINTS, REFERENCE_TRICKS,
                                               SELF_REPORTS, TRICKS_BY_SUBMISSION, _reference_trick,
                                               make_hostile_class, make_self_report_class)
from coursekit.grading.classes.sample import NOTEBOOK
from coursekit.grading.kernel.sandbox import capabilities

#: without Landlock the student's kernel can read the grader's own coursekit (the summary says so)
NO_LANDLOCK = "no Landlock on this machine: the grader's coursekit is readable by the kernel"

TIMEOUT = 5


def _digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, root, released):
    subs = tmp_path_factory.mktemp("hostile")
    make_hostile_class(released, root / "solutions", subs)
    before = {"submissions": _digest(subs), **{d: _digest(root / d) for d in ("solutions", "notebooks", "autograder")}}
    out = tmp_path_factory.mktemp("graded")
    result = autograde(root, subs, out, timeout=TIMEOUT, progress=False)
    after = {"submissions": _digest(subs), **{d: _digest(root / d) for d in ("solutions", "notebooks", "autograder")}}
    return result, before, after, out


@pytest.mark.parametrize("student", sorted(CASES))
def test_no_submission_scores_more_than_it_deserves(hostile, student):
    case, r = CASES[student], hostile[0].get(student, NOTEBOOK)
    if "grader-copy" in TRICKS_BY_SUBMISSION.get(student.rpartition("-")[2], {}) \
            and not capabilities()["answers out of reach"]:
        pytest.skip(NO_LANDLOCK)
    if case.hostile:
        assert r.score <= case.deserved, (r.score, r.problems)
    else:  # honest but broken: keeps exactly what it earned
        assert r.score == case.deserved, (r.score, r.problems)


def test_the_control_student_graded_last_keeps_full_marks(hostile):
    r = hostile[0].get("zz-control", NOTEBOOK)
    assert (r.score, r.max_score - r.awaiting, r.problems) == (FULL, FULL, [])   # written answers: for people


def test_nothing_outside_each_submission_changed(hostile):
    _, before, after, out = hostile
    assert before == after
    with sqlite3.connect(out / "course" / "gradebook.db") as db:  # the gradebook survived, whole
        students = {row[0] for row in db.execute("select id from student")}
    assert set(CASES) - {"invalid-json", "wrong-name"} <= students


def test_no_attack_reported_success(hostile):
    autograded = hostile[3] / "course" / "autograded"
    outputs = [o for nb in autograded.rglob("*.ipynb") for c in nbformat.read(nb, 4).cells
               for o in c.get("outputs", [])]
    if not capabilities()["answers out of reach"]:  # the grader-copy trick may read it
        outputs = [o for o in outputs if "read" not in str(o) or "coursekit" not in str(o)]
    assert outputs and not any(LEAK in str(o) for o in outputs)


@pytest.mark.parametrize("trick", sorted(REFERENCE_TRICKS))
def test_every_reference_trick_computes_the_reference_in_one_kernel(trick):
    """The tricks are real: with the grader's coursekit in the same kernel (as a self-check
    runs at home with the instructor's copy), each one computes the reference's answer. (In a
    process of its own: a trick patches coursekit.reference.)"""
    import subprocess
    import sys

    code = ("import numpy as np\n" + _reference_trick(trick, "ex5") +
            "\nfrom coursekit.reference import _original\n"
            "scores, y = np.random.default_rng(0).standard_normal((3, 4)), np.array([0, 1, 2])\n"
            f"print(bool(np.isclose({ANSWER_FUNCTION['ex5']}(scores, y)[0], "
            "_original('backprop.softmax_nll')(scores, y)[0])))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "True", done.stdout


@pytest.mark.parametrize("part", sorted(TRICKS_BY_SUBMISSION))
def test_each_reference_trick_scores_0_for_its_exercise_only(hostile, part):
    """Graded, the student's kernel holds no reference: each trick's exercise scores 0, every
    other exercise full marks."""
    tricks = TRICKS_BY_SUBMISSION[part]
    if "grader-copy" in tricks and not capabilities()["answers out of reach"]:
        pytest.skip(NO_LANDLOCK)
    scores = {e.grade_id: e.score for e in hostile[0].get(f"reference-tricks-{part}", NOTEBOOK).exercises}
    assert {ex: scores[f"{ex}_tests"] for ex in tricks.values()} == dict.fromkeys(tricks.values(), 0), scores
    assert all(scores[f"{ex}_tests"] == POINTS[ex] for ex in POINTS if ex not in tricks.values()), scores


@pytest.fixture(scope="module")
def self_reports(tmp_path_factory, root, released):
    subs = tmp_path_factory.mktemp("self-report")
    make_self_report_class(released, root / "solutions", subs)
    return autograde(root, subs, tmp_path_factory.mktemp("self-report-graded"), progress=False)


@pytest.mark.parametrize("notebook", sorted(SELF_REPORTS))
def test_nothing_the_students_kernel_says_about_itself_earns_points(self_reports, notebook):
    """A loop hidden from a line counter, networks of coursekit's with no ancestry to show, a
    reference under the graded function's own name: each loses its exercise; every other
    exercise of the notebook keeps full marks."""
    _, lose, _ = SELF_REPORTS[notebook]
    result = self_reports.get("self-report", notebook)
    scores = {e.grade_id: (e.score, e.max_score) for e in result.exercises
              if not e.grade_id.startswith("written_")}   # for people to grade
    assert {ex: scores[f"{ex}_tests"][0] for ex in lose} == dict.fromkeys(lose, 0), (scores, result.problems)
    # (07's held-out cells grade the model files handed in, which this class does not hand in:
    # tests/test_held_out.py grades those)
    assert all(score == most for grade_id, (score, most) in scores.items()
               if grade_id.split("_")[0] not in lose and not (notebook == "07_scenes" and grade_id.startswith("ex10_"))
               ), (scores, result.problems)


@pytest.mark.parametrize("student, says", [
    ("hang-sleep", "cell time limit"),
    ("busy-threads", "kernel restarted"),  # its spinning threads outlive the interrupt otherwise
    ("exit-kernel", "killed its kernel"),
    ("segfault", "killed its kernel"),
    ("print-flood", "printed too much"),
    ("disk-filler", "MB of files"),
    ("edited-test-cell", "ex5_tests was edited"),
    ("deleted-test-cell", "ex4_tests was deleted: put back"),
    ("test-to-markdown", "ex6a_tests was edited"),
    ("metadata-edited", "ex3a_answer: its nbgrader metadata was edited"),
    ("duplicate-grade-id", "a second cell with the grade id 'ex1_answer'"),
    ("deleted-answer", "ex6b_answer was deleted"),
    ("invalid-json", "not valid JSON"),
    ("wrong-name", "no submission"),
    ("calls-reference", "calls the reference implementation"),
])
def test_the_summary_says_what_happened(hostile, student, says):
    problems = hostile[0].get(student, NOTEBOOK).problems
    assert any(says in p for p in problems), problems
    assert not any("Traceback" in p for p in problems)


def test_tampering_does_not_change_the_verdict_on_a_wrong_answer(hostile):
    """The tampering cases lose exactly the exercise they answered wrong."""
    result = hostile[0]
    for student, exercise in [("patch-numpy", "ex5_tests"), ("patch-checkers", "ex4_tests"),
                              ("ipython-hooks", "ex6a_tests"), ("redefine-names", "ex6b_tests"),
                              ("excepthook", "ex6b_tests")]:
        scores = {e.grade_id: e.score for e in result.get(student, NOTEBOOK).exercises}
        assert scores[exercise] == 0, (student, scores)


def test_a_value_that_cannot_cross_costs_only_its_exercise_and_says_why(hostile):
    """A 300,000-item list as an answer: its exercise scores 0 with a message that says the
    value could not be sent and what to use instead; every other exercise keeps its points."""
    result = hostile[0].get("huge-value", NOTEBOOK)
    scores = {e.grade_id: e.score for e in result.exercises if not e.grade_id.startswith("written_")}   # for people
    assert scores["ex2b_tests"] == 0 and all(v > 0 for k, v in scores.items() if k != "ex2b_tests"), scores
    nb = nbformat.read(hostile[3] / "course" / "autograded" / "huge-value" / NOTEBOOK / f"{NOTEBOOK}.ipynb", 4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex2b_tests")
    text = "".join(o.get("evalue", "") + o.get("text", "") for o in cell.outputs)
    assert "df_dw could not be sent to the grader" in text and "use an array" in text, text
