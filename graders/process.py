"""Checks of the process a lab asks for, read from the control endpoint's audit log.

The live state shows what serves; it cannot show *how* it came to serve. A graded kernel reaches
its sandbox only through the control endpoint (``sandbox.control``), which writes every
operation to an audit log with its own clock, in the grader's process, where the box cannot
reach. These checks read that log (the grader passes it as ``audit``):

* ``canary_gated``: the revision that serves was started as a canary (``deploy(wait=False)``) and
  its own replicas answered enough requests *before* it was promoted - the gate was measured,
  not assumed;
* ``rollback_named_target``: the serving revision is a rollback and the call that made it named
  its target revision (``sb.rollback(to_revision=N)``), as a change record's undo plan says;
* ``hypothesis_before_mitigation``: the first hypothesis of the triage frame (a
  ``labkit.widgets.HypothesisLog`` entry, which in a box is also an ``event`` the endpoint
  stamps) was logged before the first change after the lab's fault, and names the incident class
  the lab expects - the order of the reasoning, on the endpoint's clock, not the notebook's;
* ``gameday_clock``: a game day's times from the same log - for each fault the lab injected, the
  first ``detected`` event that names a signal kind the fault catalog lists for it, the first
  change after it (the mitigation) and the ``resolved`` event - so TTD, TTM and TTR are the
  endpoint's, never times typed into a notebook.

Outside a grading run there is no audit log; the checks then say so and fail, so a lab states
them in prose and leaves the verdict to the grader.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sandbox.control.audit import AuditRecord
from sandbox.faults import load_catalog
from sandbox.observe import Observation, broken, holds

from .checks import register

NO_LOG = "no audit log (only a graded run has one: the grader reads the control endpoint's)"


def _ok(records: list[AuditRecord], op: str) -> list[AuditRecord]:
    return [r for r in records if r.op == op and r.outcome == "ok"]


@register("canary_gated", needs_sandbox=False)
def canary_gated(sb: Any, audit: list[AuditRecord] | None = None, min_requests: int = 20) -> Observation:
    """The last promoted canary answered ``min_requests`` requests on its own replicas before
    ``wait_for_rollout()`` promoted it."""
    expected = f"a canary (deploy(wait=False)) measured on its own replicas (>= {min_requests} requests) before promotion"
    if not audit:
        return broken("canary_gated", NO_LOG, expected, "evaluate the canary through sb.revision_endpoints(n)")
    canaries = {r.result.get("revision"): r.seq for r in _ok(audit, "deploy") if r.args.get("wait") is False}
    promoted = [(r.result.get("revision"), r.seq) for r in _ok(audit, "wait_for_rollout")
                if r.result.get("state") == "serving" and r.result.get("revision") in canaries]
    if not promoted:
        return broken("canary_gated", f"{len(canaries)} canary start(s), none promoted by wait_for_rollout()",
                      expected, "start the candidate with sb.deploy(..., wait=False), measure it, then sb.wait_for_rollout()")
    number, promoted_at = promoted[-1]
    prefix = f"r{number}/"
    measured = [r for r in _ok(audit, "proxy") if canaries[number] < r.seq < promoted_at
                and str(r.args.get("target", "")).startswith(prefix)]
    observed = f"revision {number}: {len(measured)} request(s) to its own replicas before its promotion"
    if len(measured) >= min_requests:
        return holds("canary_gated", observed, expected, revision=number, requests=len(measured))
    return broken("canary_gated", observed, expected,
                  "measure the candidate alone before promoting it: ServiceClient(url).evaluate(k=5) on"
                  " sb.revision_endpoints(n)", len(measured) / min_requests / 2, revision=number)


@register("rollback_named_target", needs_sandbox=False)
def rollback_named_target(sb: Any, audit: list[AuditRecord] | None = None) -> Observation:
    """The last rollback named the revision it returned to (``rollback(to_revision=N)``)."""
    expected = "a rollback that names its target revision"
    if not audit:
        return broken("rollback_named_target", NO_LOG, expected, "sb.rollback(to_revision=N)")
    rollbacks = _ok(audit, "rollback")
    if not rollbacks:
        return broken("rollback_named_target", "no rollback", expected, "sb.rollback(to_revision=N)")
    last = rollbacks[-1]
    named = last.args.get("to_revision")
    observed = f"rollback to revision {last.result.get('rollback_of')} ({'named' if named else 'not named'})"
    if named is not None and named == last.result.get("rollback_of"):
        return holds("rollback_named_target", observed, expected)
    return broken("rollback_named_target", observed, expected,
                  "name the target the change record's undo plan gives: sb.rollback(to_revision=N)", 0.5)


#: Operations that change the sandbox: a mitigation, when the trainee performs one.
MUTATIONS = ("deploy", "rollback", "build_index", "run_job")


@register("hypothesis_before_mitigation", needs_sandbox=False)
def hypothesis_before_mitigation(sb: Any, audit: list[AuditRecord] | None = None,
                                 incident_class: str | None = None) -> Observation:
    """The first hypothesis came before the first change after the lab injected its fault (half
    the credit) and names ``incident_class`` (the other half; all of it when none is given)."""
    expected = ("a hypothesis logged before the first change after the fault"
                + (f", naming incident class {incident_class!r}" if incident_class else ""))
    if not audit:
        return broken("hypothesis_before_mitigation", NO_LOG, expected, "frame.add('hypothesis', text, cls)")
    injected = [r.seq for r in _ok(audit, "inject")]
    start = injected[-1] if injected else 0
    hypotheses = [r for r in _ok(audit, "event") if r.args.get("event") == "hypothesis" and r.seq > start]
    changes = [r for r in audit if r.op in MUTATIONS and r.outcome == "ok" and r.seq > start]
    if not hypotheses:
        return broken("hypothesis_before_mitigation", "no hypothesis logged after the fault", expected,
                      "log the hypothesis in the lab's HypothesisLog before you change anything")
    first = hypotheses[0]
    named = str(first.args.get("signal", ""))
    before = not changes or first.seq < changes[0].seq
    observed = (f"first hypothesis (class {named or 'none'}) at step {first.seq}; first change "
                + (f"{changes[0].op} at step {changes[0].seq}" if changes else "none"))
    right_class = incident_class is None or named == incident_class
    share = (0.5 if before else 0.0) + (0.5 if right_class else 0.0)
    if before and right_class:
        return holds("hypothesis_before_mitigation", observed, expected, incident_class=named)
    hint = ("write the hypothesis before the first change: a fix tried first is not a tested hypothesis"
            if not before else f"the first hypothesis named {named or 'no'} incident class")
    return broken("hypothesis_before_mitigation", observed, expected, hint, share, incident_class=named)


def _scenarios(audit: list[AuditRecord]) -> list[tuple[AuditRecord, list[AuditRecord]]]:
    """Each ``inject`` of the run with the records up to the next one."""
    injects = _ok(audit, "inject")
    bounds = [r.seq for r in injects[1:]] + [float("inf")]
    return [(inj, [r for r in audit if inj.seq < r.seq < end]) for inj, end in zip(injects, bounds)]


def _clock(inject: AuditRecord, after: list[AuditRecord]) -> dict[str, Any]:
    """One scenario's times (minutes after the inject, the endpoint's clock) and what is missing."""
    fault = str(inject.args.get("fault", ""))
    kinds = {s.kind for s in load_catalog().get(fault).signals}
    events = [r for r in after if r.op == "event" and r.outcome == "ok"]
    detected = next((r for r in events if r.args.get("event") == "detected" and r.args.get("signal") in kinds), None)
    changes = [r for r in after if r.op in MUTATIONS and r.outcome == "ok" and detected and r.seq > detected.seq]
    mitigated = changes[0] if changes else None
    resolved = next((r for r in events if r.args.get("event") == "resolved" and mitigated and r.seq > mitigated.seq),
                    None)
    steps = (("detected", detected), ("mitigated", mitigated), ("resolved", resolved))
    minutes = {f"tt{name[0]}_min": round((r.at - inject.at) / 60, 2) if r else None for name, r in steps}
    moments = {f"{name}_at": _iso(r.at) for name, r in (("injected", inject), *steps) if r}
    missing = [what for what, r in (("a detection naming one of its signal kinds " + "/".join(sorted(kinds)), detected),
                                    ("a change after the detection", mitigated),
                                    ("a resolved event after the change", resolved)) if r is None]
    signal = str(detected.args.get("signal", "")) if detected else ""
    return {"fault": fault, **minutes, **moments, "signal": signal, "missing": missing}


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")


@register("gameday_clock", needs_sandbox=False)
def gameday_clock(sb: Any, audit: list[AuditRecord] | None = None, scenarios: int = 1) -> Observation:
    """Every one of the ``scenarios`` faults the lab injected was detected on a signal its catalog
    entry lists, then changed, then declared resolved - in that order on the endpoint's clock.
    Credit per scenario and per step (a third each)."""
    expected = f"{scenarios} scenario(s), each: detected (a catalog signal kind), a change, resolved - in order"
    if not audit:
        return broken("gameday_clock", NO_LOG, expected, "log('<incident>', 'detected', note, signal='metric')")
    clocks = [_clock(inj, after) for inj, after in _scenarios(audit)][:scenarios]
    steps = sum(3 - len(c["missing"]) for c in clocks)
    observed = "; ".join(f"{c['fault']}: TTD {c['ttd_min']} min, TTM {c['ttm_min']} min, TTR {c['ttr_min']} min"
                         for c in clocks) or "no fault was injected"
    if len(clocks) == scenarios and steps == 3 * scenarios:
        return holds("gameday_clock", observed, expected, incidents=clocks)
    gaps = "; ".join(f"{c['fault']}: missing {', '.join(c['missing'])}" for c in clocks if c["missing"])
    return broken("gameday_clock", observed, expected, gaps or "not every scenario was injected",
                  steps / (3 * scenarios), incidents=clocks)
