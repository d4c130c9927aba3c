"""What the model API tells its operators: Prometheus metrics, the query-drift window, and the
ASGI middleware that counts, times and logs every request under its request id.

``modelapi_query_drift_score`` is ``1 - mean(top1)`` over the last :data:`DRIFT_WINDOW` searches
(see the ``app`` module's doc for what it means and how to alert on it).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest

from . import REQUEST_ID, REQUEST_ID_HEADER, new_request_id

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DRIFT_WINDOW", "DriftWindow", "InstrumentationMiddleware", "Metrics", "PROVIDER_BUCKETS",
           "cgroup_cpu_limit"]

access_log = logging.getLogger("modelapi.access")

DRIFT_WINDOW = 200
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.0)
PROVIDER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SCORE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass
class DriftWindow:
    """Sliding window of top-1 scores; ``score`` = 1 - mean (0 when empty)."""

    size: int = DRIFT_WINDOW
    _scores: deque[float] = field(init=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._scores = deque(maxlen=self.size)

    def add(self, top1: float) -> None:
        """Record the top-1 cosine score of one search."""
        with self._lock:
            self._scores.append(top1)

    def count(self) -> int:
        """Number of searches currently in the window."""
        return len(self._scores)

    def score(self) -> float:
        """Return ``1 - mean(top1)`` over the window, or 0.0 if it is empty."""
        with self._lock:
            if not self._scores:
                return 0.0
            return 1.0 - sum(self._scores) / len(self._scores)


CGROUP_ROOT = Path("/sys/fs/cgroup")


class Metrics:
    """Prometheus metrics of one app, in their own :class:`CollectorRegistry`."""

    def __init__(self, cgroup: Path = CGROUP_ROOT) -> None:
        self.registry = reg = CollectorRegistry()
        counter = partial(Counter, registry=reg)
        gauge = partial(Gauge, registry=reg)
        histogram = partial(Histogram, registry=reg)
        self.requests = counter(
            "modelapi_requests_total", "HTTP requests", ["route", "method", "status"]
        )
        self.latency = histogram(
            "modelapi_request_latency_seconds", "HTTP latency", ["route"], buckets=LATENCY_BUCKETS
        )
        self.model_info = gauge("modelapi_model_info", "Model served (1)", ["model_version"])
        self.build_info = gauge("modelapi_build_info", "Build (1)", ["revision", "version"])
        self.index_info = gauge(
            "modelapi_index_info", "Loaded index (1)", ["index", "model_version", "corpus_snapshot"]
        )
        self.index_age = gauge("modelapi_index_age_seconds", "Seconds since the index was built")
        self.ready = gauge("modelapi_ready", "1 if ready to serve searches")
        self.provider = counter("modelapi_provider_requests_total", "Rerank calls", ["outcome"])
        for outcome in ("ok", "timeout", "error"):
            self.provider.labels(outcome=outcome)
        self.provider_latency = histogram(
            "modelapi_provider_latency_seconds",
            "Time the model API waited for the reranker, by outcome (cut at the timeout)",
            ["outcome"], buckets=PROVIDER_BUCKETS,
        )
        for outcome in ("ok", "timeout", "error"):  # exported at 0 from the start: rates see the first calls
            self.provider_latency.labels(outcome=outcome)
        self.drift = gauge("modelapi_query_drift_score", "1 - mean top-1 score, last 200 searches")
        self.drift_window = gauge("modelapi_query_drift_window", "Searches in the drift window")
        self.top1 = histogram(
            "modelapi_query_top1_score", "Top-1 cosine score per search", buckets=SCORE_BUCKETS
        )
        # Saturation: CPU used (process_cpu_seconds_total) against the container's CPU limit,
        # and requests being served right now (queueing shows here first).
        ProcessCollector(registry=reg)
        self.agent_actions = counter("modelapi_agent_actions_total", "The ops agent's proposals by decision",
                                     ["decision", "source"])
        self.in_flight = gauge("modelapi_requests_in_flight", "HTTP requests being served now")
        self.cpu_limit = gauge("modelapi_cpu_limit_cores", "CPU limit of the container, read at each scrape (cgroup v2 cpu.max or v1 CFS quota; NaN = none)")
        self.cpu_limit.set_function(lambda: cgroup_cpu_limit(cgroup))  # read at every scrape: a live
        # resize (docker update, a pod's resize subresource) changes the limit of a running replica

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one HTTP request and record its latency."""
        self.requests.labels(route=route, method=method, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)

    def render(self) -> bytes:
        """Return the Prometheus text exposition of this registry."""
        return generate_latest(self.registry)


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float:
    """Cores the container may use, NaN if unlimited: cgroup v2 ``cpu.max`` (quota and period),
    else cgroup v1 ``cpu/cpu.cfs_quota_us`` over ``cpu/cpu.cfs_period_us`` (quota -1: none)."""
    try:
        if (root / "cpu.max").exists():
            quota, period = (root / "cpu.max").read_text().split()[:2]
        else:
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
        return math.nan if quota in ("max", "-1") else int(quota) / int(period)
    except (OSError, ValueError):
        return math.nan


class RequestObserver(Protocol):
    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None: ...


class InstrumentationMiddleware:
    """ASGI middleware: request metrics by route and one JSON log line each (a plain ASGI
    middleware: Starlette's ``BaseHTTPMiddleware`` runs every request through extra tasks and
    streams, which on this stack cost the rerank provider a large share of its throughput).

    Every request gets a request id: the caller's ``X-Request-ID`` if it sent one (as an
    ingress or another service would), else a fresh one. It is answered in the response's
    ``X-Request-ID``, carried by every log line written while serving the request and sent on
    to the provider, so one id finds a search in the logs of both services.

    ``routes``: the paths counted under their own name (others as ``<unmatched>``); without
    it, the route template the router matched. ``unobserved``: paths neither counted nor logged
    (a scrape of ``/metrics``).
    """

    def __init__(self, app: ASGIApp, metrics: RequestObserver, *, in_flight: Gauge | None = None,
                 logger: logging.Logger = access_log, routes: frozenset[str] | None = None,
                 unobserved: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.metrics = metrics
        self.in_flight = in_flight
        self.log = logger
        self.routes = routes
        self.unobserved = unobserved

    def _route(self, scope: Scope) -> str:
        if self.routes is not None:
            return scope["path"] if scope["path"] in self.routes else "<unmatched>"
        return getattr(scope.get("route"), "path", None) or "<unmatched>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.unobserved:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        request_id = _incoming_request_id(scope) or new_request_id()
        token = REQUEST_ID.set(request_id)
        if self.in_flight is not None:
            self.in_flight.inc()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", []),
                                                  (REQUEST_ID_HEADER.lower().encode(), request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = self._route(scope)
            self.metrics.observe_request(route, scope["method"], status, elapsed)
            self.log.info("request", extra={"route": route, "method": scope["method"], "status": status,
                                            "latency_ms": round(elapsed * 1000, 3)})
            if self.in_flight is not None:
                self.in_flight.dec()
            REQUEST_ID.reset(token)


def _incoming_request_id(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` if it is a sane token (<= 64 printable chars), else ''."""
    wanted = REQUEST_ID_HEADER.lower().encode()
    for name, value in scope.get("headers", []):
        if name == wanted:
            text = value.decode("latin-1").strip()
            if 0 < len(text) <= 64 and all(33 <= ord(ch) < 127 for ch in text):
                return text
    return ""

