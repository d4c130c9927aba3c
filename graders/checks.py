"""The registry of checks of live state, ``check()`` and ``expect()``.

A check is an observation (``sandbox.observe``) plus points: the observers the fault catalog's
probes use (``ready``, ``recall_at_least``, ``p95_within_slo``, ``lineage_traceable`` ...) and the
graders' own, registered here. A check reads only the live sandbox: the engine, the service's
endpoints and metrics, the revision history, the eval set run through the front door. It never
reads notebook variables. ``check(..., points=N)`` scores it. The trainee's state being wrong
(not up, nothing deployed, service not answering: a ``StateError``) is a failed check with a hint;
errors of the grader's own machinery (``InfrastructureError``, a misconfigured check) propagate,
so a grading run never scores them as the trainee's fault.
"""

from __future__ import annotations

from typing import Any

from sandbox import connect
from sandbox.errors import CheckFailed, NoRevisionDeployed
from sandbox.faults import probes as _shared  # noqa: F401 - registers the observers checks share
from sandbox.spec import STOPPED_EARLY, SUPERSEDED_EARLY, parse_cpus
from sandbox.observe import OBSERVERS, DefinitionInvalid, Observation, broken, holds, observe, observer

from . import runbook as _runbook
from .result import CheckResult

#: Failure reasons that say what the trainee did to a revision, not how it behaved.
NOT_ITS_OWN_FAILURE = (SUPERSEDED_EARLY, STOPPED_EARLY)

CHECKS = OBSERVERS
"""Every check: the observers fault probes use (``sandbox.faults.probes``) and the graders' own."""
register = observer


def check(name: str, sb: Any = None, *, points: float | None = None, **args: Any) -> CheckResult:
    """Run the check ``name`` against ``sb`` (default: ``sandbox.connect(up=False)``)."""
    entry = OBSERVERS.get(name)
    problems = OBSERVERS.problems(name, args)
    if problems:
        raise DefinitionInvalid(f"check {name}", problems)
    if sb is None and entry.needs_sandbox:
        sb = connect(up=False)
    return CheckResult.from_observation(observe(name, sb, **args), 1.0 if points is None else float(points))


def expect(name: str, sb: Any = None, **args: Any) -> CheckResult:
    """Run a check; raise ``CheckFailed`` (an ``AssertionError``) unless it passed."""
    result = check(name, sb, **args)
    if not result.passed:
        raise CheckFailed(result)
    return result


# --- readiness and rollouts ------------------------------------------------------------------


def _replicas(status: Any) -> int:
    """Running replicas of the serving revision, as the engine reports them."""
    return len(status.replicas())


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
            replicas: int | None = None, corpus: str | None = None) -> Observation:
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
        return holds("serving", observed, expected, **live)
    return broken("serving", observed, expected, _rollback_hint(sb, wants), **live)


@register("rolled_back")
def rolled_back(sb: Any, to_revision: int | None = None) -> Observation:
    """The serving revision is a rollback (``rollback_of`` set), to ``to_revision`` if given."""
    expected = f"a rollback to revision {to_revision}" if to_revision else "a rollback"
    hist = sb.history()
    serving = [r for r in hist if r.state == "serving"]
    if not serving:
        return broken("rolled_back", "nothing serving", expected, "deploy, then sb.rollback()")
    rev = serving[-1]
    observed = f"serving revision {rev.number} ({rev.change_cause or 'no change cause'})"
    if rev.rollback_of is None:
        return broken("rolled_back", observed + ", not a rollback", expected,
                      f"roll back with sb.rollback({f'to_revision={to_revision}' if to_revision else ''})"
                      " (kubectl rollout undo); sb.history() lists the revisions")
    if to_revision is not None and rev.rollback_of != to_revision:
        return broken("rolled_back", observed, expected,
                      f"this rolled back to revision {rev.rollback_of}; run"
                      f" sb.rollback(to_revision={to_revision})")
    return holds("rolled_back", observed, expected, revision=rev.number, rollback_of=rev.rollback_of)


