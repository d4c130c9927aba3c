"""Lessons teach, labs decide: no lesson pre-solves its week's labs, and the capstone stays unseen.

A lesson may show the concept and the tools on another example; it may not perform the very
steps its week's labs grade. "The very steps" is read from the labs themselves, statically:

- every call a lab's solution cells (``### BEGIN SOLUTION`` ... ``### END SOLUTION``) make on
  the kit's objects - the sandbox (``sb`` and what ``connect()`` returns), the service clients,
  ``sandbox.*`` and ``graders.*`` functions, and the notebook's own ``python -m modelapi`` job
  helpers - that changes something (reads such as ``search``, ``evaluate``, ``metrics``,
  ``lineage`` or ``validate-corpus`` are evidence a lesson may look at), and that carries at
  least one literal argument after free-text ones (``change_cause``, a job's label, a
  ``--reason``) are dropped. A name bound once to a literal, and ``sb.settings...``, count as
  literals;
- a fault injected through the catalog counts as the calls its inject action makes, evaluated
  on the course baseline (``inject(sb, "bad-rollout")`` *is* a deploy of the defect image).

A lesson fails if its code makes one of those calls with the same literal arguments (an
argument the lab computes at run time matches anything). The lessons' setup, which deploys the
course baseline only when nothing serves, is every lesson's preamble and is not a step.

The capstone's fault (the one its ``fault_healed`` check names) must appear in no lesson of an
earlier week, neither by id, by title nor by its inject action.

Weeks, lessons and labs come from ``curriculum/plan.yaml``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import nbformat
import pytest

from labkit.plan import load_plan
from sandbox.faults import load_catalog
from sandbox.faults.actions import ACTIONS
from sandbox.records import DeploySpec
from sandbox.settings import Settings

REPO = Path(__file__).resolve().parents[2]
PLAN = load_plan()
CATALOG = load_catalog()
SETTINGS = Settings.from_env({})
KIT_PACKAGES = ("sandbox", "graders")

#: Calls that only read: a lesson may make them on any example, the lab's included.
READS = {
    "search", "evaluate", "metrics", "logs", "version", "status", "history", "readiness", "indexes",
    "snapshots", "revision_endpoints", "current", "query", "query_range", "alerts", "state", "loaded",
    "source", "wait_for_rollout", "wait_ready", "healthy", "connect", "load_queries", "load_eval_set",
    "load_catalog", "active_faults", "drift_score", "run_load", "send_traffic", "send_searches",
    "ServiceClient", "summary", "find_evidence", "incidents", "own_values", "check", "expect",
}
#: ``python -m modelapi`` jobs that only read the data volume.
READ_JOBS = {"lineage", "validate-corpus", "eval-index", "quarantine-list", "list-indexes", "list-snapshots"}
#: Free text that names or explains a change but does not decide it.
FREE_TEXT_KWARGS = {"change_cause", "reason", "note"}
FREE_TEXT_FLAGS = {"--reason"}
#: The course baseline every lesson deploys when nothing serves (tests/notebooks/test_lessons.py).
BASELINE = {"model": "v1", "index": "2026-11-01"}


class _Any:
    """An argument computed at run time: matches anything."""

    def __repr__(self) -> str:
        return "<computed>"


ANY = _Any()


@dataclass(frozen=True)
class Call:
    name: str                                   # e.g. "deploy", "rules.load", "run_job", "inject"
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]
    where: str = field(default="", compare=False)

    @property
    def decisive(self) -> bool:
        return any(_has_literal(v) for v in self.args + tuple(v for _, v in self.kwargs))

    def text(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs]
        return f"{self.name}({', '.join(parts)})"


def _frozen(value: Any) -> Any:
    """Lists as tuples, so that arguments compare and hash alike."""
    return tuple(map(_frozen, value)) if isinstance(value, (list, tuple)) else value


def _has_literal(value: Any) -> bool:
    if isinstance(value, tuple):
        return any(_has_literal(v) for v in value)
    return value is not ANY


def _same(lab: Any, lesson: Any) -> bool:
    """Does the lesson's argument carry the lab's literal (the lab's computed parts match anything)?"""
    if lab is ANY:
        return True
    if isinstance(lab, tuple):
        return isinstance(lesson, tuple) and len(lab) == len(lesson) and all(map(_same, lab, lesson))
    return lesson is not ANY and not isinstance(lesson, tuple) and lab == lesson


def same_call(lab: Call, lesson: Call) -> bool:
    if lab.name != lesson.name or not lab.decisive or len(lesson.args) < len(lab.args):
        return False
    theirs = dict(lesson.kwargs)
    return all(_same(a, b) for a, b in zip(lab.args, lesson.args)) and \
        all(k in theirs and _same(v, theirs[k]) for k, v in lab.kwargs)


# --- reading a notebook's calls -----------------------------------------------------------------


def _solution(source: str) -> str:
    """The instructor's lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION``."""
    out, inside = [], False
    for line in source.splitlines():
        if line.strip() == "### BEGIN SOLUTION":
            inside = True
        elif line.strip() == "### END SOLUTION":
            inside = False
        elif inside:
            out.append(line)
    return "\n".join(out)


def _dotted(node: ast.AST) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


class Notebook:
    """The kit objects, literal constants and job helpers of one notebook (all its code cells)."""

    def __init__(self, path: Path):
        self.path = path
        nb = nbformat.read(path, as_version=4)
        self.cells = [c for c in nb.cells if c.cell_type == "code"]
        trees = [ast.parse(c.source) for c in self.cells]
        self.kit: dict[str, str] = {}       # name -> kind ("connect()" for sb, "inject", ...)
        self.consts: dict[str, Any] = {}
        self.helpers: dict[str, tuple[tuple[Any, ...], tuple[Any, ...]]] = {}
        stores: dict[str, int] = {}
        for tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in KIT_PACKAGES:
                    self.kit.update({a.asname or a.name: a.name for a in node.names})
                elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    stores[node.id] = stores.get(node.id, 0) + 1
                elif isinstance(node, (ast.FunctionDef, ast.Lambda)):
                    for a in node.args.args + node.args.kwonlyargs:
                        stores[a.arg] = stores.get(a.arg, 0) + 2
        for tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    name, value = node.targets[0].id, node.value
                    if isinstance(value, ast.Call) and self._kind(value.func):
                        self.kit.setdefault(name, self._kind(value.func) + "()")
                    elif isinstance(value, ast.Lambda):
                        self._helper(name, value.args, value.body)
                    elif stores.get(name) == 1 and self.value(value) is not ANY:
                        self.consts[name] = self.value(value)
                elif isinstance(node, ast.FunctionDef):
                    self._helper(node.name, node.args, node)

    def _kind(self, func: ast.AST) -> str:
        parts = _dotted(func)
        if not parts or parts[0] not in self.kit:
            return ""
        return ".".join([self.kit[parts[0]], *parts[1:]])

    def _helper(self, name: str, args: ast.arguments, body: ast.AST) -> None:
        """``def job(*args): ... sb.run_job([..., *args, ...], ...)``: calls of it are modelapi jobs."""
        if not args.vararg:
            return
        for node in ast.walk(body):
            if isinstance(node, ast.Call) and self._kind(node.func).endswith(".run_job") and node.args \
                    and isinstance(node.args[0], ast.List):
                elts = node.args[0].elts
                star = next((i for i, e in enumerate(elts) if isinstance(e, ast.Starred)), None)
                if star is not None:
                    self.helpers[name] = (tuple(self.value(e) for e in elts[:star]),
                                          tuple(self.value(e) for e in elts[star + 1:]))

    def value(self, node: ast.AST) -> Any:
        """The argument as a literal when the source decides it, else ``ANY``."""
        try:
            return _frozen(ast.literal_eval(node))
        except (ValueError, SyntaxError, TypeError):
            pass
        if isinstance(node, (ast.List, ast.Tuple)):
            return tuple(ANY if isinstance(e, ast.Starred) else self.value(e) for e in node.elts)
        if isinstance(node, ast.Name):
            return self.consts.get(node.id, ANY)
        parts = _dotted(node)
        if parts and self.kit.get(parts[0]) == "connect()" and parts[1:2] == ["settings"]:
            value: Any = SETTINGS
            for attr in parts[2:]:
                value = getattr(value, attr, ANY)
            return value if isinstance(value, (str, int, float, bool)) else ANY
        return ANY

    def calls(self, source: str, where: str) -> list[Call]:
        out = []
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.Call):
                continue
            parts = _dotted(node.func)
            if parts and parts[0] in self.helpers and len(parts) == 1:
                head, tail = self.helpers[parts[0]]
                cmd = head + tuple(ANY if isinstance(a, ast.Starred) else self.value(a) for a in node.args) + tail
                out += _job(cmd, where)
                continue
            kind = self._kind(node.func)
            if not kind:
                continue
            method = kind.split(".", 1)[1] if kind.startswith("connect().") else kind.removesuffix("()")
            args = tuple(ANY if isinstance(a, ast.Starred) else self.value(a) for a in node.args)
            kwargs = tuple(sorted((k.arg, self.value(k.value)) for k in node.keywords
                                  if k.arg and k.arg not in FREE_TEXT_KWARGS))
            out += _normalise(Call(method, args, kwargs, where))
        return out


