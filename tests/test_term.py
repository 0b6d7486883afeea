"""A term in one course (issue 16): notebook 01 graded for a class; later notebook 02 for the same
class, with one late submission of 01 and one changed resubmission; a run killed with kill -9 and
rerun; a fixed hidden test; formgrader on the course; the LMS exports and feedback bundles.

The class runs are real (nbgrader, sandboxed kernels, the judge) and small: two students, then
five submissions. Due dates and late penalties are the course configuration's
(``autograder/nbgrader_config.py`` of a copy of the course, with due dates added).
"""
import csv
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import nbformat
import pytest

from nbgrader.api import Gradebook

from coursekit.grading.classes.sample import STUDENTS, student_notebook
from coursekit.grading.course.written import written_answers
from coursekit.grading.pipeline import ledger
from coursekit.grading.pipeline.autograde import autograde
from coursekit.grading.pipeline.results import gradebook_scores

TIMEOUT = 30   # the course's own limit: no student here hangs, and 02's first graded cell takes 4-5 s alone, 10+ on a loaded CI machine
DUE = {"01_backprop": "2026-10-09 17:00:00 UTC",
       "02_layers": "2026-10-23 18:00:00 Europe/London"}  # 17:00 UTC (summer time until Oct 25)
CONFIG = f"""
c.Deadlines.due = {DUE!r}
c.LatePenalty.penalty_method = "per_day"
c.LatePenalty.percent_per_day = 10.0
c.LatePenalty.floor_percent = 50.0
"""
ROSTER = """student_id,first_name,last_name,email,sis_user_id,sis_login_id,section,canvas_id
ann,Ada,Lovelace,ada@uni.example,S001,alovelace,Section A,1001
ben,Ben,"Bitdiddle, Jr.",,S002,bbitdiddle,Section B,1002
eve,Eve,Hopper,eve@uni.example,S005,ehopper,Section A,1005
"""
COURSEKIT = str(Path(sys.executable).parent / "coursekit")
#: the points of each notebook's written answers, graded by people in formgrader
BY_HAND = {name: sum(w.points for w in written_answers(Path(__file__).parents[1] / "solutions" / f"{name}.ipynb"))
           for name in ("01_backprop", "02_layers")}
MAX01, MAX02 = 23 + BY_HAND["01_backprop"], 24 + BY_HAND["02_layers"]   # the grader's points and the written answers'


def course_copy(root: Path, dest: Path) -> Path:
    """The course (solutions/ and autograder/) with the term's due dates in its configuration."""
    for part in ("solutions", "autograder"):
        shutil.copytree(root / part, dest / part)
    with open(dest / "autograder" / "nbgrader_config.py", "a") as fh:
        fh.write(CONFIG)
    return dest


def hand_in(subs: Path, student: str, name: str, nb, when: str | None = None) -> None:
    """nbgrader's layout: subs/<student>/<notebook>/<notebook>.ipynb and its timestamp.txt."""
    folder = subs / student / name
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{name}.ipynb")
    if when:
        (folder / "timestamp.txt").write_text(when + "\n")


def late(score: float, days: int) -> float:
    """The configured penalty: 10% of the score per started day late, at most 50%."""
    return round(score * min(0.1 * days, 0.5), 6)


