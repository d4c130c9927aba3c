"""The report as Markdown: the cohort first (KPIs, red zones, mentor load), then each trainee.

Every KPI figure is printed beside its target, what was counted, its definition and its
inputs, so an instructor never has to look up what a number means.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # model imports this module for CourseReport.to_markdown
    from .model import CourseReport, KPIValue, TraineeReport


def dash(value: Any) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def figure(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ratio":
        return f"{value:.0%}"
    return f"{value:g} per quarter" if unit == "per-quarter" else f"{value:g} {unit}"


def target(k: KPIValue | dict[str, Any]) -> str:
    get = k.get if isinstance(k, dict) else lambda name: getattr(k, name)
    if get("target") is None:
        return "-"
    sign = "<=" if get("direction") == "lower-is-better" else ">="
    return f"{sign} {figure(get('target'), get('unit'))}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def cohort_section(report: CourseReport) -> list[str]:
    out = [f"# Cohort report ({report.generated_at})", ""]
    if report.cohort_start:
        out += [f"Cohort start {report.cohort_start}; program day {report.day}; {len(report.trainees)} trainees.", ""]
    out += ["## KPIs (cohort)", "", "| KPI | cohort median | meeting target | target | definition | inputs |",
            "|---|---|---|---|---|---|"]
    for k in report.kpi_summary:
        out.append(f"| {k['name']} | {figure(k['median'], k['unit'])} | {k['meeting']} of {k['trainees']} |"
                   f" {target(k)} | {_cell(k['definition'])} | {_cell(k['inputs'])} |")
    out += ["", "## Red zones (fewer than two trainees at level 3)", ""]
    out += [f"- {z.capability}: {', '.join(z.at_level_3) or 'nobody'} at level 3" for z in report.red_zones] or ["- none"]
    if report.mentors:
        out += ["", "## Mentor load (last 30 days)", "",
                "| mentor | trainees | sessions | hours | by structure | reviews | trainees at risk |",
                "|---|---|---|---|---|---|---|"]
        for m in report.mentors:
            structures = ", ".join(f"{k} {v}" for k, v in m.by_structure.items()) or "-"
            out.append(f"| {m.mentor} | {', '.join(m.trainees)} | {m.sessions_30d} | {m.hours_30d:g} |"
                       f" {structures} | {m.reviews_30d} | {m.at_risk} |")
    return out + [""]


def trainee_section(t: TraineeReport) -> list[str]:
    who = f" ({t.role_path}, mentor {t.mentor})" if t.role_path else ""
    out = [f"## {t.trainee}{who}", "", f"Weeks completed: {t.weeks_completed}; first submission:"
           f" {t.first_submission or '-'}", "",
           "| capability | level | target | share | points | still needed |", "|---|---|---|---|---|---|"]
    for s in t.skills:
        share = f"{s.share:.0%}" if s.share is not None else "-"
        out.append(f"| {s.capability} | {dash(s.level)} | {dash(s.target)} | {share} | {s.earned:g}/{s.possible:g} |"
                   f" {_cell('; '.join(s.missing)) or '-'} |")
    out += ["", "| KPI | value | target | meets | counted | definition | inputs |", "|---|---|---|---|---|---|---|"]
    for k in t.kpis:
        meets = {True: "yes", False: "no", None: "-"}[k.meets]
        out.append(f"| {k.name} | {figure(k.value, k.unit)} | {target(k)} | {meets} | {_cell(k.note)} |"
                   f" {_cell(k.definition)} | {_cell(k.inputs)} |")
    if t.gates:
        out += ["", "Phase gates: " + "; ".join(
            f"{g.phase} {g.status}" + (f" (missing: {', '.join(g.missing)})" if g.missing else "") for g in t.gates)]
    out += ["", "At risk: " + ("; ".join(t.flags) if t.flags else "no"), "", "Hints revealed: " + hints_line(t), ""]
    return out


def hints_line(t: TraineeReport) -> str:
    """``lab09-provider-outage #1, #2; ...`` from the graded runs (reveals cost no points)."""
    return "; ".join(f"{lab} " + ", ".join(f"#{n}" for n in numbers) for lab, numbers in t.hints.items()) or "none"


def report_markdown(report: CourseReport) -> str:
    """The whole report as Markdown."""
    lines = cohort_section(report)
    for t in report.trainees:
        lines += trainee_section(t)
    return "\n".join(lines)
