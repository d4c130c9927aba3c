"""A trainee's own recorded evidence: game-day events and earlier live-check results.

Two files of the course root hold what the kit recorded about a trainee, never what a kernel
wrote: ``reports/gamedays.jsonl`` (the game master's and scribe's event log, written by
``labkit gameday``; format in ``labkit.gamedays``) and ``reports/live_checks.jsonl`` (every
check the grader ran, with its numbers). Artifact checks read them to tell whether feedback,
a retrospective or a roadmap proposal cites the trainee's *own* numbers::

    ev = trainee_evidence("/srv/labkit/labs", "alice")
    incidents(ev)        # [{"incident": "w12-provider-outage", "ttd_min": 4.0, ...}]
    own_values(ev)       # [("recall", 0.922, "lab13-capstone"), ("p95_ms", 182.0, ...), ...]

In grading, ``graders.preprocessor.LiveStateGrader`` passes the bundle of the student being
graded; in a notebook, :func:`find_evidence` looks for the course root above the notebook.
This module reads the files as plain JSON lines: ``graders`` never imports ``labkit``.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import re
from pathlib import Path
from typing import Any

GAMEDAYS = "gamedays.jsonl"
LIVE_CHECKS = "live_checks.jsonl"
#: Numbers of a live-check result that a trainee may cite, and how close a citation must be.
VALUE_KEYS = {"recall": 0.003, "p95_ms": 0.05, "p50_ms": 0.05, "error_rate": 0.001, "threshold": 0.003,
              "baseline": 0.003, "drifted": 0.003}
_MINUTES = re.compile(r"(\d+(?:\.\d+)?)\s*(?:min\b|mins\b|minutes?\b|m\b)", re.IGNORECASE)
_MS = re.compile(r"(\d+(?:\.\d+)?)\s*ms\b", re.IGNORECASE)
_DECIMAL = re.compile(r"(?<![\d.])(0?\.\d+|[1-9]\d*(?:\.\d+)?)(?![\d.])")
_CLOCK = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\b")


def empty(student: str = "") -> dict[str, Any]:
    return {"student": student, "course_root": None, "gamedays": [], "live_checks": []}


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            raw = json.loads(line) if line.strip() else None
        except ValueError:
            continue  # a torn line of a crashed writer: the rest still counts
        if isinstance(raw, dict):
            out.append(raw)
    return out


def trainee_evidence(course_root: str | Path | None, student: str) -> dict[str, Any]:
    """The student's game-day events (their own, and those of scenarios that list them in the
    ``team`` of the injection) and live-check records, from the course's ``reports/``."""
    if course_root is None:
        return empty(student)
    reports = Path(course_root) / "reports"
    events = _lines(reports / GAMEDAYS)
    on_team = {(e.get("trainee"), e.get("incident")) for e in events
               if e.get("event") == "injected" and student in (e.get("team") or [])}
    return {"student": student, "course_root": str(course_root),
            "gamedays": [e for e in events if e.get("trainee") == student
                         or (e.get("trainee"), e.get("incident")) in on_team],
            "live_checks": [r for r in _lines(reports / LIVE_CHECKS) if r.get("student") == student]}


def find_evidence(start: str | Path | None = None, student: str | None = None) -> dict[str, Any]:
    """The evidence of the trainee running this notebook, found from the current folder up.

    The course root is the first folder with an ``nbgrader_config.py`` (or
    ``LABKIT_COURSE_ROOT``). The student is ``student``, else the folder after
    ``autograded``/``submitted`` in the path, else ``LABKIT_TRAINEE``, else the user name.
    """
    here = Path(start or Path.cwd()).resolve()
    root = os.environ.get("LABKIT_COURSE_ROOT") or next(
        (str(p) for p in (here, *here.parents) if (p / "nbgrader_config.py").is_file()), None)
    if student is None:
        parts = here.parts
        marks = [i for i, p in enumerate(parts) if p in ("autograded", "submitted")]
        student = (parts[marks[-1] + 1] if marks and marks[-1] + 1 < len(parts) else
                   os.environ.get("LABKIT_TRAINEE") or getpass.getuser())
    return trainee_evidence(root, student)


