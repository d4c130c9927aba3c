"""Game-day events: when each incident was injected, detected, mitigated and resolved.

Events are JSON lines in ``<course_root>/reports/gamedays.jsonl``, one per event::

    {"trainee": "alice", "incident": "gd-03-provider-outage", "event": "detected",
     "at": "2026-11-20T10:04:00+00:00"}

MTTD (mean time to detect, reported as a median) is ``detected - injected``; MTTR is
``resolved - injected`` (the incident's whole duration as users felt it). The clock rules are the
plan's (``game_days.timing``):

* when an event is recorded twice for one incident, the earliest counts;
* a ``detected`` declaration stops the clock only if it names a signal kind the fault catalog
  lists for the injected fault (``counts: false`` lines are kept for the timeline, nothing else);
* a scenario started with a timebox counts at most the timebox, and one whose timebox has
  elapsed without the event counts as the timebox: giving up never scores better than finishing
  late;
* untimed scenarios (the week-4 tabletop) feed the timeline, not MTTD/MTTR.

:func:`start`, :func:`declare_detected` and :func:`resolve` drive a scenario against a live
sandbox (``labkit gameday ...`` wraps them); :func:`record` appends a bare event.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sandbox.errors import InvalidInput, SteadyStateBroken, UnknownChoice
from sandbox.faults import inject, load_catalog, probe_steady_state
from sandbox.faults.catalog import SIGNAL_KINDS
from sandbox.waiting import throughout

from .plan import load_plan

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
    fault: str = ""
    """``injected``: the catalog id of the injected fault."""
    timebox_min: float | None = None
    """``injected``: the scenario's timebox (None: no cap)."""
    timed: bool = True
    """``injected``: False for a tabletop, which feeds no MTTD/MTTR."""
    signal: str = ""
    """``detected``: the signal kind the declaration names (endpoint, metric, log, eval, rollout)."""
    counts: bool = True
    """``detected``: False when the named signal is not one of the fault's: the clock runs on."""
    note: str = ""
    team: tuple[str, ...] = ()
    """``injected``: the other trainees on the scenario (the events are logged under the
    commander's id; a teammate's feedback and retrospective read them as their own record)."""

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
    timed: bool = True
    capped: tuple[str, ...] = field(default=())
    """Which of ``ttd``/``ttr`` count as the timebox (late, or the timebox ran out)."""


def events_path(course_root: str | Path) -> Path:
    return Path(course_root) / "reports" / FILENAME


def _parse(value: str | dt.datetime) -> dt.datetime:
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


_DEFAULTS = {k: v for k, v in asdict(GameDayEvent("", "", "", "")).items() if k not in ("trainee", "incident", "event", "at")}


def record(course_root: str | Path, trainee: str, incident: str, event: str,
           at: str | dt.datetime | None = None, **extra: Any) -> GameDayEvent:
    """Append one event (``injected``, ``detected``, ``mitigated`` or ``resolved``).

    ``extra`` sets the optional fields of :class:`GameDayEvent` (fault, timebox_min, timed,
    signal, counts, note); only the ones that differ from their default are written.
    """
    if event not in EVENTS:
        raise UnknownChoice("game-day event", event, EVENTS)
    if not trainee or not incident:
        raise InvalidInput("a game-day event needs a trainee and an incident id")
    unknown = set(extra) - set(_DEFAULTS)
    if unknown:
        raise UnknownChoice("game-day event field", sorted(unknown)[0], sorted(_DEFAULTS))
    when = _parse(at) if at is not None else dt.datetime.now(dt.UTC)
    if "team" in extra:
        extra["team"] = tuple(str(t) for t in extra["team"] if str(t) and str(t) != trainee)
    ev = GameDayEvent(trainee, incident, event, when.isoformat(timespec="seconds"), **extra)
    line = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(ev).items()
            if k not in _DEFAULTS or v != _DEFAULTS[k]}
    path = events_path(course_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, sort_keys=True) + "\n")
    return ev


def load(course_root: str | Path) -> list[GameDayEvent]:
    """Every recorded event (an empty list when none was recorded): the course's event log, then
    the scenarios of graded runs (:func:`graded_events`)."""
    return [*_logged(course_root), *graded_events(course_root)]


