"""Everything the report reads, read once: gradebook, sources, graded runs, game days, ledger, cohort.

Inputs (all read, none written):

* the nbgrader gradebook: the score of every grade cell of every submission (the manual score
  wins over the automatic one; a cell with neither is *ungraded* and left out of every share);
* the instructor sources ``<root>/source/<lab>/*.ipynb``: cell metadata ``labkit.capability``
  (which capability a grade cell evidences) and ``labkit.kpi`` (the cell's role for a KPI:
  ``triage-hypothesis`` with ``incident_class``, ``escalation-decision`` with ``rubric``,
  ``instructed-change``, ``load-test``); ``reports/live_checks.jsonl`` adds capabilities;
* ``reports/changes.jsonl`` (``graders.changes``): the revisions of each graded run;
* ``reports/gamedays.jsonl`` (``labkit.gamedays``);
* the trainees' submitted notebooks ``<root>/submitted/<student>/<lab>/*.ipynb``: their
  hypothesis logs (``labkit.widgets.HypothesisLog``), read off the saved notebook;
* the evidence ledger (``labkit.ledger``) and the cohort (``labkit.cohort``);
* the kept audit logs of graded runs (``reports/runs/<lab>/<student>-<sandbox>.audit.jsonl``): the
  hints each trainee revealed in the latest graded run of a lab (``graders.hints.reveals``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from graders.changes import CHANGES_FILE
from graders.hints import reveals
from sandbox.control.audit import read_audit
from sandbox.faults import load_catalog

from .. import gamedays
from ..cohort import Cohort
from ..ledger import Entry
from ..hypotheses import hypothesis_logs
from .model import CellGrade

KPI_ROLES = ("triage-hypothesis", "escalation-decision", "instructed-change", "load-test")


def utc(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


@dataclass
class Inputs:
    """What one report is computed from (see the module docstring)."""

    cells: list[CellGrade]
    capabilities: dict[tuple[str, str, str], str]
    """(assignment, notebook, grade_id) -> capability."""
    markers: dict[tuple[str, str], dict[str, Any]]
    """(assignment, grade_id) -> the cell's ``labkit`` metadata, for cells with a ``labkit.kpi`` role."""
    runs: dict[tuple[str, str], dict[str, Any]]
    """(student, assignment) -> the latest ``changes`` record of that graded run."""
    events: list[gamedays.GameDayEvent]
    ledger: list[Entry]
    """Entries in force (superseded and withdrawn ones left out)."""
    logs: dict[tuple[str, str], dict[str, list[dict[str, Any]]]]
    """(student, assignment) -> hypothesis log id -> entries, from the submitted notebook."""
    cohort: Cohort | None
    plan: Any
    fault_classes: dict[str, str] = field(default_factory=dict)
    """Fault id -> incident class (the fault catalog)."""
    hints: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    """(student, lab) -> hint numbers revealed in the latest graded run of that lab."""

    def students(self) -> list[str]:
        names = {c.student for c in self.cells}
        roster = [t.id for t in self.cohort.trainees] if self.cohort else []
        return roster + sorted(names - set(roster))

    def submitted_at(self, student: str, assignment: str) -> dt.datetime | None:
        stamps = [utc(c.timestamp) for c in self.cells
                  if (c.student, c.assignment) == (student, assignment) and c.timestamp]
        return min(stamps) if stamps else None


def read_gradebook(db_url: str) -> list[CellGrade]:
    """Every grade of every submission, as plain rows."""
    from nbgrader.api import Gradebook  # heavy: only where a gradebook is opened

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


def read_sources(course_root: Path) -> tuple[dict[tuple[str, str, str], str], dict[tuple[str, str], dict]]:
    """Capabilities and KPI markers of the instructor source notebooks."""
    caps: dict[tuple[str, str, str], str] = {}
    markers: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted((course_root / "source").glob("*/*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            meta = dict(cell.metadata.get("labkit") or {})
            if gid and meta.get("capability"):
                caps[(path.parent.name, path.stem, gid)] = meta["capability"]
            if gid and meta.get("kpi") in KPI_ROLES:
                markers[(path.parent.name, gid)] = meta
    return caps, markers


def read_live_checks(course_root: Path) -> list[dict[str, Any]]:
    return _jsonl(course_root / "reports" / "live_checks.jsonl")


def read_changes(course_root: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(student, assignment) -> the latest ``changes`` record of that graded run."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for r in _jsonl(course_root / "reports" / CHANGES_FILE):
        latest[(r["student"], r["assignment"])] = r  # appended in grading order
    return latest


def read_logs(course_root: Path) -> dict[tuple[str, str], dict[str, list[dict[str, Any]]]]:
    """Hypothesis logs of every submitted notebook."""
    out: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
    for path in sorted((course_root / "submitted").glob("*/*/*.ipynb")):
        logs = hypothesis_logs(nbformat.read(str(path), as_version=4))
        if logs:
            out.setdefault((path.parent.parent.name, path.parent.name), {}).update(logs)
    return out


def read_hints(course_root: Path, students: set[str]) -> dict[tuple[str, str], list[int]]:
    """(student, lab) -> hints revealed in the latest kept graded run (by the endpoint's clock)."""
    latest: dict[tuple[str, str], tuple[float, list[int]]] = {}
    for path in sorted((course_root / "reports" / "runs").glob("*/*.audit.jsonl")):
        lab = path.parent.name
        owners = [s for s in students if path.name.startswith(f"{s}-grade-")]
        audit = read_audit(path)
        if not owners or not audit:
            continue
        student = max(owners, key=len)  # "bob" and "bob-2": the longest name that fits
        at = max(r.at for r in audit)
        if (student, lab) not in latest or at > latest[(student, lab)][0]:
            latest[(student, lab)] = (at, reveals(audit).get(lab, []))
    return {key: numbers for key, (_, numbers) in sorted(latest.items()) if numbers}


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def gather(course_root: Path, db_url: str, plan: Any, cohort: Cohort | None, ledger: list[Entry]) -> Inputs:
    """Read every input of the report once."""
    caps, markers = read_sources(course_root)
    for r in read_live_checks(course_root):
        if r.get("capability"):
            caps.setdefault((r["assignment"], r["notebook"], r["grade_id"]), r["capability"])
    classes = {f.id: f.incident_class for f in load_catalog().faults}
    cells = read_gradebook(db_url)
    return Inputs(cells, caps, markers, read_changes(course_root), gamedays.load(course_root),
                  ledger, read_logs(course_root), cohort, plan, classes,
                  read_hints(course_root, {c.student for c in cells}))