def coursekit(*args, cwd=None, timeout=900):
    return subprocess.run([COURSEKIT, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def term(tmp_path_factory, root, released):
    tmp = tmp_path_factory.mktemp("term")
    course = course_copy(root, tmp / "course")
    right01 = student_notebook(released / "01_backprop.ipynb", root / "solutions" / "01_backprop.ipynb")
    wrong01 = student_notebook(released / "01_backprop.ipynb", root / "solutions" / "01_backprop.ipynb",
                               STUDENTS["carol"][1])  # dW transposed: loses exercise 4
    right02 = student_notebook(released / "02_layers.ipynb", root / "solutions" / "02_layers.ipynb")
    (tmp / "roster.csv").write_text(ROSTER)
    # Week 2: notebook 01, on time.
    week2 = tmp / "week2"
    hand_in(week2, "ann", "01_backprop", right01, "2026-10-08 10:00:00 UTC")
    hand_in(week2, "ben", "01_backprop", wrong01, "2026-10-09 16:59:00 UTC")
    out = tmp / "out"
    first = autograde(course, week2, out, timeout=TIMEOUT, jobs=2, progress=False)
    first_scores = gradebook_scores(out)
    first_grades = (out / "grades.csv").read_text()
    start = time.perf_counter()
    again = coursekit("--course", course, "autograde", week2, "--out", out, "--no-progress")
    again_seconds = time.perf_counter() - start
    # Week 4: what the LMS holds now: 01 again (ann's unchanged, ben's fixed a day late, dan's
    # first, two days and three hours late) and 02.
    week4 = tmp / "week4"
    hand_in(week4, "ann", "01_backprop", right01, "2026-10-08 10:00:00 UTC")
    hand_in(week4, "ann", "02_layers", right02, "2026-10-23 16:30:00 UTC")
    hand_in(week4, "ben", "01_backprop", right01, "2026-10-10 12:00:00 UTC")
    hand_in(week4, "ben", "02_layers", right02, "2026-10-23 17:30:00 UTC")
    hand_in(week4, "dan", "01_backprop", right01, "2026-10-11 20:00:00 UTC")
    second = autograde(course, week4, out, timeout=TIMEOUT, jobs=2, progress=False, roster=tmp / "roster.csv")
    return dict(tmp=tmp, course=course, out=out, week2=week2, first=first, first_scores=first_scores,
                first_grades=first_grades, again=again, again_seconds=again_seconds, second=second)


def test_week_2_grades_the_class(term):
    first = term["first"]
    assert [(r.student, r.notebook, r.skipped, r.failed) for r in first.results] == [
        ("ann", "01_backprop", False, False), ("ben", "01_backprop", False, False)]
    ann, ben = first.get("ann", "01_backprop"), first.get("ben", "01_backprop")
    assert (ann.score, ann.max_score, ann.awaiting) == (23, MAX01, BY_HAND["01_backprop"]) and ben.score == 20
    assert ann.submitted == "2026-10-08 10:00:00" and ann.late_penalty == 0


def test_a_rerun_on_the_same_submissions_grades_nothing_and_says_how_many_it_skipped(term):
    again = term["again"]
    assert again.returncode == 0, again.stderr
    assert "graded 0 of 0 submission(s)" in again.stdout and "skipped 2 unchanged since graded" in again.stdout
    assert re.search(rf"^ann\s+01_backprop\s+23\s+{MAX01:g}\s+-\s+unchanged since graded", again.stdout, re.M)
    assert term["again_seconds"] < 30  # no kernel started (a graded notebook alone takes ~6 s)
    # both students' written answers (the model answers) wait for a person, and the run says where
    waiting = 2 * len(written_answers(Path(__file__).parents[1] / "solutions" / "01_backprop.ipynb"))
    assert re.search(rf"^{waiting} written answer\(s\) \({2 * BY_HAND['01_backprop']:g} points\) in 2 submission\(s\) "
                     rf"wait for grading by hand, in formgrader: cd \S+/course && jupyter lab", again.stdout, re.M), again.stdout


def test_week_4_adds_notebook_02_grades_what_changed_and_applies_late_penalties(term):
    second, out = term["second"], term["out"]
    graded = {(r.student, r.notebook) for r in second.results if not r.skipped and r.problems != ["no submission"]}
    skipped = {(r.student, r.notebook) for r in second.results if r.skipped}
    assert graded == {("ann", "02_layers"), ("ben", "01_backprop"), ("ben", "02_layers"), ("dan", "01_backprop")}
    assert skipped == {("ann", "01_backprop")}
    assert not second.failed
    ben01, ben02, dan01 = (second.get(*k) for k in [("ben", "01_backprop"), ("ben", "02_layers"), ("dan", "01_backprop")])
    assert ben01.late_penalty == pytest.approx(late(23, 1)) and ben01.score == pytest.approx(23 - late(23, 1))
    assert ben02.late_penalty == pytest.approx(late(24, 1))   # 30 min after 18:00 London time
    assert dan01.late_penalty == pytest.approx(late(23, 3))   # 2 d 3 h: three started days
    assert any("handed in 2 d 3 h late: -6.9 points" in p for p in dan01.problems)
    assert second.get("dan", "02_layers").problems == ["no submission"]
    # grades.csv: every student x every notebook so far, plus a total (after penalties)
    rows = {r["student"]: r for r in read_csv(out / "grades.csv")}
    assert list(rows["ann"]) == ["student", "01_backprop", "02_layers", "total", "max_total"]
    expected = {"ann": (23, 24), "ben": (23 - late(23, 1), 24 - late(24, 1)), "dan": (23 - late(23, 3), 0),
                "eve": (0, 0)}   # eve is in the roster and handed in nothing
    assert set(rows) == set(expected)
    for student, (nb1, nb2) in expected.items():
        assert float(rows[student]["01_backprop"]) == pytest.approx(nb1)
        assert float(rows[student]["02_layers"]) == pytest.approx(nb2)
        assert float(rows[student]["total"]) == pytest.approx(nb1 + nb2)
        assert float(rows[student]["max_total"]) == MAX01 + MAX02
    # submissions.csv: the penalty per submission, when it came in, and what it was graded against
    subs = {(r["student"], r["notebook"]): r for r in read_csv(out / "submissions.csv")}
    assert subs[("dan", "01_backprop")]["late_penalty"] == "6.9"
    assert subs[("dan", "01_backprop")]["raw_score"] == "23"
    assert subs[("dan", "01_backprop")]["submitted_utc"] == "2026-10-11 20:00:00"
    assert subs[("dan", "01_backprop")]["due_utc"] == "2026-10-09 17:00:00"
    assert subs[("ben", "02_layers")]["due_utc"] == "2026-10-23 17:00:00"
    assert subs[("ann", "01_backprop")]["graded_against"] == "current"
    assert subs[("eve", "02_layers")]["status"] == "no submission"
    # the unchanged submission kept its grade; the changed one replaced the old one
    scores = gradebook_scores(out)
    assert {k: v for k, v in scores.items() if k[:2] == ("ann", "01_backprop")} == \
        {k: v for k, v in term["first_scores"].items() if k[:2] == ("ann", "01_backprop")}
    assert scores[("ben", "01_backprop", "ex4_tests")][0] > 0 == term["first_scores"][("ben", "01_backprop", "ex4_tests")][0]
    # feedback pages of both weeks are there
    for student, name in [("ann", "01_backprop"), ("ann", "02_layers"), ("ben", "01_backprop"), ("dan", "01_backprop")]:
        assert (out / "feedback" / student / f"{name}.html").stat().st_size > 1000


def test_a_run_killed_with_kill_9_and_rerun_gives_the_gradebook_of_an_uninterrupted_run(term):
    course, week2 = term["course"], term["week2"]
    out = term["tmp"] / "killed"
    run = subprocess.Popen([COURSEKIT, "--course", str(course), "autograde", str(week2), "--out", str(out),
                            "--jobs", "1", "--timeout", str(TIMEOUT), "--no-progress"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    recorded = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and run.poll() is None:
        recorded = _recorded(out)
        if recorded:
            break
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)  # the whole process group of the class run
    run.wait()
    assert recorded == 1, f"the run should have been killed half-way (it had recorded {recorded} of 2)"
    # its workers die with it (a worker started just before the kill leaves as soon as it has
    # imported what it needs, before it reads its job)
    for _ in range(150):
        leftover = subprocess.run(["pgrep", "-f", str(out / "work")], capture_output=True, text=True).stdout.split()
        if not leftover:
            break
        time.sleep(0.1)
    assert leftover == [], "a worker of the killed run was still running after 15 s"
    rerun = coursekit("--course", course, "autograde", week2, "--out", out, "--timeout", TIMEOUT, "--no-progress")
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    assert "graded 1 of 1 submission(s)" in rerun.stdout and "skipped 1 unchanged" in rerun.stdout
    assert gradebook_scores(out) == term["first_scores"]
    assert (out / "grades.csv").read_text() == term["first_grades"]
    with sqlite3.connect(out / "course" / "gradebook.db") as db:
        assert db.execute("SELECT COUNT(*) FROM submitted_assignment").fetchone()[0] == 2
        assert db.execute("SELECT COUNT(*) FROM coursekit_graded").fetchone()[0] == 2


def _recorded(out: Path) -> int:
    try:
        with sqlite3.connect(f"file:{out / 'course' / 'gradebook.db'}?mode=ro", uri=True, timeout=0.2) as db:
            return db.execute("SELECT COUNT(*) FROM coursekit_graded").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_a_fixed_hidden_test_is_detected_and_regraded_on_request(term, tmp_path):
    course = tmp_path / "course"
    shutil.copytree(term["course"], course)
    out = tmp_path / "out"
    shutil.copytree(term["out"] / "course", out / "course")  # the term so far, as it is
    source = course / "solutions" / "01_backprop.ipynb"
    text = source.read_text()
    seed = re.search(r"graded=(\d+)", text)
    source.write_text(text.replace(seed.group(0), f"graded={int(seed.group(1)) + 1}", 1))
    noticed = coursekit("--course", course, "autograde", term["tmp"] / "week4", "--out", out, "--no-progress")
    assert noticed.returncode == 0, noticed.stderr
    assert "graded 0 of 0 submission(s)" in noticed.stdout and "skipped 5 unchanged" in noticed.stdout
    assert re.search(r"3 submission\(s\) of 01_backprop were graded against an older "
                     r"solutions/01_backprop.ipynb \(ann, ben, dan\): their grades are kept; "
                     r"--regrade-outdated regrades them", noticed.stdout), noticed.stdout
    subs = {(r["student"], r["notebook"]): r for r in read_csv(out / "submissions.csv")}
    assert subs[("ann", "01_backprop")]["graded_against"] == "older"
    assert subs[("ann", "02_layers")]["graded_against"] == "current"
    # what the instructor did by hand in formgrader meanwhile: a manual score for ann's exercise 1
    # (1 of 2 points) and a three-day extension for dan; regrading the same files keeps both
    with Gradebook(f"sqlite:///{out / 'course' / 'gradebook.db'}") as gb:
        gb.find_grade("ex1_tests", "01_backprop", "01_backprop", "ann").manual_score = 1.0
        gb.db.commit()
        gb.grant_extension("01_backprop", "dan", days=3)
    one = coursekit("--course", course, "autograde", "--regrade", "ann/01_backprop", "--out", out,
                    "--timeout", TIMEOUT, "--no-progress")
    assert one.returncode == 0, one.stderr
    assert "graded 1 of 1 submission(s)" in one.stdout and "2 submission(s) of 01_backprop were graded against an older" in one.stdout
    rest = coursekit("--course", course, "autograde", "--regrade-outdated", "--out", out, "--timeout", TIMEOUT,
                     "--no-progress")
    assert rest.returncode == 0, rest.stderr
    assert "graded 2 of 2 submission(s)" in rest.stdout and "older" not in rest.stdout
    subs = {(r["student"], r["notebook"]): r for r in read_csv(out / "submissions.csv")}
    assert {r["graded_against"] for r in subs.values() if r["status"] == "graded"} == {"current"}
    # the autograded scores are the same (the fix changed a seed); the manual score and the
    # extension survived the regrades
    assert gradebook_scores(out) == gradebook_scores(term["out"])
    assert float(subs[("ann", "01_backprop")]["score"]) == 22   # 23 with exercise 1 at 1 of 2 by hand
    assert float(subs[("dan", "01_backprop")]["late_penalty"]) == 0    # 2 d 3 h late, 3 days' extension
    assert float(subs[("ben", "01_backprop")]["late_penalty"]) == pytest.approx(late(23, 1))
    # a regrade cut off by a kill (the row left "regrading") is graded again by the next run
    with Gradebook(f"sqlite:///{out / 'course' / 'gradebook.db'}") as gb:
        ledger.mark(gb, "ben", "01_backprop", ledger.REGRADING)
    again = coursekit("--course", course, "autograde", term["tmp"] / "week4", "--out", out, "--timeout", TIMEOUT,
                      "--no-progress")
    assert again.returncode == 0, again.stderr
    assert "graded 1 of 1 submission(s)" in again.stdout and "skipped 4 unchanged" in again.stdout
    assert re.search(rf"^ben\s+01_backprop\s+20.7\s+{MAX01:g}\s+\d", again.stdout, re.M), again.stdout
    assert gradebook_scores(out) == gradebook_scores(term["out"])


# --- formgrader on the term's course ---------------------------------------------------------------

@pytest.fixture(scope="module")
def formgrader(term):
    """nbgrader's formgrader (a Jupyter server with nbgrader's extensions) on the term's course,
    on 127.0.0.1, started here and stopped at the end."""
    coursedir = term["out"] / "course"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(term["tmp"] / "formgrader.log", "w")
    token = "coursekit-test"
    server = subprocess.Popen([sys.executable, "-m", "jupyter", "server", "--no-browser", "--allow-root",
                               "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
                               f"--ServerApp.root_dir={coursedir}"],
                              cwd=coursedir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                              env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                _call(base, token, "/api/status")
                break
            except OSError:
                if server.poll() is not None:
                    break
                time.sleep(0.2)
        else:
            pytest.fail("the Jupyter server did not start: " + (term["tmp"] / "formgrader.log").read_text()[-2000:])
        yield dict(base=base, token=token, coursedir=coursedir)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()


def _call(base: str, token: str, path: str, method: str = "GET"):
    request = urllib.request.Request(base + path, method=method, data=b"" if method == "POST" else None,
                                     headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read().decode() or "null")


def hidden_lines(solution: Path, release: Path) -> list[str]:
    """The lines between BEGIN and END HIDDEN TESTS in the instructor's notebook that hold what
    the students' release does not: the hidden tests' seeds (``graded=2024``)."""
    visible = {line.strip() for cell in nbformat.read(release, 4).cells for line in cell.source.splitlines()}
    lines = []
    for cell in nbformat.read(solution, 4).cells:
        for block in re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", cell.source, re.S):
            lines += [line.strip() for line in block.splitlines()
                      if re.search(r"graded=\d", line) and line.strip() not in visible]
    return lines


def test_formgrader_shows_the_roster_and_its_feedback_has_no_hidden_test(term, formgrader, root, released):
    students = {s["id"]: s for s in _call(formgrader["base"], formgrader["token"], "/formgrader/api/students")}
    assert (students["ann"]["first_name"], students["ann"]["last_name"]) == ("Ada", "Lovelace")
    assert students["eve"]["last_name"] == "Hopper"
    done = _call(formgrader["base"], formgrader["token"], "/formgrader/api/assignment/01_backprop/generate_feedback", "POST")
    assert done["success"], done.get("error")
    hidden = hidden_lines(root / "solutions" / "01_backprop.ipynb", released / "01_backprop.ipynb")
    assert len(hidden) >= 5, hidden
    pages = sorted((formgrader["coursedir"] / "feedback").glob("*/01_backprop/01_backprop.html"))
    assert {p.parts[-3] for p in pages} == {"ann", "ben", "dan"}
    for page in pages:
        html = page.read_text()
        assert "HIDDEN TESTS" not in html and not re.search(r"graded=\d", html)
        assert not [line for line in hidden if line in html], page


def test_formgraders_autograde_button_grades_through_coursekits_sandbox(term, formgrader):
    before = gradebook_scores(term["out"])
    done = _call(formgrader["base"], formgrader["token"], "/formgrader/api/submission/01_backprop/ben/autograde", "POST")
    assert done["success"], (done.get("error") or "") + done["log"][-3000:]
    assert "Grading ben/01_backprop with coursekit" in done["log"]
    assert "graded 1 of 1 submission(s)" in done["log"]
    assert gradebook_scores(term["out"]) == before     # the same grades, through the same sandbox
    with sqlite3.connect(term["out"] / "course" / "gradebook.db") as db:
        penalty = db.execute("SELECT late_submission_penalty FROM submitted_notebook JOIN submitted_assignment "
                             "ON submitted_notebook.assignment_id = submitted_assignment.id "
                             "WHERE submitted_assignment.student_id = 'ben' AND submitted_notebook.notebook_id IN "
                             "(SELECT id FROM notebook WHERE name = '01_backprop')").fetchone()[0]
    assert penalty == pytest.approx(late(23, 1))
    assert (term["out"] / "course" / "autograded" / "ben" / "01_backprop" / "01_backprop.ipynb").is_file()


def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("no chromium and chromedriver on this machine (Debian: apt-get install chromium "
                    "chromium-driver): formgrader is checked through its HTTP API above, not in a browser")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def test_formgrader_in_a_headless_browser(term, formgrader, root, released):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    shots = Path(os.environ.get("COURSEKIT_SCREENSHOTS") or term["tmp"] / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    browser = _browser()
    try:
        wait = WebDriverWait(browser, 60)
        browser.get(f"{formgrader['base']}/formgrader/manage_students?token={formgrader['token']}")
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "Lovelace"))
        browser.save_screenshot(str(shots / "formgrader-students.png"))
        browser.get(f"{formgrader['base']}/formgrader/manage_assignments")
        button = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "td.generate-feedback a")))
        browser.save_screenshot(str(shots / "formgrader-assignments.png"))
        page_text = browser.find_element(By.TAG_NAME, "body").text
        assert "2026-10-09 17:00:00 UTC" in page_text    # 01's due date, from the course configuration
        assert "could not be created" not in page_text   # no warning about nbgrader's exchange
        button.click()
        modal = wait.until(ec.visibility_of_element_located((By.ID, "success-modal")))
        time.sleep(1)  # the modal fades in
        browser.save_screenshot(str(shots / "formgrader-generated-feedback.png"))
        assert "Successfully generated feedback of '01_backprop'" in modal.get_attribute("textContent")
        page = formgrader["coursedir"] / "feedback" / "ben" / "01_backprop" / "01_backprop.html"
        browser.get(page.as_uri())
        text = browser.find_element(By.TAG_NAME, "body").text
        browser.save_screenshot(str(shots / "formgrader-feedback-ben.png"))
        assert "hidden tests ran here" in text and not re.search(r"graded=\d", text)
        assert not [line for line in hidden_lines(root / "solutions" / "01_backprop.ipynb", released / "01_backprop.ipynb")
                    if line in text]
    finally:
        browser.quit()


