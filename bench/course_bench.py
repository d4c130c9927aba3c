"""Grading figures for ``make bench`` (section ``course`` of ``bench/run.py``).

* ``solution_autograde_s``: ``labkit course grade`` seconds per submission of each lab's
  instructor solution, one at a time (``--jobs 1``), fresh sandbox and teardown included.
* ``cohort``: at least 8 synthetic submissions of one lab (copies of its solution and of its
  blank release, half each) graded with ``--jobs 1`` and with ``--jobs 2``; the speedup is
  jobs-1 seconds / jobs-2 seconds, and the scores of both runs must agree.
* ``box_ratio``: the same solution submissions graded in a grading box and unboxed
  (``LABKIT_BOX=0``, the kernel on this machine), alternating, per lab and as the median ratio
  boxed / unboxed (target <= 1.15). ``LABKIT_BENCH_BOX_LABS`` picks the labs (default: all).
* ``wrapper_overhead``: our wrapper (``labkit.course_grade.grade``, one submission) against a
  plain ``nbgrader autograde`` of the same submission in the same course, alternating, median of
  ``REPEATS``. The sandbox's setup (``connect()`` and the deploy inside the notebook) is paid by
  both and so cancels out; the wrapper's own work (preflight, gradebook reads, tearing the
  sandbox down) is inside the overhead, the plain run's teardown happens after its clock stops.
  Measured on the small fixture lab so that notebook noise does not drown the difference.

Knobs: ``LABKIT_BENCH_COURSE_LABS`` (comma-separated labs; default all), ``LABKIT_BENCH_COHORT``
(submissions in the cohort, default 8), ``LABKIT_BENCH_COHORT_LAB`` (default: the lab with the
median solution time).
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "notebooks"))

from fixture_lab import LAB as FIXTURE  # noqa: E402
from fixture_lab import write_fixture_lab  # noqa: E402
from nbhelpers import LABS, copy_course  # noqa: E402

from labkit.course import Course, add_student, nbgrader_binary, nbgrader_env, submit  # noqa: E402
from labkit.course_grade import grade, run_with_timeout, teardown  # noqa: E402
from sandbox.settings import Settings  # noqa: E402

REPEATS = 5
TIMEOUT_S = 900.0


def _labs() -> list[str]:
    wanted = [x for x in os.environ.get("LABKIT_BENCH_COURSE_LABS", "").split(",") if x]
    return [lab for lab in LABS if not wanted or lab in wanted]


def _course(scratch: Path, labs: list[str]) -> Course:
    course = copy_course(scratch / f"course-{uuid.uuid4().hex[:6]}" / "labs", labs=labs)
    course.nbgrader("generate_assignment", "*", "--create", "--force")
    return course


def solution_times(scratch: Path, labs: list[str]) -> dict[str, float]:
    """Seconds per solution submission, each lab graded alone with ``--jobs 1``."""
    course = _course(scratch, labs)
    times = {}
    for lab in labs:
        submit(course, lab, course.root / "source" / lab / f"{lab}.ipynb", "solution")
        run = grade(course, lab, "solution", jobs=1, timeout_s=TIMEOUT_S)
        o = run.outcomes[0]
        times[lab] = round(o.seconds, 1)
        print(f"  {lab}: {o.seconds:.1f} s ({o.status}, {o.score:g}/{o.max_score:g})", flush=True)
    return times


@contextmanager
def _env(key: str, value: str) -> Iterator[None]:
    previous = os.environ.get(key)
    os.environ[key] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = previous


def box_ratio(scratch: Path, labs: list[str]) -> dict[str, Any]:
    """Boxed vs unboxed seconds of each lab's solution, alternating (boxed first, then not)."""
    course = _course(scratch / "box", labs)
    per_lab: dict[str, dict[str, float]] = {}
    for lab in labs:
        submit(course, lab, course.root / "source" / lab / f"{lab}.ipynb", "solution")
        seen: dict[str, float] = {}
        for mode in ("1", "0"):
            with _env("LABKIT_BOX", mode):
                o = grade(course, lab, "solution", jobs=1, timeout_s=TIMEOUT_S).outcomes[0]
            seen["boxed_s" if mode == "1" else "unboxed_s"] = round(o.seconds, 1)
            if o.status != "graded" or o.score != o.max_score:
                seen.setdefault("problems", []).append(f"{'boxed' if mode == '1' else 'unboxed'}: {o.status}"
                                                       f" {o.score:g}/{o.max_score:g}")
        seen["ratio"] = round(seen["boxed_s"] / seen["unboxed_s"], 3)
        per_lab[lab] = seen
        print(f"  box {lab}: boxed {seen['boxed_s']} s, unboxed {seen['unboxed_s']} s, ratio {seen['ratio']}",
              flush=True)
    ratios = [v["ratio"] for v in per_lab.values()]
    return {"per_lab": per_lab, "median_ratio": round(statistics.median(ratios), 3) if ratios else None,
            "target": 1.15}


