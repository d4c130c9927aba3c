"""``labkit records served|log|verify``: the sandbox's evidence records (``sandbox.evidence``).

    labkit records served --at 2026-12-02T10:15:00Z   # what served then, from which snapshot, approved by whom
    labkit records verify                            # does every record chain hold? exit 1 if not
"""

from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console

from .common import JSON, handled, print_json, sandbox_from_env

records_app = typer.Typer(help="Release, approval, evaluation and incident records of the sandbox.",
                          no_args_is_help=True)
console = Console()


@records_app.command("served")
@handled
def served(at: Optional[str] = typer.Option(None, help="epoch seconds or ISO-8601 (UTC); default now"),
           as_json: bool = JSON) -> None:
    """What served at a moment: revision, snapshot and sha256, approval, evaluations (replayed)."""
    answer = sandbox_from_env().evidence(at=at)
    if as_json:
        return print_json(answer)
    console.print(answer["reason"])
    approval = answer.get("approval")
    if approval:
        console.print(f"approval {approval['seq']} by {approval['approver']} at {approval['at']:.0f}"
                      + (f", revoked by {approval['revoked_by']}" if approval.get("revoked_by") else ""))
    for e in answer.get("evaluations") or []:
        console.print(f"evaluated recall@{e.get('k')} = {e.get('recall', 0):.3f} by {e.get('by')} at {e['at']:.0f}")


@records_app.command("log")
@handled
def log() -> None:
    """Every record of every chain, as JSON."""
    print_json(sandbox_from_env().evidence_records())


@records_app.command("verify")
@handled
def verify(as_json: bool = JSON) -> None:
    """Check every chain; name the first broken link (exit status 1 if one is broken)."""
    verdict = sandbox_from_env().verify_evidence()
    if as_json:
        print_json(verdict)
    else:
        console.print(verdict["reason"])
    if not verdict["ok"]:
        raise typer.Exit(1)
