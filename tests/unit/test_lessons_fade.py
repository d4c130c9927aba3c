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

A lesson also leaves its week's labs their incident: it may not inject, nor perform by hand, a
fault a lab of its week sets up in its locked cells. A lab's faults are read from those cells:
``inject(sb, "...")``, a game master's base64 envelope decoded as the lab decodes it, and the
``sandbox.faults`` helpers whose calls amount to a fault's inject action (``send_traffic(sb,
"drifted", ...)`` *is* query-drift). A lesson performs a fault by hand when its code makes every
decisive call of the fault's inject action (``sb.deploy(top_k="1")`` *is* config-drift; a snapshot
date is the index of that snapshot for the call's model, as ``sandbox.spec.resolve_index`` has it).

The capstone's fault (the one its ``fault_healed`` check names) must appear in no lesson of an
earlier week, neither by id, by title nor by its inject action - nor in what the lesson's code
prints: a lesson that lists the whole catalog (``load_catalog().faults``, ``.ids()``, iterating
it, ``labkit fault list``) prints the capstone's fault id when it runs.

Weeks, lessons and labs come from ``curriculum/plan.yaml``.
"""

from __future__ import annotations

import ast
import base64
import binascii
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import nbformat
import pytest

from labkit.plan import load_plan
from sandbox.faults import load_catalog
import sandbox.faults as fault_package
from sandbox.faults import actions as fault_actions
from sandbox.faults import probes as fault_probes
from sandbox.faults.actions import ACTIONS
from sandbox.records import DeploySpec
from sandbox.settings import Settings
from sandbox.spec import resolve_index

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
    "agent", "send_at_rate", "rate_load", "promql",  # the ops agent simulates its actions; loads and PromQL only read
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

    def calls(self, source: str, where: str, reads: bool = False) -> list[Call]:
        """The notebook's decisive kit calls in ``source`` (``reads=True``: the reads too)."""
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
            out += _normalise(Call(method, args, kwargs, where), reads)
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


def _normalise(call: Call, reads: bool = False) -> list[Call]:
    last = call.name.rsplit(".", 1)[-1]
    if last in READS and not reads:
        return []
    if last == "run_job":
        cmd = call.args[0] if call.args else ANY
        return _job(cmd, call.where) if isinstance(cmd, tuple) else [call]
    if call.name in ("inject", "heal") and len(call.args) > 1 and isinstance(call.args[1], str):
        fault = call.args[1]
        named = Call(call.name, (ANY, fault), (), call.where)
        return [named] + (_performs(fault, call.where) if call.name == "inject" else [])
    return [call]


def _recorded(fault_id: str, where: str, reads: bool = False) -> list[Call]:
    """The calls a fault's inject action makes, run on a recorder that serves the baseline: the
    sandbox's methods, and the ``sandbox.faults`` probes the action calls (``send_traffic``), whose
    counts do not decide the fault (the query set does) and match any."""
    step = CATALOG.get(fault_id).inject
    sb = mock.MagicMock(name="sb")
    sb.settings = SETTINGS
    sb.current.return_value.spec = DeploySpec(model="v1", index="2026-11-01-v1", image=SETTINGS.images.default)
    sb.snapshots.return_value = ["2026-10-01", "2026-11-01"]
    sb.indexes.return_value = []
    sb.deploy.return_value.number = 2
    sb.run_job.return_value = "{}"
    probes = {name: mock.MagicMock(name=name) for name, fn in vars(fault_actions).items()
              if callable(fn) and getattr(fn, "__module__", "") == "sandbox.faults.probes"}
    with mock.patch.multiple(fault_actions, **probes):
        ACTIONS.get(step.name).fn(sb, None, **step.args)
    out = []
    for name, args, kwargs in sb.mock_calls:
        if "." in name or name.startswith("__"):  # a call on a return value, not on the sandbox
            continue
        out += _normalise(Call(name, _frozen(args), tuple(sorted(
            (k, _frozen(v)) for k, v in kwargs.items() if k not in FREE_TEXT_KWARGS)), f"{where} via inject {fault_id!r}"),
            reads)
    for name, probe in probes.items():
        for args, _ in probe.call_args_list:
            out.append(Call(name, tuple(ANY if a is sb or isinstance(a, int) else _frozen(a) for a in args), (),
                            f"{where} via inject {fault_id!r}"))
    return out


