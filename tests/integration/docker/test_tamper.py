"""A tampering kernel cannot raise its score: nbgrader records the live state's verdict.

A tiny nbgrader course is built in a temporary directory from ``fixtures/lab.ipynb``. The
sandbox serves model v2 when the lab wants v1. Four submissions patch, in their solution
cell, the graders (a), the sandbox object and client (b, which also edits the submitted
cell's labkit metadata), ``httpx.request`` (c) and ``subprocess.run`` (d), so their in-kernel
checks pass; ``nbgrader autograde`` must still score those grade cells 0, while an honest
submission that rolls back scores every point.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

pytestmark = pytest.mark.docker

FIXTURES = Path(__file__).parent / "fixtures"
LAB, NOTEBOOK = "lab-tamper", "lab"
TAMPERED = ("tamper-graders", "tamper-sandbox", "tamper-httpx", "tamper-subprocess")
CONFIG = """\
from graders.preprocessor import autograde_preprocessors

c = get_config()  # noqa: F821
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = "labkit-tamper"
c.Autograde.autograde_preprocessors = autograde_preprocessors()
c.LiveStateGrader.source_root = {source!r}
c.Execute.timeout = 120
"""


def _nbgrader(root: Path, sb, *args: str) -> None:
    bindir = Path(sys.executable).parent
    env = dict(os.environ, LABKIT_SANDBOX_ID=sb.id, LABKIT_HOME=str(sb.settings.home),
               PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run([str(bindir / "nbgrader"), *args, f"--CourseDirectory.root={root}"], cwd=root,
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def _course(tmp_path: Path) -> Path:
    root = tmp_path / "course"
    (root / "source" / LAB).mkdir(parents=True)
    shutil.copy(FIXTURES / "lab.ipynb", root / "source" / LAB / f"{NOTEBOOK}.ipynb")
    (root / "nbgrader_config.py").write_text(CONFIG.format(root=str(root), source=str(root / "source")))
    return root


def _submit(root: Path, student: str, code: str, runbook: str | None = None) -> None:
    nb = nbformat.read(str(root / "release" / LAB / f"{NOTEBOOK}.ipynb"), as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id == "fix":
            cell.source = code
        elif grade_id == "runbook" and runbook:
            cell.source = runbook
        elif grade_id == "serving-v1" and student == "tamper-sandbox":
            cell.metadata["labkit"]["args"] = {"model": "v2"}  # the submitted metadata is not trusted
    dest = root / "submitted" / student / LAB
    dest.mkdir(parents=True)
    nbformat.write(nb, str(dest / f"{NOTEBOOK}.ipynb"))
    (dest / "timestamp.txt").write_text("2026-11-20 10:00:00.000000 UTC")


def _scores(root: Path, student: str) -> dict[str, float]:
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(NOTEBOOK, LAB, student)
        return {g.name: g.score for g in nb.grades if g.name != "runbook"}


def _records(root: Path) -> dict[tuple[str, str], dict]:
    lines = (root / "reports" / "live_checks.jsonl").read_text().splitlines()
    return {(r["student"], r["grade_id"]): r for r in map(json.loads, lines)}


# This grading compares the engine's foreign objects before and after each notebook: no test that
# creates and removes an unlabelled container (test_checks) may run beside it on another worker.
@pytest.mark.xdist_group("foreign-objects")
def test_tampered_kernels_score_zero_and_an_honest_submission_full_points(sandbox, tmp_path):
    sandbox.deploy(model="v2")  # the wrong state: the lab wants v1 back
    root = _course(tmp_path)
    _nbgrader(root, sandbox, "generate_assignment", LAB)
    for student in TAMPERED:
        _submit(root, student, (FIXTURES / "submissions" / f"{student.replace('-', '_')}.py").read_text())
    _nbgrader(root, sandbox, "autograde", LAB, "--CourseDirectory.student_id=tamper-*")
    assert sandbox.status().spec.model == "v2"  # no tampering changed the live state

    for student in TAMPERED:
        assert _scores(root, student) == {"serving-v1": 0, "rolled-back": 0, "foreign": 1}, student
    records = _records(root)
    for student in TAMPERED:
        assert records[(student, "serving-v1")]["observed"].startswith("model v2")
        assert records[(student, "runbook")]["points"] == 0  # "YOUR ANSWER HERE" suggests nothing
    # the patched kernels did pass their own test cells: only the live check caught them
    assert records[("tamper-graders", "serving-v1")]["kernel_points"] == 2
    assert records[("tamper-sandbox", "serving-v1")]["kernel_points"] == 2
    assert records[("tamper-httpx", "serving-v1")]["kernel_points"] == 2
    assert records[("tamper-graders", "rolled-back")]["kernel_points"] == 1

    honest = (FIXTURES / "submissions" / "honest.py").read_text()
    _submit(root, "honest", honest, (FIXTURES / "submissions" / "honest.md").read_text())
    _nbgrader(root, sandbox, "autograde", LAB, "--CourseDirectory.student_id=honest")
    assert _scores(root, "honest") == {"serving-v1": 2, "rolled-back": 1, "foreign": 1}
    record = _records(root)[("honest", "runbook")]
    assert record["kind"] == "suggestion" and record["points"] == 6 and record["capability"] == "incident-response"

    graded = nbformat.read(str(root / "autograded" / "honest" / LAB / f"{NOTEBOOK}.ipynb"), as_version=4)
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in graded.cells}
    assert cells["serving-v1"].outputs[0]["text"].startswith("live check passed: ✓ serving")
    assert cells["runbook"].metadata["labkit"]["suggested"]["points"] == 6
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        comment = gb.find_comment("runbook", NOTEBOOK, LAB, "honest")
        assert comment.auto_comment.startswith("labkit suggests 6/6")
        assert gb.find_grade("runbook", NOTEBOOK, LAB, "honest").needs_manual_grade
