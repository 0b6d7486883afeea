"""The feedback page a student gets back: what went wrong and why, nothing of the grader.

nbgrader's generate_feedback renders the autograded notebook with its ``feedback`` template.
coursekit's preprocessors and template (``templates/feedback/coursekit.html.j2``, set in
``autograder/nbgrader_config.py``) change three things:

* :class:`HideHiddenTests`: nbgrader restores the hidden tests into the autograded notebook, so
  their source (inputs, seeds) and tracebacks quoting it would reach the student. In every
  graded cell the hidden region becomes a one-line note, and error tracebacks are cut down to
  their message, which is what tells the student what went wrong.
* :class:`RenderMath`: the notebook's LaTeX becomes MathML, which browsers draw themselves, so
  the page needs no MathJax from a CDN and its math renders offline; the template drops
  nbgrader's MathJax script (:func:`offline_page`).
* :class:`NameExercises`: the table of contents and the graded cells' headings say
  "Exercise 4 · Vectorised gradients", not "Test cell" and ``ex4_tests``
  (:func:`name_exercises`).
* :class:`GetGradesMarkingWritten` (nbgrader's GetGrades): a written answer nobody has graded
  yet shows "to be graded by hand" instead of a score of 0, and the page's total says how many
  points wait (:func:`mark_waiting`); the page carries a digest of the scores and comments it
  shows, so the class run knows which pages people have graded since (:func:`page_is_current`).

The page is made by :class:`FeedbackExporter`, nbconvert's HTMLExporter whose Jinja templates
the grading pool's fork server compiles once (:func:`compile_templates`), not every worker.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

from jinja2 import BytecodeCache
from nbconvert.exporters import HTMLExporter
from nbgrader.preprocessors import GetGrades, NbGraderPreprocessor

HIDDEN = re.compile(r"^([ \t]*)### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[ \t]*$",
                    re.MULTILINE | re.DOTALL)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: the template's filters (FeedbackExporter.filters)
FILTERS = {name: f"coursekit.grading.course.feedback.{name}" for name in ("offline_page", "name_exercises", "mark_waiting")}
#: where the feedback template lives (FeedbackExporter.extra_template_basedirs)
TEMPLATES = str(Path(__file__).parent / "templates")


class HideHiddenTests(NbGraderPreprocessor):

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            cell.source = HIDDEN.sub(r"\1# (hidden tests ran here)", cell.source)
            for out in cell.get("outputs", []):
                if out.output_type == "error":
                    out.traceback = [f"{out.ename}: {ANSI.sub('', out.evalue)}"]
        return cell, resources


# --- written answers waiting for a person ------------------------------------------------------------

#: the comment a feedback page carries: what people had given the submission when it was made
HAND_MARK = "<!-- coursekit hand grades: {} -->"


def hand_fingerprint(scores, comments) -> str:
    """A digest of the scores and comments a feedback page shows ((grade id, score) and (grade
    id, comment) pairs: a manual score or comment where a person gave one, else the grader's),
    so that a page made before a change in formgrader says an older one (:func:`page_is_current`)."""
    import hashlib

    shown = (sorted((name, float(score or 0.0)) for name, score in scores),
             sorted((name, comment or "") for name, comment in comments))
    return hashlib.sha256(repr(shown).encode()).hexdigest()[:16]


def page_is_current(page: Path, submitted_notebook) -> bool:
    """Whether the feedback page ``page`` shows the scores and comments the gradebook holds for
    ``submitted_notebook`` now."""
    digest = hand_fingerprint([(g.name, g.score) for g in submitted_notebook.grades],
                              [(c.name, c.comment) for c in submitted_notebook.comments])
    try:
        return HAND_MARK.format(digest) in page.read_text(errors="replace")
    except OSError:
        return False


class GetGradesMarkingWritten(GetGrades):
    """nbgrader's GetGrades, which also lists in ``resources["coursekit_waiting"]`` the written
    answers that have neither an automatic nor a manual score yet (grade id -> points), and puts
    the :func:`hand_fingerprint` of the scores and comments it read into the cells in
    ``resources["coursekit_hand"]`` (the page carries it)."""

    def preprocess(self, nb, resources):
        resources["coursekit_waiting"] = {}
        nb, resources = super().preprocess(nb, resources)
        shown = [c.metadata.get("nbgrader", {}) for c in nb.cells]
        resources["coursekit_hand"] = HAND_MARK.format(hand_fingerprint(
            [(m["grade_id"], m["score"]) for m in shown if "score" in m],
            [(m["grade_id"], m["comment"]) for m in shown if "comment" in m]))
        return nb, resources

    def _get_score(self, cell, resources):
        super()._get_score(cell, resources)
        grade = self.gradebook.find_grade(cell.metadata["nbgrader"]["grade_id"], self.notebook_id,
                                          self.assignment_id, self.student_id)
        if grade.auto_score is None and grade.manual_score is None:
            resources["coursekit_waiting"][grade.name] = float(grade.max_score)


def mark_waiting(body: str, waiting: dict | None) -> str:
    """The page's body with each written answer in ``waiting`` (grade id -> points) shown as
    "to be graded by hand" rather than "Score: 0.0 / 2.0", and a line under the total."""
    if not waiting:
        return body
    for grade_id, points in waiting.items():
        gid = re.escape(grade_id)
        pending = f"to be graded by hand, {points:g} points"
        body = re.sub(rf'(<a href="#{gid}">[^<]*</a>) \(Score: [^)]*\)', lambda m: f"{m.group(1)} ({pending})", body)
        body = re.sub(rf'(<a name="{gid}"></a>.*?<span class="pull-right">\s*)Score: [0-9.]+ / [0-9.]+',
                      lambda m: m.group(1) + pending, body, count=1, flags=re.DOTALL)
    total = sum(waiting.values())
    note = (f'<p class="coursekit-waiting">{len(waiting)} written answer(s), {total:g} points, are still to '
            f"be graded by hand: the score above counts them as 0 until then.</p>")
    return re.sub(r'(<div id="toc">)', lambda m: note + m.group(1), body, count=1)


# --- math: LaTeX -> MathML --------------------------------------------------------------------

_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.DOTALL)
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.DOTALL)
_INLINE = re.compile(r"(?<![\\$\w])\$(?![\s$])((?:\\\$|[^$\n])+?)(?<![\s\\])\$(?![\w$])")


def _mathml(latex: str, display: str) -> str:
    from latex2mathml.converter import convert

    try:
        return convert(latex.strip(), display=display)
    except Exception:  # not something latex2mathml knows: show the LaTeX as it is
        return html.escape(f"$${latex}$$" if display == "block" else f"${latex}$")


def math_to_mathml(markdown: str) -> str:
    """``markdown`` with each ``$$...$$`` and ``$...$`` (outside code) as MathML."""
    parts = _CODE.split(markdown)
    for i in range(0, len(parts), 2):  # the even parts are outside code spans
        text = _DISPLAY.sub(lambda m: "\n" + _mathml(m.group(1), "block") + "\n", parts[i])
        parts[i] = _INLINE.sub(lambda m: _mathml(m.group(1), "inline"), text)
    return "".join(parts)


class RenderMath(NbGraderPreprocessor):

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "markdown":
            cell.source = math_to_mathml(cell.source)
        return cell, resources


def offline_page(header: str) -> str:
    """The page's head without nbgrader's MathJax (a script from a CDN)."""
    return re.sub(r"(<!-- Loading mathjax macro -->\s*)?<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", "", header,
                  flags=re.DOTALL)


# --- exercise names ---------------------------------------------------------------------------

_HEADING = re.compile(r"^##\s+(\d+)\s*·\s*(.+?)\s*(?:\([^()]*points?\))?\s*$", re.MULTILINE)


class NameExercises(NbGraderPreprocessor):
    """resources["coursekit_labels"]: grade id -> "Exercise 2b · Gate patterns", from the
    exercise headings ("## 2 · Gate patterns (3 + 2 points)") above each graded cell."""

    def preprocess(self, nb, resources):
        labels, title = {}, ""
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                heading = _HEADING.search(cell.source)
                if heading:
                    title = heading.group(2)
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
            if cell.metadata.get("nbgrader", {}).get("grade"):
                number = re.fullmatch(r"ex(\w+?)_tests", grade_id)
                name = f"Exercise {number.group(1)}" if number else grade_id
                labels[grade_id] = f"{name} · {math_to_mathml(title)}" if title else name
        resources["coursekit_labels"] = labels
        return nb, resources


def name_exercises(body: str, labels: dict) -> str:
    """The page's body with the exercises' names in the table of contents and cell headings."""
    for grade_id, label in (labels or {}).items():
        gid = re.escape(grade_id)
        body = re.sub(rf'(<a href="#{gid}">)Test cell(</a>)', lambda m: m.group(1) + label + m.group(2), body)
        body = re.sub(rf"Grade cell: <code>{gid}</code>", lambda m: label + ": graded tests", body)
    return body


# --- the exporter: templates compiled once ---------------------------------------------------------

class _CompiledTemplates(BytecodeCache):
    """Jinja's compiled templates, kept in this process's memory (keyed by template file and
    checked against its source, so a changed template is compiled again). Filled in the grading
    pool's fork server, it is every forked worker's from the start."""

    def __init__(self):
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])

    def dump_bytecode(self, bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


COMPILED = _CompiledTemplates()


class FeedbackExporter(HTMLExporter):
    """nbconvert's HTMLExporter, configured as HTMLExporter is plus its own ``FeedbackExporter``
    section (the feedback template, which formgrader's grading page, an HTMLExporter of its own,
    must not get), with :data:`COMPILED` as its Jinja bytecode cache: a worker forked after
    :func:`compile_templates` renders its page without compiling the templates (about 0.3 s of
    each submission's grading)."""

    def _create_environment(self):
        environment = super()._create_environment()
        environment.bytecode_cache = COMPILED
        return environment


def compile_templates() -> None:
    """Compile the feedback page's templates into :data:`COMPILED`, configured as coursekit's
    course configuration (``autograder/nbgrader_config.py``) and nbgrader's generate_feedback
    configure them. A course that configures other templates gets them compiled per worker."""
    import nbformat
    import nbgrader
    from traitlets.config import Config

    formgrader = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader"
    config = Config()
    config.HTMLExporter.template_name = "feedback"
    config.HTMLExporter.extra_template_paths = [str(formgrader / "static" / "node_modules" / "bootstrap" / "dist" / "css")]
    config.FeedbackExporter.template_file = "coursekit.html.j2"
    config.FeedbackExporter.extra_template_basedirs = [str(formgrader / "templates"), TEMPLATES]
    config.FeedbackExporter.filters = FILTERS
    page = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("x"), nbformat.v4.new_code_cell("x")])
    # rendering a page loads (and so compiles) the template, its parents and what they import
    FeedbackExporter(config=config).from_notebook_node(
        page, resources={"nbgrader": {"notebook": "", "score": 0, "max_score": 0, "late_penalty": 0},
                         "coursekit_labels": {}, "coursekit_waiting": {}, "coursekit_hand": ""})
