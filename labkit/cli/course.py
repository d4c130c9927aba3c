"""``labkit course ...``: the instructor workflow over nbgrader.

    labkit course generate [LAB]                 # all labs when LAB is omitted
    labkit course release LAB
    labkit course collect LAB
    labkit course grade LAB [--student S]... [--jobs N] [--timeout SECONDS] [--json]
    labkit course feedback LAB [--release]
    labkit course export [--to PATH]
    labkit course students add ID --first F --last L
    labkit course submit LAB NOTEBOOK --student S

Every command works on the course root ``--root`` (default: ``LABKIT_COURSE_ROOT``, the current
directory if it holds ``nbgrader_config.py``, else ``./labs``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .. import course as courses
from .. import course_grade
from .common import JSON, handled, print_json
from .grade_progress import GradeProgress

course_app = typer.Typer(help="Instructor workflow: generate, release, collect, grade, feedback, export.",
                         no_args_is_help=True)
students_app = typer.Typer(help="Students in the gradebook.", no_args_is_help=True)
course_app.add_typer(students_app, name="students")

console = Console()
ROOT = typer.Option(None, "--root", envvar="LABKIT_COURSE_ROOT",
                    help="Course root (folder with nbgrader_config.py); default ./labs.")


def _course(root: Optional[Path]) -> courses.Course:
    return courses.Course.locate(root)


@course_app.command("generate")
@handled
def generate(lab: Optional[str] = typer.Argument(None, help="Lab id; all labs when omitted."),
             root: Optional[Path] = ROOT) -> None:
    """Generate the trainee version of one lab or all (solutions and hidden tests removed)."""
    course = _course(root)
    labs = courses.generate(course, lab)
    console.print(f"generated {len(labs)} lab(s) into {course.root / 'release'}: {', '.join(labs)}")


@course_app.command("release")
@handled
def release(lab: str, root: Optional[Path] = ROOT) -> None:
    """Release a generated lab to the course's exchange (trainees fetch it from there)."""
    course = _course(root)
    courses.release(course, lab)
    console.print(f"released {lab} to {course.root / 'exchange'}")


@course_app.command("collect")
@handled
def collect(lab: str, root: Optional[Path] = ROOT) -> None:
    """Collect submissions of LAB from the exchange into submitted/<student>/LAB/."""
    students = courses.collect(_course(root), lab)
    console.print(f"{len(students)} submission(s) of {lab}: {', '.join(students) or 'none'}")


@course_app.command("grade")
@handled
def grade(
    lab: str,
    student: Optional[list[str]] = typer.Option(None, "--student", help="Grade only this student (repeatable)."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Submissions graded at the same time."),
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds one submission may take."),
    root: Optional[Path] = ROOT,
    as_json: bool = JSON,
) -> None:
    """Autograde each submission against a fresh sandbox of its own, then tear it down."""
    with GradeProgress(lab) as progress:
        result = course_grade.grade(_course(root), lab, student, jobs=jobs, timeout_s=timeout, progress=progress)
    if as_json:
        return print_json(result.to_dict())
    table = Table("student", "status", "score/max", "seconds", "note",
                  title=f"{lab}: {len(result.outcomes)} submission(s), --jobs {jobs},"
                        f" {result.seconds:.1f} s")
    for row in result.rows():
        table.add_row(*row)
    console.print(table)
    if any(o.status != "graded" for o in result.outcomes):
        raise typer.Exit(1)


@course_app.command("feedback")
@handled
def feedback(lab: str, release: bool = typer.Option(False, "--release", help="Also release it."),
             root: Optional[Path] = ROOT) -> None:
    """Generate HTML feedback for every graded submission of LAB."""
    course = _course(root)
    courses.feedback(course, lab, release)
    console.print(f"feedback for {lab} in {course.root / 'feedback'}" + (" (released)" if release else ""))


@course_app.command("export")
@handled
def export(to: Optional[Path] = typer.Option(None, "--to", help="CSV path (default reports/grades.csv)."),
           root: Optional[Path] = ROOT) -> None:
    """Export the gradebook as CSV."""
    console.print(f"grades exported to {courses.export(_course(root), to)}")


@course_app.command("submit")
@handled
def submit(lab: str, notebook: Path,
           student: str = typer.Option(..., "--student", help="Whose submission this is."),
           root: Optional[Path] = ROOT) -> None:
    """Put NOTEBOOK into submitted/<student>/LAB/ with a timestamp (local cohorts, tests)."""
    console.print(f"submitted {courses.submit(_course(root), lab, notebook, student)}")


@students_app.command("add")
@handled
def students_add(student: str = typer.Argument(..., metavar="ID"),
                 first: str = typer.Option("", "--first"), last: str = typer.Option("", "--last"),
                 email: str = typer.Option("", "--email"), root: Optional[Path] = ROOT) -> None:
    """Add (or update) a student in the gradebook."""
    record = courses.add_student(_course(root), student, first, last, email)
    console.print(f"student {record['id']}: {record.get('first_name') or ''} {record.get('last_name') or ''}".rstrip())


@students_app.command("list")
@handled
def students_list(root: Optional[Path] = ROOT, as_json: bool = JSON) -> None:
    """Students in the gradebook."""
    with _course(root).gradebook() as gb:
        records = [s.to_dict() for s in gb.students]
    if as_json:
        return print_json(records)
    table = Table("id", "first", "last", "email")
    for r in records:
        table.add_row(r["id"], r.get("first_name") or "", r.get("last_name") or "", r.get("email") or "")
    console.print(table)
