"""Steady-state probes: small, read-only questions about the live sandbox.

A probe returns ``Probe(name, ok, observed, expected, hint)``. Probes read only live state:
the service's endpoints and metrics through the front door, the revision history, and the
data volume through one-off jobs. The fault catalog names them in each entry's
``steady_state``; the graders' ``fault_healed`` check runs them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..api import Sandbox
from ..client import load_queries
from ..errors import LabkitError, ServiceError
from ..load import send_searches


@dataclass(frozen=True)
class Probe:
    """One answer of the steady-state hypothesis."""

    name: str
    ok: bool
    observed: str
    expected: str
    hint: str = ""


ProbeFn = Callable[..., Probe]
PROBES: dict[str, ProbeFn] = {}


def probe(name: str) -> Callable[[ProbeFn], ProbeFn]:
    def register(fn: ProbeFn) -> ProbeFn:
        PROBES[name] = fn
        return fn

    return register


def _serving_spec(sb: Sandbox):
    st = sb.status()
    return st, st.spec


@probe("ready")
def ready(sb: Sandbox) -> Probe:
    r = sb.readiness()
    return Probe("ready", r.ready, "ready" if r.ready else f"/readyz {r.status_code} {r.reason}: {r.detail}",
                 "/readyz 200 through the front door",
                 "" if r.ready else "read the reason in /readyz and the serving revision's logs")


@probe("rollout-complete")
def rollout_complete(sb: Sandbox) -> Probe:
    history = sb.history()
    latest = history[-1] if history else None
    ok = latest is not None and latest.state == "serving"
    seen = f"latest revision {latest.number} is {latest.state}" if latest else "no revision"
    return Probe("rollout-complete", ok, seen, "the latest revision serves (no failed or stuck rollout)",
                 "" if ok else "undo the stuck rollout: sb.rollback() / labkit rollout undo")


@probe("serving-image")
def serving_image(sb: Sandbox, image: str = "default") -> Probe:
    want = sb.settings.images.default if image == "default" else image
    _, spec = _serving_spec(sb)
    got = spec.image if spec else "nothing"
    return Probe("serving-image", got == want, got, want,
                 "" if got == want else f"roll back to the revision that ran {want}")


@probe("model-matches-index")
def model_matches_index(sb: Sandbox) -> Probe:
    v = sb.version()
    manifest = v.get("index_manifest") or {}
    ok = manifest.get("model_version") == v.get("model")
    return Probe("model-matches-index", ok,
                 f"service model {v.get('model')}, index built by {manifest.get('model_version')}",
                 "the index was built by the model that serves",
                 "" if ok else "deploy an index built by the serving model (or roll back)")


@probe("serving-latest-snapshot")
def serving_latest_snapshot(sb: Sandbox) -> Probe:
    latest = [s for s in sb.snapshots() if s[:4].isdigit() and s.count("-") == 2]
    want = max(latest) if latest else "?"
    got = sb.version().get("corpus_snapshot")
    return Probe("serving-latest-snapshot", got == want, f"index built from {got}", f"built from {want}",
                 "" if got == want else f"build or deploy the index of snapshot {want}")


@probe("recall-at-least")
def recall_at_least(sb: Sandbox, k: int = 5, threshold: float = 0.85) -> Probe:
    r = sb.readiness()
    if not r.ready:
        return Probe("recall-at-least", False, f"not ready: {r.reason} {r.detail}".strip(),
                     f"recall@{k} >= {threshold}", "make a revision serve first (sb.status())")
    try:
        report = sb.evaluate(k)
    except LabkitError as e:
        return Probe("recall-at-least", False, str(e), f"recall@{k} >= {threshold}", "is the service ready?")
    ok = report.recall >= threshold
    return Probe("recall-at-least", ok, report.summary(), f"recall@{k} >= {threshold:.2f}",
                 "" if ok else "compare the served index's corpus snapshot and model with the newest")


@probe("default-k")
def default_k(sb: Sandbox, expected: int = 5) -> Probe:
    got = len(sb.search("disk full on node").get("results", []))
    return Probe("default-k", got == expected, f"a search without k returns {got} results",
                 f"{expected} results", "" if got == expected else "compare the serving config with the last good revision")


def run_load(sb: Sandbox, requests: int = 120, concurrency: int = 4) -> dict[str, Any]:
    """Bounded load through the front door (``sandbox.load``): p50/p95 in ms, errors, provider
    outcomes. p50/p95 are ``inf`` when every request failed."""
    report = send_searches(sb.endpoint, load_queries("baseline"), requests, concurrency)
    failed_all = report.errors == report.total
    return {"p50_ms": float("inf") if failed_all else report.p50_ms,
            "p95_ms": float("inf") if failed_all else report.p95_ms,
            "errors": report.errors, "total": report.total, "provider": report.provider}


@probe("p95-within-slo")
def p95_within_slo(sb: Sandbox, slo_ms: float = 300.0, requests: int = 120, concurrency: int = 4) -> Probe:
    r = sb.readiness()
    if not r.ready:
        return Probe("p95-within-slo", False, f"not ready: {r.reason} {r.detail}".strip(),
                     f"p95 <= {slo_ms:.0f} ms", "make a revision serve first (sb.status())")
    load = run_load(sb, requests, concurrency)
    ok = load["p95_ms"] <= slo_ms and load["errors"] == 0
    return Probe("p95-within-slo", ok,
                 f"p95 {load['p95_ms']:.0f} ms, p50 {load['p50_ms']:.0f} ms, {load['errors']} errors",
                 f"p95 <= {slo_ms:.0f} ms with no errors",
                 "" if ok else "look at CPU limits, replicas and the provider's latency (timeouts)")


@probe("provider-healthy")
def provider_healthy(sb: Sandbox, samples: int = 10) -> Probe:
    outcomes = [str(sb.search(q).get("provider")) for q in load_queries("baseline")[:samples]]
    bad = [o for o in outcomes if o not in ("ok", "disabled")]
    return Probe("provider-healthy", not bad, f"provider outcomes: {sorted(set(outcomes))}",
                 "every search reranked by the provider (ok)",
                 "" if not bad else "the provider is failing or slow: check its health and your timeout")


def send_traffic(sb: Sandbox, name: str, count: int = 200) -> None:
    """Replay a packaged query set (``baseline`` or ``drifted``) through the front door."""
    queries = load_queries(name)[:count]
    report = send_searches(sb.endpoint, queries, len(queries), concurrency=4)
    if report.errors:
        raise ServiceError(f"{report.errors} of {report.total} searches failed ({', '.join(report.error_samples)})",
                           fix="check `labkit sandbox status`: is a revision ready?")


def drift_score(sb: Sandbox) -> float:
    samples = sb.metrics().get("modelapi_query_drift_score", [])
    return samples[0][1] if samples else 0.0


@probe("drift-below")
def drift_below(sb: Sandbox, threshold: float = 0.5) -> Probe:
    score = drift_score(sb)
    ok = score < threshold
    return Probe("drift-below", ok, f"modelapi_query_drift_score = {score:.3f}", f"< {threshold}",
                 "" if ok else "traffic has drifted from the corpus: find out what users now ask")


@probe("poison-absent")
def poison_absent(sb: Sandbox, doc_id: str = "rb-9001", queries: int = 20) -> Probe:
    hits = [q for q in load_queries("baseline")[:queries]
            if doc_id in [r["id"] for r in sb.search(q, k=5).get("results", [])]]
    return Probe("poison-absent", not hits, f"{doc_id} in the top 5 for {len(hits)}/{queries} common queries",
                 f"{doc_id} never returned", "" if not hits else
                 "run the validation gate on the served snapshot, quarantine the document, redeploy a clean index")


@probe("lineage-traceable")
def lineage_traceable(sb: Sandbox) -> Probe:
    index = sb.version().get("index")
    out = json.loads(sb.run_job(["python", "-m", "modelapi", "lineage", "--index", str(index), "--json"], "lineage"))
    return Probe("lineage-traceable", bool(out.get("traceable")), str(out.get("reason")),
                 "the served index traces to an approved snapshot, byte for byte",
                 "" if out.get("traceable") else "deploy an index built from an approved snapshot")


@probe("config-matches")
def config_matches(sb: Sandbox, **expected: str) -> Probe:
    _, spec = _serving_spec(sb)
    got = {k: (spec.config.get(k) if spec else None) for k in expected}
    want = {k: (None if v in (None, "") else str(v)) for k, v in expected.items()}
    return Probe("config-matches", got == want, f"serving config {got}", f"{want}",
                 "" if got == want else "diff the serving revision's config against the last good one")
