"""What the class run hands a worker (:class:`Job`, as ``job.json``) and what it hands back
(:class:`Report`, as ``report.json``): the only things that cross between the two processes."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Job:
    root: str                 # the course repository (autograder/ config)
    template: str             # a course directory with source/ and a gradebook snapshot
    student: str
    notebook: str
    submission: str           # the notebook to grade (already read and checked by intake)
    work: str                 # this job's private folder
    timeout: int | None = None
    limits: dict = field(default_factory=dict)
    read: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    package: str = ""         # the coursekit the student's kernel imports (answers locked)
    judge_read: list[str] = field(default_factory=list)     # what only the judge may read
    judge_env: dict[str, str] = field(default_factory=dict)
    files: str = ""           # the files handed in beside the notebook (course.submitted), if any


@dataclass
class Report:
    grades: dict[str, list] = field(default_factory=dict)     # grade_id -> [auto_score, max_score]
    comments: dict[str, str | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    autograded: str = ""
    feedback: str = ""
    seconds: float = 0.0
    graded: bool = False
    phases: dict[str, float] = field(default_factory=dict)   # coursekit.grading.timing: name -> s
    sandbox: dict[str, bool] = field(default_factory=dict)   # what the grading machine enforced
    worker: str = ""          # the Dask worker that graded it ("" on this machine)
    retry: bool = False       # not graded for the grader's own trouble: worth one more try
