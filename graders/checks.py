"""The registry of checks of live state, ``check()`` and ``expect()``.

A check reads only the live sandbox: its containers and labels, the service's endpoints and
metrics, the revision history, and the eval set run against the service through its front
door. It never reads notebook variables. Every check returns a ``CheckResult`` worth one
point; ``check(..., points=N)`` rescales it. Errors that mean "the trainee's sandbox is not
in that state" (not up, nothing deployed, service not answering) become failed results with
a hint; errors of the grader's own machinery (Docker daemon down, a misconfigured check)
propagate, so a grading run never silently scores them as the trainee's fault.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox import connect
from sandbox.errors import (
    CheckFailed,
    InvalidInput,
    NoRevisionDeployed,
    SandboxNotUp,
    ServiceError,
    UnknownChoice,
)
from sandbox.client import ServiceClient, load_queries
from sandbox.load import send_searches

from . import runbook as _runbook
from .result import CheckResult, failed, passed

#: Errors that describe the trainee's sandbox, not the grader: they fail the check.
TRAINEE_STATE_ERRORS = (SandboxNotUp, NoRevisionDeployed, ServiceError)

CheckFn = Callable[..., CheckResult]


@dataclass(frozen=True)
class CheckSpec:
    """One registered check."""

    name: str
    fn: CheckFn
    needs_sandbox: bool = True

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.fn) or ""


CHECKS: dict[str, CheckSpec] = {}


def register(name: str, *, needs_sandbox: bool = True) -> Callable[[CheckFn], CheckFn]:
    """Register ``fn(sb, **args) -> CheckResult`` under ``name`` (a decorator)."""

    def decorate(fn: CheckFn) -> CheckFn:
        CHECKS[name] = CheckSpec(name, fn, needs_sandbox)
        return fn

    return decorate


def _default_sandbox() -> Any:
    return connect(up=False)


def check(name: str, sb: Any = None, *, points: float | None = None, **args: Any) -> CheckResult:
    """Run the check ``name`` against ``sb`` (default: ``sandbox.connect(up=False)``)."""
    spec = CHECKS.get(name)
    if spec is None:
        raise UnknownChoice("check", name, sorted(CHECKS))
    try:
        inspect.signature(spec.fn).bind(sb, **args)
    except TypeError as e:
        valid = [p for p in inspect.signature(spec.fn).parameters if p != "sb"]
        raise InvalidInput(f"check {name}: {e}; valid arguments: {', '.join(valid) or 'none'}") from e
    if sb is None and spec.needs_sandbox:
        sb = _default_sandbox()
    try:
        result = spec.fn(sb, **args)
    except TRAINEE_STATE_ERRORS as e:
        result = failed(name, e.message, "a running sandbox with a serving revision",
                        e.fix or "run `labkit sandbox status` and look at the serving revision")
    return result.scaled(float(points)) if points is not None else result


def expect(name: str, sb: Any = None, **args: Any) -> CheckResult:
    """Run a check; raise ``CheckFailed`` (an ``AssertionError``) unless it passed."""
    result = check(name, sb, **args)
    if not result.passed:
        raise CheckFailed(result)
    return result


# --- readiness and rollouts ------------------------------------------------------------------


@register("ready")
def ready(sb: Any) -> CheckResult:
    """The front door answers ``/readyz`` with 200."""
    r = sb.readiness()
    if r.ready:
        return passed("ready", "/readyz 200", "/readyz 200")
    seen = f"/readyz {r.status_code or 'no answer'} {r.reason}: {r.detail}".strip(": ")
    return failed("ready", seen, "/readyz 200",
                  "run sb.status(); if the last rollout failed, sb.rollback(); if the index is"
                  " missing, deploy one that sb.indexes() lists")


def _replicas(status: Any) -> int:
    running = [c for c in status.components if c.get("component") == "modelapi"
               and str(c.get("revision")) == str(status.serving_revision) and c.get("state") == "running"]
    return len(running) if status.components else (status.spec.replicas if status.spec else 0)


def _live_spec(sb: Any) -> tuple[Any, dict[str, Any]]:
    status = sb.status()
    if status.serving_revision is None or status.spec is None:
        raise NoRevisionDeployed(sb.id)
    version = sb.version()
    live = {"model": version.get("model"), "index": version.get("index"),
            "corpus": version.get("corpus_snapshot"), "image": status.spec.image,
            "replicas": _replicas(status), "revision": status.serving_revision}
    return status, live


def _matches(key: str, live: dict[str, Any], want: Any) -> bool:
    got = live.get(key)
    if key == "index":
        return got in (want, f"{want}-{live.get('model')}")
    if key == "image":
        return got == want or str(got).rsplit(":", 1)[-1] == want
    return str(got) == str(want)


def _describe(live: dict[str, Any], keys: list[str]) -> str:
    labels = {"replicas": lambda v: f"{v} replica{'s' if v != 1 else ''}"}
    parts = [labels.get(k, lambda v, k=k: f"{k} {v}")(live[k]) for k in keys]
    return " / ".join(parts) + f" (revision {live['revision']})"


def _rollback_hint(sb: Any, wants: dict[str, Any]) -> str:
    """Name the revision to roll back to if history has one, else the deploy to run."""
    serving = [r for r in sb.history() if r.state == "serving"]
    older = [r for r in sb.history() if r.state == "superseded"]
    for rev in reversed(older):
        spec = {"model": rev.spec.model, "index": rev.spec.index, "image": rev.spec.image,
                "replicas": rev.spec.replicas, "corpus": rev.spec.index.rsplit("-", 1)[0],
                "revision": rev.number}
        if all(_matches(k, spec, v) for k, v in wants.items()):
            what = ", ".join(f"{k} {v}" for k, v in wants.items())
            call = "sb.rollback()" if rev is older[-1] else f"sb.rollback(to_revision={rev.number})"
            return f"roll back with {call} (revision {rev.number} served {what}); see sb.history()"
    args = {"model": wants.get("model"), "index": wants.get("index") or wants.get("corpus"),
            "image": wants.get("image"), "replicas": wants.get("replicas")}
    call = ", ".join(f"{k}={v!r}" for k, v in args.items() if v is not None)
    where = f" (revision {serving[-1].number} serves now)" if serving else ""
    return f"deploy it: sb.deploy({call}){where}; sb.indexes() lists the indexes"


@register("serving")
def serving(sb: Any, model: str | None = None, index: str | None = None, image: str | None = None,
            replicas: int | None = None, corpus: str | None = None) -> CheckResult:
    """The serving revision runs this model / index / image / replica count / corpus snapshot.

    ``model``, ``index`` and ``corpus`` come from the live ``/version``; ``index`` may name the
    snapshot (``2026-11-01`` matches ``2026-11-01-v1`` served by v1). ``image`` and
    ``replicas`` come from the serving revision and its running containers.
    """
    wants = {k: v for k, v in dict(model=model, index=index, image=image, replicas=replicas,
                                   corpus=corpus).items() if v is not None}
    _, live = _live_spec(sb)
    shown = ["model", "index"] + [k for k in ("corpus", "image", "replicas") if k in wants]
    observed = _describe(live, shown)
    expected = " / ".join(f"{k} {v}" for k, v in wants.items()) or "any serving revision"
    if all(_matches(k, live, v) for k, v in wants.items()):
        return passed("serving", observed, expected, **live)
    return failed("serving", observed, expected, _rollback_hint(sb, wants), **live)


@register("rolled_back")
def rolled_back(sb: Any, to_revision: int | None = None) -> CheckResult:
    """The serving revision is a rollback (``rollback_of`` set), to ``to_revision`` if given."""
    expected = f"a rollback to revision {to_revision}" if to_revision else "a rollback"
    hist = sb.history()
    serving = [r for r in hist if r.state == "serving"]
    if not serving:
        return failed("rolled_back", "nothing serving", expected, "deploy, then sb.rollback()")
    rev = serving[-1]
    observed = f"serving revision {rev.number} ({rev.change_cause or 'no change cause'})"
    if rev.rollback_of is None:
        return failed("rolled_back", observed + ", not a rollback", expected,
                      f"roll back with sb.rollback({f'to_revision={to_revision}' if to_revision else ''})"
                      " (kubectl rollout undo); sb.history() lists the revisions")
    if to_revision is not None and rev.rollback_of != to_revision:
        return failed("rolled_back", observed, expected,
                      f"this rolled back to revision {rev.rollback_of}; run"
                      f" sb.rollback(to_revision={to_revision})")
    return passed("rolled_back", observed, expected, revision=rev.number, rollback_of=rev.rollback_of)


@register("failed_rollout_held")
def failed_rollout_held(sb: Any, image: str | None = None) -> CheckResult:
    """A rollout (of ``image``) failed, never got ready, and another revision serves, ready."""
    expected = f"a failed rollout of {image or 'a bad revision'} while another revision serves"
    hist = sb.history()
    bad = [r for r in hist if r.state == "failed"
           and (image is None or _matches("image", {"image": r.spec.image}, image))]
    serving = [r for r in hist if r.state == "serving"]
    if not bad:
        rc = image or sb.settings.images.defect
        return failed("failed_rollout_held", f"no failed revision of {image or 'any image'} in history",
                      expected, f"deploy the release candidate: sb.deploy(image={rc!r}); the"
                      " rollout must fail while the old revision keeps serving")
    last = bad[-1]
    observed = f"revision {last.number} failed ({last.reason[:120]})"
    if any(r.ready_at is not None for r in bad):
        return failed("failed_rollout_held", observed + " but was ready once", expected,
                      "a revision that got ready is not a held rollout; see sb.history()")
    if not serving:
        return failed("failed_rollout_held", observed + "; nothing serves", expected,
                      "bring a good revision back: sb.rollback(to_revision=N) with N from sb.history()")
    r = sb.readiness()
    observed += f"; revision {serving[-1].number} serves"
    if not r.ready:
        return failed("failed_rollout_held", observed + f" but /readyz says {r.reason}", expected,
                      "run sb.status() and sb.logs() to see why the serving revision is not ready")
    return passed("failed_rollout_held", observed, expected, failed_revision=last.number,
                  serving_revision=serving[-1].number)


@register("rollout_complete")
def rollout_complete(sb: Any) -> CheckResult:
    """The latest rollout completed and the service is ready (``kubectl rollout status``)."""
    st = sb.status()
    observed = f"rollout {st.rollout}, ready={st.ready}" + (f" ({st.reason})" if st.reason else "")
    if st.rollout == "complete" and st.ready:
        return passed("rollout_complete", observed, "rollout complete and ready")
    hint = {
        "progressing": "wait for it: sb.wait_for_rollout()",
        "failed": "undo the stuck rollout with sb.rollback(), or fix the spec and deploy again",
        "none": "deploy a revision: sb.deploy(model='v1')",
    }.get(st.rollout, "run sb.status() and sb.logs()")
    return failed("rollout_complete", observed, "rollout complete and ready", hint)


# --- quality and performance ------------------------------------------------------------------


def _not_ready(name: str, sb: Any, expected: str) -> CheckResult | None:
    """Fail fast (instead of timing out on every request) when the front door is not ready."""
    r = sb.readiness()
    if r.ready:
        return None
    return failed(name, f"the service is not ready: {r.reason or r.status_code} {r.detail}".strip(),
                  expected, "make a revision serve first: sb.status() shows what serves and why not")


@register("recall_at_least")
def recall_at_least(sb: Any, k: int = 5, threshold: float = 0.85) -> CheckResult:
    """recall@k of the live service on the eval set is at least ``threshold``.

    Partial credit below the threshold: ``(recall - threshold/2) / (threshold/2)``, so half
    the threshold or less earns nothing.
    """
    expected = f"recall@{k} >= {threshold:.2f}"
    not_ready = _not_ready("recall_at_least", sb, expected)
    if not_ready is not None:
        return not_ready
    report = ServiceClient(sb.endpoint).evaluate(k)
    served = ", ".join(f"{key}: {n}" for key, n in sorted(report.served_by.items()))
    observed = report.summary() + (f"; served by {served}" if served else "")
    details = {"recall": report.recall, "hits": report.hits, "total": report.total,
               "errors": report.errors}
    if report.recall >= threshold:
        return passed("recall_at_least", observed, expected, **details)
    share = (report.recall - threshold / 2) / (threshold / 2)
    missed = "; ".join(f"'{m['query'][:50]}'" for m in report.misses[:2])
    hint = ("the service answered errors: check sb.readiness() and sb.logs(); " if report.errors else "")
    hint += ("compare the served index with sb.indexes() and deploy the newest snapshot, e.g."
             f" sb.deploy(index='2026-11-01'); missed e.g. {missed}")
    return failed("recall_at_least", observed, expected, hint, share, **details)


@register("p95_within_slo")
def p95_within_slo(sb: Any, slo_ms: float = 300, requests: int = 200, concurrency: int = 4,
                   max_error_rate: float = 0.01) -> CheckResult:
    """p95 latency of searches the grader sends itself is within ``slo_ms``, with few errors."""
    expected = f"p95 <= {slo_ms:g} ms and errors <= {max_error_rate:.0%}"
    not_ready = _not_ready("p95_within_slo", sb, expected)
    if not_ready is not None:
        return not_ready
    endpoint = sb.endpoint
    send_searches(endpoint, load_queries("baseline"), 5, 1)  # warm-up, not measured
    report = send_searches(endpoint, load_queries("baseline"), requests, concurrency)
    spec = sb.status().spec
    where = f" ({spec.replicas} replica(s), cpus={spec.config.get('cpus', 'unlimited')})" if spec else ""
    observed = report.summary() + where
    if report.p95_ms <= slo_ms and report.error_rate <= max_error_rate:
        return passed("p95_within_slo", observed, expected, **report.to_dict())
    if report.error_rate > max_error_rate:
        hint = (f"{report.errors} requests failed ({', '.join(report.error_samples)}): check"
                " sb.readiness(), sb.logs() and modelapi_requests_total in sb.metrics()")
    else:
        hint = ("latency is above the SLO: look at modelapi_request_latency_seconds in sb.metrics(),"
                " lift a tight CPU limit (sb.deploy(cpus='1')) or add replicas (sb.deploy(replicas=2))")
    return failed("p95_within_slo", observed, expected, hint, **report.to_dict())


# (``drift_alert_fires`` and ``rules_recorded``, judged by the sandbox's Prometheus, live in
# ``graders.alerting``.)


# (The checks of faults, data and foreign objects live in ``graders.datachecks``, which the
# package imports, so they register with every ``import graders...``.)


# --- runbooks ------------------------------------------------------------------------------


@register("runbook_sections", needs_sandbox=False)
def runbook_sections(sb: Any, text: str = "") -> CheckResult:
    """A markdown runbook has the six headed sections and evidence for each step.

    Partial credit: the share of sections present (the steps section counts by the share
    of its steps that cite evidence). See ``graders.runbook`` for the accepted headings.
    """
    book = _runbook.parse(text or "")
    observed, hint = _runbook.describe(book)
    expected = "sections " + ", ".join(_runbook.SECTIONS) + ", every step with evidence"
    share = book.score()
    details = {"present": book.present(), "missing": book.missing(),
               "steps": len(book.steps), "steps_without_evidence": len(book.steps_without_evidence())}
    if share >= 1.0:
        return passed("runbook_sections", observed, expected, **details)
    return failed("runbook_sections", observed, expected, hint, share, **details)


__all__ = ["CHECKS", "CheckSpec", "check", "expect", "register"]
