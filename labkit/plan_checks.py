"""Cross-checks of the course plan that its schema cannot express (``labkit.plan.cross_check``)."""


from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any



from .plan_evidence import check_requirements
from .plan_graded import check_problems, track_problems

from .plan_model import (
    MENTORSHIP_STRUCTURES,
    Plan,
    Problem,
    REQUIRED_CAPABILITIES,
    REQUIRED_KPIS,
    WEEK_COUNT,
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


