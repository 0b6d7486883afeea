"""The feedback page's templates are compiled once, in the grading pool's fork server, and the
page a worker renders from them is the page nbconvert renders without the cache."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_templates_compiled_once_render_the_same_page_as_a_fresh_exporter(tmp_path):
    """In a fresh interpreter (as the fork server is): the course's configuration makes
    nbgrader's generate_feedback use FeedbackExporter; after compile_templates, an exporter
    configured as generate_feedback configures it compiles nothing more, and its page equals
    nbconvert's own HTMLExporter's with the same configuration. Formgrader's grading page (an
    HTMLExporter of its own) keeps nbgrader's formgrade template: the feedback template is
    configured for FeedbackExporter alone."""
    script = textwrap.dedent(f"""
        import importlib
        from pathlib import Path

        import nbformat
        from nbconvert.exporters import HTMLExporter
        from nbgrader.converters import GenerateFeedback
        from traitlets.config import Config

        from coursekit.grading.course import feedback
        from coursekit.grading.course.directory import nbgrader_api

        config = nbgrader_api(Path({str(ROOT)!r}), Path({str(tmp_path / 'course')!r})).config
        name = config.GenerateFeedback.exporter_class
        module, _, cls = name.rpartition(".")
        assert getattr(importlib.import_module(module), cls) is feedback.FeedbackExporter, name
        # what generate_feedback adds to the configuration (nbgrader.converters.generate_feedback)
        converter = GenerateFeedback(config=config)
        page = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Exercise 1\\n$x^2$"),
                                               nbformat.v4.new_code_cell("print(1)")])
        resources = {{"nbgrader": {{"notebook": "01", "score": 1, "max_score": 2, "late_penalty": 0}},
                     "coursekit_labels": {{}}}}

        feedback.compile_templates()
        compiled = len(feedback.COMPILED.code)
        dumped = []
        original = feedback.COMPILED.dump_bytecode
        feedback.COMPILED.dump_bytecode = lambda bucket: (dumped.append(bucket.key), original(bucket))
        cached, _ = feedback.FeedbackExporter(config=converter.config).from_notebook_node(
            nbformat.from_dict(page), resources=dict(resources))
        # nbconvert's own exporter, configured as FeedbackExporter is (its section by class name)
        fresh, _ = type("FeedbackExporter", (HTMLExporter,), {{}})(config=converter.config).from_notebook_node(
            nbformat.from_dict(page), resources=dict(resources))
        assert compiled >= 5, compiled
        assert not dumped, f"compiled again: {{len(dumped)}} templates"
        assert cached == fresh and "Score: 1.0 / 2.0" in cached
        assert HTMLExporter(config=converter.config).template_file != "coursekit.html.j2"
        print("ok", compiled)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ok")
