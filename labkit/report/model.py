"""What a report is made of: grades in, skills, KPIs, gates and flags out (plain dataclasses)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from sandbox.errors import UnknownChoice

from .text import report_markdown


@dataclass(frozen=True)
class CellGrade:
    """One grade cell of one submission, as the gradebook holds it."""

    student: str
    assignment: str
    notebook: str
    grade_id: str
    score: float | None
    """None when neither an automatic nor a manual score exists (ungraded)."""
    max_score: float
    timestamp: dt.datetime | None


@dataclass
class SkillLevel:
    """One cell of the skills matrix: a capability of one trainee."""

    capability: str
    level: int | None
    share: float | None
    earned: float
    possible: float
    target: int | None
    """The plan's level for the weeks completed (the cap); None without a plan."""
    points_level: int | None = None
    """The level lab points alone would give (before the ledger evidence of levels 3-4)."""
    missing: list[str] = field(default_factory=list)
    """What levels above ``level`` still need (ledger evidence, KPIs)."""


@dataclass
class KPIValue:
    """One KPI of one trainee: the figure beside its definition, inputs and target."""

    id: str
    name: str
    value: float | None
    unit: str
    target: float | None = None
    meets: bool | None = None
    note: str = ""
    """What was counted (e.g. "3 of 4 decisions matched the rubric")."""
    definition: str = ""
    inputs: str = ""
    """Where the figure comes from (the plan's sources and how_measured)."""
    direction: str = ""
    target_by_day: int | None = None


@dataclass
class GateStatus:
    """A phase gate of one trainee: passed, open (phase not over) or missed, and what is missing."""

    phase: str
    status: str
    missing: list[str] = field(default_factory=list)


@dataclass
class TraineeReport:
    """A trainee's skills matrix row, KPIs, phase gates and at-risk flags."""

    trainee: str
    weeks_completed: int
    first_submission: str | None
    role_path: str = ""
    mentor: str = ""
    skills: list[SkillLevel] = field(default_factory=list)
    kpis: list[KPIValue] = field(default_factory=list)
    gates: list[GateStatus] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    hints: dict[str, list[int]] = field(default_factory=dict)
    """Lab -> hint numbers revealed in its latest graded run (a reveal costs no points)."""

    def skill(self, capability: str) -> SkillLevel:
        return next(s for s in self.skills if s.capability == capability)

    def kpi(self, kpi_id: str) -> KPIValue:
        return next(k for k in self.kpis if k.id == kpi_id)

    def gate(self, phase: str) -> GateStatus:
        return next(g for g in self.gates if g.phase == phase)


@dataclass
class RedZone:
    """A capability fewer than two trainees reach level 3 in."""

    capability: str
    at_level_3: list[str]


@dataclass
class MentorLoad:
    """What one mentor carries: trainees, sessions and reviews of the trailing 30 days."""

    mentor: str
    trainees: list[str]
    sessions_30d: int
    hours_30d: float
    by_structure: dict[str, int]
    reviews_30d: int
    """Approvals, production reviews and runbook acceptances the mentor gave."""
    at_risk: int


@dataclass
class CourseReport:
    """Every trainee's report plus the cohort view; ``to_markdown()`` for people, ``to_json()`` for tools."""

    generated_at: str
    trainees: list[TraineeReport]
    cohort_start: str | None = None
    day: int | None = None
    """Program day of the report (None without a cohort)."""
    red_zones: list[RedZone] = field(default_factory=list)
    mentors: list[MentorLoad] = field(default_factory=list)
    kpi_summary: list[dict[str, Any]] = field(default_factory=list)
    """Per KPI: cohort median, how many trainees have a value and meet the target."""
    weekly: dict[str, Any] = field(default_factory=dict)
    """The cohort by week end: levels per trainee and KPI values (for the heatmaps and trajectories)."""

    def trainee(self, name: str) -> TraineeReport:
        for t in self.trainees:
            if t.trainee == name:
                return t
        raise UnknownChoice("trainee", name, [t.trainee for t in self.trainees])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str)

    def to_markdown(self) -> str:
        return report_markdown(self)
