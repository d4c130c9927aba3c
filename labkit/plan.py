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
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jsonschema
import yaml


from .plan_evidence import requirements
from .plan_graded import GradedCheck, Lesson, TrackLab, build_track, evidence_line, graded

from .plan_checks import cross_check
from .plan_model import (
    CATEGORIES,
    Capability,
    CapabilityTarget,
    ExitCriterion,
    GameDays,
    Guardrails,
    Hints,
    KPI,
    KPIThreshold,
    Level,
    MENTORSHIP_STRUCTURES,
    Mentorship,
    MentorshipStructure,
    PLAN_PATH,
    Phase,
    Plan,
    PlanError,
    Problem,
    REQUIRED_CAPABILITIES,
    REQUIRED_KPIS,
    ROOT,
    RunbookArtifact,
    SCHEMA_PATH,
    Week,
)

__all__ = [
    "CATEGORIES", "MENTORSHIP_STRUCTURES", "PLAN_PATH", "REQUIRED_CAPABILITIES", "REQUIRED_KPIS",
    "SCHEMA_PATH", "Capability", "CapabilityTarget", "ExitCriterion", "GameDays", "Guardrails",
    "GradedCheck", "Hints", "KPI", "KPIThreshold", "Lesson", "Level", "Mentorship", "MentorshipStructure", "Phase", "Plan",
    "PlanError", "Problem", "RunbookArtifact", "TrackLab", "Week", "calendar", "describe_week",
    "load_plan", "parse_plan",
]

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
        hints=_hints(d.get("hints")),
    )


def _hints(d: dict[str, Any] | None) -> Hints:
    """The plan's ``hints`` (absent: no brief-only phase, reveals cost nothing)."""
    if not d:
        return Hints()
    return Hints(tuple(d["brief_only_phases"]), d["cost_points"])




from .plan_render import calendar, describe_week  # noqa: E402 - rendering needs load_plan above
