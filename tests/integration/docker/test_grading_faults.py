"""Faults of the grading machinery never become the trainee's zero (real Docker, real nbgrader).

Each test grades honest submissions of the fixture lab through ``labkit.course_grade.grade`` and
breaks the machinery under one of them while it runs, as an operator would meet it:

* the engine takes a grading sandbox away (what an engine restart or ``docker kill`` does to it:
  its front door stops; ``Sandbox.held`` and the run report notice), on every attempt;
* the grader's own nbgrader process is SIGKILLed (the OOM killer, an operator), once;
* the disk holding the course fills up during the run, and before one.

Asserted each time: no score is recorded for the broken run (the gradebook holds no points and
flags the cells for the instructor, the comment names the cause and the regrade command), a
temporary failure is retried on a fresh sandbox, the honest neighbour grades in full, the
outcome's cause is one line naming what failed, and nothing of the kit is left running.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "notebooks"))  # the course proofs' helpers
from fixture_lab import LAB, variant, write_fixture_lab  # noqa: E402
from nbhelpers import copy_course  # noqa: E402

from labkit.course import Course, add_student, submit  # noqa: E402
from labkit.course_grade import DISK_FULL_BYTES, grade  # noqa: E402
from sandbox import labels  # noqa: E402
from sandbox.errors import InfrastructureError  # noqa: E402

pytestmark = [pytest.mark.docker, pytest.mark.slow]

#: The honest solution, taking its time after the deploy so that a fault can land mid-run.
SLOW_SOLUTION = "sb.deploy(model='v1', index='2026-11-01')\nimport time\ntime.sleep(6)"


def _course(root: Path, students: tuple[str, ...]) -> Course:
    course = copy_course(root / "labs", labs=[])
    write_fixture_lab(course.root)
    course.nbgrader("generate_assignment", "*", "--create", "--force")
    honest = variant(course.root, "slow-honest", SLOW_SOLUTION)
    for student in students:
        add_student(course, student)
        submit(course, LAB, honest, student)
    return course


def _grade_while(course: Course, students: list[str], fault: Callable[[], bool]):
    """Grade ``students`` (``--jobs`` as many) while ``fault`` is called every 0.3 s in the
    background, until it returns False or the grading is over."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set() and fault():
            time.sleep(0.3)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        return grade(course, LAB, students, jobs=len(students), timeout_s=300)
    finally:
        stop.set()
        thread.join(5)


def _gradebook_cells(course: Course, student: str) -> list[tuple[float | None, bool, str]]:
    with course.gradebook() as gb:
        nb = gb.find_submission(LAB, student).notebooks[0]
        comments = " ".join(c.auto_comment or "" for c in nb.comments)
        return [(g.auto_score, bool(g.needs_manual_grade), comments) for g in nb.grades]


def _assert_not_graded(course: Course, student: str, cause_word: str) -> None:
    cells = _gradebook_cells(course, student)
    assert cells and all(score is None and flagged for score, flagged, _ in cells), cells
    comment = cells[0][2]
    assert "not graded" in comment and cause_word in comment and f"--student {student}" in comment, comment


def _assert_nothing_left(client, outcomes) -> None:
    ids = {o.sandbox_id for o in outcomes}
    left = [c.name for c in client.containers.list(all=True, filters=labels.docker_filters(), ignore_removed=True)
            if c.labels.get(labels.SANDBOX) in ids]
    assert not left, f"grading sandboxes left behind: {left}"


def test_a_sandbox_the_engine_takes_away_is_retried_then_left_ungraded(tmp_path, docker_client, images_built):
    course = _course(tmp_path, ("lost", "steady-a"))
    killed: set[str] = set()

    def kill_victims_front_door() -> bool:
        for c in docker_client.containers.list(filters=labels.docker_filters(component="modelapi"), ignore_removed=True):
            sid = c.labels.get(labels.SANDBOX, "")
            if sid.startswith("grade-s-lost-") and sid not in killed and c.status == "running":
                killed.add(sid)
                docker_client.containers.get(f"labkit-{sid}-gateway").kill()
        return True

    run = _grade_while(course, ["lost", "steady-a"], kill_victims_front_door)
    by = {o.student: o for o in run.outcomes}
    victim, bystander = by["lost"], by["steady-a"]
    assert len(killed) == 2, f"the fault landed on {len(killed)} runs, want both attempts: {killed}"
    assert victim.status == "crashed" and victim.retries == 1, victim
    assert victim.cause.startswith("infrastructure failed (temporary): EngineLost") and "\n" not in victim.cause
    assert "gateway" in victim.cause, victim.cause
    _assert_not_graded(course, "lost", "EngineLost")
    assert bystander.status == "graded" and bystander.score == bystander.max_score == 3, bystander
    assert [s for s, _, _ in _gradebook_cells(course, "steady-a")] == [2.0, 1.0]
    _assert_nothing_left(docker_client, run.outcomes)


