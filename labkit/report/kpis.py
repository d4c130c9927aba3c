"""The KPIs of one trainee as of one moment, each computed as ``curriculum/plan.yaml`` defines it.

Every function takes a :class:`View` (one trainee's inputs up to ``as_of``) and returns
``(value, note)``: the figure (None when there is nothing to compute it from) and what was
counted. :func:`kpis` puts each beside the plan's definition, inputs and target. The plan's
``how_measured`` of each KPI is the specification; this module follows it line by line.
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graders.changes import Change, from_record, summary

from .. import gamedays
from ..hypotheses import first_hypothesis
from ..ledger import Entry
from .inputs import Inputs, utc
from .model import CellGrade, KPIValue

CFR_FROM_LAB = 5
WINDOW_30 = dt.timedelta(days=30)
QUARTER = dt.timedelta(days=91)
REPEAT_WITHIN = dt.timedelta(days=30)


def lab_number(assignment: str) -> int | None:
    m = re.match(r"lab(\d+)", assignment)
    return int(m.group(1)) if m else None


@dataclass
class View:
    """One trainee's inputs up to ``as_of`` (submissions, runs, events and ledger entries)."""

    trainee: str
    inputs: Inputs
    as_of: dt.datetime
    cells: list[CellGrade] = field(default_factory=list)
    labs: set[str] = field(default_factory=set)
    ledger: list[Entry] = field(default_factory=list)
    events: list[gamedays.GameDayEvent] = field(default_factory=list)

    @classmethod
    def of(cls, trainee: str, inputs: Inputs, as_of: dt.datetime) -> View:
        cells = [c for c in inputs.cells if c.student == trainee
                 and (c.timestamp is None or utc(c.timestamp) <= as_of)]
        return cls(trainee, inputs, as_of, cells, {c.assignment for c in cells},
                   [e for e in inputs.ledger if e.trainee == trainee and e.at <= as_of],
                   [e for e in inputs.events if e.trainee == trainee and e.when <= as_of])

    def entries(self, kind: str, since: dt.timedelta | None = None) -> list[Entry]:
        low = self.as_of - since if since is not None else None
        return [e for e in self.ledger if e.kind == kind and (low is None or e.at > low)]

    def changes(self, assignment: str) -> list[Change]:
        """The revisions of the lab's latest graded run, with the source's markers applied: a
        revision made in an ``instructed-change`` cell is the lab's, in a ``load-test`` cell an
        experiment (neither is the trainee's change)."""
        run = self.inputs.runs.get((self.trainee, assignment))
        if run is None or "error" in run or assignment not in self.labs:
            return []
        out = from_record(run)
        for c in out:
            role = (self.inputs.markers.get((assignment, c.cell)) or {}).get("kpi")
            if c.made_by == "trainee" and role == "instructed-change":
                c.made_by = "lab"
            elif c.made_by == "trainee" and role == "load-test":
                c.made_by = "experiment"
        return out

    def run_labs(self) -> list[str]:
        return sorted(a for (who, a) in self.inputs.runs if who == self.trainee and a in self.labs)


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 3) if den else None


# --- the KPIs -------------------------------------------------------------------------------


def time_to_first_safe_change(v: View) -> tuple[float | None, str]:
    cohort = v.inputs.cohort
    if cohort is None:
        return None, "no cohort start date (labkit cohort init --start ...)"
    approvals = v.entries("approval")
    safe = []
    for e in v.entries("production"):
        if e.get("mode") not in ("supervised", "owned") or not e.get("rollback_plan"):
            continue
        if e.get("outcome") != "succeeded":
            continue
        ok = [a for a in approvals if a.get("change_id") == e.get("change_id") and a.at <= e.at]
        if ok:
            safe.append((e.at, e, ok[0]))
    if not safe:
        return None, "no approved production change with a rollback plan that held yet"
    at, e, a = min(safe, key=lambda t: t[0])
    return float(cohort.day(at)), f"{e.get('change_id')} on day {cohort.day(at)}, approved by {a.get('approver')}"


def _matches(e: Entry) -> bool:
    r = e.get("rubric") or {}
    norm = lambda x: str(x).strip().lower()  # noqa: E731
    if bool(e.get("escalate")) != bool(r.get("escalate")):
        return False
    if norm(e.get("to")) != norm(r.get("to")) or norm(e.get("severity")) != norm(r.get("severity")):
        return False
    if not e.get("escalate"):
        return True
    return e.get("minutes") is not None and float(e.get("minutes")) <= float(r.get("within_minutes"))


