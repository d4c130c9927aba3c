"""HTTP client of the model API, shared by both backends and by the graders.

The kit talks to the service over HTTP only. Every call opens a short-lived connection so
that a request never rides a keep-alive connection to a revision that was just retired.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from .errors import ServiceError, WaitTimeout
from .waiting import until

DEFAULT_TIMEOUT_S = 5.0
_SHARED: dict[tuple[str, str], httpx.Client] = {}
_SHARED_LOCK = threading.Lock()


def shared_http() -> httpx.Client:
    """A process-wide HTTP client (thread-safe). Building a client loads a TLS context,
    which costs tens of milliseconds of CPU: far more than a search. Keep-alive is off, so
    every request still opens its own connection (and can reach another revision). In a
    grading box every request goes over the box's control socket instead (its only way out).
    One client per way out, chosen by the environment at each call: a client made for the box's
    socket is never handed to code that runs outside it (a test that plays the box in-process)."""
    from .control.client import SOCKET_ENV, TOKEN_ENV, control_transport  # the box's transport, if this is one

    key = (os.environ.get(SOCKET_ENV, ""), os.environ.get(TOKEN_ENV, ""))
    with _SHARED_LOCK:
        if key not in _SHARED:
            boxed = control_transport() if key[0] else None
            transport, auth = boxed if boxed is not None else (None, {})
            _SHARED[key] = httpx.Client(trust_env=False, transport=transport,
                                        limits=httpx.Limits(max_keepalive_connections=0),
                                        headers={"Connection": "close", **auth})
        return _SHARED[key]


@dataclass(frozen=True)
class Readiness:
    """What ``/readyz`` said."""

    ready: bool
    reason: str = ""
    detail: str = ""
    status_code: int = 0


@dataclass(frozen=True)
class EvalItem:
    query: str
    expected: tuple[str, ...]
    since: str = ""


@dataclass
class EvalReport:
    """recall@k of the live service on the labelled eval set."""

    k: int
    recall: float
    total: int
    hits: int
    misses: list[dict[str, Any]] = field(default_factory=list)
    errors: int = 0
    served_by: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        return f"recall@{self.k} = {self.recall:.3f} ({self.hits}/{self.total}, {self.errors} errors)"


def load_eval_set() -> list[EvalItem]:
    """The labelled eval set shipped with the model API."""
    text = resources.files("sandbox.modelapi").joinpath("data/eval.jsonl").read_text()
    items = []
    for line in text.splitlines():
        if line.strip():
            raw = json.loads(line)
            items.append(EvalItem(raw["query"], tuple(raw["expected"]), raw.get("since", "")))
    return items


def load_queries(name: str) -> list[str]:
    """A packaged query set (``baseline`` or ``drifted``) as plain strings."""
    path = resources.files("sandbox.modelapi").joinpath(f"data/queries/{name}.jsonl")
    return [json.loads(line)["query"] for line in path.read_text().splitlines() if line.strip()]


class ServiceClient:
    """Calls the model API at ``endpoint`` (``http://127.0.0.1:PORT``)."""

    def __init__(self, endpoint: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.timeout_s = timeout_s

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return shared_http().request(method, self.endpoint + path, timeout=self.timeout_s, **kwargs)
        except httpx.HTTPError as e:
            raise ServiceError(
                f"model API at {self.endpoint} did not answer {method} {path}: {e!r}",
                fix="check `labkit sandbox status`; bring it up with `labkit sandbox up`",
            ) from e

    def readiness(self) -> Readiness:
        try:
            r = self._request("GET", "/readyz")
        except ServiceError as e:
            return Readiness(False, "unreachable", e.message, 0)
        try:
            body = r.json()
        except ValueError:
            body = {}
        return Readiness(
            ready=r.status_code == 200,
            reason=str(body.get("reason", "")),
            detail=str(body.get("detail", "")),
            status_code=r.status_code,
        )

    def healthy(self) -> bool:
        """Liveness: ``GET /healthz`` answers 200 (the process serves HTTP; says nothing about
        whether it can serve searches, which is ``readiness()``)."""
        try:
            return self._request("GET", "/healthz").status_code == 200
        except ServiceError:
            return False

    def version(self) -> dict[str, Any]:
        return self._json("GET", "/version")

    def search(self, text: str, k: int | None = None) -> dict[str, Any]:
        return self._json("POST", "/v1/search", json={"query": text, "k": k})

    def agent(self, query: str, alert: str = "") -> dict[str, Any]:
        """Ask the ops agent (``POST /v1/agent``): the runbook it read, every command it proposed
        with the policy's decision, and the one it executed (simulated), if any."""
        return self._json("POST", "/v1/agent", json={"query": query, "alert": alert})

    def metrics_text(self) -> str:
        r = self._request("GET", "/metrics")
        if r.status_code != 200:
            raise ServiceError(f"GET /metrics answered {r.status_code}: {r.text[:200]}")
        return r.text

    def metrics(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        """Samples by name: ``{"modelapi_ready": [({}, 1.0)], ...}``."""
        samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(self.metrics_text()):
            for s in family.samples:
                samples.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
        return samples

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        r = self._request(method, path, **kwargs)
        try:
            body = r.json()
        except ValueError:
            body = {"raw": r.text[:500]}
        if r.status_code >= 400:
            reason = body.get("reason") or body.get("detail") or body
            raise ServiceError(
                f"{method} {path} answered {r.status_code}: {reason}",
                fix="check `labkit sandbox status` for the serving revision's readiness",
            )
        return body

    def evaluate(self, k: int = 5, items: list[EvalItem] | None = None, concurrency: int = 4) -> EvalReport:
        """Run the eval set against the live service and compute recall@k. The searches go
        ``concurrency`` at a time (answers kept in the eval set's order): a service whose
        reranker waits out its timeout on every request still answers the set in seconds."""
        items = items if items is not None else load_eval_set()

        def ask(item: EvalItem) -> dict[str, Any] | ServiceError:
            try:
                return self.search(item.query, k=k)
            except ServiceError as e:
                return e

        with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="labkit-eval") as pool:
            answers = list(pool.map(ask, items))
        hits, errors, misses, served = 0, 0, [], {}
        for item, body in zip(items, answers):
            if isinstance(body, ServiceError):
                errors += 1
                misses.append({"query": item.query, "expected": list(item.expected), "error": body.message})
                continue
            got = [r["id"] for r in body.get("results", [])][:k]
            key = f"{body.get('model')}/{body.get('index')}"
            served[key] = served.get(key, 0) + 1
            if any(e in got for e in item.expected):
                hits += 1
            else:
                misses.append({"query": item.query, "expected": list(item.expected), "got": got})
        total = len(items)
        return EvalReport(k, hits / total if total else 0.0, total, hits, misses, errors, served)

    def wait_ready(self, timeout_s: float, poll_s: float = 0.1) -> Readiness:
        """Poll ``/readyz`` until ready or ``timeout_s``; returns the last answer."""
        last = [self.readiness()]

        def ready() -> Readiness | None:
            last.append(self.readiness())
            return last[-1] if last[-1].ready else None

        try:
            return last[0] if last[0].ready else until(ready, timeout_s=timeout_s, interval_s=poll_s,
                                                       what=f"{self.endpoint}/readyz")
        except WaitTimeout:
            return last[-1]