def graded_events(course_root: str | Path) -> list[GameDayEvent]:
    """The game days of graded runs, on the control endpoint's clock: each ``gameday_clock``
    record of ``reports/live_checks.jsonl`` (the last run of a submission wins) as events of
    incident ``<lab>:<fault>``. The grader already applied the clock rules (a detection counts
    only on one of the fault's signal kinds), so a step it did not see is simply absent."""
    path = Path(course_root) / "reports" / "live_checks.jsonl"
    latest: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        raw = json.loads(line) if line.strip() else {}
        if raw.get("check") == "gameday_clock" and raw.get("student"):
            latest[(raw["student"], str(raw.get("assignment", "")))] = raw.get("details", {}).get("incidents", [])
    out = []
    for (student, lab), incidents in sorted(latest.items()):
        for clock in incidents:
            incident = f"{lab}:{clock.get('fault', '')}"
            for event in EVENTS:
                at = clock.get(f"{event}_at")
                if at:
                    extra = {"fault": clock.get("fault", "")} if event == "injected" else {}
                    if event == "detected":
                        extra = {"signal": clock.get("signal", "")}
                    out.append(GameDayEvent(student, incident, event, at, **extra))
    return out


def _logged(course_root: str | Path) -> list[GameDayEvent]:
    path = events_path(course_root)
    if not path.is_file():
        return []
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            extra = {k: tuple(raw[k]) if k == "team" else raw[k] for k in _DEFAULTS if k in raw}
            out.append(GameDayEvent(raw["trainee"], raw["incident"], raw["event"], raw["at"], **extra))
        except (ValueError, KeyError) as e:
            raise InvalidInput(f"{path}:{n}: not a game-day event ({e})") from e
    return out


def incident_times(events: Iterable[GameDayEvent], now: dt.datetime | None = None) -> list[IncidentTimes]:
    """Per (trainee, incident): minutes to detect and to resolve, by the clock rules above.

    ``now`` decides whether a timebox has run out for a scenario still open (default: now).
    """
    now = _parse(now) if now is not None else dt.datetime.now(dt.UTC)
    first: dict[tuple[str, str], dict[str, GameDayEvent]] = {}
    for ev in events:
        if ev.event == "detected" and not ev.counts:
            continue  # a declaration on a wrong symptom: the clock keeps running
        seen = first.setdefault((ev.trainee, ev.incident), {})
        if ev.event not in seen or ev.when < seen[ev.event].when:
            seen[ev.event] = ev
    out = []
    for (trainee, incident), seen in sorted(first.items()):
        injected = seen.get("injected")
        start = injected.when if injected else None
        box = injected.timebox_min if injected else None
        times, capped = [], []
        for kind, event in (("ttd", "detected"), ("ttr", "resolved")):
            minutes = _minutes(start, seen[event].when if event in seen else None)
            if box is not None and start is not None:
                late = minutes is not None and minutes > box
                ran_out = minutes is None and (now - start).total_seconds() / 60 > box
                if late or ran_out:
                    minutes = float(box)
                    capped.append(kind)
            times.append(minutes)
        timed = injected.timed if injected else True
        out.append(IncidentTimes(trainee, incident, times[0], times[1], timed, tuple(capped)))
    return out