def escalation_accuracy(v: View) -> tuple[float | None, str]:
    decisions = v.entries("escalation", WINDOW_30)
    matched = sum(_matches(e) for e in decisions)
    return _ratio(matched, len(decisions)), f"{matched} of {len(decisions)} decisions of the last 30 days match" \
        " the rubric on all four fields"


def _lab_triage(v: View) -> list[tuple[str, bool, str]]:
    out = []
    for (lab, gid), marker in sorted(v.inputs.markers.items()):
        if marker.get("kpi") != "triage-hypothesis" or lab not in v.labs:
            continue
        entries = v.inputs.logs.get((v.trainee, lab), {}).get(marker.get("log") or gid, [])
        first = first_hypothesis(entries)
        if first is None:
            out.append((lab, False, "no hypothesis logged"))
            continue
        if _after_mitigation(first, v.changes(lab)):
            out.append((lab, False, "first hypothesis after the first mitigation"))
        else:
            right = first.get("incident_class") == marker.get("incident_class")
            out.append((lab, right, f"{first.get('incident_class')} vs {marker.get('incident_class')}"))
    return out


def _after_mitigation(entry: dict[str, Any], changes: list[Change]) -> bool:
    """Whether a hypothesis came after the trainee's first change of the lab's run: by the
    revision it was written under when the log stamped one (it must be one the lab made before
    the trainee's first change), else by time against the graded run's first trainee revision."""
    first = next((c for c in changes if c.made_by == "trainee"), None)
    if first is None:
        return False
    if entry.get("revision") is not None:
        return int(entry["revision"]) >= first.revision
    at = dt.datetime.fromisoformat(entry["at"]).timestamp()
    return first.created_at is not None and at >= first.created_at


def _gameday_triage(v: View) -> list[tuple[str, bool, str]]:
    out = []
    for e in v.entries("triage"):
        incident = [ev for ev in v.events if ev.incident == e.get("source")]
        injected = next((ev for ev in incident if ev.event == "injected" and ev.fault), None)
        expected = v.inputs.fault_classes.get(injected.fault) if injected else e.get("expected_class")
        mitigated = [ev.when for ev in incident if ev.event == "mitigated"]
        if expected is None:
            out.append((e.get("source"), False, "incident not in the game-day log"))
        elif mitigated and e.at >= min(mitigated):
            out.append((e.get("source"), False, "first hypothesis after the first mitigation"))
        else:
            out.append((e.get("source"), e.get("hypothesis_class") == expected, f"{e.get('hypothesis_class')} vs {expected}"))
    return out


def triage_accuracy(v: View) -> tuple[float | None, str]:
    found = _lab_triage(v) + _gameday_triage(v)
    right = sum(ok for _, ok, _ in found)
    return _ratio(right, len(found)), f"{right} of {len(found)} incidents' first hypothesis named the right class"


def _incident_times(v: View) -> list[gamedays.IncidentTimes]:
    return [t for t in gamedays.incident_times(v.events, v.as_of) if t.timed]


def mttd(v: View) -> tuple[float | None, str]:
    ttd = [t.ttd_min for t in _incident_times(v) if t.ttd_min is not None]
    return (round(statistics.median(ttd), 1) if ttd else None), f"median of {len(ttd)} timed scenarios"


def mttr(v: View) -> tuple[float | None, str]:
    ttr = [t.ttr_min for t in _incident_times(v) if t.ttr_min is not None]
    return (round(statistics.median(ttr), 1) if ttr else None), f"median of {len(ttr)} timed scenarios"


def recall_regressions_caught(v: View) -> tuple[float | None, str]:
    total = caught = injected = 0
    for lab in v.run_labs():
        s = summary(v.changes(lab))
        total += s["regressions"] + s["injected_regressions"]
        caught += s["regressions_caught"] + s["injected_caught"]
        injected += s["injected_regressions"]
    return _ratio(caught, total), f"{caught} of {total} regressions kept from serving ({injected} injected by labs)"


