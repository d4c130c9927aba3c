"""The observers of live state that fault probes and grader checks share.

Each is registered in ``sandbox.observe.OBSERVERS`` and returns an ``Observation``. The fault
catalog's steady-state hypotheses name them; ``graders`` turns them into scored checks and adds
its own. They read only live state: the service's endpoints through the front door (and each
replica directly where a check needs it), the rollout history, the data volume through one-off
jobs. Latency verdicts are calibrated against this machine's speed measured in the same run
(``sandbox.calibrate``). Also here: the bounded load helpers labs and faults use.
"""

from __future__ import annotations

import json
from typing import Any

from ..api import Sandbox
from ..calibrate import budget_ms
from ..client import ServiceClient, load_queries
from ..errors import InvalidInput, ServiceError
from ..load import Budget, LoadReport, send_searches
from ..observe import Observation, broken, holds, observer
from ..spec import newest_dated, parse_cpus


def _not_ready(name: str, sb: Sandbox, expected: str) -> Observation | None:
    """Fail fast (instead of timing out on every request) when the front door is not ready."""
    r = sb.readiness()
    if r.ready:
        return None
    return broken(name, f"the service is not ready: {r.reason or r.status_code} {r.detail}".strip(),
                  expected, "make a revision serve first: sb.status() shows what serves and why not")


def _serving_size(sb: Sandbox) -> str:
    """`` (2 replica(s), cpus=0.5)``: the serving revision's spec, and the CPU limit its replicas
    run under now where that differs from the spec (a live resize changes no spec)."""
    st = sb.status()
    if st.spec is None:
        return ""
    declared = st.spec.config.get("cpus")
    live = sorted({None if c.cpus is None else round(c.cpus, 3) for c in st.components
                   if c.component == "modelapi" and c.revision == st.serving_revision and c.state == "running"}, key=lambda v: v or 0)
    text = f" ({st.spec.replicas} replica(s), cpus={declared or 'unlimited'}"
    if live and live != [round(parse_cpus(declared), 3) if declared else None]:
        text += ", live CPU limit " + "/".join("unlimited" if v is None else f"{v:g}" for v in live)
    return text + ")"


@observer("ready")
def ready(sb: Sandbox) -> Observation:
    """The front door answers ``/readyz`` with 200."""
    r = sb.readiness()
    if r.ready:
        return holds("ready", "/readyz 200", "/readyz 200")
    seen = f"/readyz {r.status_code or 'no answer'} {r.reason}: {r.detail}".strip(": ")
    return broken("ready", seen, "/readyz 200",
                  "run sb.status(); if the last rollout failed, sb.rollback(); if the index is"
                  " missing, deploy one that sb.indexes() lists; read the serving revision's sb.logs()")


@observer("rollout_complete")
def rollout_complete(sb: Sandbox) -> Observation:
    """The latest rollout completed and the service is ready (``kubectl rollout status``)."""
    st = sb.status()
    observed = f"rollout {st.rollout}, ready={st.ready}" + (f" ({st.reason})" if st.reason else "")
    if st.rollout == "complete" and st.ready:
        return holds("rollout_complete", observed, "rollout complete and ready")
    hint = {
        "progressing": "wait for it: sb.wait_for_rollout()",
        "failed": "undo the stuck rollout with sb.rollback() (labkit rollout undo), or fix the spec and deploy again",
        "none": "deploy a revision: sb.deploy(model='v1')",
    }.get(st.rollout, "run sb.status() and sb.logs()")
    return broken("rollout_complete", observed, "rollout complete and ready", hint)


@observer("serving_image")
def serving_image(sb: Sandbox, image: str = "default") -> Observation:
    """The serving revision runs ``image`` (``default``: the kit's good release)."""
    want = sb.settings.images.default if image == "default" else image
    spec = sb.status().spec
    got = spec.image if spec else "nothing"
    if got == want:
        return holds("serving_image", got, want)
    return broken("serving_image", got, want, f"roll back to the revision that ran {want}")


@observer("model_matches_index")
def model_matches_index(sb: Sandbox) -> Observation:
    """The serving model built the index it serves."""
    v = sb.version()
    built_by = (v.get("index_manifest") or {}).get("model_version")
    observed = f"service model {v.get('model')}, index built by {built_by}"
    if built_by == v.get("model"):
        return holds("model_matches_index", observed, "the index was built by the model that serves")
    return broken("model_matches_index", observed, "the index was built by the model that serves",
                  "deploy an index built by the serving model (or roll back)")


