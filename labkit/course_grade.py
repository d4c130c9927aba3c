"""Parallel autograding: every submission against a fresh sandbox of its own.

nbgrader has no parallel autograde, and a submission drives real containers, so ``grade``
runs one ``nbgrader autograde LAB --student S --force`` process per submission (a thread pool
of ``jobs`` workers), each with ``LABKIT_SANDBOX_ID`` set to a unique id
(``grade-<student>-<8 hex>``). The notebook's ``connect()`` and the grader's live checks both
find that sandbox; nothing of another submission or of the trainee's own sandbox is visible.
Whatever happens, the sandbox is torn down afterwards (selected by its label).

A submission that runs past ``timeout_s`` is killed with its whole process tree (nbgrader and
the kernel it started); one whose kernel crashes is not retried (except for SQLite's
"database is locked", see below). Both are the submission's doing: every grade cell of the lab
is recorded as 0 with an automatic comment naming the cause, and a line in the summary; the
other submissions go on.

Failures of the grading machinery itself, before or around the trainee's code, are retried
once on a fresh sandbox instead of scoring the trainee 0 (``TRANSIENT``; the summary counts
them in ``retries``):

* SQLite under concurrent nbgrader processes: each holds the write lock briefly (creating the
  submission rows, saving the grades) and waits up to SQLite's 5 s busy timeout for it.
  Measured: 8 and 16 concurrent autogrades on 2 loaded cores never hit "database is locked";
  if one ever does, its run is retried.
* jupyter_client picks kernel ports before the kernel binds them; with many kernels starting
  at once two can collide ("Address already in use", "Kernel died before replying to
  kernel_info"). Measured: 1 of 16 at 16 concurrent; never at 2-8.

An infrastructure error raised in a locked cell (the sandbox could not be made: no free
Docker network, image missing, ...), a run report saying the sandbox or the box did not hold
(the engine restarted, a container was killed), an nbgrader process killed by a signal (the
grader's own process, outside the box), or a disk that filled up under the course are the
machinery's failures, never the trainee's: a temporary one is retried once on a fresh sandbox;
then the submission is reported ``crashed`` with the cause ``infrastructure failed: ...`` and
recorded *not graded* (no score, flagged for the instructor, the comment names the cause and
the command that regrades it), so no false zero reaches the gradebook or the report.

Interrupted (Ctrl-C, or SIGTERM from a CI timeout while ``grade`` runs in the main thread),
``grade`` kills every running nbgrader process tree, lets each worker tear its sandbox down,
records nothing for the unfinished submissions (status ``cancelled``) and re-raises.
"""

from __future__ import annotations

import shutil
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from graders.box.image import check_box_image
from graders.runreport import REPORT_ENV, read_report
from sandbox import make_sandbox
from sandbox.errors import InfrastructureError, InvalidInput, error_class
from sandbox.settings import Settings, sanitize_id

from .course import Course, boxed, nbgrader_binary, nbgrader_env
from .reaper import lease, reap, remove_grading
from .course_gradebook import LOCKED, fill_scores, record_not_graded, record_zero, with_gradebook
from .course_runs import cancel_all, cancelled, interruptible, kill_tree, run_pool, run_with_timeout

__all__ = ["grade", "grade_submission", "GradeOutcome", "GradeRun", "teardown", "record_zero", "record_not_graded",
           "run_with_timeout", "run_pool", "interruptible", "cancel_all", "kill_tree"]

STATUSES = ("graded", "timeout", "crashed", "cancelled")
#: Output that means the grading machinery failed, not the submission: retried once.
TRANSIENT = (LOCKED, "Kernel died before replying to kernel_info", "Address already in use")
INFRA = "infrastructure failed:"
INFRA_TEMPORARY = "infrastructure failed (temporary):"
Progress = Callable[[str, str, "GradeOutcome | None"], None]


@dataclass
class GradeOutcome:
    """How one submission was graded."""

    student: str
    status: str  # graded | timeout | crashed | cancelled
    score: float = 0.0
    """Autograded points earned (grade cells scored by the autograder)."""
    max_score: float = 0.0
    """Autograded points available."""
    seconds: float = 0.0
    sandbox_id: str = ""
    failed_cells: list[str] = field(default_factory=list)
    """Grade ids of autograded cells that did not earn full points."""
    cell_scores: dict[str, float] = field(default_factory=dict)
    """Points of each autograded cell (grade id -> points)."""
    manual_pending: list[str] = field(default_factory=list)
    """Grade ids that wait for an instructor (written answers, runbooks)."""
    teardown_s: float = 0.0
    """Seconds spent tearing the grading sandbox(es) down (inside ``seconds``)."""
    retries: int = 0
    """Runs repeated because the machinery failed transiently (``TRANSIENT``)."""
    cause: str = ""
    log: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GradeRun:
    """The summary of one ``grade`` call."""

    lab: str
    jobs: int
    seconds: float
    outcomes: list[GradeOutcome]

    def scores(self) -> dict[str, tuple[float, float]]:
        return {o.student: (o.score, o.max_score) for o in self.outcomes}

    def to_dict(self) -> dict[str, Any]:
        return {"lab": self.lab, "jobs": self.jobs, "seconds": round(self.seconds, 2),
                "outcomes": [o.to_dict() for o in self.outcomes]}

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """(student, status, score/max, seconds, note) for a summary table."""
        out = []
        for o in self.outcomes:
            note = o.cause or (f"failed: {', '.join(o.failed_cells)}" if o.failed_cells else "")
            if o.manual_pending:
                note = (note + "; " if note else "") + f"{len(o.manual_pending)} cell(s) to grade by hand"
            out.append((o.student, o.status, f"{o.score:g}/{o.max_score:g}", f"{o.seconds:.1f}", note))
        return out


