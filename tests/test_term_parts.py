"""The parts of a term's course that need no grading run: due dates and penalties, the roster,
submission times from folders and LMS zips, the course directory's guards, bad input."""
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from traitlets.config import Config

from coursekit.grading.course.deadlines import LatePenalty, due_dates, parse_time, penalty_per_day
from coursekit.grading.course.directory import CourseError, nbgrader_api
from coursekit.grading.course.roster import read_roster
from coursekit.grading.course.term import lock_course, open_course
from coursekit.grading.pipeline.collect import collect_zip, submission_time
from coursekit.grading.pipeline.gradebook import late_by

COURSEKIT = str(Path(sys.executable).parent / "coursekit")
NAMES = ["01_backprop", "02_layers"]
DAY = 86400


@pytest.mark.parametrize("seconds, kept", [
    (0, 1.0), (1, 0.9), (DAY, 0.9), (DAY + 1, 0.8), (3 * DAY - 60, 0.7), (5 * DAY, 0.5), (40 * DAY, 0.5)])
def test_per_day_penalty_takes_10_percent_per_started_day_down_to_the_floor(seconds, kept):
    assert 20 - penalty_per_day(20, seconds, 10, 50) == pytest.approx(20 * kept)


def test_the_penalty_plugin_offers_nbgraders_methods_and_per_day():
    config = Config()
    for method, expected in [("none", None), ("zero", 20), ("per_day", 4)]:
        config.LatePenalty.penalty_method = method
        config.LatePenalty.percent_per_day = 20
        assert LatePenalty(config=config).late_submission_penalty("ann", 20, 3600) == expected


def test_times_are_read_as_nbgrader_reads_them_and_a_bad_zone_is_an_error():
    assert parse_time("2026-10-23 18:00:00 Europe/London").isoformat(" ") == "2026-10-23 17:00:00"
    assert parse_time("2026-10-09 17:00:00").isoformat(" ") == "2026-10-09 17:00:00"  # no zone: UTC
    assert parse_time("2026-10-09T19:00:00+02:00").isoformat(" ") == "2026-10-09 17:00:00"
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        parse_time("2026-10-09 17:00:00 Mars/Olympus")


def test_due_dates_name_the_bad_entry():
    config = Config()
    config.Deadlines.due = {"01_backprop": "2026-10-09 17:00:00 UTC"}
    assert due_dates(config, NAMES)["01_backprop"].isoformat(" ") == "2026-10-09 17:00:00"
    config.Deadlines.due = {"01_backprop": "next friday"}
    with pytest.raises(CourseError, match=r"c.Deadlines.due\['01_backprop'\] = 'next friday' is not a date"):
        due_dates(config, NAMES)
    config.Deadlines.due = {"03_conv": "2026-10-09"}
    with pytest.raises(CourseError, match="names 03_conv, not a notebook of the course"):
        due_dates(config, NAMES)


def test_late_by_reads_like_a_person_writes_it():
    assert [late_by(s) for s in (59, 3600, 3660, 2 * DAY + 3 * 3600)] == ["1 min", "1 h 0 min", "1 h 1 min", "2 d 3 h"]


def test_canvass_own_gradebook_export_works_as_a_roster(tmp_path):
    roster = tmp_path / "canvas-export.csv"
    roster.write_text("Student,ID,SIS User ID,SIS Login ID,Section,01_backprop (123)\n"
                      "    Points Possible,,,,,23\n"
                      "\"Lovelace, Ada\",1001,S001,ann,Section A,\n")
    ann = read_roster(roster)["ann"]
    assert (ann.first_name, ann.last_name, ann.canvas_id, ann.sis_user_id, ann.sis_login_id) == \
        ("Ada", "Lovelace", "1001", "S001", "ann")


