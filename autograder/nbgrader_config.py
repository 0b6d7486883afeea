"""nbgrader configuration of the course, read by `coursekit release` and `coursekit autograde`.

coursekit copies the notebooks into a working course directory it creates and sets
CourseDirectory.root itself; everything else about grading is configured here.
"""
from coursekit.grading.kernel.execute import SandboxedExecute
import os

import nbgrader
from coursekit.grading.course.deadlines import LatePenalty
from coursekit.grading.course.feedback import (FILTERS, TEMPLATES, GetGradesMarkingWritten, HideHiddenTests,
                                               NameExercises, RenderMath)
from coursekit.grading.course.parameters import GradingParameters
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata,
                                    IgnorePattern, LimitOutput, SaveAutoGrades)

c = get_config()  # noqa: F821 (provided by traitlets when this file is loaded)

c.CourseDirectory.course_id = "coursekit"

# What replaces the instructor's answers in the student release.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Per-cell time limit while grading (seconds). A cell that runs longer is interrupted and the
# rest of the notebook is still graded. `coursekit autograde --timeout` overrides it.
c.Execute.timeout = 30
c.ExecutePreprocessor.timeout = 30

# The kernel's own log (e.g. ipykernel's notice about TCP transport) is not the student's
# output: keep it off the grader's terminal.
c.Execute.extra_arguments = ["--IPKernelApp.log_level=ERROR"]

# Grading executes with coursekit's Execute, which survives a kernel death (the dead cell is
# marked, the kernel restarted, earlier cells replayed, and grading goes on) and, under
# `coursekit autograde`, shuts the student's kernel in a sandbox with resource limits
# (coursekit.grading.kernel.sandbox.Limits; `coursekit autograde --help` lists the options).
c.Autograde.autograde_preprocessors = [
    GradingParameters,
    SandboxedExecute,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]

# The experiments of notebooks 03-07 run small while graded: no points depend on them (the graded
# cells test the student's functions). Each notebook keeps its experiments' sizes in a cell
# tagged "parameters"; the grader inserts a cell after it with these values, which the student
# sees in their feedback (coursekit.grading.course.parameters).
c.GradingParameters.values = {
    "03_conv": {"EPOCHS": 20, "TARGET": 0.75},   # 20 epochs reach about 84 % (60 reach 97 %)
    "04_normalisation": {"DEMO_EPOCHS": 30, "EPOCHS": 10},
    "05_initialisation": {"EPOCHS": 20},
    "06_architectures": {"STEPS": 30},
    "07_scenes": {"REAL_DATA": False, "EPOCHS": 1, "FINAL_EPOCHS": 1, "PROBE_STEPS": 30, "PROBE_SIZE": 64,
                  "TRAIN": False},   # 07 loads the models handed in (its graded cells test them)
    "08_visualisation": {"REAL_DATA": False, "IMAGE_SIZE": 64, "PROBE_STEPS": 30, "SIMPLE_EPOCHS": 1,
                         "SMOOTH_SAMPLES": 2, "OCCLUSION_PATCH": 16, "OCCLUSION_STRIDE": 8, "FOOL_STEPS": 2},
}

# Due dates, per notebook (anything nbgrader reads: "2026-10-09 17:00:00 Europe/London"; no zone
# means UTC). A notebook without one is never late. A submission's time is nbgrader's
# timestamp.txt beside it (or the time in an LMS zip's file names: coursekit.grading.pipeline.collect).
c.Deadlines.due = {}
# Late penalties through nbgrader's late-submission plugin mechanism: "none", "zero" (nbgrader's)
# or "per_day": percent_per_day of the score per day or part of a day late, keeping at least
# floor_percent of it (coursekit.grading.course.deadlines.LatePenalty).
c.AssignLatePenalties.plugin_class = LatePenalty
c.LatePenalty.penalty_method = "per_day"
c.LatePenalty.percent_per_day = 10.0
c.LatePenalty.floor_percent = 50.0

# Feedback HTML shows each graded cell's score and the checker's message, not the hidden
# tests' source; its math is MathML (no MathJax from a CDN: it renders offline) and it names the
# exercises (coursekit.grading.course.feedback).
c.GenerateFeedback.preprocessors = [GetGradesMarkingWritten, HideHiddenTests, RenderMath, NameExercises,
                                    CSSHTMLHeaderPreprocessor]
# nbgrader's API insists on the template "feedback": coursekit's feedback/ folder is found
# after nbgrader's, and its coursekit.html.j2 extends nbgrader's feedback/index.html.j2. Set for
# the feedback exporter alone (an HTMLExporter whose templates the grading pool compiles once):
# formgrader renders its grading page with an HTMLExporter of its own, which must keep nbgrader's
# formgrade template.
c.GenerateFeedback.exporter_class = "coursekit.grading.course.feedback.FeedbackExporter"
c.FeedbackExporter.template_file = "coursekit.html.j2"
c.FeedbackExporter.extra_template_basedirs = [
    os.path.join(os.path.dirname(nbgrader.__file__), "server_extensions", "formgrader", "templates"),
    TEMPLATES]
c.FeedbackExporter.filters = FILTERS

# Graded cells run in a judge kernel that never runs the student's code (coursekit.grading.judge.client);
# a student's torch module is judged through a copy (coursekit.grading.judge.mirror) whose forward and
# backward run in the student's kernel. A checker that cannot work that way can be listed here
# as "notebook:grade_id" to run in the student's kernel, as plain nbgrader does; none needs to.
c.SandboxedExecute.in_kernel = []

# What a notebook needs prepared once before its submissions are graded (readable, not writable,
# by the kernels): notebook -> "module:function", called with a folder to fill and this
# configuration, returning the environment variables that say where (coursekit.grading.pipeline.prepare).
# Notebooks 07 and 08's cells read the generated stand-in of the 15-Scene dataset, decoded once for
# the whole class; 07's graded cells (the judge alone) read the held-out test images.
c.GradingPreparation.prepare = {"07_scenes": "coursekit.grading.course.held_out:prepare_scenes",
                                "08_visualisation": "coursekit.grading.course.stand_in:prepare_stand_in"}

# Files handed in beside a notebook, kept with it and given to its grading (07's trained models);
# a larger file is refused with a note its graded cell shows (coursekit.grading.course.submitted).
c.SubmittedFiles.files = {"07_scenes": ["simple.safetensors", "regularised.safetensors", "transfer.safetensors"]}
c.SubmittedFiles.max_bytes = 64 * 2**20

# What 07's saved models are graded on (coursekit.grading.course.held_out): the 15-Scene test
# split given by `coursekit autograde --data DIR` (or here, c.HeldOutData.data), else the
# generated stand-in's. A model earns its points at these test accuracies (the defaults:
# coursekit.checks.scenes.THRESHOLDS), classifying the whole split within `seconds` on the grader's CPU.
# c.HeldOutData.thresholds = {"15-Scene": {"simple": 0.40, "regularised": 0.45, "transfer": 0.80}, ...}
c.HeldOutData.seconds = 240.0
# ... which takes longer than other cells (EfficientNet-Lite0 at 96 px: about a minute on one core).
c.SandboxedExecute.cell_timeouts = {f"07_scenes:{cell}": 300 for cell in ("ex10_simple", "ex10_regularised",
                                                                         "ex10_transfer")}