def grading_sandbox_id(student: str) -> str:
    """``grade-<student>-<8 hex>``, DNS-safe and at most 40 characters."""
    suffix = uuid.uuid4().hex[:8]
    stem = sanitize_id(f"s-{student}")[: 40 - len("grade--") - len(suffix)].strip("-")
    return f"grade-{stem}-{suffix}"


def preflight(settings: Settings) -> None:
    """Fail once, before any submission runs, if the sandbox machinery is unusable."""
    make_sandbox(settings).preflight()
    if boxed():
        make_sandbox(settings).preflight_image(settings.images.box)
        check_box_image(settings)


def require_generated(course: Course, lab: str) -> None:
    """The lab is in the gradebook with its notebooks (``generate`` ran)."""

    def action(gb: Any) -> bool:
        return any(a.name == lab and a.notebooks for a in gb.assignments)

    if not with_gradebook(course, action):
        raise InvalidInput(f"lab {lab} is not in the gradebook yet",
                           fix=f"run `labkit course generate {lab}` first")


def grade(course: Course, lab: str, student: str | list[str] | None = None, jobs: int = 1,
          timeout_s: float = 600.0, settings: Settings | None = None,
          progress: Progress | None = None) -> GradeRun:
    """Autograde the submissions of ``lab`` (all, or the students named), ``jobs`` at a time.

    ``progress(event, student, outcome)`` is told ``"queued"`` for each submission (outcome
    None) before any runs, ``"started"`` when its grading starts and ``"finished"`` with its
    outcome; it is called from the worker threads."""
    if jobs < 1:
        raise InvalidInput(f"--jobs must be at least 1, got {jobs}")
    if timeout_s <= 0:
        raise InvalidInput(f"--timeout must be positive, got {timeout_s}")
    students = course.require_students(lab, student)
    settings = settings or Settings.from_env()
    require_generated(course, lab)
    full = disk_full(course.root)
    if full:
        raise InfrastructureError(full, fix="free space on that disk (reports/grade-logs and autograded/ can go)")
    preflight(settings)
    reap(settings)  # what a grading run that died left behind
    t0 = time.perf_counter()
    tell = progress or (lambda *_: None)
    for s in students:
        tell("queued", s, None)

    def one(s: str) -> GradeOutcome:
        tell("started", s, None)
        outcome = grade_submission(course, lab, s, timeout_s, settings)
        tell("finished", s, outcome)
        return outcome

    with interruptible():
        outcomes = run_pool(jobs, [lambda s=s: one(s) for s in students])
    return GradeRun(lab, jobs, time.perf_counter() - t0, outcomes)


def grade_submission(course: Course, lab: str, student: str, timeout_s: float,
                     settings: Settings) -> GradeOutcome:
    """Autograde one submission on a fresh sandbox (retried once on a ``TRANSIENT`` failure)."""
    t0 = time.perf_counter()
    log = course.root / "reports" / "grade-logs" / lab / f"{student}.log"
    retries, teardown_s = 0, 0.0
    while True:
        if cancelled.is_set():
            return GradeOutcome(student, "cancelled", cause="grading was interrupted")
        sandbox_id = grading_sandbox_id(student)
        try:
            status, cause = _autograde(course, lab, student, sandbox_id, timeout_s, settings, log)
        except Exception as e:  # noqa: BLE001 - one submission's trouble never stops the others
            status, cause = "crashed", f"grader error: {type(e).__name__}: {e}"
        finally:
            t_down = time.perf_counter()
            teardown_error = teardown(sandbox_id, settings)
            teardown_s += time.perf_counter() - t_down
        if cancelled.is_set():
            return GradeOutcome(student, "cancelled", seconds=time.perf_counter() - t0,
                                sandbox_id=sandbox_id, cause="grading was interrupted", log=str(log))
        if status == "crashed" and retries == 0 and (_transient(log) or cause.startswith(INFRA_TEMPORARY)):
            retries += 1
            log.replace(log.with_suffix(".attempt1.log"))
            continue
        break
    if teardown_error:
        cause = (cause + "; " if cause else "") + teardown_error
    if status == "crashed" and cause.startswith((INFRA, INFRA_TEMPORARY)):
        record_not_graded(course, lab, student, cause)
    elif status != "graded":
        record_zero(course, lab, student, f"{status}: {cause}")
    outcome = GradeOutcome(student, status, seconds=time.perf_counter() - t0, sandbox_id=sandbox_id,
                           teardown_s=round(teardown_s, 2), retries=retries, cause=cause, log=str(log))
    fill_scores(course, lab, outcome)
    return outcome


