"""Checks of the trainee's rule files, judged by the sandbox's own Prometheus and Alertmanager
(registered into ``graders.checks.CHECKS``).

* ``drift_alert_fires`` takes the rule file the trainee loaded (``sb.rules.source``: what
  Prometheus reads, not a notebook variable), checks its shape (a ``for:`` and a
  minimum-window condition) and then sends the grader's own traffic: baseline (the alert
  must stay quiet), drifted (it must fire in Alertmanager within the stated time), baseline
  again (it must resolve within the stated time).
* ``rules_recorded`` asks Prometheus for the trainee's recording rules by name and compares
  each value with the same SLI computed by the grader from the raw series.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from typing import Any

from sandbox.client import load_queries
from sandbox.errors import PrometheusUnavailable
from sandbox.load import send_searches

from .checks import register
from .load import drift_scores
from sandbox.observe import Observation, broken, holds

#: How long the grader watches a rule: quiet on baseline for at least ``QUIET_MIN_S`` (and
#: the rule's own ``for:`` plus a few evaluations), firing and resolving within these times
#: after the traffic changed (on top of the rule's ``for:``).
QUIET_MIN_S = 8.0
QUIET_MAX_S = 40.0
FIRE_WITHIN_S = 60.0
RESOLVE_WITHIN_S = 60.0
MAX_FOR_S = 60.0


def _wait(condition: Callable[[], bool], timeout_s: float, poll_s: float = 1.0) -> bool:
    """True as soon as ``condition()`` holds, False if it never did within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_s)


def _replica_endpoints(sb: Any) -> tuple[list[str], int]:
    """Each serving replica directly when the backend can (1 round each), else the front
    door with one round per replica."""
    st = sb.status()
    try:
        urls = sb.revision_endpoints(st.serving_revision) if st.serving_revision else []
    except NotImplementedError:
        urls = []
    if urls:
        return urls, 1
    return [sb.endpoint], st.spec.replicas if st.spec else 1


def _firing(sb: Any, alert: str) -> bool:
    """In Alertmanager now (what pages a human)."""
    return bool(sb.alerts(alert))


def _rule_shape(rule: Any) -> tuple[list[bool], list[str]]:
    has_for = 0 < rule.duration <= MAX_FOR_S
    has_window = "modelapi_query_drift_window" in rule.query
    notes = [f"for: {rule.duration:g}s" + ("" if has_for else f" (want 0 < for <= {MAX_FOR_S:g}s)"),
             "minimum window: " + ("yes" if has_window else "no modelapi_query_drift_window condition")]
    return [has_for, has_window], notes


@register("drift_alert_fires")
def drift_alert_fires(sb: Any, alert: str = "QueryDrift", rule_file: str = "query-drift") -> Observation:
    """The trainee's loaded ``alert`` rule has a ``for:`` and a minimum-window condition, stays
    quiet on the grader's baseline traffic, fires in Alertmanager on its drifted traffic and
    resolves when baseline traffic returns. Partial credit: a fifth for each of the five."""
    expected = (f"{alert} (rule file {rule_file}) with for: and a minimum window; quiet on baseline,"
                f" firing within {FIRE_WITHIN_S:g}s of drift, resolved within {RESOLVE_WITHIN_S:g}s after")
    how = f"write rules/{rule_file}.yml and load it: sb.rules.load('rules/{rule_file}.yml')"
    try:
        source = sb.rules.source(rule_file)
        rules = [r for r in sb.rules.loaded() if r.kind == "alerting" and r.name == alert
                 and r.file.endswith(f"/{rule_file}.yml")]
    except PrometheusUnavailable as e:
        return broken("drift_alert_fires", e.message, expected, e.fix or "bring the sandbox up: sb.up()")
    if source is None or not rules:
        seen = "no rule file loaded" if source is None else f"{rule_file} loaded without an alert named {alert}"
        return broken("drift_alert_fires", seen, expected, how)
    shape, notes = _rule_shape(rules[0])
    behaviour, seen = _scenario(sb, alert, rules[0].duration, rules[0].query)
    parts = shape + behaviour
    observed = "; ".join(notes + seen)
    details = {"for_s": rules[0].duration, "expr": rules[0].query, "parts": parts}
    if all(parts):
        return holds("drift_alert_fires", observed, expected, **details)
    hints = [f"add `for:` (e.g. 15s in the sandbox's fast clock, at most {MAX_FOR_S:g}s)",
             "add `and modelapi_query_drift_window >= N` so a near-empty window cannot fire",
             "it fired on baseline traffic: raise the threshold above the baseline level",
             "it never fired on drift: lower the threshold below the drifted level (and check for:)",
             "it did not resolve on baseline traffic: the threshold must sit between baseline and drift"]
    hint = "; ".join(h for h, ok in zip(hints, parts, strict=True) if not ok) + f"; then {how}"
    return broken("drift_alert_fires", observed, expected, hint, sum(parts) / len(parts), **details)


