"""The provider's simulated accelerator pool, the open-loop load that exposes it, and the
public ``sb.provider_pool`` that resizes it (bounds checked before the provider is called)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from sandbox import load
from sandbox.api import Sandbox
from sandbox.spec import POOL_SLOT_QUOTA
from sandbox.control.policy import OPERATIONS
from sandbox.errors import InvalidInput
from sandbox.modelapi.envconfig import ConfigError
from sandbox.modelapi.pool import SlotPool
from sandbox.modelapi.provider import ProviderConfig, create_provider_app


def _served(pool: SlotPool, order: list[int], i: int):
    async def one() -> None:
        async with pool.serve():
            order.append(i)
    return one()


def test_requests_beyond_the_slots_queue_first_come_first_served():
    async def main() -> tuple[list[int], float, dict]:
        pool = SlotPool(CollectorRegistry(), slots=2, service_ms=50)
        order: list[int] = []
        t0 = time.perf_counter()
        tasks = []
        for i in range(6):
            tasks.append(asyncio.create_task(_served(pool, order, i)))
            await asyncio.sleep(0)  # arrivals in order
        await asyncio.gather(*tasks)
        return order, time.perf_counter() - t0, pool.describe()

    order, seconds, state = asyncio.run(main())
    assert order == [0, 1, 2, 3, 4, 5]
    assert seconds >= 0.15  # 6 requests / 2 slots x 50 ms: three rounds, not one
    assert state == {"slots": 2, "service_ms": 50.0, "busy": 0, "queued": 0}


def test_a_resize_hands_new_slots_to_the_queue_at_once():
    async def main() -> tuple[int, int]:
        pool = SlotPool(CollectorRegistry(), slots=1, service_ms=200)
        tasks = [asyncio.create_task(_served(pool, [], i)) for i in range(4)]
        await asyncio.sleep(0.02)
        queued_before = pool.describe()["queued"]
        pool.resize(slots=4)
        await asyncio.sleep(0.02)
        busy_after = pool.busy
        await asyncio.gather(*tasks)
        return queued_before, busy_after

    assert asyncio.run(main()) == (3, 4)


def test_a_cancelled_waiter_leaves_the_queue_and_a_cancelled_holder_frees_its_slot():
    async def main() -> dict:
        pool = SlotPool(CollectorRegistry(), slots=1, service_ms=100)
        holder = asyncio.create_task(_served(pool, [], 0))
        waiter = asyncio.create_task(_served(pool, [], 1))
        await asyncio.sleep(0.01)
        waiter.cancel()
        holder.cancel()
        await asyncio.gather(holder, waiter, return_exceptions=True)
        return pool.describe()

    assert asyncio.run(main()) == {"slots": 1, "service_ms": 100.0, "busy": 0, "queued": 0}


def test_the_pool_is_off_by_default_and_its_metrics_are_exported():
    async def main() -> tuple[dict, str, float, dict]:
        app = create_provider_app(ProviderConfig(data_dir=Path("/nonexistent"), mode="ok"))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p") as c:
            off = (await c.get("/admin/pool")).json()
            resized = (await c.post("/admin/pool", json={"slots": 1, "service_ms": 40})).json()
            t0 = time.perf_counter()
            await asyncio.gather(*[c.post("/rerank", json={"query": "q", "candidates": ["a"]}) for _ in range(3)])
            seconds = time.perf_counter() - t0
            bad = (await c.post("/admin/pool", json={"slots": 99})).status_code
            return off, (await c.get("/metrics")).text, seconds, {"resized": resized, "bad": bad}

    off, metrics, seconds, more = asyncio.run(main())
    assert off["slots"] == 0 and more["resized"]["slots"] == 1 and more["bad"] == 422
    assert seconds >= 0.12  # three reranks through one 40 ms slot
    for name in ("provider_pool_slots 1.0", "provider_pool_busy_slots 0.0", "provider_pool_queue_depth 0.0",
                 "provider_queue_wait_seconds_count 3.0", "provider_slot_seconds_count 3.0"):
        assert name in metrics


@pytest.mark.parametrize("env, says", [({"PROVIDER_SLOTS": "40"}, "PROVIDER_SLOTS=40"),
                                       ({"PROVIDER_SERVICE_MS": "-1"}, "PROVIDER_SERVICE_MS")])
def test_pool_settings_out_of_range_are_refused_at_start(env, says):
    with pytest.raises(ConfigError, match=says):
        ProviderConfig.from_env(env)


def test_open_loop_latency_counts_from_the_scheduled_arrival(monkeypatch):
    """One thread and a 40 ms service at 50 arrivals/s: every arrival waits behind the ones before
    it. Timed from the send, each would read 40 ms (coordinated omission); from its arrival the
    wait shows."""
    monkeypatch.setattr(load, "MAX_IN_FLIGHT", 1)
    monkeypatch.setattr(load, "_one", lambda url, q, t: (time.sleep(0.04), (40.0, "", "ok"))[1])
    report = load.send_at_rate("http://x", ["q"], rate_per_s=50, requests=40, seed=3)
    assert report.total == 40 and report.provider == {"ok": 40}
    assert report.p95_ms > 300


def test_open_loop_arrivals_are_the_same_every_run(monkeypatch):
    sent: list[float] = []
    monkeypatch.setattr(load, "_one", lambda url, q, t: (sent.append(time.perf_counter()), (1.0, "", "ok"))[1])
    load.send_at_rate("http://x", ["q"], rate_per_s=40, requests=20, seed=5)
    first = [b - a for a, b in zip(sent, sent[1:])]
    sent.clear()
    load.send_at_rate("http://x", ["q"], rate_per_s=40, requests=20, seed=5)
    again = [b - a for a, b in zip(sent, sent[1:])]
    assert sum(first) == pytest.approx(sum(again), abs=0.05)


class _Provider:
    """What ``Sandbox.provider_pool`` reaches: the provider's HTTP API, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def provider_call(self, method, path, body=None):
        self.calls.append((method, path, body))
        return {"slots": (body or {}).get("slots", 2)}


@pytest.mark.parametrize("slots", [0, POOL_SLOT_QUOTA + 1, 2.5, True, "4"])
def test_provider_pool_refuses_sizes_outside_the_account_before_calling(slots):
    sb = _Provider()
    with pytest.raises(InvalidInput, match="1 to 8 slots"):
        Sandbox.provider_pool(sb, slots=slots)
    assert sb.calls == []


def test_provider_pool_reads_and_resizes_and_a_trainee_kernel_may_call_it():
    sb = _Provider()
    assert Sandbox.provider_pool(sb) == {"slots": 2} and Sandbox.provider_pool(sb, slots=4) == {"slots": 4}
    assert sb.calls == [("GET", "/admin/pool", None), ("POST", "/admin/pool", {"slots": 4})]
    assert OPERATIONS["provider_pool"] is True and OPERATIONS["provider_call"] is False