def test_a_written_answer_graded_in_formgrader_reaches_the_gradebook_grades_csv_and_exports(term, formgrader):
    """Grading by hand, as a TA does it: ann's notebook 01 in formgrader's grading page, in a
    real browser; a score typed into each written answer's box (and a comment) is saved in the
    gradebook; the next `coursekit autograde` of the same submissions grades nothing, writes
    the manual scores into grades.csv (the export test below reads them in the LMS files) and
    makes ann's feedback page again with them."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    base, token, out = formgrader["base"], formgrader["token"], term["out"]
    written = [w.grade_id for w in written_answers(Path(__file__).parents[1] / "solutions" / "01_backprop.ipynb")]
    given = {written[0]: 2.0, written[1]: 1.0}   # full marks for the first, half for the second
    notebooks = _call(base, token, "/formgrader/api/submitted_notebooks/01_backprop/01_backprop")
    ann = next(nb for nb in notebooks if nb["student"] == "ann")
    assert ann["needs_manual_grade"]            # formgrader lists it as waiting for a person
    shots = Path(os.environ.get("COURSEKIT_SCREENSHOTS") or term["tmp"] / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    browser = _browser()
    try:
        wait = WebDriverWait(browser, 60)
        browser.get(f"{base}/formgrader/manage_students?token={token}")   # logs in (its list comes from the API)
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "Lovelace"))
        browser.get(f"{base}/formgrader/submissions/{ann['id']}/")
        # the page's grades are loaded from formgrader's API: the autograded cells show their scores
        wait.until(lambda b: b.find_element(By.ID, "ex1_tests").get_attribute("placeholder") not in ("", None))
        for grade_id, score in given.items():
            box = wait.until(ec.element_to_be_clickable((By.ID, grade_id)))
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
            box.clear()
            box.send_keys(f"{score:g}", Keys.TAB)                          # "change": formgrader saves it
            comment = browser.find_element(By.ID, f"{grade_id}-comment")
            comment.send_keys("Right idea; see the rubric's second point." if score < 2 else "Complete.", Keys.TAB)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _manual(out, "ann", written) != given:
            time.sleep(0.2)
        box = browser.find_element(By.ID, written[0])
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
        time.sleep(0.5)
        browser.save_screenshot(str(shots / "formgrader-manual-grading.png"))
        page = browser.find_element(By.TAG_NAME, "body").text
        assert "YOUR ANSWER HERE" not in page and "max gate" in page.lower()  # ann's own answer is shown
    finally:
        browser.quit()
    assert _manual(out, "ann", written) == given
    with Gradebook(f"sqlite:///{out / 'course' / 'gradebook.db'}") as gb:
        grade = gb.find_grade(written[0], "01_backprop", "01_backprop", "ann")
        assert not grade.needs_manual_grade
        assert gb.find_comment(written[0], "01_backprop", "01_backprop", "ann").manual_comment == "Complete."
    # the next run of the week's command: nothing graded again, the manual scores in the CSVs
    rerun = coursekit("--course", term["course"], "autograde", term["tmp"] / "week4", "--out", out, "--no-progress")
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    assert "graded 0 of 0 submission(s)" in rerun.stdout
    assert re.search(r"^ann\s+01_backprop\s+26\s", rerun.stdout, re.M), rerun.stdout
    grades = {r["student"]: r for r in read_csv(out / "grades.csv")}
    assert float(grades["ann"]["01_backprop"]) == 23 + sum(given.values())
    subs = {(r["student"], r["notebook"]): r for r in read_csv(out / "submissions.csv")}
    assert subs[("ann", "01_backprop")]["to_grade_by_hand"] == "0"
    assert float(subs[("dan", "01_backprop")]["to_grade_by_hand"]) == BY_HAND["01_backprop"]
    by_exercise = {(r["student"], r["notebook"], r["exercise"]): r for r in read_csv(out / "grades_by_exercise.csv")}
    assert [by_exercise[("ann", "01_backprop", g)]["graded_by"] for g in written] == ["hand", "hand"]
    assert [float(by_exercise[("ann", "01_backprop", g)]["score"]) for g in written] == list(given.values())
    # ann's feedback page is made again, with the scores and comments given by hand, once
    assert "made 1 feedback page(s) again, with the scores and comments given by hand" in rerun.stdout
    page = (out / "feedback" / "ann" / "01_backprop.html").read_text()
    assert "to be graded by hand" not in page and "Complete." in page and "see the rubric's second point" in page
    assert "to be graded by hand" in (out / "feedback" / "dan" / "01_backprop.html").read_text()
    again = coursekit("--course", term["course"], "autograde", term["tmp"] / "week4", "--out", out, "--no-progress")
    assert again.returncode == 0 and "graded 0 of 0" in again.stdout and "again, with the scores" not in again.stdout


def _manual(out: Path, student: str, grade_ids: list[str]) -> dict:
    """grade id -> the manual score the gradebook holds for ``student``'s 01 (only those set)."""
    with Gradebook(f"sqlite:///{out / 'course' / 'gradebook.db'}") as gb:
        scores = {g: gb.find_grade(g, "01_backprop", "01_backprop", student).manual_score for g in grade_ids}
    return {g: score for g, score in scores.items() if score is not None}


