"""``labkit plan``: the 90-day course plan as a calendar, one week in full, or JSON.

Registered in ``sandbox/cli.py`` as ``app.command("plan")(plan)``. The plan is read and
validated by ``labkit.plan.load_plan``; an invalid plan prints every problem with its path
in the file and exits with status 2, like any other bad input.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

import typer
from rich.console import Console

from sandbox.errors import LabkitError

from ..plan import calendar, describe_week, load_plan


def plan(
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    week: int | None = typer.Option(None, "--week", help="Show one week (1-13) in full."),
) -> None:
    """The 90-day plan: weeks, days, phase, lab, capabilities, mentorship and KPI."""

    try:
        course = load_plan()
        if as_json:
            data = asdict(course.week(week)) if week is not None else course.to_dict()
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
        elif week is not None:
            Console(highlight=False).print(describe_week(course, week), markup=False, soft_wrap=True)
        else:
            # Piped output is not cut to 80 columns; a terminal folds long ids, never truncates.
            Console(width=None if sys.stdout.isatty() else 160).print(calendar(course))
    except LabkitError as e:
        Console(stderr=True).print(f"[bold red]error:[/] {e}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(e.exit_code) from None
