"""Fixtures of the notebook proofs: a copy of the course, its generated labs, and the
expensive work (autograding submissions, nbval runs) done once, in parallel, for the tests
selected in this session. Never touches the repository's ``labs/``.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fixture_lab import write_fixture_lab
from nbhelpers import (GRADE_TIMEOUT, JOBS, LABS, TIMINGS, LabWork, copy_course, run_lessons, run_nbval, seed_evidence,
                       submit_roles)

from labkit.course import Course, Run
from labkit.course_grade import grade_submission, interruptible, run_pool
from sandbox.settings import Settings


WORK_MARKERS = ("lab_grades", "lab_nbval", "lab_lessons")
#: Seconds each task of the lab work took in an earlier run (refresh: LABKIT_TEST_DURATIONS=write).
#: The pool starts the longest first, so no long run starts last and leaves the others idle.
DURATIONS = Path(__file__).with_name("work_durations.json")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab_grades: uses the session's autograded lab submissions")
    config.addinivalue_line("markers", "lab_nbval: uses the session's nbval runs of the source notebooks")
    config.addinivalue_line("markers", "lab_lessons: uses the session's run of the lessons on one sandbox")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep every test that shares the session's lab work on ONE xdist worker
    (``--dist loadgroup``): each worker would otherwise redo all of it."""
    for item in items:
        if any(item.get_closest_marker(m) for m in WORK_MARKERS):
            item.add_marker(pytest.mark.xdist_group("labwork"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Seconds of each autograde / nbval run of the session (to size CI)."""
    if not TIMINGS:
        return
    terminalreporter.section("labkit notebook work (seconds per run)")
    for name, seconds in sorted(TIMINGS.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{seconds:7.1f}  {name}")
    terminalreporter.write_line(f"{sum(TIMINGS.values()):7.1f}  total of {len(TIMINGS)} runs, {JOBS} at a time")
    if os.environ.get("LABKIT_TEST_DURATIONS") == "write":
        known = json.loads(DURATIONS.read_text()) if DURATIONS.is_file() else {}
        DURATIONS.write_text(json.dumps(known | {k: round(v, 1) for k, v in TIMINGS.items()}, indent=1, sort_keys=True) + "\n")
        terminalreporter.write_line(f"wrote {DURATIONS}")


@pytest.fixture(scope="session")
def course(tmp_path_factory: pytest.TempPathFactory) -> Course:
    """A copy of the repo's course (config + every lab source), with each role's earlier records."""
    course = copy_course(tmp_path_factory.mktemp("course") / "labs")
    seed_evidence(course.root)
    return course


@pytest.fixture(scope="session")
def generated(course: Course) -> Run:
    """``nbgrader generate_assignment`` for every lab of the copy, in one nbgrader process."""
    if not LABS:
        pytest.skip("no labs in labs/source yet")
    return course.nbgrader("generate_assignment", "*", "--create", "--force", check=False)


@pytest.fixture(scope="session")
def fixture_course(tmp_path_factory: pytest.TempPathFactory) -> Course:
    """A course holding only ``lab00-fixture``, generated."""
    c = copy_course(tmp_path_factory.mktemp("fixture") / "labs", labs=[])
    write_fixture_lab(c.root)
    c.nbgrader("generate_assignment", "*", "--create", "--force")
    return c


def _selected(session: pytest.Session, marker: str, param: str = "lab") -> list:
    """``param`` values of the selected tests that carry ``marker``."""
    values = {}
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if item.get_closest_marker(marker) and callspec and param in callspec.params:
            value = callspec.params[param]
            values[getattr(value, "file", value)] = value
    return [values[k] for k in sorted(values)]


def _longest_first(tasks: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Tasks by the seconds they took before (unknown ones as the median), longest first."""
    known = json.loads(DURATIONS.read_text()) if DURATIONS.is_file() else {}
    names = {t: f"{t[0]} {t[1]} {t[2]}".strip() for t in tasks}
    default = sorted(known.values())[len(known) // 2] if known else 0.0
    return sorted(tasks, key=lambda t: -known.get(names[t], default))


@pytest.fixture(scope="session")
def lab_work(request: pytest.FixtureRequest, course: Course, generated: Run, docker_client: Any,
             images_built: None, tmp_path_factory: pytest.TempPathFactory) -> LabWork:
    """Autograde solution/wrong/blank of each selected lab and run nbval on each selected
    notebook, ``LABKIT_TEST_JOBS`` at a time, each on a sandbox of its own."""
    work = LabWork()
    scratch = tmp_path_factory.mktemp("work")
    grade_labs = _selected(request.session, "lab_grades")
    nbval_labs = _selected(request.session, "lab_nbval")
    lessons = [w.file for w in _selected(request.session, "lab_lessons", "week")]
    pairs = submit_roles(course, grade_labs, scratch, work) if grade_labs else []
    settings = Settings.from_env()

    def do(task: tuple[str, str, str]) -> None:
        kind, lab, role = task
        t0 = time.perf_counter()
        if kind == "lessons":  # in week order, on one sandbox: each lesson its own TIMINGS entry
            work.lessons = run_lessons(lessons, f"lessons-{uuid.uuid4().hex[:8]}", scratch)
            return
        if kind == "nbval":
            work.nbval[lab] = run_nbval(lab, scratch)
        else:
            work.grades[(lab, role)] = grade_submission(course, lab, role, GRADE_TIMEOUT, settings)
        TIMINGS[f"{kind} {lab} {role}".strip()] = time.perf_counter() - t0

    tasks = [("nbval", lab, "") for lab in nbval_labs] + [("grade", lab, role) for lab, role in pairs]
    tasks = _longest_first(tasks)
    if lessons:  # one long serial task (~150 s): start it first
        tasks.insert(0, ("lessons", "", ""))
    with interruptible():  # Ctrl-C or a CI timeout's SIGTERM: kill the runs, tear the sandboxes down
        run_pool(JOBS, [lambda t=t: do(t) for t in tasks])
    return work
