"""Skill levels, phase gates and at-risk flags of one trainee as of one moment.

Skill level of a capability, in three steps:

1. from the share of points earned on graded cells mapped to it: share >= 0.90 -> 4,
   >= 0.75 -> 3, >= 0.50 -> 2, else 1 (no graded cell: not rated);
2. capped at the plan's target for the weeks completed: the highest level any week up to the
   trainee's latest submitted plan lab trains that capability to;
3. levels 3 and 4 only with the plan's ledger evidence (``requires`` of the level,
   ``labkit.plan_evidence``): without it the level falls to the highest one whose evidence is
   there (at least 2: lab points alone stop at guided practice).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..plan_evidence import Requirement
from .inputs import Inputs
from .kpis import View
from .model import CellGrade, GateStatus, KPIValue, SkillLevel

LEVEL_THRESHOLDS: tuple[tuple[float, int], ...] = ((0.90, 4), (0.75, 3), (0.50, 2), (0.0, 1))


def level_for(share: float) -> int:
    """Skill level 1-4 from the share of points earned (see the module docstring)."""
    return next(level for low, level in LEVEL_THRESHOLDS if share >= low)


def weeks_completed(cells: list[CellGrade], plan: Any) -> int:
    """Highest plan week whose lab the trainee submitted (0 without a plan or such lab)."""
    if plan is None:
        return 0
    week_of = {w.lab: w.number for w in plan.weeks}
    return max((week_of[c.assignment] for c in cells if c.assignment in week_of), default=0)


def _points(v: View) -> tuple[dict[str, float], dict[str, float]]:
    earned: dict[str, float] = {}
    possible: dict[str, float] = {}
    for c in v.cells:
        cap = v.inputs.capabilities.get((c.assignment, c.notebook, c.grade_id))
        if cap is None or c.score is None:
            continue
        earned[cap] = earned.get(cap, 0.0) + c.score
        possible[cap] = possible.get(cap, 0.0) + c.max_score
    return earned, possible


def requirement_met(v: View, capability: str, r: Requirement, kpis: list[KPIValue]) -> bool:
    """Whether the view's ledger (or KPI) satisfies one level requirement."""
    if r.kpi:
        return next((k.meets for k in kpis if k.id == r.kpi), None) is True
    if r.ledger == "production":
        found = [e for e in v.entries("production") if e.get("capability") == capability
                 and e.get("mode") in r.modes()]
    else:
        found = [e for e in v.entries("runbook") if e.get("capability") == capability]
    return len(found) >= r.min


def skills(v: View, kpis: list[KPIValue], weeks: int) -> list[SkillLevel]:
    """The skills matrix row of the view's trainee (every plan capability, plus any mapped one)."""
    plan = v.inputs.plan
    earned, possible = _points(v)
    caps = [cap.id for cap in plan.capabilities] if plan is not None else []
    caps += sorted(set(possible) - set(caps))
    last_day = plan.week(weeks).days[1] if plan is not None and weeks else 0
    out = []
    for cap in caps:
        target = plan.level_after(cap, last_day) if plan is not None else None
        share = earned[cap] / possible[cap] if possible.get(cap) else None
        points = level_for(share) if share is not None else None
        level = min(points, target) or None if points is not None and target is not None else points
        missing: list[str] = []
        spec = plan.capability(cap) if plan is not None and cap in {c.id for c in plan.capabilities} else None
        while level is not None and level >= 3 and spec is not None:
            unmet = [r for r in spec.levels[level].requires if not requirement_met(v, cap, r, kpis)]
            if not unmet:
                break
            missing += [f"L{level}: {r.describe()}" for r in unmet]
            level -= 1
        out.append(SkillLevel(cap, level, share, earned.get(cap, 0.0), possible.get(cap, 0.0), target,
                              points, missing))
    return out


def gates(plan: Any, day: int | None, skills_row: list[SkillLevel], kpis: list[KPIValue]) -> list[GateStatus]:
    """Each phase gate: ``passed``, ``open`` (its phase not over) or ``missed``, with what is missing."""
    if plan is None:
        return []
    levels = {s.capability: s.level or 0 for s in skills_row}
    values = {k.id: k for k in kpis}
    out = []
    for phase in plan.phases:
        missing = []
        for crit in phase.exit_criteria:
            for t in crit.capabilities:
                if levels.get(t.id, 0) < t.level:
                    missing.append(f"{t.id} level {t.level} (has {levels.get(t.id) or '-'})")
            for t in crit.kpis:
                k = values.get(t.id)
                if k is None or k.value is None:
                    missing.append(f"{t.id} {_sign(plan, t.id)} {t.threshold:g} (no value yet)")
                elif not plan.kpi(t.id).meets(k.value, t.threshold):
                    missing.append(f"{t.id} {_sign(plan, t.id)} {t.threshold:g} (has {k.value:g})")
        over = day is not None and day > phase.days[1]
        status = "passed" if not missing else ("missed" if over else "open")
        out.append(GateStatus(phase.id, status, missing))
    return out


def _sign(plan: Any, kpi_id: str) -> str:
    return "<=" if plan.kpi(kpi_id).direction == "lower-is-better" else ">="


def flags(inputs: Inputs, v: View, day: int | None, weeks: int, gate_rows: list[GateStatus],
          kpis: list[KPIValue]) -> list[str]:
    """At-risk flags: a missed gate, two or more weeks behind, a KPI off target past its day,
    no mentor session in 14 days."""
    plan = inputs.plan
    out = [f"phase gate {g.phase} missed: {len(g.missing)} item(s) missing" for g in gate_rows if g.status == "missed"]
    if day is None or plan is None:
        return out
    current = next((w.number for w in plan.weeks if w.days[0] <= day <= w.days[1]),
                   plan.weeks[-1].number if day > plan.duration_days else 0)
    if current - weeks >= 2:
        out.append(f"behind schedule: week {current}, last lab submitted is week {weeks}")
    for k in kpis:
        spec = plan.kpi(k.id)
        if day >= spec.target_by_day and k.meets is False:
            out.append(f"{k.id} {k.value:g} misses its target {spec.target:g} due by day {spec.target_by_day}")
        if day >= spec.target_by_day and k.id == "time-to-first-safe-change" and k.value is None:
            out.append(f"no safe production change by day {spec.target_by_day}")
    if day > 14 and not v.entries("session", dt.timedelta(days=14)):
        out.append("no mentor session in the last 14 days")
    return out
