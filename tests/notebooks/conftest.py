"""Fixtures of the notebook proofs: a copy of the course, its generated labs, and the
expensive work (autograding submissions, nbval runs) done once, in parallel, for the tests
selected in this session. Never touches the repository's ``labs/``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from fixture_lab import write_fixture_lab
from nbhelpers import GRADE_TIMEOUT, JOBS, LABS, TIMINGS, LabWork, copy_course, run_nbval, seed_evidence, submit_roles

from labkit.course import Course, Run
from labkit.course_grade import grade_submission, interruptible, run_pool
from sandbox.settings import Settings


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab_grades: uses the session's autograded lab submissions")
    config.addinivalue_line("markers", "lab_nbval: uses the session's nbval runs of the source notebooks")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep every test that shares the session's lab work on ONE xdist worker
    (``--dist loadgroup``): each worker would otherwise redo all of it."""
    for item in items:
        if item.get_closest_marker("lab_grades") or item.get_closest_marker("lab_nbval"):
            item.add_marker(pytest.mark.xdist_group("labwork"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Seconds of each autograde / nbval run of the session (to size CI)."""
    if not TIMINGS:
        return
    terminalreporter.section("labkit notebook work (seconds per run)")
    for name, seconds in sorted(TIMINGS.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{seconds:7.1f}  {name}")
    terminalreporter.write_line(f"{sum(TIMINGS.values()):7.1f}  total of {len(TIMINGS)} runs, {JOBS} at a time")


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


def _selected(session: pytest.Session, marker: str) -> list[str]:
    """Labs of the selected tests that carry ``marker``."""
    labs = set()
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if item.get_closest_marker(marker) and callspec and "lab" in callspec.params:
            labs.add(callspec.params["lab"])
    return sorted(labs)


@pytest.fixture(scope="session")
def lab_work(request: pytest.FixtureRequest, course: Course, generated: Run, docker_client: Any,
             images_built: None, tmp_path_factory: pytest.TempPathFactory) -> LabWork:
    """Autograde solution/wrong/blank of each selected lab and run nbval on each selected
    notebook, ``LABKIT_TEST_JOBS`` at a time, each on a sandbox of its own."""
    work = LabWork()
    scratch = tmp_path_factory.mktemp("work")
    grade_labs = _selected(request.session, "lab_grades")
    nbval_labs = _selected(request.session, "lab_nbval")
    pairs = submit_roles(course, grade_labs, scratch, work) if grade_labs else []
    settings = Settings.from_env()

    def do(task: tuple[str, str, str]) -> None:
        kind, lab, role = task
        t0 = time.perf_counter()
        if kind == "nbval":
            work.nbval[lab] = run_nbval(lab, scratch)
        else:
            work.grades[(lab, role)] = grade_submission(course, lab, role, GRADE_TIMEOUT, settings)
        TIMINGS[f"{kind} {lab} {role}".strip()] = time.perf_counter() - t0

    tasks = [("nbval", lab, "") for lab in nbval_labs] + [("grade", lab, role) for lab, role in pairs]
    tasks.sort(key=lambda t: t[2] == "blank")  # the short blank runs fill the pool's tail
    with interruptible():  # Ctrl-C or a CI timeout's SIGTERM: kill the runs, tear the sandboxes down
        run_pool(JOBS, [lambda t=t: do(t) for t in tasks])
    return work
