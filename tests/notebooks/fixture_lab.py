"""A tiny lab that exercises the grading machinery without depending on the real labs.

``lab00-fixture``: connect, one solution cell (deploy v1), two grade cells whose ``labkit``
metadata the live-state grader runs (``serving`` v1 for 2 points, ``ready`` for 1). A
submission that deploys v2 scores 1/3: partial credit with ``check-serving`` failing.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

LAB = "lab00-fixture"
SOLUTION_CELL = "task-deploy"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def _nbgrader(grade_id: str, **flags: object) -> dict[str, object]:
    meta: dict[str, object] = {"schema_version": 3, "solution": False, "grade": False,
                               "locked": False, "task": False, "grade_id": grade_id}
    meta.update(flags)
    return meta


def fixture_notebook(solution: str = "sb.deploy(model='v1', index='2026-11-01')") -> nbformat.NotebookNode:
    """The instructor version; ``solution`` is the body of the solution cell."""
    cells = [
        new_markdown_cell("# Fixture lab\nDeploy model v1.", metadata={"nbgrader": _nbgrader("brief", locked=True)}),
        new_code_cell("from sandbox import connect\nfrom graders import expect\nsb = connect()",
                      metadata={"nbgrader": _nbgrader("setup", locked=True)}),
        new_code_cell(f"### BEGIN SOLUTION\n{solution}\n### END SOLUTION",
                      metadata={"nbgrader": _nbgrader(SOLUTION_CELL, solution=True)}),
        new_code_cell("expect('serving', model='v1')",
                      metadata={"nbgrader": _nbgrader("check-serving", grade=True, locked=True, points=2),
                                "labkit": {"check": "serving", "args": {"model": "v1"},
                                           "capability": "model-rollback"}}),
        new_code_cell("expect('ready')",
                      metadata={"nbgrader": _nbgrader("check-ready", grade=True, locked=True, points=1),
                                "labkit": {"check": "ready", "args": {}, "capability": "model-rollback"}}),
    ]
    for i, cell in enumerate(cells):
        cell["id"] = f"fixture-{i}"
    return new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})


def write_fixture_lab(course_root: Path) -> Path:
    """Write ``source/lab00-fixture/lab00-fixture.ipynb`` under ``course_root``."""
    path = course_root / "source" / LAB / f"{LAB}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(fixture_notebook(), str(path))
    return path


def variant(course_root: Path, name: str, solution: str) -> Path:
    """The fixture notebook with another solution body, written next to the course."""
    path = course_root.parent / "variants" / f"{name}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(fixture_notebook(solution), str(path))
    return path
