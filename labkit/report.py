"""Skills matrix and KPIs per trainee, from the gradebook, live checks, plan and game days.

Inputs (all read, none written):

* the nbgrader gradebook (``<course_root>/gradebook.db`` unless ``db_url`` is given): the
  score of every grade cell of every submission (the manual score wins over the automatic
  one; a cell with neither is *ungraded* and left out of every share);
* ``<course_root>/reports/live_checks.jsonl`` (``LiveStateGrader``) and the instructor source
  notebooks ``<course_root>/source/<lab>/*.ipynb`` (cell metadata ``labkit.capability``): which
  capability each grade cell evidences. Cells whose id starts with ``escalation-`` default to
  ``incident-response`` and ``triage-`` to ``observability-triage``;
* the plan (``labkit.plan.load_plan()``): capabilities, the week of each lab, the level each
  week trains a capability to, and the KPI targets;
* ``<course_root>/reports/gamedays.jsonl`` (``labkit.gamedays``);
* ``<course_root>/reports/changes.jsonl`` (``LiveStateGrader`` via ``graders.changes``): the
  trainee's rollouts of each graded run, for change failure rate and recall regressions caught
  (the latest graded run of each lab counts).

Skill level of a capability = from the share of points earned on graded cells mapped to it:
share >= 0.90 -> 4, >= 0.75 -> 3, >= 0.50 -> 2, else 1 (no graded cell: not rated). The level
is then capped at the plan's target for the weeks completed: the highest level any week up
to and including the trainee's latest submitted plan lab trains that capability to (a
capability no completed week trains yet is not rated).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from . import gamedays
from graders.changes import CHANGES_FILE

from .plan import load_plan

LEVEL_THRESHOLDS: tuple[tuple[float, int], ...] = ((0.90, 4), (0.75, 3), (0.50, 2), (0.0, 1))
PREFIX_CAPABILITIES = {"escalation-": "incident-response", "triage-": "observability-triage"}
CHANGE_CAPABILITY = "change-management"
CFR_FROM_LAB = 5
"""Change failure rate counts the trainee's rollouts in labs 05-13 (the plan's definition)."""


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


@dataclass
class KPIValue:
    """One KPI of one trainee, with the plan's target and whether it is met (None: no value)."""

    id: str
    name: str
    value: float | None
    unit: str
    target: float | None = None
    meets: bool | None = None
    note: str = ""


@dataclass
class TraineeReport:
    """A trainee's skills matrix row and KPIs."""

    trainee: str
    weeks_completed: int
    first_submission: str | None
    skills: list[SkillLevel] = field(default_factory=list)
    kpis: list[KPIValue] = field(default_factory=list)

    def skill(self, capability: str) -> SkillLevel:
        return next(s for s in self.skills if s.capability == capability)

    def kpi(self, kpi_id: str) -> KPIValue:
        return next(k for k in self.kpis if k.id == kpi_id)


