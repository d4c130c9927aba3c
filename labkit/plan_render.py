"""The plan as ``labkit plan`` prints it: the calendar and one week in full."""


from __future__ import annotations


from rich.table import Table
from rich.text import Text



from .plan import load_plan
from .plan_model import (
    KPI,
    Plan,
)


# --- rendering ---------------------------------------------------------------------------------


def calendar(plan: Plan | None = None, week: int | None = None) -> Table:
    """The calendar ``labkit plan`` prints: one row per week (or only ``week``)."""
    plan = plan or load_plan()
    weeks = [plan.week(week)] if week is not None else list(plan.weeks)
    table = Table(title=Text(plan.title), show_lines=True)
    for column in ("week", "days", "phase", "lab", "capabilities (level)", "mentorship", "KPI"):
        table.add_column(column, overflow="fold", no_wrap=column in ("week", "days"))
    for w in weeks:
        labs = "\n".join([w.lab, *(f"+ {t.lab} ({t.track})" for t in w.track_labs)])
        cells = (str(w.number), f"{w.days[0]}-{w.days[1]}", w.phase, labs,
                 "\n".join(f"{t.id}={t.level}" for t in w.capabilities), w.mentorship.structure, w.kpi)
        table.add_row(*(Text(c) for c in cells))
    return table


def _target(kpi: KPI, value: float | None = None) -> str:
    sign = "<=" if kpi.direction == "lower-is-better" else ">="
    return f"{sign} {kpi.target if value is None else value:g} {kpi.unit}"


def describe_week(plan: Plan, number: int) -> str:
    """Everything about one week as plain text (for ``labkit plan --week N``)."""
    w, lines = plan.week(number), []
    phase, kpi = plan.phase(w.phase), plan.kpi(w.kpi)
    structure = plan.structure(w.mentorship.structure)
    lines += [f"Week {w.number}: {w.title}",
              f"phase {phase.id} ({phase.name}), days {w.days[0]}-{w.days[1]}; "
              f"production access: {phase.guardrails.production_access}",
              f"lab {w.lab} ({w.lab_timebox_minutes} min); lesson curriculum/{w.lesson}", "", "Objectives"]
    lines += [f"  - {o}" for o in w.objectives]
    lines += ["", "Capabilities (level after this week)"]
    for t in w.capabilities:
        level = plan.capability(t.id).levels[t.level]
        lines += [f"  - {t.id} -> {t.level} ({plan.level_scale[t.level]['name']}): {level.descriptor}",
                  f"      evidence: {level.evidence}"]
    lines += ["", f"Mentorship: {structure.name} ({structure.id})", f"  {w.mentorship.description}",
              "", f"Runbook: {w.runbook_artifact.action} {w.runbook_artifact.file}",
              f"  {w.runbook_artifact.covers}",
              "", f"KPI: {kpi.id} - {kpi.name}; target {_target(kpi)} by day {kpi.target_by_day}",
              f"  {kpi.definition}", "", "Evidence"]
    lines += [f"  - {e}" for e in w.evidence]
    if w.readings:
        lines += ["", "Readings"] + [f"  - {r}" for r in w.readings]
    for t in w.track_labs:
        lines += ["", f"Track lab ({t.track}): {t.lab} - {t.title} ({t.timebox_minutes} min); "
                      f"lesson curriculum/{t.lesson}",
                  f"  capabilities: {', '.join(f'{c.id}={c.level}' for c in t.capabilities)}; "
                  f"mentorship: {t.mentorship.structure}; artifact: {t.artifact_file}"]
        lines += [f"  - {e}" for e in t.evidence]
    return "\n".join(lines)
