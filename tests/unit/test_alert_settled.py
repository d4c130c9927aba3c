"""``drift_alert_fires`` stops waiting for an alert that cannot fire any more, and only then."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from graders.alerting import _settled_without_match

SENT = 1_000.0
EXPR = "modelapi_query_drift_score > 0.9 and modelapi_query_drift_window >= 100"


@dataclass
class _Sample:
    value: float


class _Prometheus:
    """Answers the two queries the decision makes: the last scrape's time, and the rule's expr."""

    def __init__(self, scraped_at: float | None, matches: bool) -> None:
        self.scraped_at, self.matches, self.asked = scraped_at, matches, []

    def query(self, promql: str):
        self.asked.append(promql)
        if promql.startswith("min(timestamp("):
            return [] if self.scraped_at is None else [_Sample(self.scraped_at)]
        return [_Sample(0.93)] if self.matches else []


@pytest.mark.parametrize(("scraped_at", "matches", "settled"), [
    (SENT + 1, False, True),    # Prometheus holds the drifted window and the rule matches nothing
    (SENT + 1, True, False),    # it matches: pending, then firing - keep waiting
    (SENT - 1, False, False),   # the last scrape predates the end of the traffic: too early to say
    (None, False, False),       # no drift window scraped at all
])
def test_settled_only_once_prometheus_holds_the_traffic_and_nothing_matches(scraped_at, matches, settled):
    assert _settled_without_match(_Prometheus(scraped_at, matches), EXPR, SENT) is settled


@pytest.mark.parametrize("expr", ["avg_over_time(modelapi_query_drift_score[1m]) > 0.8",
                                  "modelapi_query_drift_score offset 30s > 0.8"])
def test_an_expression_over_ranges_or_offsets_is_always_waited_for(expr):
    prom = _Prometheus(SENT + 1, False)
    assert _settled_without_match(prom, expr, SENT) is False
    assert prom.asked == []  # its value still moves as older samples leave the range