@dataclass
class CourseReport:
    """Every trainee's report; ``to_markdown()`` for people, ``to_json()`` for tools."""

    generated_at: str
    trainees: list[TraineeReport]

    def trainee(self, name: str) -> TraineeReport:
        return next(t for t in self.trainees if t.trainee == name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def to_markdown(self) -> str:
        """One section per trainee: a skills table and a KPI table."""
        out = [f"# Skills matrix and KPIs ({self.generated_at})", ""]
        for t in self.trainees:
            out += [f"## {t.trainee}", "", f"Weeks completed: {t.weeks_completed}; first submission:"
                    f" {t.first_submission or '-'}", "",
                    "| capability | level | target | share | points |", "|---|---|---|---|---|"]
            for s in t.skills:
                share = f"{s.share:.0%}" if s.share is not None else "-"
                out.append(f"| {s.capability} | {_dash(s.level)} | {_dash(s.target)} | {share} |"
                           f" {s.earned:g}/{s.possible:g} |")
            out += ["", "| KPI | value | target | meets | note |", "|---|---|---|---|---|"]
            for k in t.kpis:
                value = f"{k.value:g} {k.unit}" if k.value is not None else "-"
                meets = {True: "yes", False: "no", None: "-"}[k.meets]
                out.append(f"| {k.name} | {value} | {_dash(k.target)} | {meets} | {k.note} |")
            out.append("")
        return "\n".join(out)


def _dash(value: Any) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


# --- reading ------------------------------------------------------------------------------


def read_gradebook(db_url: str) -> list[CellGrade]:
    """Every grade of every submission, as plain rows."""
    from nbgrader.api import Gradebook

    rows = []
    with Gradebook(db_url) as gb:
        for student in gb.students:
            for sub in gb.student_submissions(student.id):
                for nb in sub.notebooks:
                    for g in nb.grades:
                        graded = g.manual_score is not None or g.auto_score is not None
                        rows.append(CellGrade(student.id, sub.assignment.name, nb.name, g.name,
                                              float(g.score) if graded else None,
                                              float(g.max_score or 0), sub.timestamp))
    return rows


def capability_map(course_root: Path) -> dict[tuple[str, str, str], str]:
    """(assignment, notebook, grade_id) -> capability, from source notebooks and live checks."""
    found: dict[tuple[str, str, str], str] = {}
    for path in sorted((course_root / "source").glob("*/*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            cap = (cell.metadata.get("labkit") or {}).get("capability")
            if gid and cap:
                found[(path.parent.name, path.stem, gid)] = cap
    for r in read_live_checks(course_root):
        if r.get("capability"):
            found.setdefault((r["assignment"], r["notebook"], r["grade_id"]), r["capability"])
    return found


def read_live_checks(course_root: Path) -> list[dict[str, Any]]:
    path = course_root / "reports" / "live_checks.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _capability(cell: CellGrade, mapping: dict[tuple[str, str, str], str]) -> str | None:
    cap = mapping.get((cell.assignment, cell.notebook, cell.grade_id))
    if cap:
        return cap
    for prefix, default in PREFIX_CAPABILITIES.items():
        if cell.grade_id.startswith(prefix):
            return default
    return None


# --- computing ----------------------------------------------------------------------------


def level_for(share: float) -> int:
    """Skill level 1-4 from the share of points earned (see the module docstring)."""
    return next(level for low, level in LEVEL_THRESHOLDS if share >= low)


def weeks_completed(cells: list[CellGrade], plan: Any) -> int:
    """Highest plan week whose lab the trainee submitted (0 without a plan or such lab)."""
    if plan is None:
        return 0
    week_of = {w.lab: w.number for w in plan.weeks}
    return max((week_of[c.assignment] for c in cells if c.assignment in week_of), default=0)


def skills(cells: list[CellGrade], mapping: dict, plan: Any, weeks: int) -> list[SkillLevel]:
    """The skills matrix row of one trainee (every plan capability, plus any mapped one)."""
    earned: dict[str, float] = {}
    possible: dict[str, float] = {}
    for c in cells:
        cap = _capability(c, mapping)
        if cap is None or c.score is None:
            continue
        earned[cap] = earned.get(cap, 0.0) + c.score
        possible[cap] = possible.get(cap, 0.0) + c.max_score
    caps = [cap.id for cap in plan.capabilities] if plan is not None else []
    caps += sorted(set(possible) - set(caps))
    last_day = plan.week(weeks).days[1] if plan is not None and weeks else 0
    out = []
    for cap in caps:
        target = plan.level_after(cap, last_day) if plan is not None else None
        share = earned[cap] / possible[cap] if possible.get(cap) else None
        level = level_for(share) if share is not None else None
        if level is not None and target is not None:
            level = min(level, target) or None
        out.append(SkillLevel(cap, level, share, earned.get(cap, 0.0), possible.get(cap, 0.0), target))
    return out


def first_safe_change_days(cells: list[CellGrade], mapping: dict,
                           start: dt.datetime | None) -> float | None:
    """Time to first safe change, in days (one decimal).

    Precisely: let *start* be the cohort start if given, else the trainee's earliest
    submission timestamp. A lab (assignment) is a *safe change* when it has at least one
    graded cell mapped to ``change-management`` and every such cell earned its full points.
    The KPI is the time from *start* to the submission timestamp of the earliest safe lab;
    None when no lab is safe yet (or timestamps are missing).
    """
    by_lab: dict[str, list[CellGrade]] = {}
    for c in cells:
        if _capability(c, mapping) == CHANGE_CAPABILITY:
            by_lab.setdefault(c.assignment, []).append(c)
    safe = [cs[0].timestamp for cs in by_lab.values() if cs[0].timestamp is not None
            and all(c.score is not None and c.score >= c.max_score for c in cs)]
    if not safe or start is None:
        return None
    return round((_utc(min(safe)) - _utc(start)).total_seconds() / 86400, 1)


def accuracy(cells: list[CellGrade], prefix: str) -> tuple[float | None, int]:
    """score/max over graded cells whose grade_id starts with ``prefix``; (share, cells)."""
    graded = [c for c in cells if c.grade_id.startswith(prefix) and c.score is not None and c.max_score]
    if not graded:
        return None, 0
    return round(sum(c.score or 0 for c in graded) / sum(c.max_score for c in graded), 3), len(graded)


def read_changes(course_root: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(student, assignment) -> the latest ``changes`` record of that graded run."""
    path = course_root / "reports" / CHANGES_FILE
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                latest[(r["student"], r["assignment"])] = r  # appended in grading order
    return latest


def _lab_number(assignment: str) -> int | None:
    m = re.match(r"lab(\d+)", assignment)
    return int(m.group(1)) if m else None


def change_kpis(runs: list[dict[str, Any]]) -> tuple[tuple[float | None, str], tuple[float | None, str]]:
    """((change failure rate, note), (recall regressions caught, note)) of one trainee's runs."""
    runs = [r for r in runs if "error" not in r]
    counted = [r for r in runs if (_lab_number(r["assignment"]) or CFR_FROM_LAB) >= CFR_FROM_LAB]
    changes, failed = sum(r["changes"] for r in counted), sum(r["failed"] for r in counted)
    regressions = sum(r["regressions"] for r in runs)
    caught = sum(r["regressions_caught"] for r in runs)
    cfr = round(failed / changes, 3) if changes else None
    share = round(caught / regressions, 3) if regressions else None
    return ((cfr, f"{failed} of {changes} rollouts in labs {CFR_FROM_LAB:02d}-13 failed or rolled back"),
            (share, f"{caught} of {regressions} recall@5 regressions never took traffic"))


def _utc(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def kpis(cells: list[CellGrade], mapping: dict, events: list[gamedays.GameDayEvent], plan: Any,
         start: dt.datetime | None, now: dt.datetime | None = None,
         runs: list[dict[str, Any]] | None = None) -> list[KPIValue]:
    """The KPIs of one trainee, with the plan's targets when a plan is given."""
    (cfr, cfr_note), (caught, caught_note) = change_kpis(runs or [])
    esc, n_esc = accuracy(cells, "escalation-")
    tri, n_tri = accuracy(cells, "triage-")
    times = [t for t in gamedays.incident_times(events, now) if t.timed]
    ttd = [t.ttd_min for t in times if t.ttd_min is not None]
    ttr = [t.ttr_min for t in times if t.ttr_min is not None]
    values = [
        ("time-to-first-safe-change", "Time to first safe change",
         first_safe_change_days(cells, mapping, start), "days", ""),
        ("escalation-accuracy", "Escalation accuracy", esc, "ratio", f"{n_esc} graded decisions"),
        ("triage-accuracy", "Triage accuracy", tri, "ratio", f"{n_tri} graded triage cells"),
        ("mttd", "MTTD (median)", round(statistics.median(ttd), 1) if ttd else None, "minutes",
         f"{len(ttd)} incidents"),
        ("mttr", "MTTR (median)", round(statistics.median(ttr), 1) if ttr else None, "minutes",
         f"{len(ttr)} incidents"),
        ("recall-regressions-caught", "Recall@k regressions caught before production", caught, "ratio",
         caught_note),
        ("change-failure-rate", "Change failure rate", cfr, "ratio", cfr_note),
    ]
    out = []
    for kid, name, value, unit, note in values:
        k = KPIValue(kid, name, value, unit, note=note)
        if plan is not None:
            spec = next((p for p in plan.kpis if p.id == kid), None)
            if spec is not None:
                k.name, k.target = spec.name, spec.target
                k.meets = spec.meets(value) if value is not None else None
        out.append(k)
    return out


def build_report(course_root: str | Path, db_url: str | None = None, plan: Any = "auto",
                 cohort_start: dt.datetime | None = None, now: dt.datetime | None = None) -> CourseReport:
    """The report of every trainee in the gradebook (``plan=None`` disables the plan)."""
    root = Path(course_root)
    if plan == "auto":

        plan = load_plan()
    rows = read_gradebook(db_url or f"sqlite:///{root / 'gradebook.db'}")
    mapping = capability_map(root)
    events = gamedays.load(root)
    changes = read_changes(root)
    trainees = []
    for student in sorted({r.student for r in rows}):
        cells = [r for r in rows if r.student == student]
        stamps = sorted(_utc(c.timestamp) for c in cells if c.timestamp is not None)
        first = stamps[0] if stamps else None
        weeks = weeks_completed(cells, plan)
        mine = [e for e in events if e.trainee == student]
        trainees.append(TraineeReport(
            student, weeks, first.isoformat() if first else None,
            skills(cells, mapping, plan, weeks),
            kpis(cells, mapping, mine, plan, cohort_start or first, now,
                 [r for (who, _), r in changes.items() if who == student]),
        ))
    stamp = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    return CourseReport(stamp, trainees)
