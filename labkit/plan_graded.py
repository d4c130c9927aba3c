"""What the plan grades: each week's graded checks, and the second labs of the two tracks.

Part of the plan (``labkit.plan`` builds and cross-checks it; this module holds the pieces so
that ``plan.py`` stays the loader):

* ``checks`` of a week (and of a track lab) are the lab's grade cells the plan counts as
  evidence: ``{grade_id, check, kind, shows}``. ``check`` must be registered in
  ``graders.CHECKS`` - a week whose evidence names a check that does not exist is rejected -
  and a ``rubric`` check must be one that reads written text. The first evidence line of a
  week is rendered from them, so the plan states each check once.
* ``track_labs`` are second labs woven into a week: the leadership track (design review and
  ADR, feedback, roadmap framing, cross-team prioritisation) and the governance track (vendor
  risk, data classification). Each has its own lab id (``labNN-...`` of its week), lesson,
  time box, capabilities, mentorship structure, artifact, checks and evidence.

The functions take the plan duck-typed and yield ``(path, message)``; ``labkit.plan`` turns
them into its ``Problem`` records.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graders import CHECKS

TRACKS = ("leadership", "governance", "operations")


@dataclass(frozen=True)
class GradedCheck:
    """A grade cell of a lab and the registered check behind it."""

    grade_id: str
    check: str
    shows: str
    kind: str = "live"
    """``live``: autograded from live state; ``rubric``: the check suggests, the mentor decides."""


@dataclass(frozen=True)
class TrackLab:
    """A second lab of a week, in the leadership, governance or operations track (the operations
    track: a simulation of its own beside the week's incident)."""

    lab: str
    lesson: str
    track: str
    title: str
    timebox_minutes: int
    capabilities: tuple[Any, ...]
    mentorship: Any
    artifact_file: str
    artifact_covers: str
    checks: tuple[GradedCheck, ...]
    evidence: tuple[str, ...]
    kpi: str = ""


@dataclass(frozen=True)
class Lesson:
    """A lesson notebook, the week it belongs to and the lab it prepares."""

    week: int
    file: str
    lab: str
    title: str
    artifact: str
    """The runbook or artifact file the lesson's skeleton starts."""
    track: str = ""


def graded(items: list[dict[str, Any]]) -> tuple[GradedCheck, ...]:
    return tuple(GradedCheck(c["grade_id"], c["check"], c["shows"], c.get("kind", "live")) for c in items)


def evidence_line(lab: str, checks: tuple[GradedCheck, ...]) -> str:
    """``Lab 05 checks: ...; rubric-checked (mentor decides): ...`` from a lab's graded checks."""
    name = f"Lab {lab[3:5]}"
    live = [c.shows for c in checks if c.kind == "live"]
    rubric = [c.shows for c in checks if c.kind == "rubric"]
    parts = ([f"{name} checks: " + "; ".join(live)] if live else []) + \
            ([("rubric-checked, mentor decides: " if live else f"{name} rubric-checked, mentor decides: ")
              + "; ".join(rubric)] if rubric else [])
    return "; ".join(parts) + "."


def build_track(raw: dict[str, Any], target: Any, mentorship: Any) -> TrackLab:
    """A :class:`TrackLab` from its plan entry (``target``/``mentorship``: the plan's record types)."""
    return TrackLab(
        lab=raw["lab"], lesson=raw["lesson"], track=raw["track"], title=raw["title"],
        timebox_minutes=raw["timebox_minutes"],
        capabilities=tuple(target(t["id"], t["level"]) for t in raw["capabilities"]),
        mentorship=mentorship(**raw["mentorship"]), artifact_file=raw["artifact"]["file"],
        artifact_covers=raw["artifact"]["covers"], checks=graded(raw["checks"]),
        evidence=(evidence_line(raw["lab"], graded(raw["checks"])), *raw["evidence"]), kpi=raw.get("kpi", ""))


def _reads_text(name: str) -> bool:
    return "text" in inspect.signature(CHECKS[name].fn).parameters


def _suggests(name: str) -> bool:
    """A check that can suggest a mentor's score: of a written answer, or of the process the
    control endpoint's audit log shows (``graders.process``)."""
    params = inspect.signature(CHECKS[name].fn).parameters
    return "text" in params or "audit" in params


def check_problems(plan: Any) -> Iterator[tuple[str, str]]:
    """Every graded check of every lab: registered, of the right kind, one per grade cell."""
    valid = "; valid: " + ", ".join(sorted(CHECKS))
    for i, w in enumerate(plan.weeks):
        groups = [(f"weeks[{i}].checks", w.checks)]
        groups += [(f"weeks[{i}].track_labs[{j}].checks", t.checks) for j, t in enumerate(w.track_labs)]
        for at, checks in groups:
            seen: set[str] = set()
            for k, c in enumerate(checks):
                if c.check not in CHECKS:
                    yield f"{at}[{k}].check", f"no check {c.check!r} exists in graders.CHECKS" + valid
                elif c.kind == "rubric" and not _suggests(c.check):
                    yield f"{at}[{k}].kind", f"{c.check!r} reads live state, not a written answer; use kind live"
                elif c.kind == "live" and _reads_text(c.check):
                    yield f"{at}[{k}].kind", f"{c.check!r} judges a written answer; use kind rubric"
                if c.grade_id in seen:
                    yield f"{at}[{k}].grade_id", f"grade cell {c.grade_id!r} is listed twice"
                seen.add(c.grade_id)


def track_problems(plan: Any) -> Iterator[tuple[str, str]]:
    """Track labs: ids and lessons unique across the whole plan, named after their week, with
    known capabilities at levels the phase allows and a structure the phase uses."""
    caps, kpis = {c.id for c in plan.capabilities}, {k.id for k in plan.kpis}
    phases = {p.id: p for p in plan.phases}
    structures = {s.id: s for s in plan.mentorship_structures}
    labs: dict[str, str] = {}
    lessons: dict[str, str] = {}
    for i, w in enumerate(plan.weeks):
        labs.setdefault(w.lab, f"weeks[{i}].lab")
        lessons.setdefault(w.lesson, f"weeks[{i}].lesson")
    for i, w in enumerate(plan.weeks):
        tag, phase = f"{w.number:02d}", phases.get(w.phase)
        for j, t in enumerate(w.track_labs):
            at = f"weeks[{i}].track_labs[{j}]"
            for value, seen, field, prefix in ((t.lab, labs, "lab", f"lab{tag}-"), (t.lesson, lessons, "lesson",
                                                                                     f"week{tag}-")):
                if value in seen:
                    yield f"{at}.{field}", f"duplicate {field} {value!r} (first at {seen[value]})"
                seen.setdefault(value, f"{at}.{field}")
                if not value.startswith(prefix):
                    yield f"{at}.{field}", f"{field} {value!r} of week {w.number} must start with {prefix!r}"
            for k, target in enumerate(t.capabilities):
                if target.id not in caps:
                    yield f"{at}.capabilities[{k}]", f"unknown capability {target.id!r}; valid: " + ", ".join(sorted(caps))
                elif phase and target.level > phase.max_level:
                    yield f"{at}.capabilities[{k}]", (f"level {target.level} for {target.id!r} is above what phase "
                                                       f"{phase.id!r} allows (max level {phase.max_level})")
            s = structures.get(t.mentorship.structure)
            if s is not None and w.phase not in s.phases:
                yield f"{at}.mentorship.structure", (f"{s.id!r} is not used in phase {w.phase!r} "
                                                      f"(mentorship_structures says it is for: {', '.join(s.phases)})")
            if t.kpi and t.kpi not in kpis:
                yield f"{at}.kpi", f"unknown KPI {t.kpi!r}; valid: " + ", ".join(sorted(kpis))


def lessons(plan: Any) -> list[Lesson]:
    """Every lesson of the plan in week order: each week's, then its track labs'."""
    out = []
    for w in plan.weeks:
        out.append(Lesson(w.number, w.lesson, w.lab, w.title, w.runbook_artifact.file))
        out += [Lesson(w.number, t.lesson, t.lab, t.title, t.artifact_file, t.track) for t in w.track_labs]
    return out