def _job(cmd: tuple[Any, ...], where: str) -> list[Call]:
    """A ``python -m modelapi`` job by its command line, free text and read-only jobs dropped."""
    cmd = tuple(cmd)
    if cmd[:3] == ("python", "-m", "modelapi"):
        cmd = cmd[3:]
    if not cmd or cmd[0] in READ_JOBS:
        return []
    kept, skip = [], False
    for arg in cmd:
        if skip:
            skip = False
            continue
        if arg in FREE_TEXT_FLAGS:
            skip = True
            continue
        if arg != "--json":
            kept.append(arg)
    return [Call("modelapi", tuple(kept), (), where)]


def _normalise(call: Call) -> list[Call]:
    last = call.name.rsplit(".", 1)[-1]
    if last in READS:
        return []
    if last == "run_job":
        cmd = call.args[0] if call.args else ANY
        return _job(cmd, call.where) if isinstance(cmd, tuple) else [call]
    if call.name in ("inject", "heal") and len(call.args) > 1 and isinstance(call.args[1], str):
        fault = call.args[1]
        named = Call(call.name, (ANY, fault), (), call.where)
        return [named] + (_performs(fault, call.where) if call.name == "inject" else [])
    return [call]


def _performs(fault_id: str, where: str) -> list[Call]:
    """The sandbox calls a fault's inject action makes, run on a recorder that serves the baseline."""
    step = CATALOG.get(fault_id).inject
    sb = mock.MagicMock(name="sb")
    sb.settings = SETTINGS
    sb.current.return_value.spec = DeploySpec(model="v1", index="2026-11-01-v1", image=SETTINGS.images.default)
    sb.snapshots.return_value = ["2026-10-01", "2026-11-01"]
    sb.indexes.return_value = []
    sb.deploy.return_value.number = 2
    sb.run_job.return_value = "{}"
    ACTIONS.get(step.name).fn(sb, None, **step.args)
    out = []
    for name, args, kwargs in sb.mock_calls:
        if "." in name or name.startswith("__"):  # a call on a return value, not on the sandbox
            continue
        out += _normalise(Call(name, _frozen(args), tuple(sorted(
            (k, _frozen(v)) for k, v in kwargs.items() if k not in FREE_TEXT_KWARGS)), f"{where} via inject {fault_id!r}"))
    return out


