"""``labkit report``: skills matrix, KPIs, phase gates and at-risk flags; ``--html DIR`` for the cohort page."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

import typer

from sandbox.errors import InvalidInput

from ..course import Course
from ..report import build_report
from ..report.html import write_html
from .common import JSON, handled


@handled
def report(
    root: Optional[Path] = typer.Option(None, "--root", "--course", envvar="LABKIT_COURSE_ROOT",
                                        help="Course root (folder with nbgrader_config.py); default ./labs."),
    as_json: bool = JSON,
    html: Optional[Path] = typer.Option(None, "--html", help="Also write the cohort page (index.html, PNGs,"
                                        " CSV) into this folder."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Report as of this ISO date or time (default now)."),
) -> None:
    """Skills matrix (1-4 per capability), KPIs with their definitions and targets, gates, red zones."""
    course = Course.locate(root)
    db_url = course.db_url
    if db_url.startswith("sqlite:///") and not Path(db_url[len("sqlite:///"):]).exists():
        raise InvalidInput(f"no gradebook in {course.root}; grade a lab first (`labkit course grade LAB`)")
    now = None
    if as_of:
        try:
            now = dt.datetime.fromisoformat(as_of)
        except ValueError as e:
            raise InvalidInput(f"--as-of {as_of!r} is not an ISO date or time") from e
    result = build_report(course.root, db_url=db_url, now=now)
    if html is not None:
        page = write_html(result, html)
        typer.echo(f"cohort page: {page}", err=True)
    typer.echo(result.to_json() if as_json else result.to_markdown())
