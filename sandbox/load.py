"""Bounded search load against a sandbox, and the latencies it measured: the one load
generator of the kit (fault probes, ``run_load`` in the labs, the graders' SLO checks).

Requests go from this process to an endpoint on 127.0.0.1 (a thread pool, each request on a
fresh connection so that the gateway balances it) and are timed with ``time.perf_counter``.
A failed request counts as an error and its time still counts in the percentiles: users
waited for it. The grader runs this in its own process, never trusting a notebook's numbers.
"""

from __future__ import annotations

import itertools
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from .client import shared_http

MAX_REQUESTS = 2000
MAX_CONCURRENCY = 16


@dataclass
class LoadReport:
    """Latencies (milliseconds) and errors of one load run."""

    total: int
    errors: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    seconds: float
    error_samples: list[str] = field(default_factory=list)
    provider: dict[str, int] = field(default_factory=dict)
    """How many answers reported each provider outcome (ok, timeout, error, disabled)."""

    @property
    def error_rate(self) -> float:
        return self.errors / self.total if self.total else 0.0

    def summary(self) -> str:
        return (f"p50 {self.p50_ms:.1f} ms, p95 {self.p95_ms:.1f} ms, max {self.max_ms:.1f} ms,"
                f" {self.errors}/{self.total} errors")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _one(url: str, query: str, timeout_s: float) -> tuple[float, str, str]:
    """Send one search; (milliseconds, error text or "", provider outcome)."""
    t0 = time.perf_counter()
    provider = "error"
    try:
        r = shared_http().post(url, json={"query": query, "k": 5}, timeout=timeout_s)
        error = "" if r.status_code == 200 else f"HTTP {r.status_code}"
        if not error:
            provider = str(r.json().get("provider", ""))
    except (httpx.HTTPError, ValueError) as e:
        error = type(e).__name__
    return (time.perf_counter() - t0) * 1000, error, provider


def send_searches(
    endpoint: str,
    queries: list[str],
    requests: int,
    concurrency: int = 4,
    timeout_s: float = 5.0,
) -> LoadReport:
    """Send ``requests`` searches (cycling through ``queries``) with ``concurrency`` threads."""
    requests = max(1, min(int(requests), MAX_REQUESTS))
    concurrency = max(1, min(int(concurrency), MAX_CONCURRENCY))
    url = endpoint.rstrip("/") + "/v1/search"
    batch = list(itertools.islice(itertools.cycle(queries or ["alert firing"]), requests))
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="labkit-load") as pool:
        outcomes = list(pool.map(lambda q: _one(url, q, timeout_s), batch))
    seconds = time.perf_counter() - t0
    latencies = [ms for ms, _, _ in outcomes]
    errors = [e for _, e, _ in outcomes if e]
    providers: dict[str, int] = {}
    for _, _, outcome in outcomes:
        providers[outcome] = providers.get(outcome, 0) + 1
    return LoadReport(
        total=len(outcomes),
        errors=len(errors),
        p50_ms=round(percentile(latencies, 50), 2),
        p95_ms=round(percentile(latencies, 95), 2),
        max_ms=round(max(latencies), 2),
        seconds=round(seconds, 3),
        error_samples=sorted(set(errors))[:5],
        provider=providers,
    )
