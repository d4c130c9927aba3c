"""The instructor dashboard's widgets (``curriculum/instructor-dashboard.ipynb``): the cohort
view of ``labkit report --html`` with filters for trainee, capability and week.

    from labkit.report.dashboard import Dashboard
    Dashboard(report)       # filters + heatmap of the chosen week + KPIs, gates, flags

Every view is also a plain function (:func:`view_text`, :func:`heatmap_png`), so the notebook
reads as text where no front end renders widgets.
"""

from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path
from typing import Any

import ipywidgets as W

from . import figures
from .model import CourseReport
from .text import figure, target

ALL = "(all)"


def _levels(report: CourseReport, week: int | None) -> dict[str, dict[str, Any]]:
    weekly = report.weekly or {}
    if week is None or week not in weekly.get("weeks", []):
        return {t.trainee: {s.capability: s.level for s in t.skills} for t in report.trainees}
    i = weekly["weeks"].index(week)
    return {t: snaps[i] for t, snaps in weekly["levels"].items()}


def heatmap_png(report: CourseReport, trainee: str = ALL, capability: str = ALL, week: int | None = None) -> bytes:
    """The heatmap of ``week`` (None: now), narrowed to one trainee and/or capability."""
    trainees = [t.trainee for t in report.trainees if trainee in (ALL, t.trainee)]
    caps = [s.capability for s in report.trainees[0].skills if capability in (ALL, s.capability)]
    with tempfile.TemporaryDirectory() as tmp:
        path = figures.heatmap(Path(tmp) / "h.png", trainees, caps, _levels(report, week),
                               f"Skills at the end of week {week}" if week else "Skills now",
                               {z.capability for z in report.red_zones})
        return path.read_bytes()


def view_text(report: CourseReport, trainee: str = ALL, capability: str = ALL, week: int | None = None) -> str:
    """What the dashboard shows for the filters, as text."""
    levels = _levels(report, week)
    lines = [f"week {week or 'now'}; red zones: {', '.join(z.capability for z in report.red_zones) or 'none'}"]
    for t in report.trainees:
        if trainee not in (ALL, t.trainee):
            continue
        row = {c: v for c, v in levels.get(t.trainee, {}).items() if capability in (ALL, c)}
        lines.append(f"{t.trainee} ({t.role_path}, {t.mentor}): " + ", ".join(f"{c}={v or '-'}" for c, v in row.items()))
        if trainee != ALL:
            lines += [f"  {k.name}: {figure(k.value, k.unit)} (target {target(k)}) - {k.note}" for k in t.kpis]
            lines += [f"  gate {g.phase}: {g.status}" + (f" - missing {', '.join(g.missing)}" if g.missing else "")
                      for g in t.gates]
            lines += [f"  at risk: {f}" for f in t.flags]
    return "\n".join(lines)


class Dashboard(W.VBox):
    """Filters (trainee, capability, week) over the heatmap and the trainee's KPIs, gates and flags."""

    def __init__(self, report: CourseReport) -> None:
        self.report = report
        weeks = (report.weekly or {}).get("weeks") or [0]
        self.trainee = W.Dropdown(options=[ALL] + [t.trainee for t in report.trainees], description="Trainee")
        caps = [s.capability for s in report.trainees[0].skills] if report.trainees else []
        self.capability = W.Dropdown(options=[ALL] + caps, description="Capability")
        self.week = W.IntSlider(value=weeks[-1], min=weeks[0], max=weeks[-1], description="Week")
        self.image = W.Image(format="png")
        self.details = W.HTML()
        for control in (self.trainee, self.capability, self.week):
            control.observe(lambda _: self.update(), "value")
        super().__init__([W.HBox([self.trainee, self.capability, self.week]), self.image, self.details])
        self.add_class("labkit-dashboard")
        self.update()

    def update(self) -> str:
        week = self.week.value or None
        self.image.value = heatmap_png(self.report, self.trainee.value, self.capability.value, week)
        text = view_text(self.report, self.trainee.value, self.capability.value, week)
        self.details.value = f"<pre>{html.escape(text)}</pre>"
        return text

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        png = base64.b64encode(self.image.value).decode()
        return {**bundle, "text/plain": view_text(self.report, self.trainee.value, self.capability.value,
                                                  self.week.value or None), "image/png": png}
