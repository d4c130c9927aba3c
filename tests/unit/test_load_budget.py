"""A load run stops for a latency budget only when the verdict can no longer change."""

from __future__ import annotations

import random

import pytest

from sandbox import load
from sandbox.load import Budget, percentile, send_searches


def _fake(monkeypatch, latencies: list[float], errors: set[int] = frozenset()) -> list[int]:
    """Requests answer with ``latencies`` in order (error for the indices in ``errors``)."""
    sent: list[int] = []

    def one(url: str, query: str, timeout_s: float) -> tuple[float, str, str]:
        i = len(sent)
        sent.append(i)
        return latencies[i], ("HTTP 500" if i in errors else ""), "ok"

    monkeypatch.setattr(load, "_one", one)
    return sent


@pytest.mark.parametrize(("planned", "slow_allowed"), [(60, 3), (120, 6), (200, 10), (19, 0), (20, 1)])
def test_budget_allows_the_slow_requests_a_p95_may_hold(planned, slow_allowed):
    budget = Budget(300)
    assert not budget.broken(slow_allowed, 0, planned)
    assert budget.broken(slow_allowed + 1, 0, planned)


def test_errors_beyond_the_rate_break_the_budget():
    assert not Budget(300, 0.01).broken(0, 1, 120)
    assert Budget(300, 0.01).broken(0, 2, 120)


def test_a_slow_service_is_judged_without_waiting_for_every_request(monkeypatch):
    sent = _fake(monkeypatch, [600.0] * 60)
    report = send_searches("http://x", ["q"], 60, concurrency=1, budget=Budget(300))
    assert report.stopped_early and report.total == len(sent) == 4 and report.planned == 60
    assert report.p95_ms > 300 and "stopped after 4 of 60" in report.summary()


def test_a_healthy_service_gets_every_request(monkeypatch):
    _fake(monkeypatch, [20.0] * 57 + [900.0] * 3)  # exactly the 5% a p95 may hold
    report = send_searches("http://x", ["q"], 60, concurrency=1, budget=Budget(300))
    assert not report.stopped_early and report.total == 60 and report.p95_ms <= 300


def test_without_a_budget_every_request_is_sent(monkeypatch):
    _fake(monkeypatch, [600.0] * 30)
    assert send_searches("http://x", ["q"], 30, concurrency=3).total == 30


def test_stopping_never_changes_the_verdict_of_the_full_run(monkeypatch):
    rng = random.Random(7)
    for _ in range(300):
        n = rng.randint(5, 150)
        share = rng.choice([0.0, 0.02, 0.05, 0.08, 0.3])
        latencies = [rng.uniform(500, 900) if rng.random() < share else rng.uniform(5, 50) for _ in range(n)]
        errors = {i for i in range(n) if rng.random() < share / 4}
        _fake(monkeypatch, latencies, errors)
        report = send_searches("http://x", ["q"], n, concurrency=1, budget=Budget(300, 0.01))
        full_broken = percentile(latencies, 95) > 300 or len(errors) / n > 0.01
        if report.stopped_early:
            assert full_broken
        else:
            assert report.total == n and (report.p95_ms > 300 or report.error_rate > 0.01) == full_broken
