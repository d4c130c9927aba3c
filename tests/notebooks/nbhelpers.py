"""Helpers of the notebook proofs, shared by ``conftest.py``, the tests and the benchmark.

Knobs (environment): ``LABKIT_TEST_JOBS`` (parallel autogrades / nbval runs, default 3),
``LABKIT_TEST_GRADE_TIMEOUT`` (seconds per submission, default 420),
``LABKIT_TEST_NBVAL_TIMEOUT`` (seconds per notebook, default 420), ``LABKIT_LESSON_TIMEOUT_S``
(seconds per lesson, default 300).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from wrong_submissions import WRONG, make_wrong

from labkit.course import Course, add_student, submit
from labkit.course_grade import GradeOutcome, run_with_timeout, teardown
from sandbox import connect
from sandbox.api import SandboxStatus
from sandbox.settings import Settings

REPO = Path(__file__).resolve().parents[2]
LABS_DIR = REPO / "labs"
JOBS = int(os.environ.get("LABKIT_TEST_JOBS", "3"))
GRADE_TIMEOUT = float(os.environ.get("LABKIT_TEST_GRADE_TIMEOUT", "420"))
NBVAL_TIMEOUT = float(os.environ.get("LABKIT_TEST_NBVAL_TIMEOUT", "420"))
LESSON_TIMEOUT = float(os.environ.get("LABKIT_LESSON_TIMEOUT_S", "300"))
ROLES = ("solution", "wrong", "blank")
TIMINGS: dict[str, float] = {}
"""Seconds of each autograde / nbval run of the session (printed in the terminal summary)."""
IGNORE = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", ".pytest_cache")


def discover_labs() -> list[str]:
    """Labs present in the repository: ``labs/source/<lab>/<lab>.ipynb``."""
    source = LABS_DIR / "source"
    if not source.is_dir():
        return []
    return sorted(d.name for d in source.iterdir() if (d / f"{d.name}.ipynb").is_file())


LABS = discover_labs()
#: Live labs whose deliberately wrong submission every run grades (each check kind once: deploy,
#: rollback, alerting, index repair); the track labs' wrong answers are cheap (no sandbox) and all
#: run. LABKIT_TEST_WRONG=all grades every lab's wrong submission (what a release candidate gets).
WRONG_LIVE = ("lab01-first-deploy", "lab05-bad-rollout", "lab07-drift-alerting", "lab13-capstone")


def wrong_proven(lab: str) -> bool:
    """Whether this run grades ``lab``'s wrong submission (see ``WRONG_LIVE``)."""
    return os.environ.get("LABKIT_TEST_WRONG") == "all" or lab in WRONG_LIVE or not autograded(lab)
EXEMPLARS = REPO / "curriculum" / "facilitator" / "exemplars"


def seed_evidence(course_root: Path, students: tuple[str, ...] = ROLES) -> None:
    """Give each student the records the track labs read (as if earlier labs were graded and a
    game day was played): the facilitator kit's sample evidence, under each student's id."""
    sample = json.loads((EXEMPLARS / "evidence-sample.json").read_text(encoding="utf-8"))
    reports = course_root / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    for name, key, field_ in (("gamedays.jsonl", "gamedays", "trainee"), ("live_checks.jsonl", "live_checks", "student")):
        with (reports / name).open("a", encoding="utf-8") as fh:
            for student in students:
                for record in sample[key]:
                    fh.write(json.dumps({**record, field_: student}) + "\n")


def copy_course(dest: Path, labs: list[str] | None = None) -> Course:
    """A course at ``dest`` with the repo's config and (some of) its lab sources."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(LABS_DIR / "nbgrader_config.py", dest / "nbgrader_config.py")
    (dest / "source").mkdir(exist_ok=True)
    for lab in LABS if labs is None else labs:
        shutil.copytree(LABS_DIR / "source" / lab, dest / "source" / lab, ignore=IGNORE)
    return Course(dest.resolve())


def suggestions(course_root: Path, lab: str, student: str) -> dict[str, tuple[float, float]]:
    """grade_id -> (suggested points, max points) of the written answers the grader judged."""
    path = course_root / "reports" / "live_checks.jsonl"
    out: dict[str, tuple[float, float]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            r = json.loads(line) if line.strip() else {}
            if r.get("kind") == "suggestion" and r.get("assignment") == lab and r.get("student") == student:
                out[r["grade_id"]] = (float(r["points"]), float(r["max_points"]))  # the last run wins
    return out


def rubric_cells(lab: str) -> set[str]:
    """Grade ids of the lab's written answers that declare a rubric check."""
    nb = nbformat.read(str(LABS_DIR / "source" / lab / f"{lab}.ipynb"), as_version=4)
    return {c.metadata["nbgrader"]["grade_id"] for c in nb.cells
            if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("grade")
            and (c.metadata.get("labkit") or {}).get("check")}


