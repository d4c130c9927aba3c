"""Evidence sub-commands of ``python -m modelapi`` (jobs on the data volume).

Reading (a trainee's jobs too):

* ``evidence [--at EPOCH] [--json]`` - what served at that moment (default now), built from
  which snapshot, approved by whom when, evaluated how; replayed from the records
* ``evidence-log [--json]`` - every record of every chain
* ``evidence-verify [--anchors JSON] [--json]`` - does every chain hold? the first broken link

Appending (the kit's own process only; the control endpoint never lets a box run them):

* ``record-release --actor A --fields JSON`` (one release or a list; ``at`` is each ``served_from``)
* ``record-evaluation --actor A --fields JSON [--at EPOCH]``
* ``record-note --kind K --actor A --fields JSON [--at EPOCH]``
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Callable

from . import evidence

Printer = Callable[[Any, bool], None]


def _fields(text: str) -> dict[str, Any]:
    value = json.loads(text or "{}")
    if not isinstance(value, dict):
        raise ValueError("--fields must be a JSON object")
    return value


def _releases(args: argparse.Namespace) -> list[dict[str, Any]]:
    """``--fields`` is one release or a list of them (a sync of several revisions, in order)."""
    value = json.loads(args.fields or "[]")
    items = value if isinstance(value, list) else [value]
    return [evidence.record_release(args.data_dir, _fields(json.dumps(item)), args.actor,
                                    item.get("served_from") if args.at is None else args.at) for item in items]


def _anchors(text: str) -> dict[str, dict[int, str]]:
    raw = json.loads(text or "{}")
    return {name: {int(seq): str(h) for seq, h in by_seq.items()} for name, by_seq in raw.items()}


def register(sub: argparse._SubParsersAction, parents: list, show: Printer) -> None:
    p = sub.add_parser("evidence", parents=parents, help="what served at a moment, and on what evidence")
    p.add_argument("--at", type=float, default=None, help="seconds since the epoch (default now)")
    p.set_defaults(func=lambda a: show(evidence.served_at(a.data_dir, time.time() if a.at is None else a.at),
                                       a.json) or 0)
    p = sub.add_parser("evidence-log", parents=parents, help="every evidence record")
    p.set_defaults(func=lambda a: show(evidence.records(a.data_dir), True) or 0)
    p = sub.add_parser("evidence-verify", parents=parents, help="verify every record chain")
    p.add_argument("--anchors", default="", help="JSON {log: {seq: hash}} kept elsewhere")
    p.set_defaults(func=lambda a: show(evidence.verify(a.data_dir, _anchors(a.anchors)), a.json) or 0)
    p = sub.add_parser("record-release", parents=parents, help="append release records (the kit's own)")
    _appender(p)
    p.set_defaults(func=lambda a: show(_releases(a), True) or 0)
    p = sub.add_parser("record-evaluation", parents=parents, help="append an evaluation record (the kit's own)")
    _appender(p)
    p.set_defaults(func=lambda a: show(evidence.record_evaluation(a.data_dir, _fields(a.fields), a.actor, a.at),
                                       True) or 0)
    p = sub.add_parser("record-note", parents=parents, help="append a note (incident, reconstruction...)")
    _appender(p)
    p.add_argument("--kind", required=True)
    p.set_defaults(func=lambda a: show(evidence.record_note(a.data_dir, a.kind, _fields(a.fields), a.actor, a.at),
                                       True) or 0)


def _appender(p: argparse.ArgumentParser) -> None:
    p.add_argument("--actor", default="", help="who made the call")
    p.add_argument("--fields", default="{}", help="the record's fields, a JSON object")
    p.add_argument("--at", type=float, default=None, help="the kit's clock (default now)")