@observer("serving_latest_snapshot")
def serving_latest_snapshot(sb: Sandbox) -> Observation:
    """The serving index was built from the newest dated corpus snapshot."""
    want = newest_dated(sb.snapshots())
    got = sb.version().get("corpus_snapshot")
    if got == want:
        return holds("serving_latest_snapshot", f"index built from {got}", f"built from {want}")
    return broken("serving_latest_snapshot", f"index built from {got}", f"built from {want}",
                  f"build or deploy the index of snapshot {want}")


@observer("recall_at_least")
def recall_at_least(sb: Sandbox, k: int = 5, threshold: float = 0.85) -> Observation:
    """recall@k of the live service on the eval set is at least ``threshold``.

    Partial credit below the threshold: ``(recall - threshold/2) / (threshold/2)``, so half the
    threshold or less earns nothing.
    """
    expected = f"recall@{k} >= {threshold:.2f}"
    not_ready = _not_ready("recall_at_least", sb, expected)
    if not_ready is not None:
        return not_ready
    report = ServiceClient(sb.endpoint).evaluate(k)
    served = ", ".join(f"{key}: {n}" for key, n in sorted(report.served_by.items()))
    observed = report.summary() + (f"; served by {served}" if served else "")
    data = {"recall": report.recall, "hits": report.hits, "total": report.total, "errors": report.errors}
    if report.recall >= threshold:
        return holds("recall_at_least", observed, expected, **data)
    missed = "; ".join(f"'{m['query'][:50]}'" for m in report.misses[:2])
    hint = "the service answered errors: check sb.readiness() and sb.logs(); " if report.errors else ""
    hint += ("compare the served index with sb.indexes() and deploy the newest snapshot, e.g."
             f" sb.deploy(index='2026-11-01'); missed e.g. {missed}")
    share = (report.recall - threshold / 2) / (threshold / 2)
    return broken("recall_at_least", observed, expected, hint, share, **data)


@observer("p95_within_slo")
def p95_within_slo(sb: Sandbox, slo_ms: float = 300, requests: int = 200, concurrency: int = 4,
                   max_error_rate: float = 0.01) -> Observation:
    """p95 latency of searches the grader sends itself is within ``slo_ms`` (scaled by this
    machine's slowdown measured now: ``sandbox.calibrate.budget_ms``), with few errors."""
    budget = budget_ms(slo_ms)
    expected = f"p95 <= {slo_ms:g} ms (+{budget - slo_ms:.0f} ms for this machine's speed) and errors <= {max_error_rate:.0%}"
    not_ready = _not_ready("p95_within_slo", sb, expected)
    if not_ready is not None:
        return not_ready
    send_searches(sb.endpoint, load_queries("baseline"), 5, 5)  # warm-up, not measured
    report = send_searches(sb.endpoint, load_queries("baseline"), requests, concurrency,
                           budget=Budget(budget, max_error_rate))
    where = _serving_size(sb)
    data = report.to_dict() | {"budget_ms": round(budget, 1)}
    if not report.stopped_early and report.p95_ms <= budget and report.error_rate <= max_error_rate:
        return holds("p95_within_slo", report.summary() + where, expected, **data)
    if report.error_rate > max_error_rate:
        hint = (f"{report.errors} requests failed ({', '.join(report.error_samples)}): check"
                " sb.readiness(), sb.logs() and modelapi_requests_total")
    else:
        hint = ("latency is above the SLO: look at modelapi_request_latency_seconds, the replicas' live CPU"
                " limit in sb.status().components, the provider's latency and your timeout; add replicas or"
                " CPU (sb.deploy(replicas=2) / sb.deploy(cpus='1'))")
    return broken("p95_within_slo", report.summary() + where, expected, hint, **data)


@observer("provider_healthy")
def provider_healthy(sb: Sandbox, samples: int = 10) -> Observation:
    """Every search of a sample is reranked by the provider."""
    outcomes = [str(sb.search(q).get("provider")) for q in load_queries("baseline")[:samples]]
    bad = [o for o in outcomes if o not in ("ok", "disabled")]
    observed = f"provider outcomes: {sorted(set(outcomes))}"
    if not bad:
        return holds("provider_healthy", observed, "every search reranked by the provider (ok)")
    return broken("provider_healthy", observed, "every search reranked by the provider (ok)",
                  "the provider is failing or slow: check its health and your timeout")


