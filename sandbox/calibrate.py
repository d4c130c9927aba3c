"""How fast this machine is right now, measured in the same run as a latency verdict.

An SLO verdict compares a latency with a budget. The budget of a lab is stated for the reference
machine (the 2-core runner the course was written on); on a machine twice as slow, or one whose
cores a CPU hog keeps busy, a healthy service is slower too. ``slowdown()`` times a fixed piece
of work shaped like a search (parse a JSON request, score a small matrix, serialise the answer)
in this process and divides by the time the same work took on the reference machine; a latency
budget is then ``budget_ms * slowdown()`` (never below the stated budget). The faults the labs
inject (a replica throttled to 0.02 cores, a provider 2 s slow) are an order of magnitude past
any budget, so they stay broken however slow the machine is, and healthy stays healthy.
"""

from __future__ import annotations

import json
import statistics
import time

import numpy as np

#: Median milliseconds of ``_work()`` on the reference machine (measured 2026-12-01 on the 2-core
#: runner the course is written on, with the test suite busy beside it: 1.00-1.19 ms).
REFERENCE_MS = 1.1
ROUNDS = 9


def _work(rng: np.random.Generator, matrix: np.ndarray) -> None:
    for _ in range(40):
        body = json.dumps({"query": "p99 latency doubled after deploy", "k": 5, "pad": "x" * 64})
        query = json.loads(body)
        vec = rng.standard_normal(matrix.shape[1]).astype(np.float32)
        scores = matrix @ vec
        top = np.argsort(-scores)[: query["k"]]
        json.dumps({"results": [{"id": int(i), "score": float(scores[i])} for i in top]})


def measure_ms(rounds: int = ROUNDS) -> float:
    """Median wall-clock milliseconds of the reference work in this process, now."""
    rng = np.random.default_rng(7)
    matrix = rng.standard_normal((256, 256)).astype(np.float32)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        _work(rng, matrix)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def slowdown(rounds: int = ROUNDS) -> float:
    """How many times slower than the reference machine this one is now (at least 1.0)."""
    return max(1.0, measure_ms(rounds) / REFERENCE_MS)