def _performs(fault_id: str, where: str) -> list[Call]:
    """The sandbox calls a fault's inject action makes (its reads and probes left out)."""
    return [c for c in _recorded(fault_id, where) if c.name.rsplit(".", 1)[-1] not in READS]


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
        found += [f"{where} performs it by hand" for f, where in lesson_faults(lesson.file) if f == fault_id]
        found += [f"{line}: the capstone's fault id is printed with it" for line in catalog_listings(lesson.file)]
    assert not found, f"the capstone's fault {fault_id!r} must be unseen before week {week}:\n" + "\n".join(found)


# --- the lab's incident stays the lab's -----------------------------------------------------------

SNAPSHOT_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SEEDED_INDEXES = [f"{snap}-{model}" for snap in ("2026-10-01", "2026-11-01") for model in ("v1", "v2")]
#: What a lab's locked cells may call from ``sandbox.faults``: a fault by name, or a helper whose call
#: is a fault's inject action.
FAULT_HELPERS = {name for module in (fault_probes, fault_package) for name, fn in vars(module).items()
                 if callable(fn) and not name.startswith("_") and getattr(fn, "__module__", "").startswith("sandbox.faults")}


def _resolved(call: Call) -> Call:
    """A deploy of a snapshot date is the deploy of that snapshot's index for the call's model."""
    kwargs = dict(call.kwargs)
    index, model = kwargs.get("index"), kwargs.get("model", BASELINE["model"])
    if call.name != "deploy" or not isinstance(index, str) or not SNAPSHOT_DATE.match(index) \
            or not isinstance(model, str):
        return call
    kwargs["index"] = resolve_index(index, model, SEEDED_INDEXES + [f"{index}-{model}"])
    return Call(call.name, call.args, tuple(sorted(kwargs.items())), call.where)


def fault_signature(fault_id: str) -> list[Call]:
    """The decisive calls of a fault's inject action: doing all of them by hand is injecting it."""
    return [_resolved(c) for c in _recorded(fault_id, "catalog", reads=True) if c.decisive]


def hand_performed(calls: list[Call]) -> list[str]:
    """The catalog faults whose every decisive inject call is among ``calls``."""
    mine = [_resolved(c) for c in calls]
    return [fault_id for fault_id in CATALOG.ids()
            if (sig := fault_signature(fault_id)) and all(any(same_call(s, m) for m in mine) for s in sig)]


def _locked(cell: Any) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and meta.get("locked") and not meta.get("solution") and not meta.get("grade")


def _envelopes(nb: Notebook, name: str) -> list[str]:
    """Fault ids hidden as base64 in the strings a notebook assigns to ``name`` (a game master's envelope)."""
    found = []
    for cell in nb.cells:
        for node in ast.walk(ast.parse(cell.source)):
            if not (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)):
                continue
            for const in ast.walk(node.value):
                if not (isinstance(const, ast.Constant) and isinstance(const.value, str)):
                    continue
                try:
                    text = base64.b64decode(const.value, validate=True).decode()
                except (binascii.Error, UnicodeDecodeError):
                    continue
                if text in CATALOG.ids():
                    found.append(text)
    return found


def lab_faults(lab: str) -> dict[str, str]:
    """The faults a lab's locked cells set up -> where: named, from an envelope, or by hand."""
    nb = Notebook(_lab_path(lab))
    out: dict[str, str] = {}
    for i, cell in enumerate(nb.cells):
        if not _locked(cell):
            continue
        where = f"{lab} cell {cell.get('id', i)}"
        calls = nb.calls(cell.source, where, reads=True)
        for call in calls:
            if call.name == "inject" and len(call.args) > 1 and call.args[1] in CATALOG.ids():
                out.setdefault(call.args[1], f"{where}: inject")
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call) and nb._kind(node.func) == "inject" and len(node.args) > 1 \
                    and not isinstance(node.args[1], ast.Constant):
                for name in {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}:
                    for fault_id in _envelopes(nb, name):
                        out.setdefault(fault_id, f"{where}: the envelope {name}")
        for fault_id in hand_performed([c for c in calls if c.name in FAULT_HELPERS]):
            out.setdefault(fault_id, f"{where}: {', '.join(sorted({c.name for c in calls if c.name in FAULT_HELPERS}))}")
    return out