def _settled_without_match(sb: Any, expr: str, since: float) -> bool:
    """True when the rule's expression can no longer start to match: Prometheus has scraped
    every replica's drift window after ``since`` (the end of the grader's traffic: nothing else
    changes the score from then on) and the expression, evaluated now on the same data the rule
    sees, returns nothing. Never for an expression over ranges or offsets, whose value still
    moves as older samples leave the range."""
    if "[" in expr or re.search(r"\boffset\b", expr):
        return False
    scraped = sb.query('min(timestamp(modelapi_query_drift_window{job="modelapi"}))')
    if not scraped or math.isnan(scraped[0].value) or scraped[0].value <= since:
        return False
    return not sb.query(expr)


def _scenario(sb: Any, alert: str, for_s: float, expr: str = "") -> tuple[list[bool], list[str]]:
    """Baseline, drift, baseline, sent by the grader; [quiet, fired, resolved] and notes. A rule
    whose expression has settled without matching the drifted traffic is judged "never fired"
    at once instead of after the whole ``for:`` + ``FIRE_WITHIN_S`` (it cannot fire any more)."""
    endpoints, rounds = _replica_endpoints(sb)
    interval = sb.settings.monitoring.scrape_interval_s
    drift_scores(endpoints, load_queries("baseline"), rounds=rounds)
    quiet_s = min(max(for_s + 4 * interval, QUIET_MIN_S), QUIET_MAX_S)
    deadline = time.monotonic() + quiet_s
    noisy = _wait(lambda: _firing(sb, alert) or sb.rules.state(alert) == "firing", quiet_s)
    if noisy:
        time.sleep(max(0.0, deadline - time.monotonic()))
    t0 = time.monotonic()
    drift_scores(endpoints, load_queries("drifted"), rounds=rounds)
    sent = time.time()
    settled = False

    def fired_or_settled() -> bool:
        nonlocal settled
        if _firing(sb, alert):
            return True
        settled = bool(expr) and _settled_without_match(sb, expr, sent)
        return settled

    fired = _wait(fired_or_settled, for_s + FIRE_WITHIN_S) and not settled
    fired_after = time.monotonic() - t0
    t1 = time.monotonic()
    drift_scores(endpoints, load_queries("baseline"), rounds=rounds)  # also: leave normal traffic
    resolved = fired and _wait(lambda: not _firing(sb, alert), RESOLVE_WITHIN_S)
    notes = [f"baseline: {'FIRED' if noisy else 'quiet'} for {quiet_s:.0f}s",
             f"drift: fired after {fired_after:.0f}s" if fired else
             (f"drift: never fired (its expression matched nothing once Prometheus held the drifted window,"
              f" {fired_after:.0f}s in)" if settled else f"drift: never fired within {for_s + FIRE_WITHIN_S:.0f}s"),
             (f"baseline again: resolved after {time.monotonic() - t1:.0f}s" if resolved
              else "baseline again: did not resolve" if fired else "baseline again: nothing to resolve")]
    return [not noisy, fired, resolved], notes


def _value(sb: Any, promql: str, at: float | None = None) -> float | None:
    samples = sb.query(promql, at)
    values = [s.value for s in samples if hasattr(s, "value") and not math.isnan(s.value)]
    return values[0] if values else None


@register("rules_recorded")
def rules_recorded(sb: Any, rules: dict[str, str] | None = None, rule_file: str = "slo",
                   tolerance: float = 0.05, traffic: int = 60) -> Observation:
    """The trainee's recording rules (``rules``: record name -> the grader's reference PromQL)
    are loaded from ``rule_file`` and, after the grader sent ``traffic`` searches of its own,
    each value matches the reference within ``tolerance`` (absolute, or relative for values
    above 1). Partial credit: the share that match."""
    rules = rules or {}
    expected = f"{len(rules)} recording rules from {rule_file}.yml matching the reference SLIs"
    try:
        loaded = {r.name: r for r in sb.rules.loaded() if r.kind == "recording"
                  and r.file.endswith(f"/{rule_file}.yml")}
    except PrometheusUnavailable as e:
        return broken("rules_recorded", e.message, expected, e.fix or "bring the sandbox up: sb.up()")
    if traffic and loaded:
        send_searches(sb.endpoint, load_queries("baseline"), traffic, 2)
        time.sleep(3 * sb.settings.monitoring.scrape_interval_s)  # scraped, then evaluated
    good, notes = [], []
    for name, reference in rules.items():
        if name not in loaded:
            good.append(False)
            notes.append(f"{name}: not recorded")
            continue
        # the reference at the time of the record's last evaluation (rates move every second)
        at = _value(sb, f"max(timestamp({name}))")
        want, got = _value(sb, reference, at), _value(sb, name, at)
        ok = want is not None and got is not None and abs(got - want) <= tolerance * max(1.0, abs(want))
        good.append(ok)
        notes.append(f"{name} = {got if got is None else round(got, 4)} (reference {want if want is None else round(want, 4)})")
    observed = "; ".join(notes) or "no rules asked for"
    if good and all(good):
        return holds("rules_recorded", observed, expected, rules=list(rules))
    return broken("rules_recorded", observed, expected,
                  f"write the records in rules/{rule_file}.yml, load it with sb.rules.load(...), send traffic"
                  " and compare sb.query('<record>') with the raw expression",
                  sum(good) / len(good) if good else 0.0)