def autograded(lab: str) -> bool:
    """Whether the lab has autograded (code) grade cells."""
    nb = nbformat.read(str(LABS_DIR / "source" / lab / f"{lab}.ipynb"), as_version=4)
    return any(c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade") for c in nb.cells)


@dataclass
class LabWork:
    """Results of autograding and nbval runs, keyed by lab (and role)."""

    grades: dict[tuple[str, str], GradeOutcome] = field(default_factory=dict)
    nbval: dict[str, tuple[int | None, str]] = field(default_factory=dict)
    lessons: dict[str, LessonRun] = field(default_factory=dict)
    problems: dict[tuple[str, str], str] = field(default_factory=dict)

    def outcome(self, lab: str, role: str) -> GradeOutcome:
        """The graded outcome, or a test failure saying why there is none."""
        if (lab, role) in self.problems:
            pytest.fail(f"{lab} {role}: {self.problems[(lab, role)]}", pytrace=False)
        if (lab, role) not in self.grades:
            pytest.fail(f"{lab} {role} was not graded in this session", pytrace=False)
        return self.grades[(lab, role)]


def submission(course: Course, lab: str, role: str, scratch: Path) -> Path:
    """The notebook a role submits: the source, the released blank, or the wrong one."""
    source = course.root / "source" / lab / f"{lab}.ipynb"
    if role == "solution":
        return source
    if role == "blank":
        release = course.root / "release" / lab / f"{lab}.ipynb"
        if not release.is_file():
            raise FileNotFoundError(f"no released notebook {release}: generate_assignment failed")
        return release
    if lab not in WRONG:
        raise KeyError(f"no wrong submission for {lab}: add one to tests/notebooks/wrong_submissions.py")
    return make_wrong(source, WRONG[lab], scratch / lab / f"{lab}.ipynb")


def submit_roles(course: Course, labs: list[str], scratch: Path, work: LabWork) -> list[tuple[str, str]]:
    """Submit every role of every lab; returns the (lab, role) pairs ready to grade."""
    for role in ROLES:
        add_student(course, role)  # up front: parallel nbgrader runs must not race to create them
    ready = []
    for role in ROLES:
        for lab in labs:
            if role == "wrong" and not wrong_proven(lab):
                continue
            try:
                submit(course, lab, submission(course, lab, role, scratch), role)
                ready.append((lab, role))
            except (KeyError, FileNotFoundError) as e:
                work.problems[(lab, role)] = str(e).strip("'\"")
    return ready


def nbval(notebook: str, cwd: Path, sandbox_id: str, cell_timeout_s: int, timeout_s: float, log: Path) -> int | None:
    """``pytest --nbval-lax notebook`` in ``cwd`` against the sandbox ``sandbox_id``, output to
    ``log``; its whole process tree (kernel included) killed after ``timeout_s``. The exit
    status, or None when it was cut off."""
    env = {**os.environ, "LABKIT_SANDBOX_ID": sandbox_id}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax", f"--nbval-cell-timeout={cell_timeout_s}", "-p",
           "no:cacheprovider", "-q", notebook]
    with log.open("w", encoding="utf-8") as out:
        return run_with_timeout(cmd, cwd, env, timeout_s, out)


@dataclass(frozen=True)
class LessonRun:
    """One lesson's nbval run on the shared lesson sandbox, and what it left there."""

    code: int | None
    output: str
    seconds: float
    left: SandboxStatus  # the sandbox right after the lesson (before the next one ran)


def run_lessons(files: list[str], sandbox_id: str, scratch: Path,
                timeout_s: float = LESSON_TIMEOUT) -> dict[str, LessonRun]:
    """nbval on each lesson of ``files`` in week order against ONE sandbox (``sandbox_id``), as a
    cohort's shared machine would see them, recording the sandbox's status after each; the
    sandbox is torn down at the end."""
    out: dict[str, LessonRun] = {}
    (scratch / "lessons").mkdir(parents=True, exist_ok=True)
    try:
        for name in files:
            log = scratch / "lessons" / f"{name}.log"
            t0 = time.perf_counter()
            code = nbval(f"curriculum/{name}", REPO, sandbox_id, 180, timeout_s, log)
            seconds = time.perf_counter() - t0
            TIMINGS[f"lesson {name.removesuffix('.ipynb')}"] = seconds
            out[name] = LessonRun(code, log.read_text(encoding="utf-8", errors="replace"), seconds,
                                  connect(sandbox_id=sandbox_id, up=False).status())
    finally:
        teardown(sandbox_id, Settings.from_env())
    return out


def run_nbval(lab: str, scratch: Path, timeout_s: float = NBVAL_TIMEOUT) -> tuple[int | None, str]:
    """nbval on a copy of the lab's source folder, on a sandbox of its own that is torn down
    afterwards; (exit status or None on timeout, output)."""
    folder = scratch / "nbval" / lab
    shutil.copytree(LABS_DIR / "source" / lab, folder, ignore=IGNORE, dirs_exist_ok=True)
    sandbox_id = f"nbval-{lab[:20]}-{uuid.uuid4().hex[:8]}"
    log = folder.parent / f"{lab}.log"
    try:
        code = nbval(f"{lab}.ipynb", folder, sandbox_id, 240, timeout_s, log)
    finally:
        teardown(sandbox_id, Settings.from_env())
    return code, log.read_text(encoding="utf-8", errors="replace")
