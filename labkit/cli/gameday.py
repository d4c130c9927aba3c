"""``labkit gameday ...``: the game-day clock, kept by the kit (``labkit.gamedays``).

    labkit gameday start FAULT --trainee T --week W [--incident ID]   # game master: inject + log
    labkit gameday detect --trainee T --incident ID --signal KIND     # commander's declaration
    labkit gameday mitigate --trainee T --incident ID [--note ...]    # for the timeline only
    labkit gameday resolve --trainee T --incident ID [--confirm-s S]  # probes, then logs resolved
    labkit gameday times [--trainee T] [--json]                       # TTD/TTR by the clock rules

Events go to ``<course root>/reports/gamedays.jsonl``, which ``labkit report`` reads for MTTD
and MTTR. The sandbox is the one the environment names (``LABKIT_SANDBOX_ID``).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .. import gamedays
from ..course import Course
from .common import JSON, handled, print_json, sandbox_from_env
from .course import ROOT

gameday_app = typer.Typer(help="Game days: inject, declare, resolve; the clock MTTD/MTTR are read from.",
                          no_args_is_help=True)
console = Console()
TRAINEE = typer.Option(..., "--trainee", help="Student id, as in the gradebook.")
INCIDENT = typer.Option(..., "--incident", help="Scenario id (`start` prints it).")


def _root(root: Optional[Path]) -> Path:

    return Course.locate(root).root


@gameday_app.command("start")
@handled
def start(fault: str, trainee: str = TRAINEE, week: int = typer.Option(..., help="Game-day week of the plan."),
          incident: Optional[str] = typer.Option(None, help="Scenario id; default wWW-FAULT."),
          team: Optional[list[str]] = typer.Option(None, "--team", help="Another trainee on the scenario (repeat)."),
          root: Optional[Path] = ROOT) -> None:
    """Inject FAULT into the sandbox and start the clock (timebox from the plan's week).
    --trainee is the commander; --team names the others, whose feedback reads this record too."""

    ev = gamedays.start(_root(root), sandbox_from_env(), fault, trainee, week, incident, team=tuple(team or ()))
    box = f"timebox {ev.timebox_min:.0f} min" if ev.timed else "untimed (tabletop)"
    console.print(f"{ev.incident}: {fault} injected at {ev.at} for {trainee}; {box}")


@gameday_app.command("detect")
@handled
def detect(trainee: str = TRAINEE, incident: str = INCIDENT,
           signal: str = typer.Option(..., help="Kind of signal seen: endpoint, metric, log, eval, rollout, data."),
           note: str = typer.Option("", help="What was declared, for the timeline."),
           root: Optional[Path] = ROOT) -> None:
    """Log the commander's declaration; it stops the clock only on one of the fault's signals."""

    ev = gamedays.declare_detected(_root(root), trainee, incident, signal, note)
    verdict = "clock stopped" if ev.counts else "not a signal of this fault: logged, the clock keeps running"
    console.print(f"{incident}: detected ({signal}) at {ev.at}: {verdict}")


@gameday_app.command("mitigate")
@handled
def mitigate(trainee: str = TRAINEE, incident: str = INCIDENT, note: str = typer.Option("", help="What was done."),
             root: Optional[Path] = ROOT) -> None:
    """Log a mitigation (timeline only: it stops no clock)."""

    ev = gamedays.record(_root(root), trainee, incident, "mitigated", note=note)
    console.print(f"{incident}: mitigated at {ev.at}")


@gameday_app.command("resolve")
@handled
def resolve(trainee: str = TRAINEE, incident: str = INCIDENT,
            confirm_s: float = typer.Option(300, help="How long the steady state must keep holding."),
            interval_s: float = typer.Option(30, help="Seconds between confirmation probes."),
            root: Optional[Path] = ROOT) -> None:
    """Probe the fault's steady state; log resolved (at the first passing check) once it held."""

    console.print(f"{incident}: probing the steady state, then confirming for {confirm_s:.0f} s ...")
    ev = gamedays.resolve(_root(root), sandbox_from_env(), trainee, incident, confirm_s, interval_s)
    console.print(f"{incident}: resolved at {ev.at}")


@gameday_app.command("times")
@handled
def times(trainee: Optional[str] = typer.Option(None, "--trainee", help="Only this trainee."),
          root: Optional[Path] = ROOT, as_json: bool = JSON) -> None:
    """Minutes to detect and to resolve per scenario, by the plan's clock rules."""

    rows = [t for t in gamedays.incident_times(gamedays.load(_root(root))) if trainee in (None, t.trainee)]
    if as_json:
        print_json([asdict(t) for t in rows])
        return
    table = Table("trainee", "incident", "TTD min", "TTR min", "timed", "counted as the timebox")

    def fmt(value: Optional[float]) -> str:
        return "-" if value is None else f"{value:.1f}"

    for t in rows:
        table.add_row(t.trainee, t.incident, fmt(t.ttd_min), fmt(t.ttr_min), "yes" if t.timed else "no",
                      ", ".join(t.capped) or "-")
    console.print(table)