@register("failed_rollout_held")
def failed_rollout_held(sb: Any, image: str | None = None) -> Observation:
    """A rollout (of ``image``) failed on its own (crashed, or not ready by its progress
    deadline), never got ready, and another revision serves, ready. A revision the trainee
    superseded or stopped before it could fail is not a held rollout."""
    expected = f"a failed rollout of {image or 'a bad revision'} while another revision serves"
    hist = sb.history()
    bad = [r for r in hist if r.state == "failed" and r.reason not in NOT_ITS_OWN_FAILURE
           and (image is None or _matches("image", {"image": r.spec.image}, image))]
    serving = [r for r in hist if r.state == "serving"]
    if not bad:
        rc = image or sb.settings.images.defect
        return broken("failed_rollout_held", f"no failed revision of {image or 'any image'} in history",
                      expected, f"deploy the release candidate: sb.deploy(image={rc!r}); the"
                      " rollout must fail while the old revision keeps serving")
    last = bad[-1]
    observed = f"revision {last.number} failed ({last.reason[:120]})"
    if any(r.ready_at is not None for r in bad):
        return broken("failed_rollout_held", observed + " but was ready once", expected,
                      "a revision that got ready is not a held rollout; see sb.history()")
    if not serving:
        return broken("failed_rollout_held", observed + "; nothing serves", expected,
                      "bring a good revision back: sb.rollback(to_revision=N) with N from sb.history()")
    r = sb.readiness()
    observed += f"; revision {serving[-1].number} serves"
    if not r.ready:
        return broken("failed_rollout_held", observed + f" but /readyz says {r.reason}", expected,
                      "run sb.status() and sb.logs() to see why the serving revision is not ready")
    return holds("failed_rollout_held", observed, expected, failed_revision=last.number,
                  serving_revision=serving[-1].number)


# --- settings a lab argues against --------------------------------------------------------------

#: The model API's provider timeout when a revision does not set one (``AppConfig``).
DEFAULT_PROVIDER_TIMEOUT_S = 0.5


@register("settings_sound")
def settings_sound(sb: Any, provider_timeout_min_s: float | None = None,
                   cpu_quota: float | None = None) -> Observation:
    """The serving revision's settings are ones the lab's arithmetic allows.

    ``provider_timeout_min_s``: the provider timeout is at least this (the provider's healthy
    p99): below it a healthy provider is cut off on every call and the "fix" buys its latency by
    never reranking. ``cpu_quota``: replicas x CPU limit fit the namespace's quota (a revision
    without a CPU limit cannot be planned against one). Read from the serving revision's spec as
    the engine or API server holds it.
    """
    status = sb.status()
    if status.serving_revision is None or status.spec is None:
        raise NoRevisionDeployed(sb.id)
    spec, seen, wants, wrong = status.spec, [], [], []
    if provider_timeout_min_s is not None:
        timeout = float(spec.config.get("provider_timeout_s") or DEFAULT_PROVIDER_TIMEOUT_S)
        seen.append(f"provider timeout {timeout * 1000:g} ms")
        wants.append(f"provider timeout >= {provider_timeout_min_s * 1000:g} ms (the provider's healthy p99)")
        if timeout < provider_timeout_min_s:
            wrong.append("a timeout under the provider's healthy p99 cuts off a healthy provider:"
                         " raise it into the budget between that p99 and the SLO")
    if cpu_quota is not None:
        cpus = spec.config.get("cpus")
        used = None if not cpus else parse_cpus(cpus) * spec.replicas
        seen.append(f"{spec.replicas} x {cpus or 'no limit'} cores" + (f" = {used:g}" if used else ""))
        wants.append(f"replicas x cpus <= {cpu_quota:g} cores (the namespace quota)")
        if used is None or used > cpu_quota + 1e-9:
            wrong.append("size replicas x cpus inside the quota (set cpus on every replica)")
    observed = "; ".join(seen) + f" (revision {status.serving_revision})"
    expected = "; ".join(wants) or "any settings"
    if wrong:
        return broken("settings_sound", observed, expected, "; ".join(wrong))
    return holds("settings_sound", observed, expected)


# (``drift_alert_fires`` and ``rules_recorded``, judged by the sandbox's Prometheus, live in
# ``graders.alerting``.)


# (The checks of faults, data and foreign objects live in ``graders.datachecks``, which the
# package imports, so they register with every ``import graders...``.)


# --- runbooks ------------------------------------------------------------------------------


@register("runbook_sections", needs_sandbox=False)
def runbook_sections(sb: Any, text: str = "") -> Observation:
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
        return holds("runbook_sections", observed, expected, **details)
    return broken("runbook_sections", observed, expected, hint, share, **details)


__all__ = ["CHECKS", "check", "expect", "register", "settings_sound"]