def change_failure_rate(v: View) -> tuple[float | None, str]:
    changes = failed = 0
    for lab in v.run_labs():
        if (lab_number(lab) or 0) < CFR_FROM_LAB:
            continue
        mine = [c for c in v.changes(lab) if c.made_by == "trainee" and not c.is_rollback]
        changes += len(mine)
        failed += sum(c.failed for c in mine)
    lab_changes, lab_failed = changes, failed
    phase3 = _phase_start(v, "ownership")
    for e in v.entries("production"):
        if e.get("outcome") and e.get("mode") in ("supervised", "owned") and phase3 and e.at >= phase3:
            changes += 1
            failed += e.get("outcome") in ("failed", "rolled-back")
    return _ratio(failed, changes), (f"{failed} of {changes} changes failed or were rolled back"
                                     f" ({lab_failed} of {lab_changes} in labs 05-13)")


def _phase_start(v: View, phase: str) -> dt.datetime | None:
    if v.inputs.cohort is None or v.inputs.plan is None:
        return None
    return v.inputs.cohort.start_at() + dt.timedelta(days=v.inputs.plan.phase(phase).days[0] - 1)


def runbook_contribution_rate(v: View) -> tuple[float | None, str]:
    accepted = v.entries("runbook", QUARTER)
    return float(len(accepted)), f"{len(accepted)} runbooks accepted by a mentor in the last 91 days"


def repeat_fix_reduction(v: View) -> tuple[float | None, str]:
    low = v.as_of - WINDOW_30
    fixes = repeated = 0
    by_incident: dict[str, list[gamedays.GameDayEvent]] = {}
    for ev in v.events:
        by_incident.setdefault(ev.incident, []).append(ev)
    for events in by_incident.values():
        mitigated = [ev.when for ev in events if ev.event == "mitigated"]
        if not mitigated or not low < min(mitigated):
            continue
        fixes += 1
        repeated += any(ev.event == "detected" and ev.when > min(mitigated) for ev in events)
    prod = [e for e in v.entries("production") if e.get("incident_class") and e.get("mode") != "shadowed"]
    for e in prod:
        if not low < e.at:
            continue
        fixes += 1
        repeated += any(o.id != e.id and o.get("incident_class") == e.get("incident_class")
                        and o.get("service") == e.get("service") and e.at < o.at <= e.at + REPEAT_WITHIN
                        for o in prod)
    return _ratio(repeated, fixes), f"{repeated} of {fixes} fixes of the last 30 days had their fault class recur"


def shadow_to_own_ratio(v: View) -> tuple[float | None, str]:
    work = v.entries("production", WINDOW_30)
    owned = sum(e.get("mode") == "owned" for e in work)
    return _ratio(owned, len(work)), f"{owned} of {len(work)} production tasks of the last 30 days owned"


KPI_FUNCTIONS: dict[str, Callable[[View], tuple[float | None, str]]] = {
    "time-to-first-safe-change": time_to_first_safe_change,
    "escalation-accuracy": escalation_accuracy,
    "triage-accuracy": triage_accuracy,
    "mttd": mttd,
    "mttr": mttr,
    "recall-regressions-caught": recall_regressions_caught,
    "change-failure-rate": change_failure_rate,
    "runbook-contribution-rate": runbook_contribution_rate,
    "repeat-fix-reduction": repeat_fix_reduction,
    "shadow-to-own-ratio": shadow_to_own_ratio,
}


def kpis(v: View) -> list[KPIValue]:
    """Every KPI of the view's trainee, in the plan's order, beside definition, inputs and target."""
    plan: Any = v.inputs.plan
    ids = [k.id for k in plan.kpis if k.id in KPI_FUNCTIONS] if plan is not None else list(KPI_FUNCTIONS)
    out = []
    for kid in ids:
        value, note = KPI_FUNCTIONS[kid](v)
        k = KPIValue(kid, kid, value, "", note=note)
        if plan is not None:
            spec = plan.kpi(kid)
            k.name, k.unit, k.target, k.direction = spec.name, spec.unit, spec.target, spec.direction
            k.target_by_day = spec.target_by_day
            k.definition = " ".join(spec.definition.split())
            k.inputs = f"{', '.join(spec.sources)}: " + " ".join(spec.how_measured.split())
            k.meets = spec.meets(value) if value is not None else None
        out.append(k)
    return out
