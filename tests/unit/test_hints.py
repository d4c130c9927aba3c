"""Brief-only labs and their hints: phase 3 names no sandbox call, every hint is recorded."""

from __future__ import annotations

import copy
import inspect
import json
import re
from pathlib import Path

import nbformat
import pytest
import yaml

import graders.hints as hints_mod
from graders import hint
from graders.hints import ABSENT, load_hints, reveals
from labkit.plan import PlanError, load_plan, parse_plan
from labkit.report.inputs import read_hints
from labkit.report.model import TraineeReport
from labkit.report.text import hints_line
from sandbox.api import Sandbox
from sandbox.control.audit import AuditRecord
from sandbox.errors import InvalidInput, UnknownChoice

ROOT = Path(__file__).resolve().parents[2]
PLAN = load_plan()
#: The calls of the Sandbox API (methods, and ``rules``), derived from the class.
CALLS = {name for name, value in inspect.getmembers(Sandbox)
         if not name.startswith("_") and (callable(value) or name == "rules")}
CALL = re.compile(r"\bsb\.(\w+)|(?<![\w.])\.?(\w+)\(")


def named_calls(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """(cell id, call) of every Sandbox call named in a markdown cell a trainee reads (not a solution)."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "markdown" or cell.metadata.get("nbgrader", {}).get("solution"):
            continue
        found = {m.group(1) or m.group(2) for m in CALL.finditer(cell.source)} & CALLS
        out += [(cell.get("id", "?"), name) for name in sorted(found)]
    return out


def lab_notebook(lab: str) -> nbformat.NotebookNode:
    return nbformat.read(str(ROOT / "labs" / "source" / lab / f"{lab}.ipynb"), as_version=4)


def test_brief_only_labs_are_phase_3():
    assert PLAN.hints.brief_only_phases == ("ownership",) and PLAN.hints.cost_points == 0
    labs = PLAN.brief_only_labs()
    assert {"lab09-provider-outage", "lab10-capacity", "lab11-governed-release", "lab12-game-day",
            "lab13-capstone"} <= set(labs)
    assert all(PLAN.week_of_lab(lab).number >= 9 for lab in labs)


@pytest.mark.parametrize("lab", PLAN.brief_only_labs())
def test_phase_3_lab_names_no_sandbox_call(lab):
    assert named_calls(lab_notebook(lab)) == [], f"{lab}: move the named calls into curriculum/hints/{lab}.yaml"


@pytest.mark.parametrize("lab", PLAN.brief_only_labs())
def test_phase_3_lab_has_hints_whose_last_names_the_calls(lab):
    texts = load_hints(lab)
    assert 2 <= len(texts) <= 4
    assert re.search(r"`[^`]*\w\(", texts[-1]), f"{lab}: the last hint names the calls"


def test_phase_1_2_labs_keep_their_scaffolding():
    early = [w.lab for w in PLAN.weeks if w.phase not in PLAN.hints.brief_only_phases]
    assert early and all(named_calls(lab_notebook(lab)) for lab in early[:3])


def test_detector_catches_a_named_call_and_spares_solutions():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("Roll out with `sb.deploy(model=\"v2\")`.", id="task"),
                nbformat.v4.new_markdown_cell("then `wait_for_rollout()`", id="bare"),
                nbformat.v4.new_markdown_cell("`sb.rollback()`", id="answer",
                                              metadata={"nbgrader": {"solution": True}})]
    assert named_calls(nb) == [("task", "deploy"), ("bare", "wait_for_rollout")]


def test_a_lab_without_hints_names_the_labs_with_hints(tmp_path):
    (tmp_path / "lab09-provider-outage.yaml").write_text("lab: lab09-provider-outage\nhints: [{text: a}, {text: b}]\n")
    with pytest.raises(UnknownChoice, match="lab09-provider-outage"):
        load_hints("lab13-capstone", tmp_path)


@pytest.mark.parametrize("body, says", [
    ({"lab": "lab10-capacity", "hints": [{"text": "only one"}]}, "2-4 entries"),
    ({"lab": "lab11-design-review", "hints": [{"text": "a"}, {"text": "b"}]}, "file name says"),
    ({"lab": "lab10-capacity", "hints": [{"text": "a"}, {"text": "  "}]}, r"hints\[2\]"),
    ({"lab": "lab10-capacity", "hints": [{"text": "a"}, {"text": "b"}], "cost": 1}, "exactly the keys"),
])
def test_hint_files_are_validated(tmp_path, body, says):
    (tmp_path / "lab10-capacity.yaml").write_text(yaml.safe_dump(body))
    with pytest.raises(InvalidInput, match=says):
        load_hints("lab10-capacity", tmp_path)


class Recorder:
    """A sandbox whose control endpoint takes events (as in a grading box)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def record_event(self, event: str, signal: str = "", note: str = "") -> dict:
        self.events.append((event, signal, note))
        return {"event": event, "signal": signal}


def test_hint_shows_the_text_and_records_the_reveal():
    sb = Recorder()
    shown = hint("lab09-provider-outage", 4, sb)
    assert shown.recorded and sb.events == [("hint", "", "lab09-provider-outage#4")]
    assert "sb.deploy(provider_timeout_s=" in shown._repr_markdown_()
    assert shown._repr_markdown_().startswith("**Hint 4 of lab09-provider-outage**")


def test_hint_refuses_a_wrong_number_before_recording():
    sb = Recorder()
    for n in (0, 5, "1", True):
        with pytest.raises((InvalidInput, UnknownChoice)):
            hint("lab09-provider-outage", n, sb)
    assert sb.events == []
    assert not hint("lab10-capacity", 1).recorded  # no sandbox: nothing recorded


def test_in_a_grading_box_the_reveal_is_recorded_without_the_text(monkeypatch, tmp_path):
    monkeypatch.setattr(hints_mod, "HINTS_DIR", tmp_path / "absent")
    sb = Recorder()
    shown = hint("lab12-game-day", 2, sb)
    assert sb.events == [("hint", "", "lab12-game-day#2")]
    assert shown.text == ABSENT.format(lab="lab12-game-day", n=2)


def _event(seq: int, note: str, event: str = "hint", outcome: str = "ok") -> AuditRecord:
    return AuditRecord(seq, 1_800_000_000.0 + seq, "event", {"event": event, "signal": "", "note": note}, outcome)


def test_reveals_counts_distinct_hints_per_lab_from_the_audit_log():
    audit = [_event(1, "lab09-provider-outage#2"), _event(2, "lab09-provider-outage#1"),
             _event(3, "lab09-provider-outage#2"), _event(4, "lab10-capacity#1", outcome="refused"),
             _event(5, "gd-1 declared", event="detected"), _event(6, "not a hint note"),
             AuditRecord(7, 1.0, "deploy", {"model": "v1"})]
    assert reveals(audit) == {"lab09-provider-outage": [1, 2]}


def test_the_report_reads_the_latest_kept_run_of_each_trainee(tmp_path):
    runs = tmp_path / "reports" / "runs" / "lab09-provider-outage"
    runs.mkdir(parents=True)

    def keep(name: str, records: list[AuditRecord]) -> None:
        (runs / name).write_text("".join(json.dumps(r.__dict__) + "\n" for r in records))

    keep("bob-grade-s-bob-1111aaaa.audit.jsonl", [_event(1, "lab09-provider-outage#1")])
    later = [AuditRecord(r.seq, r.at + 100, r.op, r.args) for r in
             (_event(1, "lab09-provider-outage#1"), _event(2, "lab09-provider-outage#3"))]
    keep("bob-grade-s-bob-2222bbbb.audit.jsonl", later)
    keep("bob-2-grade-s-bob-2-3333cccc.audit.jsonl", [AuditRecord(1, 5.0, "deploy", {})])
    found = read_hints(tmp_path, {"bob", "bob-2"})
    assert found == {("bob", "lab09-provider-outage"): [1, 3]}
    t = TraineeReport("bob", 9, None, hints={"lab09-provider-outage": [1, 3]})
    assert hints_line(t) == "lab09-provider-outage #1, #3"
    assert hints_line(TraineeReport("eve", 9, None)) == "none"


def test_the_plan_allows_only_a_free_reveal():
    raw = yaml.safe_load((ROOT / "curriculum" / "plan.yaml").read_text(encoding="utf-8"))
    costly = copy.deepcopy(raw)
    costly["hints"]["cost_points"] = 1
    with pytest.raises(PlanError, match="cost_points"):
        parse_plan(costly)
    without = copy.deepcopy(raw)
    del without["hints"]
    assert parse_plan(without).brief_only_labs() == []