def _when(value: Any) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def incidents(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    """Per incident: its fault, the first time of each event and the minutes from injection.

    The earliest event of each kind counts, and a declaration on a wrong symptom
    (``counts: false``) stops no clock - the plan's clock rules, as ``labkit.gamedays`` applies them.
    """
    first: dict[str, dict[str, dict[str, Any]]] = {}
    for ev in evidence.get("gamedays") or []:
        when = _when(ev.get("at"))
        if when is None or (ev.get("event") == "detected" and ev.get("counts") is False):
            continue
        seen = first.setdefault(str(ev.get("incident")), {})
        kind = str(ev.get("event"))
        if kind not in seen or when < seen[kind]["when"]:
            seen[kind] = {**ev, "when": when}
    out = []
    for incident, seen in sorted(first.items()):
        start = seen.get("injected", {}).get("when")
        row: dict[str, Any] = {"incident": incident, "fault": seen.get("injected", {}).get("fault", ""),
                               "times": {k: v["when"].strftime("%H:%M") for k, v in seen.items()},
                               "signal": seen.get("detected", {}).get("signal", ""),
                               "notes": [v.get("note", "") for v in seen.values() if v.get("note")]}
        for kind, key in (("detected", "ttd_min"), ("mitigated", "ttm_min"), ("resolved", "ttr_min")):
            end = seen.get(kind, {}).get("when")
            row[key] = round((end - start).total_seconds() / 60, 1) if start and end and end >= start else None
        out.append(row)
    return out


def own_values(evidence: dict[str, Any]) -> list[tuple[str, float, str]]:
    """(kind, value, source) of every number the kit recorded for the trainee."""
    out = []
    for rec in evidence.get("live_checks") or []:
        details = rec.get("details") or {}
        for key in VALUE_KEYS:
            value = details.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out.append((key, float(value), str(rec.get("assignment", ""))))
    for inc in incidents(evidence):
        for key in ("ttd_min", "ttm_min", "ttr_min"):
            if inc.get(key) is not None:
                out.append((key, float(inc[key]), inc["incident"]))
    return out


# --- does a text cite them? ----------------------------------------------------------------------


def cited_incidents(text: str, evidence: dict[str, Any]) -> list[str]:
    """Incident ids (or their fault ids) of the trainee's events that ``text`` names."""
    low = (text or "").lower()
    return [i["incident"] for i in incidents(evidence)
            if i["incident"].lower() in low or (i["fault"] and i["fault"].lower() in low)]


def cited_times(text: str, evidence: dict[str, Any]) -> list[str]:
    """Recorded event times (HH:MM, UTC) and minutes from injection (within 1) that ``text`` cites."""
    found = []
    clocks = {f"{int(h):02d}:{m}" for h, m in _CLOCK.findall(text or "")}
    minutes = [float(m) for m in _MINUTES.findall(text or "")]
    for inc in incidents(evidence):
        found += [f"{inc['incident']} {k} {t}" for k, t in inc["times"].items() if t in clocks]
        for key in ("ttd_min", "ttm_min", "ttr_min"):
            value = inc.get(key)
            if value is not None and any(abs(m - value) <= 1.0 for m in minutes):
                found.append(f"{inc['incident']} {key} {value:g}")
    return found


def cited_values(text: str, evidence: dict[str, Any]) -> list[str]:
    """The trainee's recorded numbers (:func:`own_values`) that ``text`` quotes, each once."""
    text = text or ""
    ms = [float(v) for v in _MS.findall(text)]
    minutes = [float(v) for v in _MINUTES.findall(text)]
    plain = [float(v) for v in _DECIMAL.findall(text)]
    percents = [float(v) / 100 for v in re.findall(r"(\d+(?:\.\d+)?)\s*%", text)]
    found: dict[str, str] = {}
    for kind, value, source in own_values(evidence):
        if kind.endswith("_ms"):
            hit = any(abs(v - value) <= max(1.0, VALUE_KEYS[kind] * value) for v in ms)
        elif kind.endswith("_min"):
            hit = any(abs(v - value) <= 1.0 for v in minutes)
        else:
            tol = VALUE_KEYS[kind]
            hit = any(abs(v - value) <= tol for v in plain + percents)
        if hit:
            found.setdefault(f"{kind}={value:g}", f"{kind} {value:g} ({source})")
    return list(found.values())