def lesson_faults(file: str) -> list[tuple[str, str]]:
    """(fault, where) for every fault a lesson injects or performs by hand."""
    nb = Notebook(REPO / "curriculum" / file)
    found = []
    for i, cell in enumerate(nb.cells):
        where = f"{file} cell {cell.get('id', i)}"
        calls = [c for c in nb.calls(cell.source, where, reads=True) if not _is_baseline(c)]
        named = {c.args[1] for c in calls if c.name == "inject" and len(c.args) > 1 and isinstance(c.args[1], str)}
        found += [(f, f"{where} injects it") for f in sorted(named)]
        found += [(f, f"{where} performs it by hand") for f in hand_performed(calls) if f not in named]
    return found


def replayed(week: int) -> list[str]:
    lessons = [lesson for lesson in PLAN.lessons() if lesson.week == week]
    theirs = {f: where for lab in dict.fromkeys(lesson.lab for lesson in lessons) for f, where in lab_faults(lab).items()}
    return [f"{where}: {fault!r}, which {theirs[fault]} sets up"
            for lesson in lessons for fault, where in lesson_faults(lesson.file) if fault in theirs]


@pytest.mark.parametrize("week", WEEKS, ids=[f"week{w:02d}" for w in WEEKS])
def test_lessons_do_not_replay_their_labs_fault(week):
    found = replayed(week)
    assert not found, (f"week {week}'s lessons replay the incident its labs set up (teach on a neighbouring fault "
                       "or a worked example of your own):\n" + "\n".join(found))


def catalog_listings(file: str) -> list[str]:
    """Code of a lesson that prints the whole fault catalog, so every fault id, when it runs."""
    nb = Notebook(REPO / "curriculum" / file)
    found = []
    for i, cell in enumerate(nb.cells):
        where = f"{file} cell {cell.get('id', i)}"
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Attribute) and node.attr in ("faults", "ids"):
                base = node.value.func if isinstance(node.value, ast.Call) else node.value
                kind = nb._kind(base)
                if kind in ("load_catalog", "load_catalog()"):
                    found.append(f"{where} lists the whole catalog (.{node.attr})")
            elif isinstance(node, (ast.For, ast.comprehension)) and nb._kind(node.iter) == "load_catalog()":
                found.append(f"{where} iterates the whole catalog")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "fault list" in node.value:
                found.append(f"{where} runs `labkit fault list`")
    return found


# --- the rule itself, on small cases -----------------------------------------------------------------


def _calls_of(source: str, reads: bool = False) -> list[Call]:
    nb = Notebook.__new__(Notebook)
    nb.kit, nb.consts, nb.helpers = {"connect": "connect", "inject": "inject", "sb": "connect()",
                                     "send_traffic": "send_traffic"}, {}, {}
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and \
                isinstance(node.value, ast.Constant):
            nb.consts[node.targets[0].id] = node.value.value
    return nb.calls(source, "case", reads)


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


def test_a_fault_performed_by_hand_is_the_fault():
    assert hand_performed(_calls_of('sb.deploy(top_k="1", change_cause="latency tuning")')) == ["config-drift"]
    assert hand_performed(_calls_of('sb.deploy(index="2026-10-01")')) == ["stale-index"]
    assert hand_performed(_calls_of('sb.deploy(model="v2", index="2026-10-01")')) == []
    assert hand_performed(_calls_of('send_traffic(sb, "drifted", 40)', reads=True)) == ["query-drift"]
    assert hand_performed(_calls_of('send_traffic(sb, "baseline", 40)', reads=True)) == []
    assert hand_performed(_calls_of('sb.deploy(provider_timeout_s="0.2")')) == []


def test_a_game_masters_envelope_is_read_as_the_lab_decodes_it():
    faults = lab_faults(PLAN.weeks[-1].lab)
    assert list(faults) == [_capstone()[1]] and "envelope" in faults[_capstone()[1]]