def test_a_grading_process_killed_with_sigkill_is_retried_not_scored(tmp_path, docker_client, images_built):
    course = _course(tmp_path, ("killed", "steady-b"))
    killed: list[int] = []

    def kill_victims_nbgrader() -> bool:
        for p in psutil.process_iter(["cmdline"]):
            cmd = " ".join(p.info["cmdline"] or [])
            if "autograde" in cmd and "--student killed" in cmd and str(course.root) in cmd:
                # only once the run is under way: its sandbox exists
                if any(c.labels.get(labels.SANDBOX, "").startswith("grade-s-killed-") for c in
                       docker_client.containers.list(filters=labels.docker_filters(component="modelapi"), ignore_removed=True)):
                    os.kill(p.pid, 9)
                    killed.append(p.pid)
                    return False
        return True

    run = _grade_while(course, ["killed", "steady-b"], kill_victims_nbgrader)
    by = {o.student: o for o in run.outcomes}
    assert killed, "the victim's nbgrader was never killed"
    assert by["killed"].status == "graded" and by["killed"].retries == 1, by["killed"]
    assert by["killed"].score == by["killed"].max_score == 3
    assert by["steady-b"].status == "graded" and by["steady-b"].score == 3
    assert [s for s, _, _ in _gradebook_cells(course, "killed")] == [2.0, 1.0]
    _assert_nothing_left(docker_client, run.outcomes)


@pytest.fixture
def small_disk(tmp_path):
    """A 96 MB tmpfs for the course (root only: CI runs as root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root (CI runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "labkit-test-disk", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(path: Path, leave_bytes: int) -> None:
    free = os.statvfs(path).f_bavail * os.statvfs(path).f_frsize
    with (path / "filler.bin").open("wb") as fh:
        fh.truncate(0)
        chunk = b"\0" * (1 << 20)
        for _ in range(max(0, (free - leave_bytes) >> 20)):
            fh.write(chunk)


def test_a_disk_that_fills_during_grading_leaves_the_run_ungraded(small_disk, docker_client, images_built):
    course = _course(small_disk, ("filled",))

    def fill_once_running() -> bool:
        for c in docker_client.containers.list(filters=labels.docker_filters(component="modelapi"), ignore_removed=True):
            if c.labels.get(labels.SANDBOX, "").startswith("grade-s-filled-"):
                _fill(small_disk, leave_bytes=DISK_FULL_BYTES // 4)
                return False
        return True

    run = _grade_while(course, ["filled"], fill_once_running)
    victim = run.outcomes[0]
    assert victim.status == "crashed" and victim.cause.startswith("infrastructure failed: the disk holding"), victim
    assert "full" in victim.cause and "\n" not in victim.cause
    (small_disk / "filler.bin").unlink()
    _assert_not_graded(course, "filled", "disk")
    again = grade(course, LAB, ["filled"], jobs=1, timeout_s=300).outcomes[0]
    assert again.status == "graded" and again.score == again.max_score == 3, again
    _assert_nothing_left(docker_client, run.outcomes + [again])


def test_a_full_disk_stops_grading_before_any_submission_runs(small_disk, docker_client, images_built):
    course = _course(small_disk, ("full",))
    _fill(small_disk, leave_bytes=DISK_FULL_BYTES // 4)
    with pytest.raises(InfrastructureError, match="is full") as e:
        grade(course, LAB, ["full"], jobs=1, timeout_s=300)
    assert "free space" in (e.value.fix or "")
    assert not [c for c in docker_client.containers.list(all=True, filters=labels.docker_filters(), ignore_removed=True)
                if c.labels.get(labels.SANDBOX, "").startswith("grade-s-full-")]
