"""Filtering the services' structured logs (one JSON object per line, as ``docker logs`` and
``kubectl logs`` show them) by level and request id.

Every line the model API, the provider and the gateway write is JSON with ``ts``, ``level``,
``logger``, ``msg`` and, while a request is served, its ``request_id`` (the model API assigns
it, or keeps the caller's ``X-Request-ID``; the provider logs the id the model API sent). The
tiers hand ``sb.logs()`` text in blocks headed ``==> <container or pod> <==``.
"""

from __future__ import annotations

import json

from .errors import UnknownChoice

LEVELS = ("debug", "info", "warning", "error", "critical")


def filter_logs(text: str, level: str | None = None, request_id: str | None = None) -> str:
    """Keep the lines at ``level`` or above and/or carrying ``request_id``; block headers of
    blocks with kept lines stay. Lines that are not JSON are kept only without filters."""
    if level is None and request_id is None:
        return text
    floor = _level(level) if level is not None else 0
    out: list[str] = []
    header = ""
    for line in text.splitlines():
        if line.startswith("==> ") and line.endswith(" <=="):
            header = line
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        if _level(str(record.get("level", "info")), strict=False) < floor:
            continue
        if request_id is not None and record.get("request_id") != request_id:
            continue
        if header:
            out.append(header)
            header = ""
        out.append(line)
    return "\n".join(out)


def _level(name: str, strict: bool = True) -> int:
    name = name.lower()
    if name in LEVELS:
        return LEVELS.index(name)
    if strict:
        raise UnknownChoice("log level", name, LEVELS)
    return 1
