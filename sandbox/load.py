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
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from .client import shared_http

MAX_REQUESTS = 2000
MAX_CONCURRENCY = 16
MAX_RATE_PER_S = 100.0
MAX_IN_FLIGHT = 64
"""Threads of an open-loop run: arrivals beyond them wait for a thread (and that wait counts)."""


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
    planned: int = 0
    """Requests the run would have sent; more than ``total`` when a :class:`Budget` stopped it."""

    @property
    def error_rate(self) -> float:
        return self.errors / self.total if self.total else 0.0

    @property
    def stopped_early(self) -> bool:
        return self.planned > self.total

    def summary(self) -> str:
        text = (f"p50 {self.p50_ms:.1f} ms, p95 {self.p95_ms:.1f} ms, max {self.max_ms:.1f} ms,"
                f" {self.errors}/{self.total} errors")
        if self.stopped_early:
            text += f" (stopped after {self.total} of {self.planned} requests: the rest could not change the verdict)"
        return text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Budget:
    """A latency verdict a run may stop for: once more requests of the planned ``n`` were slower
    than ``p95_ms`` than the 5% a p95 may hold (``n - ceil(0.95 n)``, nearest rank), or more
    failed than ``max_error_rate`` allows, the p95 or the error rate of all ``n`` breaks the budget
    whatever the remaining requests answer. A broken service is then judged in a second instead
    of waiting out every slow request; a healthy one still gets all ``n``."""

    p95_ms: float
    max_error_rate: float = 1.0

    def broken(self, slow: int, errors: int, planned: int) -> bool:
        return slow > planned - math.ceil(0.95 * planned) or errors > math.floor(self.max_error_rate * planned)


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
    budget: Budget | None = None,
) -> LoadReport:
    """Send ``requests`` searches (cycling through ``queries``) with ``concurrency`` threads; with
    a ``budget``, stop as soon as the run can only break it (see :class:`Budget`)."""
    requests = max(1, min(int(requests), MAX_REQUESTS))
    concurrency = max(1, min(int(concurrency), MAX_CONCURRENCY))
    url = endpoint.rstrip("/") + "/v1/search"
    batch = list(itertools.islice(itertools.cycle(queries or ["alert firing"]), requests))
    t0 = time.perf_counter()
    outcomes = _send(url, batch, concurrency, timeout_s, budget)
    return _report(outcomes, time.perf_counter() - t0, requests)


def send_at_rate(
    endpoint: str,
    queries: list[str],
    rate_per_s: float,
    requests: int,
    seed: int = 7,
    timeout_s: float = 5.0,
) -> LoadReport:
    """Open-loop load: ``requests`` searches arriving as a Poisson process of ``rate_per_s``
    (seeded: the same arrival times every run), each sent at its arrival whatever the answers
    before it. Demand is what it is, as real users' is: a slow service does not slow the
    arrivals down (the closed loop of :func:`send_searches` does), so queueing shows.

    A request's latency counts from its scheduled arrival, not from when a thread got to send
    it, so a late sender cannot hide a wait (no "coordinated omission").
    """
    requests = max(1, min(int(requests), MAX_REQUESTS))
    rate = max(0.1, min(float(rate_per_s), MAX_RATE_PER_S))
    url = endpoint.rstrip("/") + "/v1/search"
    rng = random.Random(seed)
    batch = list(itertools.islice(itertools.cycle(queries or ["alert firing"]), requests))
    offsets = list(itertools.accumulate(rng.expovariate(rate) for _ in batch))
    t0 = time.perf_counter()

    def at(query: str, offset: float) -> tuple[float, str, str]:
        ms, error, provider = _one(url, query, timeout_s)
        late = time.perf_counter() - ms / 1000 - (t0 + offset)  # the sender's lag, waited all the same
        return ms + max(0.0, late) * 1000, error, provider

    with ThreadPoolExecutor(max_workers=MAX_IN_FLIGHT, thread_name_prefix="labkit-rate") as pool:
        futures = []
        for query, offset in zip(batch, offsets):
            time.sleep(max(0.0, t0 + offset - time.perf_counter()))
            futures.append(pool.submit(at, query, offset))
        outcomes = [f.result() for f in futures]
    return _report(outcomes, time.perf_counter() - t0, requests)


def _report(outcomes: list[tuple[float, str, str]], seconds: float, planned: int) -> LoadReport:
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
        planned=planned,
    )


def _send(url: str, batch: list[str], concurrency: int, timeout_s: float,
          budget: Budget | None) -> list[tuple[float, str, str]]:
    """The outcomes of ``batch`` sent by ``concurrency`` threads, all of it unless ``budget``
    is broken first (requests in flight then still finish and count)."""
    lock, stop = threading.Lock(), threading.Event()
    pending = iter(batch)
    outcomes: list[tuple[float, str, str]] = []
    slow = [0, 0]  # requests over the budget, failed requests

    def worker() -> None:
        while not stop.is_set():
            with lock:
                query = next(pending, None)
            if query is None:
                return
            outcome = _one(url, query, timeout_s)
            with lock:
                outcomes.append(outcome)
                if budget is not None:
                    slow[0] += outcome[0] > budget.p95_ms
                    slow[1] += bool(outcome[1])
                    if budget.broken(slow[0], slow[1], len(batch)):
                        stop.set()

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="labkit-load") as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    return outcomes
