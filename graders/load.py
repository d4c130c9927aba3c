"""Drift measurements the grader takes itself (the load generator is ``sandbox.load``)."""

from __future__ import annotations

from sandbox.client import ServiceClient
from sandbox.load import send_searches


def drift_score(endpoint: str, timeout_s: float = 5.0) -> tuple[float, int]:
    """(``modelapi_query_drift_score``, ``modelapi_query_drift_window``) of one replica."""
    samples = ServiceClient(endpoint, timeout_s).metrics()
    score = samples.get("modelapi_query_drift_score", [({}, 0.0)])[0][1]
    window = samples.get("modelapi_query_drift_window", [({}, 0.0)])[0][1]
    return float(score), int(window)


def drift_scores(endpoints: list[str], queries: list[str], window: int = 200,
                 rounds: int = 1, concurrency: int = 4) -> list[tuple[float, int]]:
    """Fill each endpoint's drift window with ``queries``, then read its drift score.

    ``rounds`` windows' worth are sent to each endpoint: through a front door that balances
    over N replicas, send N rounds so each replica's window holds these queries only.
    """
    out = []
    for endpoint in endpoints:
        send_searches(endpoint, queries, max(window, len(queries)) * max(1, rounds), concurrency)
        out.append(drift_score(endpoint))
    return out
