"""The instructor's side: release the notebooks, grade a class with nbgrader, safely.

How one submission travels (each box a process; ``python -m`` names the module it runs)::

    coursekit autograde SUBS                       pipeline/   plan -> run -> record -> write
      | plan_class: the term's course, what changed (collect, ledger, intake, prepare, plan, jobs)
      | run_workers, N at a time ----------------> pipeline.worker JOB        (pool, worker)
      |                                              | nbgrader autograde + feedback, in a
      |                                              | private copy of the course   (course/)
      |                                              | kernel.execute.SandboxedExecute  (kernel/)
      |                                              |   |-- student's kernel: kernel.sandbox -> (own pid
      |                                              |   |     namespace, own uid, init) -> ipykernel
      |                                              |   |     (forked by kernel.zygote, which has
      |                                              |   |     imported torch & co. once per class run)
      |                                              |   |     answer cells; judge.server answers
      |                                              |   '-- judge kernel:   kernel.sandbox -> ipykernel
      |                                              |         graded cells; judge.client asks  (judge/)
      | record each report as it arrives <---------' report.json
      |   -> the term's gradebook (gradebook, ledger)
      '-> late penalties; grades.csv, submissions.csv, feedback/<student>/<notebook>.html

pipeline/  the class run: plan (what is new or changed), collect (and submission times), intake,
           prepare, the worker pool (forked from a preloaded fork server: warm), a worker, cluster
           (the same workers on Dask), gradebook (recording), ledger (what is complete), results
timing.py  where a submission's grading time goes (named phases, for bench grading --profile)
kernel/    one notebook's execution: sandbox (Landlock, rlimits, cgroups), privileges (pid namespace,
           uid, seccomp), zygote (kernels forked with their libraries imported), scratch
           clean-up (no link followed), recovering from a dead or hung kernel,
           time/disk/output budgets, what can happen to a cell (outcomes)
judge/     graded cells in a kernel that never runs student code: protocol (every message),
           client (judge side; values cross in coursekit.values), server (student side), mirror (nn.Module),
           rules (which names a graded cell gets: checked at release), session (the executor's side)
course/    nbgrader plumbing: the course directory, the term's course (term), due dates and late
           penalties (deadlines), the roster, release, feedback pages (+ templates/), answers
           (which reference answers which notebook's exercise; a source scan for them)
lms/       what leaves for a learning-management system: Canvas/Moodle/nbgrader CSVs, feedback zips
classes/   the bundled sample and hostile classes (the demo and the tests)
review/    what a person reviews after a class run: which students' answers look alike (similarity)
"""

import sys as _sys

# jsonschema, under nbformat, loads rfc3987_syntax when it is installed (jupyter-events asks for
# jsonschema[format-nongpl]), and rfc3987_syntax builds three Earley parsers as it is imported:
# 2 to 5 s in every process that reads a notebook (each worker, each `coursekit` command). Only
# jsonschema's optional "iri" format check uses it, which no notebook schema asks for: it is
# not loaded here (an import of it raises ImportError, which jsonschema expects when it is absent).
_sys.modules.setdefault("rfc3987_syntax", None)