def test_roster_columns_are_matched_loosely_and_bad_rosters_say_what_is_wrong(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("\ufeffStudent ID,Name,Email Address,SIS User ID,Section\nann,Ada Lovelace,ada@x,S1,A\n\n")
    ann = read_roster(roster)["ann"]
    assert (ann.first_name, ann.last_name, ann.email, ann.sis_user_id, ann.section) == ("Ada", "Lovelace", "ada@x", "S1", "A")
    assert ann.sortable_name == "Lovelace, Ada"
    roster.write_text("name,email\nAda,ada@x\n")
    with pytest.raises(CourseError, match="has no student_id column"):
        read_roster(roster)
    roster.write_text("student_id\nann\nann\n")
    with pytest.raises(CourseError, match="line 3: student_id 'ann' appears twice"):
        read_roster(roster)
    with pytest.raises(CourseError, match="could not read the roster"):
        read_roster(tmp_path / "missing.csv")


def test_a_submission_time_comes_from_the_nearest_timestamp_txt(tmp_path):
    nb = tmp_path / "ann" / "01_backprop" / "01_backprop.ipynb"
    nb.parent.mkdir(parents=True)
    nb.write_text("{}")
    assert submission_time(nb, tmp_path / "ann") == ("", "")
    (tmp_path / "ann" / "timestamp.txt").write_text("2026-10-09 19:00:00 Europe/Paris\n")
    assert submission_time(nb, tmp_path / "ann") == ("2026-10-09 17:00:00", "")
    (nb.parent / "timestamp.txt").write_text("yesterday-ish")
    when, why = submission_time(nb, tmp_path / "ann")
    assert when == "" and "ann/01_backprop/timestamp.txt is not a time" in why and "graded as on time" in why


def test_an_lms_zip_with_submission_times_in_its_names_gives_nbgraders_timestamps(tmp_path, root):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as z:   # Blackboard's names, with and without the assignment
        z.writestr("gradebook/HW 1_ann_attempt_2026-10-10-12-00-00_01_backprop.ipynb", "{}")
        z.writestr("gradebook/HW 1_ann_attempt_2026-10-10-12-00-00.txt", "the attempt's receipt")
        z.writestr("gradebook/cat_attempt_2026-10-09-16-00-00_my_02_layers.ipynb", "{}")
        z.writestr("gradebook/ben_01_backprop.ipynb", "{}")   # Moodle/Canvas-like: no time
    staging = tmp_path / "staging"
    api = nbgrader_api(root, staging)
    api.config.TimedNames.time_zone = "Europe/London"   # Blackboard writes its server's time
    students = collect_zip(archive, NAMES, staging, api)
    assert {s: sorted(nbs) for s, nbs in students.items()} == {
        "ann": ["01_backprop"], "ben": ["01_backprop"], "cat": ["02_layers"]}
    where = staging / "submitted"
    assert submission_time(students["ann"]["01_backprop"], where / "ann") == ("2026-10-10 11:00:00", "")
    assert submission_time(students["cat"]["02_layers"], where / "cat") == ("2026-10-09 15:00:00", "")
    assert submission_time(students["ben"]["01_backprop"], where / "ben") == ("", "")


def test_a_course_folder_an_older_coursekit_made_is_not_taken_over(tmp_path, root):
    old = tmp_path / "course"
    old.mkdir()
    with sqlite3.connect(old / "gradebook.db") as db:
        db.execute("CREATE TABLE submitted_assignment (id TEXT)")
        db.execute("INSERT INTO submitted_assignment VALUES ('x')")
    with pytest.raises(CourseError, match="holds a course coursekit does not keep"):
        open_course(root, old)
    fresh = open_course(root, tmp_path / "new")
    assert (fresh / "nbgrader_config.py").read_text().count(str(root / "autograder" / "nbgrader_config.py")) == 2


def test_one_class_run_at_a_time_in_a_course(tmp_path):
    first = lock_course(tmp_path)
    with pytest.raises(CourseError, match=r"another coursekit autograde is grading into .* \(process \d+\)"):
        lock_course(tmp_path)
    first.close()
    lock_course(tmp_path).close()


def test_bad_requests_exit_1_and_say_why(tmp_path, root):
    def run(*args):
        return subprocess.run([COURSEKIT, "--course", str(root), *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=300)

    no_term = run("export")
    assert no_term.returncode == 1 and "no gradebook at grading-output/course/gradebook.db" in no_term.stderr
    no_pages = run("feedback")
    assert no_pages.returncode == 1 and "no feedback pages in grading-output/feedback" in no_pages.stderr
    nothing = run("autograde")
    assert nothing.returncode == 1 and "nothing to grade: give SUBMISSIONS" in nothing.stderr
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    (tmp_path / "subs" / "ann" / "notes.txt").write_text("no notebook")
    empty = run("autograde", "subs")
    assert empty.returncode == 1 and "holds no course notebook" in empty.stderr
    no_roster = run("autograde", "subs", "--roster", "missing.csv")
    assert no_roster.returncode == 1 and "no roster at missing.csv" in no_roster.stderr
    assert not (tmp_path / "grading-output").exists()  # refused before anything was written
    unknown = run("autograde", "--regrade", "zed/01_backprop")
    assert unknown.returncode == 1 and "--regrade zed/01_backprop: the course holds no submission" in unknown.stderr
    for result in (nothing, empty, unknown, no_roster, no_term, no_pages):
        assert "Traceback" not in result.stderr


def test_grading_phases_are_timed_exclusively():
    """coursekit.grading.timing: a phase's seconds exclude the phases opened inside it."""
    import time

    from coursekit.grading import timing

    timing.taken()
    with timing.phase("outer"):
        time.sleep(0.05)
        with timing.phase("inner"):
            time.sleep(0.1)
        with timing.phase("inner"):
            time.sleep(0.1)
    spent = timing.taken()
    assert set(spent) == {"outer", "inner"}
    # exclusive: outer's own 0.05 s, not the 0.2 s inside it (a loaded machine only adds)
    assert spent["inner"] >= 0.19 and 0.04 <= spent["outer"] < spent["inner"], spent
    assert timing.taken() == {}
