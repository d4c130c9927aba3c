"""The course plan as frozen dataclasses, its constants and its errors (``labkit.plan`` loads it)."""


from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


from sandbox.errors import InvalidInput, UnknownChoice

from .plan_evidence import Requirement
from .plan_graded import GradedCheck, Lesson, TrackLab
from .plan_graded import lessons as _lessons


ROOT = Path(__file__).resolve().parent.parent
PLAN_PATH = ROOT / "curriculum" / "plan.yaml"
SCHEMA_PATH = ROOT / "curriculum" / "plan.schema.json"
CATEGORIES = ("foundational", "operational", "governance")
MENTORSHIP_STRUCTURES = ("goal-based-mentoring", "shadowing", "reverse-shadowing", "pairing", "office-hours")
#: The skills matrix must cover at least these (the issue's list); reports rely on the ids.
REQUIRED_CAPABILITIES = (
    "model-rollback", "dataset-lineage", "drift-detection", "model-version-governance",
    "prompt-policy-hardening", "inference-capacity", "observability-triage", "incident-response",
    "change-management", "data-validation",
)
#: KPIs that ``labkit report`` computes; the plan must define each of them.
REQUIRED_KPIS = ("time-to-first-safe-change", "escalation-accuracy", "triage-accuracy", "mttd", "mttr",
                 "recall-regressions-caught", "change-failure-rate", "runbook-contribution-rate",
                 "repeat-fix-reduction", "shadow-to-own-ratio")
WEEK_COUNT = 13


# --- errors -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the plan, at ``path`` (e.g. ``weeks[3].capabilities[1]``)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '(top level)'}: {self.message}"


