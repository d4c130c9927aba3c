"""Game-day events: when each incident was injected, detected, mitigated and resolved.

Events are JSON lines in ``<course_root>/reports/gamedays.jsonl``, one per event::

    {"trainee": "alice", "incident": "gd-03-provider-outage", "event": "detected",
     "at": "2026-11-20T10:04:00+00:00"}

MTTD (mean time to detect, reported as a median) is ``detected - injected``; MTTR is
``resolved - injected`` (the incident's whole duration as users felt it). When an event is
recorded twice for one incident, the earliest counts.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from sandbox.errors import InvalidInput, UnknownChoice

EVENTS = ("injected", "detected", "mitigated", "resolved")
FILENAME = "gamedays.jsonl"


@dataclass(frozen=True)
class GameDayEvent:
    """One event of one incident of one trainee."""

    trainee: str
    incident: str
    event: str
    at: str
    """ISO-8601 timestamp with a timezone."""

    @property
    def when(self) -> dt.datetime:
        return _parse(self.at)


@dataclass(frozen=True)
class IncidentTimes:
    """Minutes from injection to detection and to resolution of one incident (None = not yet)."""

    trainee: str
    incident: str
    ttd_min: float | None
    ttr_min: float | None


def events_path(course_root: str | Path) -> Path:
    return Path(course_root) / "reports" / FILENAME


def _parse(value: str | dt.datetime) -> dt.datetime:
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def record(course_root: str | Path, trainee: str, incident: str, event: str,
           at: str | dt.datetime | None = None) -> GameDayEvent:
    """Append one event (``injected``, ``detected``, ``mitigated`` or ``resolved``)."""
    if event not in EVENTS:
        raise UnknownChoice("game-day event", event, EVENTS)
    if not trainee or not incident:
        raise InvalidInput("a game-day event needs a trainee and an incident id")
    when = _parse(at) if at is not None else dt.datetime.now(dt.UTC)
    ev = GameDayEvent(trainee, incident, event, when.isoformat(timespec="seconds"))
    path = events_path(course_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(asdict(ev), sort_keys=True) + "\n")
    return ev


def load(course_root: str | Path) -> list[GameDayEvent]:
    """Every recorded event (an empty list when none was recorded)."""
    path = events_path(course_root)
    if not path.is_file():
        return []
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            out.append(GameDayEvent(raw["trainee"], raw["incident"], raw["event"], raw["at"]))
        except (ValueError, KeyError) as e:
            raise InvalidInput(f"{path}:{n}: not a game-day event ({e})") from e
    return out


def incident_times(events: Iterable[GameDayEvent]) -> list[IncidentTimes]:
    """Per (trainee, incident): minutes to detect and to resolve, from the earliest events."""
    first: dict[tuple[str, str], dict[str, dt.datetime]] = {}
    for ev in events:
        seen = first.setdefault((ev.trainee, ev.incident), {})
        if ev.event not in seen or ev.when < seen[ev.event]:
            seen[ev.event] = ev.when
    out = []
    for (trainee, incident), seen in sorted(first.items()):
        start = seen.get("injected")
        ttd = _minutes(start, seen.get("detected"))
        ttr = _minutes(start, seen.get("resolved"))
        out.append(IncidentTimes(trainee, incident, ttd, ttr))
    return out


def _minutes(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds() / 60


def mttd_mttr(events: Iterable[GameDayEvent]) -> tuple[float | None, float | None]:
    """(median minutes to detect, median minutes to resolve) over the incidents in ``events``.

    Incidents without an ``injected`` event, or not yet detected/resolved, are left out of
    that median; None when no incident qualifies.
    """
    times = incident_times(events)
    ttd = [t.ttd_min for t in times if t.ttd_min is not None]
    ttr = [t.ttr_min for t in times if t.ttr_min is not None]
    return (statistics.median(ttd) if ttd else None, statistics.median(ttr) if ttr else None)
