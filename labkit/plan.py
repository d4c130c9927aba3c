"""The 90-day course plan: load, validate and render ``curriculum/plan.yaml``.

The plan is data that notebooks, ``labkit plan`` and ``labkit report`` read::

    from labkit.plan import load_plan
    plan = load_plan()
    plan.week(5).lab                      # 'lab05-bad-rollout'
    plan.capability("model-rollback").levels[3].evidence

Loading is a pipeline of small steps, each of which either passes or names every problem
it found by its path in the file (``weeks[3].capabilities[1]: unknown capability ...``):

1. read the YAML (the only place YAML appears; integer keys become strings, as in JSON);
2. validate its shape against ``curriculum/plan.schema.json`` (draft 2020-12);
3. build frozen dataclasses;
4. cross-check what a schema cannot say: ids unique and known, weeks 1-13 contiguous and
   inside their phase's days, levels that never go down and are reachable before each
   phase gate, mentorship structures used in the phases they belong to, runbooks extended
   only after they were written, every graded check registered in ``graders.CHECKS``, and
   the track labs (``labkit.plan_graded``) named after their week.

Paths count list items from 0, as JSON does: ``weeks[3]`` is the fourth week.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from rich.table import Table
from rich.text import Text

from sandbox.errors import InvalidInput, UnknownChoice

from .plan_evidence import Requirement, check_requirements, requirements
from .plan_graded import GradedCheck, Lesson, TrackLab, build_track, check_problems, evidence_line, graded, \
    track_problems
from .plan_graded import lessons as _lessons

__all__ = [
    "CATEGORIES", "MENTORSHIP_STRUCTURES", "PLAN_PATH", "REQUIRED_CAPABILITIES", "REQUIRED_KPIS",
    "SCHEMA_PATH", "Capability", "CapabilityTarget", "ExitCriterion", "GameDays", "Guardrails",
    "GradedCheck", "KPI", "KPIThreshold", "Lesson", "Level", "Mentorship", "MentorshipStructure", "Phase", "Plan",
    "PlanError", "Problem", "RunbookArtifact", "TrackLab", "Week", "calendar", "describe_week",
    "load_plan", "parse_plan",
]

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


# --- loading ---------------------------------------------------------------------------------


def load_plan(path: str | Path | None = None) -> Plan:
    """Read, validate and cross-check the plan (default ``curriculum/plan.yaml``)."""
    path = Path(path) if path is not None else PLAN_PATH
    source = _display(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise PlanError([Problem("", f"file not found: {path}")], source) from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PlanError([Problem(where, f"not valid YAML: {getattr(e, 'problem', None) or e}")], source) from e
    return parse_plan(raw, source)


def parse_plan(raw: Any, source: str = "course plan") -> Plan:
    """Validate already-parsed plan data (as from YAML) and build the :class:`Plan`."""
    data = _jsonable(raw)
    problems = schema_problems(data)
    if problems:
        raise PlanError(problems, source)
    plan = _build(data)
    problems = cross_check(plan)
    if problems:
        raise PlanError(problems, source)
    return plan


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _jsonable(value: Any) -> Any:
    """YAML data as JSON data: keys become strings, dates become ISO text."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def _path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def schema_problems(data: Any) -> list[Problem]:
    """Every way ``data`` breaks the JSON Schema, in file order, in plain language."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    found: dict[str, Problem] = {}
    for err in validator.iter_errors(data):
        problem = Problem(_path(err.absolute_path), _schema_message(err))
        found.setdefault(str(problem), problem)
    order = lambda p: [(0, int(x)) if x.isdigit() else (1, x)  # noqa: E731
                       for x in p.path.replace("[", ".").replace("]", "").split(".")]
    return sorted(found.values(), key=order)


def _schema_message(err: jsonschema.ValidationError) -> str:
    kind, inst, val = err.validator, err.instance, err.validator_value
    if kind == "required":
        missing = [k for k in val if k not in inst]
        if err.absolute_path and err.absolute_path[-1] == "levels":
            return "; ".join(f"level {k} descriptor is missing (every capability describes levels 1-4)"
                             for k in missing)
        return "missing required field" + ("s " if len(missing) > 1 else " ") + ", ".join(map(repr, missing))
    if kind == "additionalProperties" and isinstance(inst, dict):
        allowed = list(err.schema.get("properties", {}))
        extra = [k for k in inst if k not in allowed]
        return f"unknown field {', '.join(map(repr, extra))}; valid: {', '.join(allowed)}"
    if kind in ("enum", "const"):
        choices = val if kind == "enum" else [val]
        return f"{inst!r} is not allowed; valid: {', '.join(map(str, choices))}"
    if kind in ("minLength", "pattern") and isinstance(inst, str) and not inst.strip():
        return "must not be empty"
    if kind == "pattern":
        return f"{inst!r} does not have the expected form: {err.schema.get('description', val)}"
    if kind == "minItems":
        return f"needs at least {val} item(s), has {len(inst)}"
    if kind == "maxItems":
        return f"allows at most {val} item(s), has {len(inst)}"
    if kind == "type":
        return f"expected {val}, got {type(inst).__name__} {inst!r}"
    return err.message


def _build(d: dict[str, Any]) -> Plan:
    targets = lambda items: tuple(CapabilityTarget(t["id"], t["level"]) for t in items)  # noqa: E731
    return Plan(
        title=d["title"],
        duration_days=d["duration_days"],
        level_scale={int(k): v for k, v in d["level_scale"].items()},
        mentorship_structures=tuple(MentorshipStructure(**{**m, "phases": tuple(m["phases"])})
                                    for m in d["mentorship_structures"]),
        capabilities=tuple(
            Capability(c["id"], c["name"], c["category"], c["description"],
                       {int(k): Level(int(k), v["descriptor"], v["evidence"], requirements(v.get("requires")))
                        for k, v in sorted(c["levels"].items())})
            for c in d["capabilities"]),
        kpis=tuple(KPI(**{**k, "sources": tuple(k["sources"])}) for k in d["kpis"]),
        phases=tuple(
            Phase(p["id"], p["name"], tuple(p["days"]), p["max_level"], tuple(p["goals"]),
                  tuple(ExitCriterion(e["criterion"], e["evidence"], targets(e.get("capabilities", [])),
                                      tuple(KPIThreshold(k["id"], k["threshold"]) for k in e.get("kpis", [])))
                        for e in p["exit_criteria"]),
                  Guardrails(p["guardrails"]["production_access"], tuple(p["guardrails"]["may"]),
                             tuple(p["guardrails"]["may_not"])))
            for p in d["phases"]),
        weeks=tuple(
            Week(w["number"], w["title"], w["phase"], tuple(w["days"]), tuple(w["objectives"]),
                 targets(w["capabilities"]), w["lab"], w["lesson"], Mentorship(**w["mentorship"]),
                 RunbookArtifact(**w["runbook_artifact"]), w["kpi"],
                 (evidence_line(w["lab"], graded(w["checks"])), *w["evidence"]),
                 tuple(w.get("readings", [])), lab_timebox_minutes=w["lab_timebox_minutes"],
                 checks=graded(w["checks"]),
                 track_labs=tuple(build_track(t, CapabilityTarget, Mentorship) for t in w.get("track_labs", [])))
            for w in d["weeks"]),
        game_days=GameDays(**{**d["game_days"], "schedule": tuple(d["game_days"]["schedule"]),
                              "roles": tuple(d["game_days"]["roles"]), "kpis": tuple(d["game_days"]["kpis"]),
                              "rules": tuple(d["game_days"]["rules"])}),
    )


# --- cross-checks the schema cannot express ----------------------------------------------------


def cross_check(plan: Plan) -> list[Problem]:
    """Every cross-reference problem of a plan whose shape already passed the schema."""
    checks: tuple[Callable[[Plan], Iterator[Problem]], ...] = (
        _check_ids, _check_phases, _check_weeks, _check_week_capabilities, _check_exit_criteria,
        _check_kpis, _check_mentorship, _check_runbooks, _check_game_days, _check_graded,
    )
    found = [problem for check in checks for problem in check(plan)]
    return found + [Problem(path, message) for path, message in check_requirements(plan)]


def _check_graded(plan: Plan) -> Iterator[Problem]:
    """Graded checks registered and of the right kind; track labs named after their week."""
    for path, message in (*check_problems(plan), *track_problems(plan)):
        yield Problem(path, message)


def _valid(ids: Any) -> str:
    return "; valid: " + ", ".join(sorted(ids))


def _duplicates(values: list[str], where: Callable[[int], str], what: str) -> Iterator[Problem]:
    first: dict[str, int] = {}
    for i, value in enumerate(values):
        if value in first:
            yield Problem(where(i), f"duplicate {what} {value!r} (first at {where(first[value])})")
        first.setdefault(value, i)


def _check_ids(plan: Plan) -> Iterator[Problem]:
    yield from _duplicates([c.id for c in plan.capabilities], lambda i: f"capabilities[{i}].id", "capability id")
    yield from _duplicates([k.id for k in plan.kpis], lambda i: f"kpis[{i}].id", "KPI id")
    yield from _duplicates([p.id for p in plan.phases], lambda i: f"phases[{i}].id", "phase id")
    yield from _duplicates([m.id for m in plan.mentorship_structures],
                           lambda i: f"mentorship_structures[{i}].id", "mentorship structure")
    yield from _duplicates([w.lab for w in plan.weeks], lambda i: f"weeks[{i}].lab", "lab id")
    yield from _duplicates([w.lesson for w in plan.weeks], lambda i: f"weeks[{i}].lesson", "lesson")
    yield from _duplicates([r["id"] for r in plan.game_days.roles], lambda i: f"game_days.roles[{i}].id", "role id")
    caps, kpis = {c.id for c in plan.capabilities}, {k.id for k in plan.kpis}
    for cid in REQUIRED_CAPABILITIES:
        if cid not in caps:
            yield Problem("capabilities", f"missing required capability {cid!r}; the skills matrix must cover: "
                          + ", ".join(REQUIRED_CAPABILITIES))
    for kid in REQUIRED_KPIS:
        if kid not in kpis:
            yield Problem("kpis", f"missing required KPI {kid!r}; the report computes: " + ", ".join(REQUIRED_KPIS))
    for category, members in plan.capabilities_by_category().items():
        if not members:
            yield Problem("capabilities", f"no capability in category {category!r}")


def _check_phases(plan: Plan) -> Iterator[Problem]:
    expected = 1
    for i, p in enumerate(plan.phases):
        start, end = p.days
        if start > end:
            yield Problem(f"phases[{i}].days", f"phase {p.id!r} starts on day {start}, after its last day {end}")
        elif start != expected:
            yield Problem(f"phases[{i}].days", f"phase {p.id!r} starts on day {start}; expected day {expected} "
                          "(phases run from day 1 without gaps or overlaps)")
        expected = end + 1
    if plan.phases and expected - 1 != plan.duration_days:
        yield Problem(f"phases[{len(plan.phases) - 1}].days",
                      f"the last phase ends on day {expected - 1}; the program runs to day {plan.duration_days}")


def _check_weeks(plan: Plan) -> Iterator[Problem]:
    phases, kpis = {p.id: p for p in plan.phases}, {k.id for k in plan.kpis}
    previous_end = 0
    for i, w in enumerate(plan.weeks):
        at = f"weeks[{i}]"
        if w.number != i + 1:
            yield Problem(f"{at}.number", f"expected week {i + 1}, got week {w.number} "
                          f"(weeks run 1-{WEEK_COUNT} in order, without gaps or repeats)")
        start, end = w.days
        if start > end:
            yield Problem(f"{at}.days", f"week {w.number} starts on day {start}, after its last day {end}")
        elif start != previous_end + 1:
            yield Problem(f"{at}.days", f"week {w.number} starts on day {start}; expected day {previous_end + 1} "
                          "(weeks follow each other without gaps or overlaps)")
        previous_end = end
        phase = phases.get(w.phase)
        if phase is None:
            yield Problem(f"{at}.phase", f"unknown phase {w.phase!r}" + _valid(phases))
        elif not phase.days[0] <= start <= end <= phase.days[1]:
            yield Problem(f"{at}.days", f"days {start}-{end} of week {w.number} fall outside phase {w.phase!r} "
                          f"(days {phase.days[0]}-{phase.days[1]})")
        tag = f"{w.number:02d}"
        if not w.lab.startswith(f"lab{tag}-"):
            yield Problem(f"{at}.lab", f"lab {w.lab!r} of week {w.number} must start with 'lab{tag}-'")
        if not w.lesson.startswith(f"week{tag}-"):
            yield Problem(f"{at}.lesson", f"lesson {w.lesson!r} of week {w.number} must start with 'week{tag}-'")
        if w.kpi not in kpis:
            yield Problem(f"{at}.kpi", f"unknown KPI {w.kpi!r}" + _valid(kpis))
    if plan.weeks and previous_end != plan.duration_days:
        yield Problem(f"weeks[{len(plan.weeks) - 1}].days",
                      f"the last week ends on day {previous_end}; the program runs to day {plan.duration_days}")


def _check_week_capabilities(plan: Plan) -> Iterator[Problem]:
    caps, phases = {c.id for c in plan.capabilities}, {p.id: p for p in plan.phases}
    reached: dict[str, tuple[int, int]] = {}
    for i, w in enumerate(plan.weeks):
        phase, listed = phases.get(w.phase), set()
        for j, t in enumerate(w.capabilities):
            at = f"weeks[{i}].capabilities[{j}]"
            if t.id not in caps:
                yield Problem(at, f"unknown capability {t.id!r}" + _valid(caps))
                continue
            if t.id in listed:
                yield Problem(at, f"capability {t.id!r} is listed twice in week {w.number}")
            listed.add(t.id)
            if phase and t.level > phase.max_level:
                yield Problem(at, f"level {t.level} for {t.id!r} is above what phase {phase.id!r} allows "
                              f"(max level {phase.max_level}; production access {phase.guardrails.production_access})")
            before = reached.get(t.id)
            if before and t.level < before[0]:
                yield Problem(at, f"level {t.level} for {t.id!r} is below level {before[0]} already reached "
                              f"in week {before[1]}; target levels never go down")
            else:
                reached[t.id] = (t.level, w.number)
    for i, c in enumerate(plan.capabilities):
        if c.id not in reached:
            yield Problem(f"capabilities[{i}]", f"capability {c.id!r} is not trained in any week")


def _check_exit_criteria(plan: Plan) -> Iterator[Problem]:
    caps, kpis = {c.id for c in plan.capabilities}, {k.id: k for k in plan.kpis}
    for i, p in enumerate(plan.phases):
        for j, e in enumerate(p.exit_criteria):
            at = f"phases[{i}].exit_criteria[{j}]"
            if not e.capabilities and not e.kpis:
                yield Problem(at, "names no capability level and no KPI; tie it to at least one so it can be checked")
            for k, t in enumerate(e.capabilities):
                if t.id not in caps:
                    yield Problem(f"{at}.capabilities[{k}]", f"unknown capability {t.id!r}" + _valid(caps))
                    continue
                trained = plan.level_after(t.id, p.days[1])
                if trained < t.level:
                    yield Problem(f"{at}.capabilities[{k}]",
                                  f"requires {t.id!r} at level {t.level}, but the weeks up to day {p.days[1]} "
                                  f"train it only to level {trained}")
            for k, t in enumerate(e.kpis):
                if t.id not in kpis:
                    yield Problem(f"{at}.kpis[{k}]", f"unknown KPI {t.id!r}" + _valid(kpis))
                elif kpis[t.id].unit == "ratio" and t.threshold > 1:
                    yield Problem(f"{at}.kpis[{k}].threshold",
                                  f"{t.threshold} is not a ratio from 0 to 1 (KPI {t.id!r} is a ratio)")


def _check_kpis(plan: Plan) -> Iterator[Problem]:
    moved = {w.kpi for w in plan.weeks}
    for i, k in enumerate(plan.kpis):
        if k.unit == "ratio" and k.target > 1:
            yield Problem(f"kpis[{i}].target", f"{k.target} is not a ratio from 0 to 1 (KPI {k.id!r} is a ratio)")
        if k.target_by_day > plan.duration_days:
            yield Problem(f"kpis[{i}].target_by_day",
                          f"day {k.target_by_day} is after the program's last day {plan.duration_days}")
        if k.id not in moved:
            yield Problem(f"kpis[{i}]", f"no week names KPI {k.id!r} as the one it moves")


def _check_mentorship(plan: Plan) -> Iterator[Problem]:
    structures = {s.id: s for s in plan.mentorship_structures}
    for sid in MENTORSHIP_STRUCTURES:
        if sid not in structures:
            yield Problem("mentorship_structures", f"missing mentorship structure {sid!r}; the plan describes all of: "
                          + ", ".join(MENTORSHIP_STRUCTURES))
    used = set()
    for i, w in enumerate(plan.weeks):
        s = structures.get(w.mentorship.structure)
        used.add(w.mentorship.structure)
        if s is None:
            yield Problem(f"weeks[{i}].mentorship.structure",
                          f"unknown mentorship structure {w.mentorship.structure!r}" + _valid(structures))
        elif w.phase not in s.phases:
            yield Problem(f"weeks[{i}].mentorship.structure", f"{s.id!r} is not used in phase {w.phase!r} "
                          f"(mentorship_structures says it is for: {', '.join(s.phases)})")
    used |= {t.mentorship.structure for w in plan.weeks for t in w.track_labs}
    for i, s in enumerate(plan.mentorship_structures):
        if s.id not in used:
            yield Problem(f"mentorship_structures[{i}]", f"{s.id!r} is described but no week uses it")


def _check_runbooks(plan: Plan) -> Iterator[Problem]:
    written: dict[str, int] = {}
    for i, w in enumerate(plan.weeks):
        r = w.runbook_artifact
        if r.action == "write" and r.file in written:
            yield Problem(f"weeks[{i}].runbook_artifact.action",
                          f"{r.file} is already written in week {written[r.file]}; use 'extend'")
        elif r.action == "extend" and r.file not in written:
            yield Problem(f"weeks[{i}].runbook_artifact.action", f"extends {r.file}, which no earlier week writes")
        written.setdefault(r.file, w.number)


def _check_game_days(plan: Plan) -> Iterator[Problem]:
    kpis, gd = {k.id for k in plan.kpis}, plan.game_days
    yield from _duplicates([str(s["week"]) for s in gd.schedule], lambda i: f"game_days.schedule[{i}].week",
                           "game-day week")
    for i, kid in enumerate(gd.kpis):
        if kid not in kpis:
            yield Problem(f"game_days.kpis[{i}]", f"unknown KPI {kid!r}" + _valid(kpis))
    for kid in ("mttd", "mttr"):
        if kid not in gd.kpis:
            yield Problem("game_days.kpis", f"must include {kid!r}: game days are where it is measured")
    if not any(s["timed"] for s in gd.schedule):
        yield Problem("game_days.schedule", "no timed game day; MTTD and MTTR need at least one")


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