def _is_baseline(call: Call) -> bool:
    return call.name == "deploy" and not call.args and dict(call.kwargs) == BASELINE


# --- what each lab decides, what each lesson does -------------------------------------------------

WEEKS = sorted({lesson.week for lesson in PLAN.lessons()})


def _lab_path(lab: str) -> Path:
    return REPO / "labs" / "source" / lab / f"{lab}.ipynb"


def lab_decisions(lab: str) -> list[Call]:
    nb = Notebook(_lab_path(lab))
    out = []
    for i, cell in enumerate(nb.cells):
        if "### BEGIN SOLUTION" in cell.source:
            out += nb.calls(_solution(cell.source), f"{lab} cell {cell.get('id', i)}")
    return [c for c in out if c.decisive]


def lesson_calls(file: str) -> list[Call]:
    nb = Notebook(REPO / "curriculum" / file)
    out = []
    for i, cell in enumerate(nb.cells):
        out += nb.calls(cell.source, f"{file} cell {cell.get('id', i)}")
    return [c for c in out if not _is_baseline(c)]


def presolved(week: int) -> list[str]:
    """Every lesson call of the week that repeats a decisive call of one of the week's labs."""
    lessons = [lesson for lesson in PLAN.lessons() if lesson.week == week]
    decided = [c for lab in dict.fromkeys(lesson.lab for lesson in lessons) for c in lab_decisions(lab)]
    found = []
    for lesson in lessons:
        for mine in lesson_calls(lesson.file):
            found += [f"{mine.where}: {mine.text()} does what {lab.where} decides: {lab.text()}"
                      for lab in decided if same_call(lab, mine)]
    return found