# --- results out: LMS exports and feedback bundles -------------------------------------------------

def test_export_writes_canvas_moodle_and_nbgrader_csvs_and_lists_who_is_missing(term):
    out = term["out"]
    done = coursekit("export", "--out", out, cwd=term["tmp"])
    assert done.returncode == 0, done.stderr
    assert "graded but not in the roster (left out of the LMS files, kept in nbgrader.csv): dan" in done.stdout
    assert "nothing graded for 01_backprop, 02_layers (0 in the files): eve" in done.stdout
    assert "not in moodle: ben (no email in the roster" in done.stdout
    with open(out / "export" / "canvas.csv", newline="") as fh:
        canvas = list(csv.reader(fh))
    # Canvas's gradebook CSV: these five columns first, then one per assignment; row 2 the points
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "01_backprop", "02_layers"]
    assert canvas[1] == ["    Points Possible", "", "", "", "", f"{MAX01:g}", f"{MAX02:g}"]
    body = {row[0]: row for row in canvas[2:]}
    assert list(body) == ["Bitdiddle, Jr., Ben", "Hopper, Eve", "Lovelace, Ada"]  # Canvas's "Last, First" order
    # ann's 01: the grader's 23 and the 3 points given by hand in formgrader (test above)
    assert body["Lovelace, Ada"] == ["Lovelace, Ada", "1001", "S001", "alovelace", "Section A", "26", "24"]
    assert [float(x) for x in body["Bitdiddle, Jr., Ben"][5:]] == pytest.approx([23 - late(23, 1), 24 - late(24, 1)])
    assert body["Hopper, Eve"][5:] == ["0", "0"]
    with open(out / "export" / "moodle.csv", newline="") as fh:
        moodle = list(csv.reader(fh))
    # Moodle's CSV import: a user column to map from (Email address) on every row, then grade items
    assert moodle[0] == ["First name", "Last name", "ID number", "Email address", "01_backprop", "02_layers"]
    assert moodle[1:] == [["Ada", "Lovelace", "S001", "ada@uni.example", "26", "24"],
                          ["Eve", "Hopper", "S005", "eve@uni.example", "0", "0"]]
    assert all(row[3] and all(re.fullmatch(r"\d+(\.\d+)?", x) for x in row[4:]) for row in moodle[1:])
    rows = read_csv(out / "export" / "nbgrader.csv")
    assert list(rows[0]) == ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name",
                             "email", "raw_score", "late_submission_penalty", "score", "max_score"]
    ben = next(r for r in rows if r["student_id"] == "ben" and r["assignment"] == "01_backprop")
    assert (ben["last_name"], ben["first_name"], float(ben["score"])) == ("Bitdiddle, Jr.", "Ben", pytest.approx(23 - late(23, 1)))
    dan = next(r for r in rows if r["student_id"] == "dan" and r["assignment"] == "01_backprop")
    assert (float(dan["raw_score"]), float(dan["late_submission_penalty"]), float(dan["score"])) == \
        pytest.approx((23, late(23, 3), 23 - late(23, 3)))
    # the wrong roster (ids that are not the students' folders) is refused, and nothing is written
    (term["tmp"] / "other-class.csv").write_text("student_id,email\nzed,zed@uni.example\n")
    before = (out / "export" / "canvas.csv").read_bytes()
    wrong = coursekit("export", "--out", out, "--roster", "other-class.csv", cwd=term["tmp"])
    assert wrong.returncode == 1 and "no student of the roster other-class.csv has anything graded" in wrong.stderr
    assert (out / "export" / "canvas.csv").read_bytes() == before


def test_feedback_bundles_one_zip_per_student(term):
    done = coursekit("feedback", "--out", term["out"], cwd=term["tmp"])
    assert done.returncode == 0, done.stderr
    zips = term["out"] / "feedback-zips"
    assert sorted(p.name for p in zips.glob("*.zip")) == ["ann.zip", "ben.zip", "dan.zip"]
    with zipfile.ZipFile(zips / "ann.zip") as archive:
        assert sorted(archive.namelist()) == ["01_backprop.html", "02_layers.html"]
        assert archive.read("02_layers.html") == (term["out"] / "feedback" / "ann" / "02_layers.html").read_bytes()
    before = (zips / "ann.zip").read_bytes()
    assert coursekit("feedback", "--out", term["out"], cwd=term["tmp"]).returncode == 0
    assert (zips / "ann.zip").read_bytes() == before  # the same pages, the same zip