def cohort(scratch: Path, lab: str, size: int) -> dict[str, Any]:
    """``size`` copies of the solution and the blank of ``lab``, graded with 1 then 2 jobs."""
    course = _course(scratch, [lab])
    notebooks = [course.root / "source" / lab / f"{lab}.ipynb", course.root / "release" / lab / f"{lab}.ipynb"]
    students = [f"c{i:02d}" for i in range(size)]
    for i, student in enumerate(students):
        add_student(course, student)
        submit(course, lab, notebooks[i % 2], student)
    runs = {jobs: grade(course, lab, jobs=jobs, timeout_s=TIMEOUT_S) for jobs in (1, 2)}
    one, two = runs[1], runs[2]
    figures = {
        "lab": lab, "submissions": size, "jobs1_s": round(one.seconds, 1), "jobs2_s": round(two.seconds, 1),
        "speedup_jobs2": round(one.seconds / two.seconds, 2),
        "jobs1_per_submission_s": round(one.seconds / size, 1),
        "jobs2_per_submission_s": round(two.seconds / size, 1),
        "scores_equal": one.scores() == two.scores(),
        "statuses": sorted({o.status for o in one.outcomes + two.outcomes}),
    }
    print(f"  cohort of {size} ({lab}): --jobs 1 {one.seconds:.1f} s, --jobs 2 {two.seconds:.1f} s,"
          f" speedup {figures['speedup_jobs2']}x, scores equal: {figures['scores_equal']}", flush=True)
    return figures


def _plain_autograde(course: Course, lab: str, student: str, settings: Settings) -> float:
    """Seconds of a plain ``nbgrader autograde`` (sandbox torn down after the clock stops)."""
    sandbox_id = f"bench-plain-{uuid.uuid4().hex[:8]}"
    env = nbgrader_env({"LABKIT_SANDBOX_ID": sandbox_id})
    cmd = [nbgrader_binary(), "autograde", lab, "--student", student, "--force",
           f"--CourseDirectory.root={course.root}"]
    log = course.root / "reports" / f"plain-{sandbox_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        with log.open("w") as out:
            code = run_with_timeout(cmd, course.root, env, TIMEOUT_S, out)
        seconds = time.perf_counter() - t0
    finally:
        teardown(sandbox_id, settings)
    if code != 0:
        raise RuntimeError(f"plain nbgrader autograde failed ({code}); see {log}")
    return seconds


def wrapper_overhead(scratch: Path) -> dict[str, Any]:
    """Our ``grade`` of one submission vs plain ``nbgrader autograde``, alternating."""
    course = copy_course(scratch / "overhead" / "labs", labs=[])
    write_fixture_lab(course.root)
    course.nbgrader("generate_assignment", FIXTURE, "--create", "--force")
    submit(course, FIXTURE, course.root / "source" / FIXTURE / f"{FIXTURE}.ipynb", "alice")
    settings = Settings.from_env()
    plain, ours, downs = [], [], []
    for _ in range(REPEATS):
        plain.append(_plain_autograde(course, FIXTURE, "alice", settings))
        t0 = time.perf_counter()
        run = grade(course, FIXTURE, "alice", jobs=1, timeout_s=TIMEOUT_S, settings=settings)
        ours.append(time.perf_counter() - t0)
        downs.append(run.outcomes[0].teardown_s)
    p, o = statistics.median(plain), statistics.median(ours)
    figures = {"notebook": f"{FIXTURE} solution (connect, deploy v1, 2 live checks)",
               "plain_nbgrader_s": round(p, 2), "labkit_grade_s": round(o, 2),
               "overhead_s": round(o - p, 2), "overhead_ratio": round(o / p, 3),
               "of_which_teardown_s": round(statistics.median(downs), 2), "repeats": REPEATS,
               "sandbox_setup": "included in both (the notebook's connect/deploy)",
               "teardown": "included in labkit_grade_s only"}
    print(f"  wrapper: plain nbgrader {p:.2f} s, labkit grade {o:.2f} s, overhead {o - p:+.2f} s"
          f" per submission ({o / p:.3f}x)", flush=True)
    return figures


def run(results: dict[str, Any]) -> None:
    """Measure everything above; store it in ``results["course"]``."""
    labs = _labs()
    figures: dict[str, Any] = {"load_average_start": [round(x, 2) for x in os.getloadavg()]}
    scratch = Path(tempfile.mkdtemp(prefix="labkit-course-bench-"))
    try:
        if labs:
            figures["solution_autograde_s"] = times = solution_times(scratch, labs)
            figures["solution_autograde_median_s"] = round(statistics.median(times.values()), 1)
            ordered = sorted(times, key=times.get)
            lab = os.environ.get("LABKIT_BENCH_COHORT_LAB") or ordered[len(ordered) // 2]
            size = max(8, int(os.environ.get("LABKIT_BENCH_COHORT", "8")))
            figures["cohort"] = cohort(scratch, lab, size)
        else:
            figures["solution_autograde_s"] = "no labs in labs/source"
        box_labs = [x for x in os.environ.get("LABKIT_BENCH_BOX_LABS", "").split(",") if x] or labs
        if box_labs:
            figures["box_ratio"] = box_ratio(scratch, box_labs)
        figures["wrapper_overhead"] = wrapper_overhead(scratch)
    except Exception as e:  # noqa: BLE001 - keep the figures measured so far, say what failed
        figures["error"] = f"{type(e).__name__}: {e}"
        print(f"  course bench failed: {figures['error']}", flush=True)
    finally:
        figures["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        shutil.rmtree(scratch, ignore_errors=True)
        results["course"] = figures


if __name__ == "__main__":
    import json

    out: dict[str, Any] = {}
    run(out)
    print(json.dumps(out, indent=2))
