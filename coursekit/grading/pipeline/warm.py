"""What the pool's fork server imports once, before it forks a worker per submission (:mod:`.pool`).

A worker started as ``python -m`` spent about a second (several on a busy machine) importing
nbgrader, nbconvert, Jupyter's server and client, SQLAlchemy and Jinja before it graded
anything; forked from a process that has them, it starts at once. Imports only: the fork
server never grades, reads a submission or talks to a kernel, so every worker starts from the
same untouched state, as a fresh interpreter would (nothing one submission did reaches the next).
It also compiles the feedback page's Jinja templates (from coursekit's own files only).
"""
import importlib

MODULES = (
    "nbformat", "nbclient", "jupyter_client", "jupyter_client.manager", "nbconvert",
    "nbconvert.exporters.html", "nbconvert.preprocessors", "jinja2", "sqlalchemy", "sqlalchemy.orm",
    "nbgrader.api", "nbgrader.apps.api", "nbgrader.preprocessors", "nbgrader.plugins",
    "nbgrader.converters", "coursekit.grading.pipeline.worker", "coursekit.grading.kernel.execute",
    "coursekit.grading.judge.session", "coursekit.grading.course.feedback",
    "coursekit.grading.course.deadlines",
)

for _name in MODULES:
    try:
        importlib.import_module(_name)
    except Exception:  # a worker imports what it needs itself (and reports what fails)
        pass

try:  # the feedback page's templates, compiled once for every worker (course.feedback)
    from coursekit.grading.course.feedback import compile_templates

    compile_templates()
except Exception:  # a worker compiles them itself
    pass
