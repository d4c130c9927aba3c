"""Evidence retention, the kit's side: who makes a call, and the records it leaves.

The records themselves (hash chains on the sandbox's data volume) and their replay are the model
API's (``sandbox.modelapi.evidence``, ``python -m modelapi evidence ...``). The kit:

* names the caller (``local_actor``: the hub user, else the login name; a control endpoint names
  the grading box it serves) and stamps it on the approval jobs (``stamp_job``): an approver is
  who made the call, never a name the caller types;
* appends a ``release`` record for every revision that took traffic (``sync_releases``, from the
  engine's promotion time), an ``evaluation`` record for every ``sb.evaluate()``, and the notes a
  lab or an incident asks for (``record_note``) - from the process that holds the engine, with its
  clock; a trainee's jobs can read the records, never append to them;
* reads them back: ``served_at(sb, at)`` and ``verify(sb)``.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import time
from typing import Any

from .errors import InvalidInput

#: ``python -m modelapi`` jobs that record an approver: the kit passes who made the call.
ACTOR_JOBS = frozenset({"approve-snapshot", "revoke-snapshot"})
MODELAPI = ["python", "-m", "modelapi"]


def local_actor() -> str:
    """Who is at the keyboard: ``JUPYTERHUB_USER`` on the hub, else the login name."""
    hub = os.environ.get("JUPYTERHUB_USER", "").strip()
    if hub:
        return hub
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid with no name in /etc/passwd (a container)
        return f"uid:{os.getuid()}"


def stamp_job(cmd: list[str], actor: str) -> list[str]:
    """``cmd`` with ``--approver ACTOR`` appended when it records an approval."""
    cmd = [str(c) for c in cmd]
    if len(cmd) <= 3 or cmd[:3] != MODELAPI or cmd[3] not in ACTOR_JOBS:
        return cmd
    if any(c == "--approver" or c.startswith("--approver=") for c in cmd[4:]):
        raise InvalidInput(f"{cmd[3]}: the approver is recorded from who makes the call ({actor});"
                           " leave --approver out and name anyone else in --note")
    if not (actor or "").strip():
        raise InvalidInput(f"{cmd[3]}: no identity to record as the approver")
    return [*cmd, "--approver", actor]


def parse_moment(at: float | str | dt.datetime | None) -> float:
    """Seconds since the epoch from a number, an ISO-8601 string (UTC unless it says) or a datetime."""
    if at is None:
        return time.time()
    if isinstance(at, (int, float)):
        return float(at)
    if isinstance(at, str):
        try:
            return float(at)
        except ValueError:
            try:
                at = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
            except ValueError as e:
                raise InvalidInput(f"not a moment: {at!r} (seconds since the epoch or ISO-8601)") from e
    if isinstance(at, dt.datetime):
        return (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).timestamp()
    raise InvalidInput(f"not a moment: {at!r} (seconds since the epoch or ISO-8601)")


def _job(sb: Any, log: str, *args: str) -> Any:
    """A record job, run by the kit's process (``sb._record``: no policy stands between); the
    entries it appended are kept as anchors (``appended``) for whoever holds this process."""
    out = json.loads(sb._record([*MODELAPI, *args]))
    anchor(sb, log, out if isinstance(out, list) else [out])
    return out


def anchor(sb: Any, log: str, entries: list[dict[str, Any]]) -> None:
    """Remember (log, seq, hash) of entries this process appended."""
    kept = sb.__dict__.setdefault("_anchors", [])
    kept.extend((log, int(e["seq"]), str(e["hash"])) for e in entries if "seq" in e and "hash" in e)


def appended(sb: Any) -> list[tuple[str, int, str]]:
    """Every (log, seq, hash) this process appended to ``sb``'s records, oldest first."""
    return list(sb.__dict__.get("_anchors", []))


def anchors_of(rows: list[dict[str, Any]]) -> dict[str, dict[int, str]]:
    """``{log: {seq: hash}}`` from audit results' ``anchors`` lists ([log, seq, hash] each)."""
    out: dict[str, dict[int, str]] = {}
    for row in rows:
        for log, seq, digest in row.get("anchors") or []:
            out.setdefault(str(log), {})[int(seq)] = str(digest)
    return out


def _release_fields(revision: Any) -> dict[str, Any]:
    spec = revision.spec
    return {"revision": revision.number, "served_from": revision.ready_at, "model": spec.model,
            "index": spec.index, "image": spec.image, "replicas": spec.replicas,
            "change_cause": revision.change_cause, "rollback_of": revision.rollback_of}


def sync_releases(sb: Any, history: list[Any] | None = None) -> list[dict[str, Any]]:
    """Record every revision that took traffic and is not on record yet (one job for all).

    ``served_from`` is the engine's promotion time, so a record written later is still exact.
    """
    seen: set[tuple[int, float]] = sb.__dict__.setdefault("_releases_seen", set())
    history = sb.history() if history is None else history
    new = [r for r in history if r.ready_at is not None and (r.number, r.ready_at) not in seen]
    if not new:
        return []
    new.sort(key=lambda r: r.ready_at)
    entries = _job(sb, "releases", "record-release", "--actor", sb.actor,
                   "--fields", json.dumps([_release_fields(r) for r in new]))
    seen.update((r.number, r.ready_at) for r in new)
    return entries


def record_evaluation(sb: Any, report: Any, k: int) -> dict[str, Any]:
    history = sb.history()
    sync_releases(sb, history)
    live = next((r for r in reversed(history) if r.state == "serving"), None)
    fields = {"revision": live.number if live else None, "model": live.spec.model if live else None,
              "index": live.spec.index if live else None, "k": k, "recall": report.recall,
              "hits": report.hits, "total": report.total, "errors": report.errors}
    return _job(sb, "evaluations", "record-evaluation", "--actor", sb.actor, "--fields", json.dumps(fields))


def record_note(sb: Any, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    sync_releases(sb)
    return _job(sb, "notes", "record-note", "--kind", kind, "--actor", sb.actor, "--fields", json.dumps(fields, default=str))


def served_at(sb: Any, at: float | str | dt.datetime | None = None) -> dict[str, Any]:
    """What served at ``at``, from which snapshot, approved by whom when, evaluated how."""
    return json.loads(sb.run_job([*MODELAPI, "evidence", "--at", repr(parse_moment(at)), "--json"], "evidence"))


def verify(sb: Any, anchors: dict[str, dict[int, str]] | None = None) -> dict[str, Any]:
    """Every record chain checked; ``anchors`` ({log: {seq: hash}}) must be found unchanged."""
    cmd = [*MODELAPI, "evidence-verify", "--json"] + (["--anchors", json.dumps(anchors)] if anchors else [])
    return json.loads(sb.run_job(cmd, "evidence-verify"))


def records(sb: Any) -> dict[str, list[dict[str, Any]]]:
    """Every record of every chain (approvals, releases, evaluations, notes)."""
    return json.loads(sb.run_job([*MODELAPI, "evidence-log", "--json"], "evidence-log"))
