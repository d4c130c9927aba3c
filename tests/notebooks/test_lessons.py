"""The weekly lesson notebooks (``curriculum/weekNN-*.ipynb``), each week's and its track labs'.

Fast checks (no Docker): every lesson of the plan exists; each is well-formed (stable cell ids,
outputs cleared, python3 kernel), names its week and the plan's title in its title cell, reads
its header from ``load_plan()``, points at its lab and its runbook or artifact (with the check
that judges it), and drives the sandbox through the public API only - no ``sb._private``, none
of the calls reserved for the kit itself, and every fault it injects is healed in the same
notebook.

Slow check (Docker): every lesson passes ``pytest --nbval-lax`` in a subprocess, in week order,
against ONE shared sandbox (a unique ``LABKIT_SANDBOX_ID`` torn down at the end), and leaves that
sandbox as it found it: the baseline serving, ready, no fault active. The runs are one task of the
session's lab work (``conftest.lab_work``), beside the labs' grading and nbval runs. How long each
lesson takes is printed, never asserted.

Knob: ``LABKIT_LESSON_TIMEOUT_S`` (hard timeout of one nbval run, default 300).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
from nbhelpers import LESSON_TIMEOUT as TIMEOUT_S

from labkit.plan import load_plan
from sandbox.faults import load_catalog

REPO = Path(__file__).resolve().parents[2]
CURRICULUM = REPO / "curriculum"
PLAN = load_plan()
WEEKS = [pytest.param(lesson, id=lesson.file.removesuffix(".ipynb")) for lesson in PLAN.lessons()]

#: Sandbox calls a lesson must not make: they belong to labs (reset), to the kit's fault
#: catalog (provider and state primitives) or to teardown - never to a shared sandbox.
RESERVED = {"reset", "down", "up", "save_state", "set_provider_running", "restart_serving", "provider_call"}
BASELINE = {"model": "v1", "index": "2026-11-01-v1"}


def _notebook(lesson) -> nbformat.NotebookNode:
    return nbformat.read(CURRICULUM / lesson.file, as_version=4)


def _code(nb: nbformat.NotebookNode) -> list[tuple[int, str]]:
    return [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def _text(nb: nbformat.NotebookNode) -> str:
    return "\n".join(c.source for c in nb.cells)


# --- fast: structure ---------------------------------------------------------------------


def test_every_week_names_a_lesson_that_exists():
    missing = [lesson.file for lesson in PLAN.lessons() if not (CURRICULUM / lesson.file).is_file()]
    assert not missing, f"plan.yaml names lessons that do not exist in curriculum/: {missing}"


def test_no_lesson_outside_the_plan():
    planned = {lesson.file for lesson in PLAN.lessons()}
    extra = sorted(p.name for p in CURRICULUM.glob("week*.ipynb") if p.name not in planned)
    assert not extra, f"lesson notebooks no week of plan.yaml names: {extra}"


@pytest.mark.parametrize("week", WEEKS)
def test_lesson_is_well_formed(week):
    nb = _notebook(week)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", "kernelspec must be python3"
    ids = [c.get("id") for c in nb.cells]
    assert all(ids), "every cell needs a stable id"
    assert len(ids) == len(set(ids)), f"duplicate cell ids: {sorted(i for i in ids if ids.count(i) > 1)}"
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"outputs must be cleared in the committed file (cells {dirty})"


@pytest.mark.parametrize("week", WEEKS)
def test_title_cell_names_its_week_and_the_plan_title(week):
    first = _notebook(week).cells[0]
    assert first.cell_type == "markdown", "the first cell is the title (markdown)"
    heading = first.source.splitlines()[0]
    assert re.search(rf"\bWeek {week.week}\b", heading), f"title must name week {week.week}: {heading!r}"
    assert week.title in heading, f"title must carry the plan's title {week.title!r}: {heading!r}"


@pytest.mark.parametrize("week", WEEKS)
def test_header_is_rendered_from_the_plan(week):
    code = "\n".join(src for _, src in _code(_notebook(week)))
    assert "from labkit.plan import load_plan" in code, "the week's header must come from load_plan()"
    assert re.search(rf"^WEEK = {week.week}$", code, re.M), f"the header cell must set WEEK = {week.week}"
    assert "plan.week(WEEK)" in code
    if week.track:
        assert re.search(rf'^LAB = "{week.lab}"$', code, re.M), f'a track lesson names its lab: LAB = "{week.lab}"'


@pytest.mark.parametrize("week", WEEKS)
def test_lesson_points_at_its_lab_and_runbook(week):
    text = _text(_notebook(week))
    assert f"labs/source/{week.lab}/" in text, f"the 'before the lab' checklist must point at labs/source/{week.lab}/"
    assert week.artifact in text, f"the runbook or artifact {week.artifact} must be named"
    judged = [c.check for c in PLAN.checks_of(week.lab) if c.kind == "rubric"] if week.track else ["runbook_sections"]
    missing = [name for name in judged if f'"{name}"' not in text]
    assert not missing, f"the skeleton is checked with the lab's own rubric checks: {missing}"
    assert "## Self-check" in text and "## Before the lab" in text


# --- fast: public API only, idempotent demos ---------------------------------------------------


def _problems(tree: ast.AST, cell: int) -> list[str]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            out.append(f"cell {cell}: private attribute .{node.attr}")
        elif isinstance(node, ast.ImportFrom):
            parts = (node.module or "").split(".")
            if any(p.startswith("_") for p in parts) or any(a.name.startswith("_") for a in node.names):
                out.append(f"cell {cell}: private import from {node.module}")
        elif isinstance(node, ast.Import):
            out += [f"cell {cell}: private import {a.name}" for a in node.names
                    if any(p.startswith("_") for p in a.name.split("."))]
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in RESERVED and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "sb"):
            out.append(f"cell {cell}: sb.{node.func.attr}() is reserved (labs or the kit), not for a shared sandbox")
    return out


def _fault_calls(tree: ast.AST, name: str) -> list[str]:
    return [n.args[1].value for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name
            and len(n.args) > 1 and isinstance(n.args[1], ast.Constant)]


@pytest.mark.parametrize("week", WEEKS)
def test_lesson_uses_only_the_public_api(week):
    problems, injected, healed = [], [], []
    for i, src in _code(_notebook(week)):
        tree = ast.parse(src)  # lessons use no IPython magics: every cell is plain Python
        problems += _problems(tree, i)
        injected += _fault_calls(tree, "inject")
        healed += _fault_calls(tree, "heal")
    known = set(load_catalog().ids())
    problems += [f"unknown fault {f!r}" for f in injected + healed if f not in known]
    problems += [f"fault {f!r} is injected but never healed" for f in injected if f not in healed]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("week", WEEKS)
def test_lesson_connects_idempotently_and_checks_what_it_leaves(week):
    cells = _code(_notebook(week))
    setup = next((src for _, src in cells if "sb = connect()" in src), "")
    assert setup, "a lesson connects with sb = connect()"
    assert "st.spec is None" in setup and 'sb.deploy(model="v1", index="2026-11-01"' in setup, \
        "deploy the baseline only when nothing serves"
    assert "START.spec" in cells[-1][1], "the last code cell proves the sandbox is left as found"


def test_readme_lists_every_lesson_and_lab():
    readme = (CURRICULUM / "README.md").read_text(encoding="utf-8")
    missing = [lesson.file for lesson in PLAN.lessons() if lesson.file not in readme] + \
              [lab for lab in PLAN.all_lab_ids() if lab not in readme]
    assert not missing, f"curriculum/README.md does not mention: {missing}"


# --- slow: execute every lesson against one shared sandbox ----------------------------------------


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.lab_lessons
@pytest.mark.parametrize("week", WEEKS)
def test_lesson_executes_and_leaves_the_shared_sandbox_healthy(week, lab_work, record_property):
    """The session's lab work ran every selected lesson in week order on one sandbox and kept
    what each left behind (``nbhelpers.run_lessons``)."""
    run = lab_work.lessons.get(week.file)
    assert run is not None, f"{week.file} was not run in this session's lab work"
    record_property("seconds", round(run.seconds, 1))
    print(f"{week.file}: {run.seconds:.1f} s")
    assert run.code is not None, f"{week.file} was cut off after {TIMEOUT_S:.0f} s:\n{run.output[-4000:]}"
    assert run.code == 0, f"nbval of {week.file} failed (exit {run.code}):\n{run.output[-6000:]}"
    st = run.left
    assert st.spec is not None and st.spec.model == BASELINE["model"] and st.spec.index == BASELINE["index"], \
        f"{week.file} left the shared sandbox serving {st.spec}"
    assert not st.faults, f"{week.file} left faults active: {st.faults}"
    assert st.ready and st.rollout == "complete", f"{week.file} left it not ready: {st.rollout} {st.reason}"
