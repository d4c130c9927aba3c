"""A cohort: its start date (program day 1) and its roster of trainees and mentors.

Kept in ``<course root>/cohort.yaml``, written by ``labkit cohort init`` and read by the
report, the ledger commands and the dashboard::

    start: 2027-01-11
    trainees:
      - {id: alice, role_path: sre, mentor: maria}
      - {id: bob, role_path: sysadmin, mentor: maria}

Role paths are the three the course trains: ``sre``, ``sysadmin`` and ``hybrid`` (platform
reliability, bridging both). A trainee id is the student id of the gradebook.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sandbox.errors import InvalidInput, UnknownChoice

ROLE_PATHS = ("sre", "sysadmin", "hybrid")
FILENAME = "cohort.yaml"
_ID = re.compile(r"^[A-Za-z0-9_.@-]+$")


@dataclass(frozen=True)
class Trainee:
    """One trainee of the roster."""

    id: str
    role_path: str
    """``sre``, ``sysadmin`` or ``hybrid``."""
    mentor: str
    """The named mentor (an instructor or senior engineer id)."""


@dataclass(frozen=True)
class Cohort:
    """The cohort's start date and roster."""

    start: dt.date
    """Program day 1 (the plan's days count from here)."""
    trainees: tuple[Trainee, ...]

    def trainee(self, trainee_id: str) -> Trainee:
        """The trainee ``trainee_id``; an unknown one names the roster."""
        for t in self.trainees:
            if t.id == trainee_id:
                return t
        raise UnknownChoice("trainee", trainee_id, [t.id for t in self.trainees])

    @property
    def mentors(self) -> list[str]:
        return sorted({t.mentor for t in self.trainees})

    def start_at(self) -> dt.datetime:
        """Midnight UTC of day 1."""
        return dt.datetime(self.start.year, self.start.month, self.start.day, tzinfo=dt.UTC)

    def day(self, when: dt.datetime | dt.date) -> int:
        """Program day of ``when`` (the start date is day 1; earlier dates give 0 or less)."""
        date = when.astimezone(dt.UTC).date() if isinstance(when, dt.datetime) else when
        return (date - self.start).days + 1

    def at_day_end(self, day: int) -> dt.datetime:
        """The last instant of program day ``day`` (UTC)."""
        return self.start_at() + dt.timedelta(days=day) - dt.timedelta(microseconds=1)

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(),
                "trainees": [{"id": t.id, "role_path": t.role_path, "mentor": t.mentor} for t in self.trainees]}


def parse_trainee(spec: str) -> Trainee:
    """``ID:ROLE_PATH:MENTOR`` (the form ``labkit cohort init --trainee`` takes)."""
    parts = spec.split(":")
    if len(parts) != 3:
        raise InvalidInput(f"trainee {spec!r}: write ID:ROLE_PATH:MENTOR, e.g. alice:sre:maria")
    return make_trainee(*parts)


def make_trainee(trainee_id: str, role_path: str, mentor: str) -> Trainee:
    for what, value in (("trainee id", trainee_id), ("mentor id", mentor)):
        if not _ID.match(value or ""):
            raise InvalidInput(f"{what} {value!r}: use letters, digits and _ . @ -")
    if role_path not in ROLE_PATHS:
        raise UnknownChoice("role path", role_path, ROLE_PATHS)
    if trainee_id == mentor:
        raise InvalidInput(f"trainee {trainee_id!r} cannot be their own mentor")
    return Trainee(trainee_id, role_path, mentor)


def make_cohort(start: str | dt.date, trainees: list[Trainee]) -> Cohort:
    """A validated cohort (unique trainee ids, at least one trainee)."""
    try:
        day1 = start if isinstance(start, dt.date) else dt.date.fromisoformat(str(start))
    except ValueError as e:
        raise InvalidInput(f"cohort start {start!r} is not a date (YYYY-MM-DD)") from e
    if not trainees:
        raise InvalidInput("a cohort needs at least one trainee (--trainee ID:ROLE_PATH:MENTOR)")
    seen: set[str] = set()
    for t in trainees:
        if t.id in seen:
            raise InvalidInput(f"trainee {t.id!r} is listed twice")
        seen.add(t.id)
    return Cohort(day1, tuple(trainees))


def cohort_path(course_root: str | Path) -> Path:
    return Path(course_root) / FILENAME


def save(course_root: str | Path, cohort: Cohort, force: bool = False) -> Path:
    """Write ``cohort.yaml``; an existing one is kept unless ``force``."""
    path = cohort_path(course_root)
    if path.exists() and not force:
        raise InvalidInput(f"{path} exists; pass --force to replace the cohort (start {load(course_root).start})")
    path.write_text(yaml.safe_dump(cohort.to_dict(), sort_keys=False), encoding="utf-8")
    return path


def load(course_root: str | Path) -> Cohort:
    """The course's cohort; a missing or malformed file says how to make one."""
    path = cohort_path(course_root)
    if not path.is_file():
        raise InvalidInput(f"no cohort in {Path(course_root)}",
                           fix="labkit cohort init --start YYYY-MM-DD --trainee ID:ROLE_PATH:MENTOR ...")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        trainees = [make_trainee(str(t["id"]), str(t["role_path"]), str(t["mentor"]))
                    for t in raw.get("trainees") or []]
        return make_cohort(raw["start"], trainees)
    except (KeyError, TypeError, yaml.YAMLError) as e:
        raise InvalidInput(f"{path} is not a cohort file ({e.__class__.__name__}: {e})") from e


def load_or_none(course_root: str | Path) -> Cohort | None:
    return load(course_root) if cohort_path(course_root).is_file() else None
