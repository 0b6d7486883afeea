"""Which students' answers look alike: pairs for a person to look at, never a verdict.

    coursekit similarity SUBMISSIONS --notebook 03_conv [--out similarity]

Each student's answer cells of the notebook (nbgrader's solution cells) are compared with every
other student's by copydetect (Stanford MOSS's method: winnowed fingerprints of the tokenised
code, so renamed variables and functions, comments and blank lines do not hide a copy). Lines
the release gave them (signatures, docstrings, the stub) are left out, and what a student shares
with the release or with the instructor's answers is boilerplate: it is not counted. A pair's
similarity is the share of each one's fingerprinted code that the other has too.

Written: ``similarity-<notebook>.html`` (the pairs ranked, each with the two answers side by side
and the shared code highlighted; one file, nothing loaded from the network) and
``similarity-<notebook>.csv``.
"""
from __future__ import annotations

import csv
import html
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..course.directory import CourseError
from ..pipeline.collect import collect_folder

#: copydetect's noise and guarantee thresholds (characters of tokenised code): a shared run shorter
#: than NOISE never counts, one of GUARANTEE or longer always does. Answers are short functions, so
#: these sit a little below copydetect's defaults (25, 30).
NOISE, GUARANTEE = 20, 25


@dataclass
class Pair:
    """Two students and how much of each one's answers the other shares."""
    first: str
    second: str
    share_first: float      # of first's fingerprinted code, the fraction second has too
    share_second: float
    tokens: int             # characters of tokenised code the two share
    code_first: str = ""    # first's answers as HTML, the shared parts highlighted
    code_second: str = ""

    @property
    def score(self) -> float:
        return max(self.share_first, self.share_second)


def answer_cells(nb) -> dict[str, str]:
    """grade id -> source of each answer cell (nbgrader solution code cell) of ``nb``."""
    return {cell.metadata["nbgrader"]["grade_id"]: cell.source for cell in nb.cells
            if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution")}


def answer_code(nb, given: dict[str, str]) -> str:
    """The student's answer cells as one Python file, without the lines the release gave them
    (``given``: grade id -> the release's source of that cell), each cell under a comment line."""
    parts = []
    for grade_id, source in answer_cells(nb).items():
        stub = {line.strip() for line in given.get(grade_id, "").splitlines() if line.strip()}
        own = [line for line in source.splitlines() if line.strip() and line.strip() not in stub]
        if own:
            parts.append(f"# {grade_id}\n" + "\n".join(own))
    return "\n\n".join(parts) + "\n"


def compare(answers: dict[str, str], boilerplate: list[str]) -> list[Pair]:
    """Every pair of ``answers`` (student -> code), most similar first, with copydetect."""
    from copydetect import CopyDetector

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "answers").mkdir()
        (tmp / "boilerplate").mkdir()
        paths = {}
        for i, (student, code) in enumerate(sorted(answers.items())):
            paths[str(tmp / "answers" / f"s{i:05d}.py")] = student   # ids never become file names
            (tmp / "answers" / f"s{i:05d}.py").write_text(code)
        for i, code in enumerate(boilerplate):
            (tmp / "boilerplate" / f"b{i}.py").write_text(code)
        detector = CopyDetector(test_dirs=[str(tmp / "answers")], boilerplate_dirs=[str(tmp / "boilerplate")],
                                extensions=["py"], noise_t=NOISE, guarantee_t=GUARANTEE, display_t=0.0,
                                autoopen=False, silent=True, out_file=str(tmp / "unused.html"))
        detector.run()
        pairs = []
        if len(detector.similarity_matrix):
            for share1, share2, file1, file2, code1, code2, tokens in detector.get_copied_code_list():
                a, b = paths[file1], paths[file2]
                if a > b:   # each pair in name order
                    a, b, share1, share2, code1, code2 = b, a, share2, share1, code2, code1
                pairs.append(Pair(a, b, float(share1), float(share2), int(tokens), code1, code2))
        seen = {frozenset((p.first, p.second)) for p in pairs}
        students = sorted(answers)
        for i, a in enumerate(students):      # pairs copydetect found nothing in common for
            for b in students[i + 1:]:
                if frozenset((a, b)) not in seen:
                    pairs.append(Pair(a, b, 0.0, 0.0, 0, html.escape(answers[a]), html.escape(answers[b])))
    return sorted(pairs, key=lambda p: (-p.score, -p.tokens, p.first, p.second))


