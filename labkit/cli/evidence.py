"""``labkit evidence ...``: write and read the evidence ledger (``labkit.ledger``).

    labkit evidence kinds
    labkit evidence add session --trainee alice --by maria mentor=maria structure=shadowing minutes=45
    labkit evidence add escalation --trainee alice --by maria source=lab04-incident-triage point=2 \\
        escalate=no to=change-author severity=sev3          # rubric from the lab's marked cell
    labkit evidence add production --trainee alice --by maria --supersedes 12 outcome=rolled-back ...
    labkit evidence list [--trainee alice] [--kind approval] [--all] [--json]

Fields are ``NAME=VALUE``; ``rubric.escalate=yes`` sets a nested field. Nothing is ever
changed: ``--supersedes N`` records a correction of entry N, ``--void`` withdraws it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from sandbox.errors import InvalidInput

from .. import cohort as cohort_mod
from ..course import Course
from ..ledger import KINDS, Ledger, check_context, ledger_url, parse_fields
from ..plan import load_plan
from ..report.inputs import read_sources
from .common import JSON, handled, print_json

evidence_app = typer.Typer(help="The evidence ledger: sessions, goals, feedback, approvals, production work.",
                           no_args_is_help=True)
console = Console()
ROOT = typer.Option(None, "--root", "--course", envvar="LABKIT_COURSE_ROOT",
                    help="Course root (folder with nbgrader_config.py); default ./labs.")


def rubric_for(course_root: Path, source: str, point: str) -> dict[str, Any] | None:
    """The rubric of decision point ``point`` declared by the lab's marked escalation cell."""
    _, markers = read_sources(course_root)
    for (lab, _gid), meta in markers.items():
        if lab == source and meta.get("kpi") == "escalation-decision":
            for r in meta.get("rubric") or []:
                if str(r.get("point")) == str(point):
                    return {k: r[k] for k in ("escalate", "to", "severity", "within_minutes") if k in r}
    return None


@evidence_app.command("kinds")
def kinds() -> None:
    """The kinds of entry and their required and optional fields."""
    table = Table("kind", "required", "optional", "what")
    for k in KINDS.values():
        table.add_row(k.id, ", ".join(k.required), ", ".join(k.optional), k.help)
    console.print(table)


@evidence_app.command("add")
@handled
def add(
    kind: str = typer.Argument(..., help="Entry kind (labkit evidence kinds)."),
    fields: list[str] = typer.Argument(None, help="NAME=VALUE fields of the entry."),
    trainee: str = typer.Option(..., "--trainee", help="The trainee the entry is about."),
    by: str = typer.Option(..., "--by", help="Who records it (mentor, approver, reviewer)."),
    at: Optional[str] = typer.Option(None, "--at", help="When it happened (ISO; default now)."),
    supersedes: Optional[int] = typer.Option(None, "--supersedes", help="Id of the entry this corrects."),
    void: bool = typer.Option(False, "--void", help="Withdraw the entry named by --supersedes."),
    root: Optional[Path] = ROOT,
) -> None:
    """Append one entry (never changes an existing one)."""
    course = Course.locate(root)
    data = parse_fields(fields or [])
    if kind == "escalation" and "rubric" not in data and data.get("source") and data.get("point"):
        found = rubric_for(course.root, data["source"], data["point"])
        if found:
            data["rubric"] = found
    cohort = cohort_mod.load_or_none(course.root)
    plan = load_plan()
    if not void:
        check_context(kind, trainee, data, [t.id for t in cohort.trainees] if cohort else None,
                      [c.id for c in plan.capabilities])
    with Ledger.open(ledger_url(course.db_url)) as ledger:
        entry = ledger.add(kind, trainee, by, at=at, supersedes=supersedes, void=void, **data)
    console.print(f"ledger entry {entry.id}: {entry.kind} of {entry.trainee} at {entry.at.isoformat()}"
                  + (f" (supersedes {supersedes})" if supersedes else ""))


@evidence_app.command("list")
@handled
def list_entries(
    trainee: Optional[str] = typer.Option(None, "--trainee"),
    kind: Optional[str] = typer.Option(None, "--kind"),
    everything: bool = typer.Option(False, "--all", help="Include superseded and withdrawn entries."),
    root: Optional[Path] = ROOT,
    as_json: bool = JSON,
) -> None:
    """Entries in force (or all of them with --all), oldest first."""
    course = Course.locate(root)
    with Ledger.open(ledger_url(course.db_url)) as ledger:
        entries = ledger.entries(kind, trainee) if everything else ledger.current(kind, trainee)
    if as_json:
        return print_json([e.to_dict() for e in entries])
    table = Table("id", "kind", "trainee", "at", "by", "fields", "supersedes")
    for e in entries:
        table.add_row(str(e.id), e.kind + (" (void)" if e.void else ""), e.trainee, e.at.isoformat(),
                      e.recorded_by, ", ".join(f"{k}={v}" for k, v in e.data.items()), str(e.supersedes or ""))
    console.print(table)
