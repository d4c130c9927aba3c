"""Build the report: every trainee as of now, and the cohort week by week.

    from labkit.report import build_report
    report = build_report("labs")               # the course's gradebook, ledger and cohort
    print(report_markdown(report))

The cohort view adds what one trainee's report cannot show: red zones (capabilities where
fewer than two trainees reach level 3), mentor load, the cohort median of each KPI, and the
levels and KPIs at the end of every week so far (heatmaps and trajectories by program day).
"""

from __future__ import annotations

import datetime as dt
import statistics
from pathlib import Path
from typing import Any

from .. import cohort as cohort_mod
from ..ledger import Entry, Ledger, current, ledger_url
from ..plan import load_plan
from .inputs import Inputs, gather, utc
from .kpis import WINDOW_30, View, kpis
from .levels import flags, gates, skills, weeks_completed
from .model import CourseReport, MentorLoad, RedZone, TraineeReport

RED_ZONE_MIN = 2
"""A capability is a red zone when fewer than this many trainees reach level 3."""


def trainee_report(inputs: Inputs, trainee: str, as_of: dt.datetime) -> TraineeReport:
    """One trainee's skills, KPIs, gates and flags as of ``as_of``."""
    v = View.of(trainee, inputs, as_of)
    weeks = weeks_completed(v.cells, inputs.plan)
    values = kpis(v)
    row = skills(v, values, weeks)
    day = inputs.cohort.day(as_of) if inputs.cohort else None
    gate_rows = gates(inputs.plan, day, row, values)
    stamps = sorted(utc(c.timestamp) for c in v.cells if c.timestamp is not None)
    role, mentor = "", ""
    if inputs.cohort and trainee in {t.id for t in inputs.cohort.trainees}:
        t = inputs.cohort.trainee(trainee)
        role, mentor = t.role_path, t.mentor
    hints = {lab: numbers for (who, lab), numbers in inputs.hints.items() if who == trainee}
    return TraineeReport(trainee, weeks, stamps[0].isoformat() if stamps else None, role, mentor, row, values,
                         gate_rows, flags(inputs, v, day, weeks, gate_rows, values), hints)


def red_zones(trainees: list[TraineeReport], plan: Any) -> list[RedZone]:
    caps = [c.id for c in plan.capabilities] if plan is not None else sorted(
        {s.capability for t in trainees for s in t.skills})
    out = []
    for cap in caps:
        at3 = sorted(t.trainee for t in trainees if (t.skill(cap).level or 0) >= 3)
        if len(at3) < RED_ZONE_MIN:
            out.append(RedZone(cap, at3))
    return out


def mentor_load(inputs: Inputs, trainees: list[TraineeReport], as_of: dt.datetime) -> list[MentorLoad]:
    if inputs.cohort is None:
        return []
    recent = [e for e in inputs.ledger if as_of - WINDOW_30 < e.at <= as_of]
    out = []
    for mentor in inputs.cohort.mentors:
        mine = [t.id for t in inputs.cohort.trainees if t.mentor == mentor]
        sessions = [e for e in recent if e.kind == "session" and e.get("mentor") == mentor]
        structures: dict[str, int] = {}
        for e in sessions:
            structures[e.get("structure")] = structures.get(e.get("structure"), 0) + 1
        reviews = sum(1 for e in recent if mentor in (e.get("approver"), e.get("reviewer"), e.get("accepted_by")))
        risky = sum(1 for t in trainees if t.trainee in mine and t.flags)
        out.append(MentorLoad(mentor, mine, len(sessions), round(sum(e.get("minutes", 0) for e in sessions) / 60, 2),
                              dict(sorted(structures.items())), reviews, risky))
    return out


def kpi_summary(trainees: list[TraineeReport]) -> list[dict[str, Any]]:
    """Per KPI: the cohort median and how many trainees have a value and meet the target."""
    out = []
    for k in trainees[0].kpis if trainees else []:
        values = [t.kpi(k.id).value for t in trainees if t.kpi(k.id).value is not None]
        out.append({"id": k.id, "name": k.name, "unit": k.unit, "target": k.target, "direction": k.direction,
                    "target_by_day": k.target_by_day,
                    "definition": k.definition, "inputs": k.inputs,
                    "median": round(statistics.median(values), 3) if values else None,
                    "with_value": len(values), "meeting": sum(t.kpi(k.id).meets is True for t in trainees),
                    "trainees": len(trainees)})
    return out


def weekly(inputs: Inputs, as_of: dt.datetime) -> dict[str, Any]:
    """Levels and KPI values of every trainee at the end of each plan week up to ``as_of``."""
    if inputs.cohort is None or inputs.plan is None:
        return {}
    today = inputs.cohort.day(as_of)
    out: dict[str, Any] = {"weeks": [], "days": [], "levels": {}, "kpis": {}}
    for w in inputs.plan.weeks:
        if w.days[0] > today:
            break
        day = min(w.days[1], today)
        moment = min(inputs.cohort.at_day_end(day), as_of)
        out["weeks"].append(w.number)
        out["days"].append(day)
        for trainee in inputs.students():
            t = trainee_report(inputs, trainee, moment)
            out["levels"].setdefault(trainee, []).append({s.capability: s.level for s in t.skills})
            out["kpis"].setdefault(trainee, []).append({k.id: k.value for k in t.kpis})
    return out


def build_report(course_root: str | Path, db_url: str | None = None, plan: Any = "auto",
                 cohort: Any = "auto", ledger: list[Entry] | None = None,
                 now: dt.datetime | None = None) -> CourseReport:
    """The report of every trainee (the cohort's roster and the gradebook's students).

    ``plan=None`` disables the plan; ``cohort="auto"`` reads ``cohort.yaml`` if there is one;
    ``ledger=None`` reads the course's ledger (:func:`labkit.ledger.ledger_url`) if it exists.
    """
    root = Path(course_root)
    plan = load_plan() if plan == "auto" else plan
    cohort = cohort_mod.load_or_none(root) if cohort == "auto" else cohort
    db_url = db_url or f"sqlite:///{root / 'gradebook.db'}"
    if ledger is None:
        ledger = read_ledger(db_url)
    as_of = utc(now or dt.datetime.now(dt.UTC))
    inputs = gather(root, db_url, plan, cohort, current(ledger))
    trainees = [trainee_report(inputs, t, as_of) for t in inputs.students()]
    return CourseReport(as_of.isoformat(timespec="seconds"), trainees,
                        cohort.start.isoformat() if cohort else None, cohort.day(as_of) if cohort else None,
                        red_zones(trainees, plan), mentor_load(inputs, trainees, as_of), kpi_summary(trainees),
                        weekly(inputs, as_of))


def read_ledger(db_url: str) -> list[Entry]:
    """The course's ledger entries ([] when a SQLite ledger was never created)."""
    url = ledger_url(db_url)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return []
    with Ledger.open(url) as led:
        return led.entries()