def similarity(submissions: Path, notebook: str, release: Path, solution: Path, out: Path,
               names: list[str] | None = None) -> tuple[Path, Path, list[Pair]]:
    """Compare the answers of ``notebook`` under ``submissions`` (a folder of student folders, which
    may hold the course's other notebooks ``names`` too); write the HTML report and the CSV into
    ``out``. Returns (html, csv, pairs)."""
    submissions, out = Path(submissions), Path(out)
    if not submissions.is_dir():
        raise CourseError(f"no folder {submissions}: expected a folder of student folders, each with "
                          f"{notebook}.ipynb")
    found, notes = collect_folder(submissions, sorted(set(names or []) | {notebook}))
    given = answer_cells(nbformat.read(release, as_version=4))
    answers, unread = {}, []
    for student, notebooks in sorted(found.items()):
        if notebook not in notebooks:
            continue
        try:
            nb = nbformat.read(notebooks[notebook], as_version=4)
        except Exception as exc:  # a broken notebook: said, and the others are compared
            unread.append(f"{student}: {notebooks[notebook].name} is not a readable notebook ({exc})")
            continue
        answers[student] = answer_code(nb, given)
    if len(answers) < 2:
        raise CourseError(f"{len(answers)} submission(s) of {notebook} under {submissions}: a similarity "
                          f"report needs at least two")
    instructor = answer_code(nbformat.read(solution, as_version=4), given)
    boilerplate = ["\n".join(given.values()), instructor]
    pairs = compare(answers, boilerplate)
    out.mkdir(parents=True, exist_ok=True)
    table = out / f"similarity-{notebook}.csv"
    with open(table, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["rank", "student_a", "student_b", "score", "share_of_a", "share_of_b", "shared_tokens"])
        for rank, p in enumerate(pairs, start=1):
            writer.writerow([rank, p.first, p.second, f"{p.score:.3f}", f"{p.share_first:.3f}",
                             f"{p.share_second:.3f}", p.tokens])
    page = out / f"similarity-{notebook}.html"
    page.write_text(render(notebook, pairs, len(answers), notes + unread))
    return page, table, pairs


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: .6em 1em; max-width: 70em; }
table.rank { border-collapse: collapse; margin: 1em 0; }
table.rank td, table.rank th { border-bottom: 1px solid #ddd; padding: .25em .8em; text-align: left; }
.pair { margin: 2em 0; border-top: 2px solid #888; }
.sides { display: flex; gap: 1em; }
.sides > div { flex: 1; min-width: 0; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; font-size: 12px; }
.highlight-red, .highlight-green { background: #ffc9c9; }   /* copydetect's marks of shared code, both sides */
"""


def render(notebook: str, pairs: list[Pair], students: int, notes: list[str], shown: int = 20) -> str:
    """The report: a ranking of every pair, then the most similar ``shown`` side by side."""
    e = html.escape
    rows = "".join(f"<tr><td>{i}</td><td>{e(p.first)}</td><td>{e(p.second)}</td><td>{p.score:.0%}</td>"
                   f"<td>{p.share_first:.0%}</td><td>{p.share_second:.0%}</td><td>{p.tokens}</td></tr>"
                   for i, p in enumerate(pairs, start=1))
    blocks = "".join(
        f"<div class='pair' id='pair-{i}'><h3>{i}. {e(p.first)} and {e(p.second)}: {p.score:.0%}</h3>"
        f"<p>{p.share_first:.0%} of {e(p.first)}'s answer code is also in {e(p.second)}'s, {p.share_second:.0%} "
        f"the other way; {p.tokens} characters of tokenised code shared (highlighted).</p>"
        f"<div class='sides'><div><b>{e(p.first)}</b><pre>{p.code_first}</pre></div>"
        f"<div><b>{e(p.second)}</b><pre>{p.code_second}</pre></div></div></div>"
        for i, p in enumerate(pairs[:shown], start=1))
    said = "".join(f"<li>{e(n)}</li>" for n in notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Similar answers: {e(notebook)}</title>
<style>{STYLE}</style></head><body>
<h1>Similar answers: {e(notebook)}</h1>
<p class="note"><b>For a person to look at, never a verdict.</b> This ranks pairs of students by how
much of their answer code is the same after renaming is undone (copydetect's fingerprints of the
tokenised code). Code the release gave them, and code that is also in the instructor's answers, is
not counted. Short exercises have few ways to be written: a high score is a reason to read the
two answers, not evidence on its own.</p>
<p>{students} students, {len(pairs)} pairs. The {min(shown, len(pairs))} most similar are shown below.</p>
{f"<ul>{said}</ul>" if said else ""}
<table class="rank"><tr><th>rank</th><th>student</th><th>student</th><th>score</th><th>share of the first</th>
<th>share of the second</th><th>shared</th></tr>{rows}</table>
{blocks}
</body></html>
"""
