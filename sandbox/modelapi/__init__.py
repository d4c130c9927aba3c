"""labkit toy model API: a retrieval service that maps alerts to runbooks.

The package is self-contained: it imports nothing from the rest of the kit and
uses only relative imports, so it runs both as ``sandbox.modelapi`` on the host
and as the top-level package ``modelapi`` inside the container image
(``python -m modelapi serve``).

Modules:

* :mod:`.embedding` - deterministic, versioned embedding "models" (v1, v2).
* :mod:`.corpus` - runbook corpus snapshots and the evaluation set.
* :mod:`.index` - build, verify and load vector index artifacts.
* :mod:`.app` - the FastAPI model API (health, readiness, search, metrics).
* :mod:`.provider` - a tiny reranker service the model API depends on.
* :mod:`.gateway` - a TCP front door that round-robins over DNS-resolved upstreams.

This module only holds the version and the JSON-lines logging set-up shared by
the three services (standard library only, so importing it stays cheap).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
import uuid
from typing import Any

__all__ = ["__version__", "JsonFormatter", "REQUEST_ID", "configure_logging", "new_request_id"]

#: The request id of the request being served (``X-Request-ID``): every log line written
#: while serving it carries it as ``request_id``.
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
REQUEST_ID_HEADER = "X-Request-ID"


def new_request_id() -> str:
    """A fresh request id (16 hex digits)."""
    return uuid.uuid4().hex[:16]

__version__ = "0.1.0"

_STD_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured duplicate of msg
}


class JsonFormatter(logging.Formatter):
    """Format each record as one JSON object per line.

    Keys: ``ts`` (UTC, ISO-8601 with milliseconds), ``level``, ``logger``,
    ``msg``, plus every ``extra={...}`` field passed to the logging call.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a single JSON line."""
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        payload: dict[str, Any] = {
            "ts": f"{ts}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            payload["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STD_RECORD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, separators=(",", ":"))


def configure_logging(level: str | int = "INFO") -> None:
    """Send all logging to stdout as JSON lines at ``level`` (idempotent).

    Replaces the root logger's handlers, so uvicorn's own loggers (which
    propagate to the root when uvicorn runs with ``log_config=None``) are
    formatted the same way.
    """
    if isinstance(level, str):
        level = logging.getLevelName(level.strip().upper() or "INFO")
        if not isinstance(level, int):
            level = logging.INFO
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request at INFO; the app already logs what matters.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
    logging.getLogger("httpcore").setLevel(max(level, logging.WARNING))
