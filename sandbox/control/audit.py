"""The control endpoint's audit log: what the kernel asked, when (the endpoint's clock), and
what came of it. JSON lines, appended by the trusted process only; the box never sees the file.

    {"seq": 3, "at": 1796160000.12, "op": "deploy", "args": {"model": "v2", "wait": false},
     "outcome": "ok", "result": {"revision": 3}}

Graders read it back (``read_audit``) to judge the process a lab asks for: the canary was
evaluated before it was promoted, a rollback named its target, the game day's clock.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    at: float
    op: str
    args: dict[str, Any] = field(default_factory=dict)
    outcome: str = "ok"
    """``ok``, ``refused`` or ``error`` (the error's class name is in ``result``)."""
    result: dict[str, Any] = field(default_factory=dict)


class AuditLog:
    """Append-only JSON lines, one per operation, numbered and timestamped here."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seq = len(read_audit(path)) if path.exists() else 0
        path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, op: str, args: dict[str, Any], outcome: str = "ok",
               result: dict[str, Any] | None = None) -> AuditRecord:
        with self._lock:
            self._seq += 1
            record = AuditRecord(self._seq, time.time(), op, _plain(args), outcome, _plain(result or {}))
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(asdict(record), sort_keys=True, default=str) + "\n")
            return record


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def read_audit(path: Path | str | None) -> list[AuditRecord]:
    """Every record of the log at ``path`` ([] when there is none)."""
    if not path or not Path(path).exists():
        return []
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            out.append(AuditRecord(**{k: raw[k] for k in AuditRecord.__dataclass_fields__ if k in raw}))
    return out