@pytest.mark.parametrize("week", WEEKS, ids=[f"week{w:02d}" for w in WEEKS])
def test_lessons_leave_their_labs_decisions_to_the_trainee(week):
    found = presolved(week)
    assert not found, (f"week {week}'s lessons pre-solve its labs (teach on another example):\n"
                       + "\n".join(found))


def _capstone() -> tuple[int, str]:
    """The last week's lab and the fault its ``fault_healed`` check is graded on."""
    last = PLAN.weeks[-1]
    nb = nbformat.read(_lab_path(last.lab), as_version=4)
    faults = {c.metadata.get("labkit", {}).get("args", {}).get("fault") for c in nb.cells
              if c.metadata.get("labkit", {}).get("check") == "fault_healed"} - {None}
    assert len(faults) == 1, f"{last.lab}: expected one fault_healed check naming its fault, found {faults}"
    return last.number, faults.pop()


def test_the_capstone_fault_is_named_by_no_earlier_lesson():
    week, fault_id = _capstone()
    fault = CATALOG.get(fault_id)
    names = {fault.id, fault.title, fault.inject.name}
    found = []
    for lesson in PLAN.lessons():
        if lesson.week >= week:
            continue
        nb = nbformat.read(REPO / "curriculum" / lesson.file, as_version=4)
        for i, cell in enumerate(nb.cells):
            found += [f"{lesson.file} cell {cell.get('id', i)} names {name!r}"
                      for name in names if name.lower() in cell.source.lower()]
        found += [f"{c.where} injects it" for c in lesson_calls(lesson.file)
                  if c.name == "inject" and fault_id in c.args]
    assert not found, f"the capstone's fault {fault_id!r} must be unseen before week {week}:\n" + "\n".join(found)


# --- the rule itself, on small cases -----------------------------------------------------------------


def _calls_of(source: str) -> list[Call]:
    nb = Notebook.__new__(Notebook)
    nb.kit, nb.consts, nb.helpers = {"connect": "connect", "inject": "inject", "sb": "connect()"}, {}, {}
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and \
                isinstance(node.value, ast.Constant):
            nb.consts[node.targets[0].id] = node.value.value
    return nb.calls(source, "case")


def test_a_computed_argument_in_the_lab_matches_any_and_a_literal_must_agree():
    lab = _calls_of('sb.deploy(provider_timeout_s="0.05", change_cause="GD-12")')[0]
    assert same_call(lab, _calls_of('sb.deploy(provider_timeout_s="0.05", change_cause="drill")')[0])
    assert not same_call(lab, _calls_of('sb.deploy(provider_timeout_s="0.2")')[0])
    assert not same_call(lab, _calls_of('sb.deploy(provider_timeout_s=str(t))')[0])
    computed = _calls_of('sb.deploy(replicas=n, cpus="1.0")')[0]
    assert same_call(computed, _calls_of('sb.deploy(replicas=3, cpus="1.0")')[0])
    assert not _calls_of("sb.rollback(to_revision=target.number)")[0].decisive


def test_reads_are_evidence_and_constants_count_as_literals():
    assert _calls_of('sb.evaluate(k=5); sb.search("disk full", k=5)') == []
    assert _calls_of('sb.run_job(["python", "-m", "modelapi", "lineage", "--index", "x", "--json"], "l")') == []
    job = _calls_of('S = "2026-11-15-poisoned"\nsb.run_job(["python", "-m", "modelapi", "quarantine", '
                    '"--snapshot", S, "--reason", "why", "--json"], "q")')
    assert [c.text() for c in job] == ["modelapi('quarantine', '--snapshot', '2026-11-15-poisoned')"]


def test_an_injected_fault_counts_as_the_calls_its_action_makes():
    via_catalog = _calls_of('inject(sb, "bad-rollout")')
    by_hand = _calls_of("sb.deploy(image=sb.settings.images.defect)")[0]
    assert by_hand.decisive and any(same_call(by_hand, c) for c in via_catalog)
    mismatch = _calls_of('sb.deploy(model="v2", index="2026-11-01-v1", wait=False)')[0]
    assert any(same_call(mismatch, c) for c in _calls_of('inject(sb, "model-index-mismatch")'))
