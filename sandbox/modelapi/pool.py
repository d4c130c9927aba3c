"""The provider's simulated accelerator pool: a fixed number of slots and a FIFO queue.

The machines this kit runs on have no accelerators; the pool stands in for an inference
provider's GPU slots. With the pool on (``slots > 0``), every ``/rerank`` holds one slot for
``service_ms`` (the model's time on the accelerator: a sleep, so it costs no CPU and does not
change with the machine's speed); a request that finds every slot busy waits in the queue, first
come first served. Demand beyond the slots therefore shows the way it does on real hardware:
not as errors but as queueing latency, ``provider_queue_wait_seconds``, which grows without
bound once the offered load (requests per second x service time, in Erlangs) passes the slots.

A request the model API has given up on (its provider timeout) keeps its place and its slot: the
accelerator finishes work nobody waits for, so a client timeout does not shed load here.

``slots = 0`` (the default) switches the pool off: the provider answers at once, as before.
Changed at run time by ``POST /admin/pool {"slots": n, "service_ms": ms}``.

Metrics (the provider's registry, scraped as job ``provider``):

* ``provider_pool_slots``: slots in the pool now (0: pool off);
* ``provider_pool_busy_slots``: slots serving a request now;
* ``provider_pool_queue_depth``: requests waiting for a slot now;
* ``provider_queue_wait_seconds``: histogram of the time a request waited for its slot;
* ``provider_slot_seconds``: histogram of the time a request held its slot (its ``_sum`` rate
  is the carried load in Erlangs: slot-seconds per second).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram
from pydantic import BaseModel, Field

__all__ = ["MAX_SLOTS", "PoolRequest", "SlotPool"]

#: The most slots a pool can have (a provider's account limit; the lab's budget is lower).
MAX_SLOTS = 32
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)


class PoolRequest(BaseModel):
    """Body of ``POST /admin/pool``: either field may be left out."""

    slots: int | None = Field(default=None, ge=0, le=MAX_SLOTS)
    service_ms: float | None = Field(default=None, ge=0, le=5000)


class SlotPool:
    """``slots`` accelerator slots shared by the provider's requests, with a FIFO queue.

    Single-threaded (the provider's event loop): no lock, the hand-over is a future per waiter.
    """

    def __init__(self, registry: CollectorRegistry, slots: int = 0, service_ms: float = 0.0) -> None:
        self.slots, self.service_ms = int(slots), float(service_ms)
        self.busy = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._slots_g = Gauge("provider_pool_slots", "Accelerator slots in the pool (0: pool off)",
                              registry=registry)
        Gauge("provider_pool_busy_slots", "Accelerator slots serving a request", registry=registry
              ).set_function(lambda: self.busy)
        Gauge("provider_pool_queue_depth", "Requests waiting for an accelerator slot", registry=registry
              ).set_function(lambda: len(self._waiters))
        self._wait_h = Histogram("provider_queue_wait_seconds", "Time a request waited for its slot",
                                 buckets=WAIT_BUCKETS, registry=registry)
        self._held_h = Histogram("provider_slot_seconds", "Time a request held its slot",
                                 buckets=WAIT_BUCKETS, registry=registry)
        self._slots_g.set(self.slots)

    @property
    def on(self) -> bool:
        return self.slots > 0

    def describe(self) -> dict[str, Any]:
        return {"slots": self.slots, "service_ms": self.service_ms, "busy": self.busy,
                "queued": len(self._waiters)}

    def resize(self, slots: int | None = None, service_ms: float | None = None) -> dict[str, Any]:
        """Change the pool; waiters take new slots at once, in their order. Requests in service
        on slots removed finish first (the pool shrinks as they leave)."""
        if slots is not None:
            self.slots = int(slots)
            self._slots_g.set(self.slots)
        if service_ms is not None:
            self.service_ms = float(service_ms)
        self._hand_over()
        return self.describe()

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[None]:
        """Hold a slot for ``service_ms`` around the body (no-op with the pool off)."""
        if not self.on:
            yield
            return
        loop = asyncio.get_running_loop()
        queued_at = loop.time()
        await self._acquire(loop)
        started = loop.time()
        self._wait_h.observe(started - queued_at)
        try:
            await asyncio.sleep(self.service_ms / 1000)
            yield
        finally:
            self._held_h.observe(loop.time() - started)
            self.busy -= 1
            self._hand_over()

    async def _acquire(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.busy < self.slots and not self._waiters:
            self.busy += 1
            return
        turn: asyncio.Future[None] = loop.create_future()
        self._waiters.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # handed a slot, then cancelled: give it back
                self.busy -= 1
                self._hand_over()
            else:
                self._waiters.remove(turn)
            raise

    def _hand_over(self) -> None:
        """Give free slots to the waiters at the head of the queue (a slot is counted busy as
        it is handed over, so a new arrival cannot overtake the queue)."""
        while self._waiters and (self.busy < self.slots or not self.on):
            turn = self._waiters.popleft()
            if not turn.done():
                self.busy += 1
                turn.set_result(None)
