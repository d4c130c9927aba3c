"""``labkit cohort ...``: the cohort's start date (program day 1) and roster.

    labkit cohort init --start 2027-01-11 --trainee alice:sre:maria --trainee bob:sysadmin:maria
    labkit cohort show [--json]

The cohort lives in ``<course root>/cohort.yaml``; the report counts program days from its
start and checks ledger entries against its roster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .. import cohort as cohort_mod
from ..course import Course
from .common import JSON, handled, print_json

cohort_app = typer.Typer(help="The cohort: start date and trainees (role path, mentor).", no_args_is_help=True)
console = Console()
ROOT = typer.Option(None, "--root", "--course", envvar="LABKIT_COURSE_ROOT",
                    help="Course root (folder with nbgrader_config.py); default ./labs.")


@cohort_app.command("init")
@handled
def init(
    start: str = typer.Option(..., "--start", help="Program day 1, YYYY-MM-DD."),
    trainee: list[str] = typer.Option(..., "--trainee", help="ID:ROLE_PATH:MENTOR (role path sre, sysadmin or"
                                      " hybrid); repeat for each trainee."),
    force: bool = typer.Option(False, "--force", help="Replace an existing cohort.yaml."),
    root: Optional[Path] = ROOT,
) -> None:
    """Write the cohort (start date and roster) into the course."""
    course = Course.locate(root)
    cohort = cohort_mod.make_cohort(start, [cohort_mod.parse_trainee(t) for t in trainee])
    path = cohort_mod.save(course.root, cohort, force=force)
    console.print(f"cohort of {len(cohort.trainees)} starting {cohort.start} (day 1) written to {path}")


@cohort_app.command("show")
@handled
def show(root: Optional[Path] = ROOT, as_json: bool = JSON) -> None:
    """The cohort's start date, trainees, role paths and mentors."""
    cohort = cohort_mod.load(Course.locate(root).root)
    if as_json:
        return print_json(cohort.to_dict())
    table = Table("trainee", "role path", "mentor", title=f"cohort starting {cohort.start}")
    for t in cohort.trainees:
        table.add_row(t.id, t.role_path, t.mentor)
    console.print(table)