class PlanError(InvalidInput):
    """The course plan file is not valid; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem], source: str) -> None:
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        lines = "".join(f"\n  {p}" for p in problems)
        super().__init__(f"{source} is not a valid course plan ({count}):{lines}")
        self.problems = problems
        self.source = source


# --- the plan as dataclasses ----------------------------------------------------------------


@dataclass(frozen=True)
class Level:
    """What a person at one level can demonstrably do, and the evidence for it."""

    level: int
    descriptor: str
    evidence: str
    requires: tuple[Requirement, ...] = ()
    """Ledger evidence (and KPIs) levels 3-4 need beyond lab points (``labkit.plan_evidence``)."""


@dataclass(frozen=True)
class Capability:
    """One row of the skills matrix."""

    id: str
    name: str
    category: str
    description: str
    levels: dict[int, Level]


@dataclass(frozen=True)
class CapabilityTarget:
    """A capability and the level a week trains it to (or a phase gate requires)."""

    id: str
    level: int


@dataclass(frozen=True)
class KPIThreshold:
    """A KPI value a phase gate requires (compared in the KPI's direction)."""

    id: str
    threshold: float


@dataclass(frozen=True)
class KPI:
    """A key performance indicator and how the report computes it."""

    id: str
    name: str
    definition: str
    unit: str
    direction: str
    sources: tuple[str, ...]
    aggregation: str
    how_measured: str
    target: float
    target_by_day: int

    def meets(self, value: float, threshold: float | None = None) -> bool:
        """Whether ``value`` reaches ``threshold`` (default: the target) in this KPI's direction."""
        limit = self.target if threshold is None else threshold
        return value <= limit if self.direction == "lower-is-better" else value >= limit


@dataclass(frozen=True)
class ExitCriterion:
    """One observable condition for leaving a phase."""

    criterion: str
    evidence: str
    capabilities: tuple[CapabilityTarget, ...]
    kpis: tuple[KPIThreshold, ...]


@dataclass(frozen=True)
class Guardrails:
    """What a trainee may and may not do in production during a phase."""

    production_access: str
    may: tuple[str, ...]
    may_not: tuple[str, ...]


@dataclass(frozen=True)
class Phase:
    """One of the three 30-day phases."""

    id: str
    name: str
    days: tuple[int, int]
    max_level: int
    goals: tuple[str, ...]
    exit_criteria: tuple[ExitCriterion, ...]
    guardrails: Guardrails


@dataclass(frozen=True)
class MentorshipStructure:
    """A way mentor and trainee work together, and the phases it is used in."""

    id: str
    name: str
    phases: tuple[str, ...]
    when: str
    looks_like: str
    mentor_does: str
    trainee_does: str


@dataclass(frozen=True)
class Mentorship:
    """The structure a week uses and what mentor and trainee do in it."""

    structure: str
    description: str


@dataclass(frozen=True)
class RunbookArtifact:
    """The runbook a week's trainee writes or extends."""

    file: str
    action: str
    covers: str


@dataclass(frozen=True)
class Week:
    """One week: objectives, capabilities, lab, lesson, mentorship, runbook, KPI and checks.

    ``evidence`` starts with the line rendered from ``checks`` (``Lab NN checks: ...``).
    """

    number: int
    title: str
    phase: str
    days: tuple[int, int]
    objectives: tuple[str, ...]
    capabilities: tuple[CapabilityTarget, ...]
    lab: str
    lesson: str
    mentorship: Mentorship
    runbook_artifact: RunbookArtifact
    kpi: str
    evidence: tuple[str, ...]
    readings: tuple[str, ...]
    lab_timebox_minutes: int = 0
    checks: tuple[GradedCheck, ...] = ()
    track_labs: tuple[TrackLab, ...] = ()


@dataclass(frozen=True)
class GameDays:
    """Game-day cadence, roles and the timing rules of MTTD and MTTR."""

    cadence: str
    schedule: tuple[dict[str, Any], ...]
    roles: tuple[dict[str, str], ...]
    timing: dict[str, str]
    kpis: tuple[str, ...]
    rules: tuple[str, ...]


@dataclass(frozen=True)
class Hints:
    """The hints of the brief-only labs (``curriculum/hints/<lab>.yaml``, shown by ``graders.hint``)."""

    brief_only_phases: tuple[str, ...] = ()
    """Phases whose labs (a week's lab and its track labs) state objective and outcome, no named calls."""
    cost_points: float = 0
    """Points a reveal costs; 0: none (the schema allows only 0), reveals are shown in ``labkit report``."""


@dataclass(frozen=True)
class Plan:
    """The validated course plan. Build it with :func:`load_plan`."""

    title: str
    duration_days: int
    level_scale: dict[int, dict[str, str]]
    mentorship_structures: tuple[MentorshipStructure, ...]
    capabilities: tuple[Capability, ...]
    kpis: tuple[KPI, ...]
    phases: tuple[Phase, ...]
    weeks: tuple[Week, ...]
    game_days: GameDays
    hints: Hints = Hints()

    def week(self, number: int) -> Week:
        """Week ``number`` (1-13); unknown numbers raise with the valid ones."""
        for w in self.weeks:
            if w.number == number:
                return w
        raise UnknownChoice("week", number, [w.number for w in self.weeks])

    def capability(self, capability_id: str) -> Capability:
        """The skills-matrix row ``capability_id``."""
        return _find(self.capabilities, capability_id, "capability")

    def kpi(self, kpi_id: str) -> KPI:
        """The KPI ``kpi_id``."""
        return _find(self.kpis, kpi_id, "KPI")

    def phase(self, phase_id: str) -> Phase:
        """The phase ``phase_id`` (literacy, supervised, ownership)."""
        return _find(self.phases, phase_id, "phase")

    def structure(self, structure_id: str) -> MentorshipStructure:
        """The mentorship structure ``structure_id``."""
        return _find(self.mentorship_structures, structure_id, "mentorship structure")

    def lab_ids(self) -> list[str]:
        """The weeks' own lab ids in week order (``lab01-first-deploy`` ... ``lab13-capstone``)."""
        return [w.lab for w in self.weeks]

    def all_lab_ids(self) -> list[str]:
        """Every lab in week order, each week's own lab before its track labs."""
        return [lab for w in self.weeks for lab in (w.lab, *(t.lab for t in w.track_labs))]

    def week_of_lab(self, lab: str) -> Week:
        """The week whose lab or track lab ``lab`` is."""
        for w in self.weeks:
            if lab == w.lab or lab in (t.lab for t in w.track_labs):
                return w
        raise UnknownChoice("lab", lab, self.all_lab_ids())

    def brief_only_labs(self) -> list[str]:
        """The labs of the ``hints.brief_only_phases`` in week order (hints instead of named calls)."""
        return [lab for w in self.weeks if w.phase in self.hints.brief_only_phases
                for lab in (w.lab, *(t.lab for t in w.track_labs))]

    def lessons(self) -> list[Lesson]:
        """Every lesson notebook in week order, with the lab it prepares."""
        return _lessons(self)

    def checks_of(self, lab: str) -> tuple[GradedCheck, ...]:
        """The graded checks the plan counts for ``lab`` (a week's lab or a track lab)."""
        w = self.week_of_lab(lab)
        return w.checks if lab == w.lab else next(t.checks for t in w.track_labs if t.lab == lab)

    def capabilities_by_category(self) -> dict[str, list[Capability]]:
        """Capabilities grouped by category, in the order foundational, operational, governance."""
        return {cat: [c for c in self.capabilities if c.category == cat] for cat in CATEGORIES}

    def level_after(self, capability_id: str, day: int) -> int:
        """Highest level weeks ending on or before ``day`` train ``capability_id`` to (0 if none)."""
        return max((t.level for w in self.weeks if w.days[1] <= day
                    for t in w.capabilities if t.id == capability_id), default=0)

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data."""
        return json.loads(json.dumps(asdict(self)))


def _find(items: tuple[Any, ...], item_id: str, kind: str) -> Any:
    for item in items:
        if item.id == item_id:
            return item
    raise UnknownChoice(kind, item_id, [i.id for i in items])