def _autograde(course: Course, lab: str, student: str, sandbox_id: str, timeout_s: float,
               settings: Settings, log: Path) -> tuple[str, str]:
    """Run nbgrader for one submission; (status, cause)."""
    run_dir = course.root / "reports" / "runs" / lab
    report = run_dir / f"{student}-{sandbox_id}.json"
    report.unlink(missing_ok=True)
    env = nbgrader_env({
        "LABKIT_SANDBOX_ID": sandbox_id,
        "LABKIT_PROGRESS_DEADLINE_S": f"{settings.rollout.progress_deadline_s:g}",
        "LABKIT_GRADER": lease(),
        "LABKIT_AUDIT_LOG": str(run_dir / f"{student}-{sandbox_id}.audit.jsonl"),
        REPORT_ENV: str(report),
    })
    cmd = [nbgrader_binary(), "autograde", lab, "--student", student, "--force",
           f"--CourseDirectory.root={course.root}"]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as fh:
        returncode = run_with_timeout(cmd, course.root, env, timeout_s, fh)
    full = disk_full(course.root)
    if full:
        return "crashed", f"{INFRA} {full}"
    if returncode is None:
        return "timeout", f"cut off after {timeout_s:g} s (see {log.name})"
    held = read_report(report)
    if held is not None and not held.held:  # the sandbox or the box did not hold: never a score
        return "crashed", f"{INFRA_TEMPORARY if held.temporary else INFRA} {held.error}: {held.cause}"
    if returncode < 0:  # nbgrader runs here, outside the box: a signal is the machine's (OOM killer, kill -9)
        return "crashed", f"{INFRA_TEMPORARY} nbgrader was killed by {_signal_name(-returncode)}"
    if returncode != 0:
        return "crashed", f"nbgrader exit {returncode}: {_last_error(log)}"
    broken, temporary = infrastructure_failure(course.root / "autograded" / student / lab)
    if not broken:
        return "graded", ""
    return "crashed", f"{INFRA_TEMPORARY if temporary else INFRA} {broken}"


def infrastructure_failure(autograded: Path) -> tuple[str, bool]:
    """The first error of the grading machinery in an executed submission and whether it is
    ``temporary``; ("", False) when there is none.

    An error of the kit's ``InfrastructureError`` family (by class: the output's ``ename`` looked
    up in the error tree) raised in a cell the trainee cannot edit (locked, not a solution) means
    the sandbox never became usable: the zeros that follow are not the trainee's.
    """
    for path in sorted(autograded.glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell.cell_type != "code" or meta.get("solution"):
                continue
            for out in cell.get("outputs", []):
                cls = error_class(out.get("ename", "")) if out.get("output_type") == "error" else None
                if cls is not None and issubclass(cls, InfrastructureError):
                    cell_id = meta.get("grade_id", "?")
                    return f"{out['ename']} in cell {cell_id}: {str(out.get('evalue', ''))[:240]}", cls.temporary
    return "", False


#: Free space under which the course's disk counts as full: nbgrader writes the autograded copy,
#: the gradebook and the reports there, and a write that failed half way is no grade.
DISK_FULL_BYTES = 16 * 1024 * 1024


def disk_full(root: Path, floor: int = DISK_FULL_BYTES) -> str:
    """What to tell the instructor when the disk holding ``root`` is (nearly) full, else ""."""
    try:
        free = shutil.disk_usage(root).free
    except OSError as e:
        return f"the course directory {root} cannot be read ({e.strerror})"
    if free >= floor:
        return ""
    return (f"the disk holding {root} is full ({free / 1e6:.1f} MB free, {floor / 1e6:.0f} MB needed):"
            " free space, then grade again")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def teardown(sandbox_id: str, settings: Settings) -> str:
    """Remove the grading sandbox and its box (label-selected); "" or what went wrong."""
    try:
        remove_grading(settings, sandbox_id)
    except Exception as e:  # noqa: BLE001 - teardown must never hide the grade
        return f"teardown of sandbox {sandbox_id} failed: {e}"
    return ""


def _transient(log: Path) -> bool:
    text = log.read_text(encoding="utf-8", errors="replace")
    return any(marker in text for marker in TRANSIENT)


def _last_error(log: Path, limit: int = 300) -> str:
    lines = [ln.strip() for ln in log.read_text(encoding="utf-8", errors="replace").splitlines()]
    if any(LOCKED in ln for ln in lines):
        return LOCKED
    picked = [ln for ln in lines if ln and ("Error" in ln or "ERROR" in ln)
              and "Please see" not in ln and "There was an error processing" not in ln]
    return (picked[-1] if picked else (lines[-1] if lines else "no output"))[:limit]
