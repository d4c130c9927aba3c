"""Observers of the provider's accelerator pool (``modelapi.pool``), shared by the fault catalog
and the graders: the latency SLO under open-loop demand at a forecast rate, and the pool's size
against the budget. Both read live state only: the grader's own arrivals through the front door,
and the provider's pool as the provider reports it.
"""

from __future__ import annotations

from ..api import Sandbox
from ..calibrate import budget_ms
from ..client import load_queries
from ..load import send_at_rate
from ..observe import Observation, broken, holds, observer
from ..waiting import until
from .probes import _not_ready

DRAIN_TIMEOUT_S = 60.0


def drained(sb: Sandbox, timeout_s: float = DRAIN_TIMEOUT_S) -> dict:
    """The pool once the queue an earlier load left has drained (requests a caller gave up on
    still take their slot): a verdict about the pool, not about someone else's backlog."""
    return until(lambda: pool if (pool := sb.provider_pool())["queued"] == 0 else None, timeout_s=timeout_s,
                 interval_s=0.25, what="the provider's queue to drain", describe=lambda: str(sb.provider_pool()))


@observer("pool_holds_slo")
def pool_holds_slo(sb: Sandbox, rate_per_s: float = 24.0, requests: int = 240, slo_ms: float = 300,
                   min_reranked: float = 0.99, seed: int = 7) -> Observation:
    """From an empty queue, at ``rate_per_s`` searches a second arriving as users' do (Poisson,
    open loop), p95 is within ``slo_ms`` (scaled by this machine's measured slowdown) with no
    errors, and at least ``min_reranked`` of the answers were reranked by the provider: an answer
    that fell back to vector order because the provider timed out is fast and wrong."""
    budget = budget_ms(slo_ms)
    expected = (f"at {rate_per_s:g} searches/s: p95 <= {slo_ms:g} ms (+{budget - slo_ms:.0f} ms for this"
                f" machine's speed), 0 errors, >= {min_reranked:.0%} reranked")
    not_ready = _not_ready("pool_holds_slo", sb, expected)
    if not_ready is not None:
        return not_ready
    drained(sb)
    report = send_at_rate(sb.endpoint, load_queries("baseline"), rate_per_s, requests, seed=seed)
    reranked = report.provider.get("ok", 0) / report.total
    pool = sb.provider_pool()
    observed = (f"{report.summary()}, {reranked:.0%} reranked, at {rate_per_s:g}/s against"
                f" {pool['slots']} slot(s) of {pool['service_ms']:g} ms")
    data = report.to_dict() | {"budget_ms": round(budget, 1), "reranked": round(reranked, 4), "pool": pool}
    if report.p95_ms <= budget and report.errors == 0 and reranked >= min_reranked:
        return holds("pool_holds_slo", observed, expected, **data)
    offered = rate_per_s * pool["service_ms"] / 1000
    hint = (f"the offered load is {rate_per_s:g}/s x {pool['service_ms']:g} ms = {offered:.2f} Erlangs on"
            f" {pool['slots']} slot(s): read provider_queue_wait_seconds and provider_pool_busy_slots /"
            " provider_pool_slots, and size the pool (sb.provider_pool(slots=...)); model API replicas"
            " do not add accelerator slots")
    if report.errors:
        hint = f"{report.errors} searches failed ({', '.join(report.error_samples)}); " + hint
    return broken("pool_holds_slo", observed, expected, hint, **data)


@observer("pool_within_budget")
def pool_within_budget(sb: Sandbox, max_slots: int = 5, min_slots: int = 1) -> Observation:
    """The provider's pool has between ``min_slots`` and ``max_slots`` slots now (the budget)."""
    pool = sb.provider_pool()
    observed = f"{pool['slots']} slot(s) of {pool['service_ms']:g} ms"
    expected = f"{min_slots} to {max_slots} slots (the budget)"
    if min_slots <= pool["slots"] <= max_slots:
        return holds("pool_within_budget", observed, expected, slots=pool["slots"])
    hint = ("over budget: every slot is paid for by the hour; size to the forecast with the headroom"
            " the plan states, not to the quota" if pool["slots"] > max_slots else
            "the pool is smaller than any plan allows")
    return broken("pool_within_budget", observed, expected, hint, slots=pool["slots"])