def _minutes(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds() / 60


def mttd_mttr(events: Iterable[GameDayEvent],
              now: dt.datetime | None = None) -> tuple[float | None, float | None]:
    """(median minutes to detect, median minutes to resolve) over the timed incidents.

    Incidents without an ``injected`` event, untimed ones, and ones still open inside their
    timebox are left out of that median; None when no incident qualifies.
    """
    times = [t for t in incident_times(events, now) if t.timed]
    ttd = [t.ttd_min for t in times if t.ttd_min is not None]
    ttr = [t.ttr_min for t in times if t.ttr_min is not None]
    return (statistics.median(ttd) if ttd else None, statistics.median(ttr) if ttr else None)


# --- driving a scenario against a live sandbox ----------------------------------------------


def schedule_for(week: int, plan: Any = None) -> dict[str, Any]:
    """The plan's game-day entry for ``week`` (kind, timed, timebox_minutes)."""
    if plan is None:

        plan = load_plan()
    for entry in plan.game_days.schedule:
        if int(entry["week"]) == int(week):
            return dict(entry)
    raise UnknownChoice("game-day week", week, [e["week"] for e in plan.game_days.schedule])


def _find_injected(course_root: str | Path, trainee: str, incident: str) -> GameDayEvent | None:
    return next((ev for ev in load(course_root)
                 if (ev.trainee, ev.incident, ev.event) == (trainee, incident, "injected")), None)


def _injected(course_root: str | Path, trainee: str, incident: str) -> GameDayEvent:
    ev = _find_injected(course_root, trainee, incident)
    if ev is not None:
        return ev
    raise InvalidInput(f"no scenario {incident!r} started for {trainee!r} in {events_path(course_root)}",
                       fix=f"start it first: labkit gameday start FAULT --trainee {trainee} --week W")


def start(course_root: str | Path, sb: Any, fault_id: str, trainee: str, week: int,
          incident: str | None = None, plan: Any = None, catalog: Any = None,
          team: tuple[str, ...] = ()) -> GameDayEvent:
    """Game master: inject ``fault_id`` into ``sb`` and log ``injected`` with the week's timebox
    (``trainee`` is the commander; ``team`` the others on the scenario)."""

    entry = schedule_for(week, plan)
    catalog = catalog or load_catalog()
    catalog.get(fault_id)  # an unknown fault names the valid ones before anything happens
    incident = incident or f"w{int(week):02d}-{fault_id}"
    if _find_injected(course_root, trainee, incident) is not None:
        raise InvalidInput(f"scenario {incident!r} of {trainee!r} already started",
                           fix="pass another --incident for a second run of the same fault")
    out = inject(sb, fault_id, catalog)
    if not out["injected"]:
        raise InvalidInput(f"{fault_id} is already active in sandbox {sb.id}: its clock would start late",
                           fix=f"heal it first (`labkit fault heal {fault_id}`), then start the scenario")
    return record(course_root, trainee, incident, "injected", fault=fault_id,
                  timebox_min=float(entry["timebox_minutes"]), timed=bool(entry["timed"]), team=tuple(team))


def declare_detected(course_root: str | Path, trainee: str, incident: str, signal: str,
                     note: str = "", at: str | dt.datetime | None = None, catalog: Any = None) -> GameDayEvent:
    """Commander's declaration. It stops the clock only if ``signal`` is a kind of signal the
    catalog lists for the injected fault; otherwise it is logged with ``counts: false``."""

    if signal not in SIGNAL_KINDS:
        raise UnknownChoice("signal kind", signal, SIGNAL_KINDS)
    injected = _injected(course_root, trainee, incident)
    kinds = {s.kind for s in (catalog or load_catalog()).get(injected.fault).signals} if injected.fault else None
    counts = kinds is None or signal in kinds
    return record(course_root, trainee, incident, "detected", at=at, signal=signal, counts=counts, note=note)


def resolve(course_root: str | Path, sb: Any, trainee: str, incident: str, confirm_s: float = 300,
            interval_s: float = 30, catalog: Any = None,
            sleep: Callable[[float], None] = time.sleep) -> GameDayEvent:
    """Log ``resolved`` at the first steady-state check of a run that keeps holding ``confirm_s``.

    Runs the injected fault's steady-state probes against ``sb`` now and every ``interval_s``
    for ``confirm_s``; raises :class:`SteadyStateBroken` (nothing logged) if any probe fails.
    """

    fault = _injected(course_root, trainee, incident).fault
    if not fault:
        raise InvalidInput(f"scenario {incident!r} was logged without its fault: resolve cannot probe it",
                           fix="log resolved by hand with labkit.gamedays.record once verified")
    first = dt.datetime.now(dt.UTC)

    def holds(elapsed: float) -> None:
        broken = [f"{p.name}: {p.observed} (expected {p.expected})"
                  for p in probe_steady_state(sb, fault, catalog) if not p.ok]
        if broken:
            raise SteadyStateBroken(fault, broken, f"after {elapsed:.0f} s of confirmation" if elapsed else "now")

    throughout(holds, seconds=confirm_s, interval_s=interval_s, sleep=sleep)
    return record(course_root, trainee, incident, "resolved", at=first)