@observer("drift_below")
def drift_below(sb: Sandbox, threshold: float = 0.5) -> Observation:
    """``modelapi_query_drift_score`` is below ``threshold``."""
    score = drift_score(sb)
    observed, expected = f"modelapi_query_drift_score = {score:.3f}", f"< {threshold}"
    if score < threshold:
        return holds("drift_below", observed, expected, score=score)
    return broken("drift_below", observed, expected,
                  "traffic has drifted from the corpus: find out what users now ask", score=score)


@observer("poison_absent")
def poison_absent(sb: Sandbox, doc_id: str = "rb-9001", queries: int = 20) -> Observation:
    """``doc_id`` is not in the top 5 for common queries."""
    hits = [q for q in load_queries("baseline")[:queries]
            if doc_id in [r["id"] for r in sb.search(q, k=5).get("results", [])]]
    observed = f"{doc_id} in the top 5 for {len(hits)}/{queries} common queries"
    if not hits:
        return holds("poison_absent", observed, f"{doc_id} never returned")
    return broken("poison_absent", observed, f"{doc_id} never returned",
                  "run the validation gate on the served snapshot, quarantine the document, redeploy a clean index")


def json_job(sb: Sandbox, cmd: list[str], what: str) -> tuple[Any, str]:
    """(parsed stdout, "") of a ``python -m modelapi`` job, or (None, why it failed)."""
    try:
        out = sb.run_job(["python", "-m", "modelapi", *cmd], what)
    except InvalidInput as e:
        return None, e.message
    try:
        return json.loads(out), ""
    except ValueError:
        return None, f"{what} printed no JSON: {out.strip()[-120:]!r}"


@observer("lineage_traceable")
def lineage_traceable(sb: Sandbox) -> Observation:
    """The serving index traces back to an approved corpus snapshot (``modelapi lineage``)."""
    index = sb.version().get("index")
    expected = "the serving index is traceable to an approved snapshot, byte for byte"
    if not index:
        return broken("lineage_traceable", "no index served", expected, "deploy an index first")
    verdict, why = json_job(sb, ["lineage", "--index", index, "--json"], "lineage")
    if verdict is None:
        return broken("lineage_traceable", f"lineage of {index}: {why}", expected,
                      f"run `python -m modelapi lineage --index {index}` in the sandbox and read its error")
    reason = str(verdict.get("reason", ""))
    observed = f"index {index}: traceable={bool(verdict.get('traceable'))}" + (f" ({reason})" if reason else "")
    if verdict.get("traceable"):
        return holds("lineage_traceable", observed, expected, index=index)
    return broken("lineage_traceable", observed, expected,
                  f"{reason or 'lineage is broken'}: rebuild the index from an approved snapshot with"
                  " sb.build_index(model, snapshot) and deploy it", index=index)


@observer("default_k")
def default_k(sb: Sandbox, expected: int = 5) -> Observation:
    """A search without ``k`` returns ``expected`` results."""
    got = len(sb.search("disk full on node").get("results", []))
    observed = f"a search without k returns {got} results"
    if got == expected:
        return holds("default_k", observed, f"{expected} results")
    return broken("default_k", observed, f"{expected} results",
                  "compare the serving config with the last good revision")


@observer("config_matches")
def config_matches(sb: Sandbox, **expected: str) -> Observation:
    """The serving revision's config has exactly these values (empty = unset)."""
    spec = sb.status().spec
    got = {k: (spec.config.get(k) if spec else None) for k in expected}
    want = {k: (None if v in (None, "") else str(v)) for k, v in expected.items()}
    if got == want:
        return holds("config_matches", f"serving config {got}", f"{want}")
    return broken("config_matches", f"serving config {got}", f"{want}",
                  "diff the serving revision's config against the last good one")


# --- bounded traffic (labs, faults, graders) ------------------------------------------------------


def run_load(sb: Sandbox, requests: int = 120, concurrency: int = 4) -> dict[str, Any]:
    """Bounded load through the front door (``sandbox.load``): p50/p95 in ms, errors, provider
    outcomes. p50/p95 are ``inf`` when every request failed."""
    report: LoadReport = send_searches(sb.endpoint, load_queries("baseline"), requests, concurrency)
    failed_all = report.errors == report.total
    return {"p50_ms": float("inf") if failed_all else report.p50_ms,
            "p95_ms": float("inf") if failed_all else report.p95_ms,
            "errors": report.errors, "total": report.total, "provider": report.provider}


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
