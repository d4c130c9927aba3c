"""The tamper suite: submissions that try to change their grade without doing the lab, or to
reach beyond their sandbox, graded through ``labkit course grade`` beside an honest and a
blank submission.

The lab (``lab-tamper``): its setup deploys v1, then a bad v2; the trainee must roll back. Every
attack (``fixtures/attacks/*.py``, the body of the solution cell) must score no more than the
blank submission on the cells it targets; the honest one scores full; and after the run the
host, the course's sources and config, the kit's own files and the other submissions are byte
for byte what they were (digests), the other students' grades unchanged, and no object of any
grading sandbox or box is left on the engine.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from labkit import course as courses
from labkit.course_grade import grade
from sandbox import labels

# With the notebook proofs (make test's second pass, one process, after the lab work's pool): it
# grades a cohort of boxes whose attacks load the machine on purpose (fork and memory bombs), and
# compares the engine's foreign objects before and after, so nothing else may run beside it. (Run
# beside the parallel pass it took 808 s instead of 242 s and starved other tests' rollouts.)
pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "integration" / "docker" / "fixtures"
LAB = "lab-tamper"
ATTACKS = sorted(p.stem for p in (FIXTURES / "attacks").glob("*.py"))
GRADED = ("serving-v1", "rolled-back", "foreign")
BLANK = {"serving-v1": 0.0, "rolled-back": 0.0, "foreign": 1.0}
FULL = {"serving-v1": 2.0, "rolled-back": 1.0, "foreign": 1.0}
#: Cells an attack may earn honestly (it did part of the work); every other graded cell is a target.
EARNS = {"back_date": {"serving-v1"}}


def _meta(grade_id: str, **flags: object) -> dict[str, object]:
    return {"schema_version": 3, "solution": False, "grade": False, "locked": False, "task": False,
            "grade_id": grade_id, **flags}


def _check(grade_id: str, points: int, check: str, args: dict, source: str) -> nbformat.NotebookNode:
    return new_code_cell(source, metadata={"nbgrader": _meta(grade_id, grade=True, locked=True, points=points),
                                           "labkit": {"check": check, "args": args, "capability": "model-rollback"}})


def _lab() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell("# Tamper lab\nRelease v2 is bad. Roll back to v1.", metadata={"nbgrader": _meta("brief", locked=True)}),
        new_code_cell("from graders import expect\nfrom sandbox import connect\n\nsb = connect()\n"
                      "sb.deploy(model='v1', index='2026-11-01')\nsb.deploy(model='v2', index='2026-11-01')",
                      metadata={"nbgrader": _meta("setup", locked=True)}),
        new_code_cell("### BEGIN SOLUTION\nsb.rollback()\n### END SOLUTION",
                      metadata={"nbgrader": _meta("fix", solution=True)}),
        _check("serving-v1", 2, "serving", {"model": "v1"}, 'expect("serving", sb, model="v1")'),
        _check("rolled-back", 1, "rolled_back", {}, 'expect("rolled_back", sb)'),
        _check("foreign", 1, "foreign_untouched", {}, "# the grader compares the objects the kit did not make"),
    ]
    for i, cell in enumerate(cells):
        cell["id"] = f"tamper-{i}"
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}})


def _submission(course: courses.Course, student: str, code: str, tmp: Path) -> None:
    nb = nbformat.read(str(course.root / "release" / LAB / f"{LAB}.ipynb"), as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id == "fix" and code:
            cell.source = code
        if grade_id == "serving-v1" and student == "tamper-sandbox":
            cell.metadata["labkit"]["args"] = {"model": "v2"}  # the submitted metadata is not trusted
    path = tmp / f"{student}.ipynb"
    nbformat.write(nb, str(path))
    courses.add_student(course, student)
    courses.submit(course, LAB, path, student)


def _digests(*roots: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    out = {}
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if "__pycache__" in path.parts or any(part in path.parts for part in skip):
                continue
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _scores(course: courses.Course, student: str) -> dict[str, float]:
    with course.gradebook() as gb:
        nb = gb.find_submission_notebook(LAB, LAB, student)
        return {g.name: float(g.score or 0) for g in nb.grades if g.name in GRADED}


def _findings(course: courses.Course, student: str) -> dict:
    path = course.root / "autograded" / student / LAB / f"{LAB}.ipynb"
    if not path.exists():
        return {}
    nb = nbformat.read(str(path), as_version=4)
    fix = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "fix")
    text = "".join(o.get("text", "") for o in fix.outputs if o.get("output_type") == "stream")
    lines = [ln for ln in text.splitlines() if ln.startswith("FINDINGS ")]
    return json.loads(lines[-1][len("FINDINGS "):]) if lines else {}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, docker_client, images_built) -> dict:
    tmp = tmp_path_factory.mktemp("tamper")
    root = tmp / "course"
    root.mkdir()
    (root / "nbgrader_config.py").write_text((REPO / "labs" / "nbgrader_config.py").read_text())
    (root / "source" / LAB).mkdir(parents=True)
    nbformat.write(_lab(), str(root / "source" / LAB / f"{LAB}.ipynb"))
    course = courses.Course(root.resolve())
    courses.generate(course, LAB)
    _submission(course, "honest", (FIXTURES / "submissions" / "honest.py").read_text(), tmp)
    _submission(course, "blank", "", tmp)
    sentinel = tmp / "host-sentinel"
    sentinel.mkdir()
    (sentinel / "secret.txt").write_text("the host's own file")
    os.environ["LABKIT_EXECUTE_TIMEOUT_S"] = "60"
    first = grade(course, LAB, ["honest", "blank"], jobs=2, timeout_s=300)
    before_scores = {s: _scores(course, s) for s in ("honest", "blank")}
    for attack in ATTACKS:
        _submission(course, attack.replace("_", "-"), (FIXTURES / "attacks" / f"{attack}.py").read_text(), tmp)
    watched = (root / "source", root / "release", root / "submitted", sentinel, REPO / "sandbox", REPO / "graders",
               REPO / "labkit")
    outputs = ("autograded", "reports", "submitted", "release", "source", "feedback", "exchange", "gradebook.db")
    before = _digests(*watched) | _digests(root, skip=outputs)
    run = grade(course, LAB, [a.replace("_", "-") for a in ATTACKS], jobs=2, timeout_s=300)
    after = _digests(*watched) | _digests(root, skip=outputs)
    yield {"course": course, "first": first, "run": run, "before": before, "after": after,
           "before_scores": before_scores, "client": docker_client}
    os.environ.pop("LABKIT_EXECUTE_TIMEOUT_S", None)


def test_the_honest_submission_scores_full_and_the_blank_one_what_blank_earns(graded):
    course = graded["course"]
    assert _scores(course, "honest") == FULL
    assert _scores(course, "blank") == BLANK
    assert {o.student: o.status for o in graded["first"].outcomes} == {"honest": "graded", "blank": "graded"}


@pytest.mark.parametrize("attack", ATTACKS)
def test_an_attack_scores_no_more_than_blank_on_what_it_targets(graded, attack):
    student = attack.replace("_", "-")
    scores = _scores(graded["course"], student)
    for cell in GRADED:
        if cell not in EARNS.get(attack, set()):
            assert scores[cell] <= BLANK[cell], f"{attack} earned {scores[cell]} on {cell}"


def test_nothing_outside_the_box_changed(graded):
    assert graded["after"] == graded["before"]
    assert {s: _scores(graded["course"], s) for s in ("honest", "blank")} == graded["before_scores"]
    client = graded["client"]
    ours = tuple(f"grade-s-{a.replace('_', '-')}"[:20] for a in ATTACKS) + ("grade-s-honest", "grade-s-blank")
    left = [c.name for c in client.containers.list(all=True, filters=labels.docker_filters())
            if c.labels.get(labels.SANDBOX, "").startswith(ours)]
    assert left == []  # every grading sandbox and box of this run torn down


def test_what_the_box_could_see_and_reach(graded):
    course = graded["course"]
    files = _findings(course, "course-files")
    assert files["found"] == [] and all(w.startswith(("/work", "/tmp")) for w in files["wrote"])
    assert not any(_findings(course, "escape").values())
    others = _findings(course, "read-others")
    own = f"/in/{LAB}.ipynb"  # its own notebook, staged for the box to copy in
    assert [h for h in others["hits"] if not h.endswith(own)] == [] and set(others["work"]) <= {f"{LAB}.ipynb", "timestamp.txt"}
    assert len(_findings(course, "foreign-image")["refused"]) == 3  # only the model API's images deploy


def test_machinery_attacks_end_as_blank_or_crashed_never_as_a_hang(graded):
    outcomes = {o.student: o for o in graded["run"].outcomes}
    assert outcomes["memory-bomb"].status == "crashed" and "memory" in outcomes["memory-bomb"].cause
    assert outcomes["memory-bomb"].retries == 1
    # graded, not "not graded": an injection the submission broke itself is its own result
    for student in ("fork-bomb", "disk-fill", "sleep-forever", "survivor", "raw-token", "dodge-zero"):
        assert outcomes[student].status == "graded", (student, outcomes[student].cause)
    flood = outcomes["infinite-output"]  # the grader drops it; the kernel's own send queue may fill its box
    assert flood.status == "graded" or (flood.status == "crashed" and "memory" in flood.cause), flood.cause
    assert _scores(graded["course"], "survivor")["rolled-back"] == 0  # nothing acted after the kernel ended


def test_the_grader_keeps_its_own_clock(graded):
    """The kernel back-dated its messages; the revision it made is still attributed to the
    trainee's cell, by the grader's clock."""
    lines = (graded["course"].root / "reports" / "changes.jsonl").read_text().splitlines()
    record = [json.loads(ln) for ln in lines if json.loads(ln).get("student") == "back-date"][-1]
    made = {r["revision"]: (r["made_by"], r["cell"]) for r in record["revisions"]}
    assert made[1] == ("lab", "setup") and made[2] == ("lab", "setup") and made[3] == ("trainee", "fix")
