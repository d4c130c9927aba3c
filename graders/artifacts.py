"""Rubric checks of written artifacts (registered into ``graders.checks.CHECKS``).

Each check parses one markdown answer and returns observed / expected / hint with partial
credit, like ``runbook_sections``. Every part of an artifact must carry concrete content - a
number, a named person or role, a decision, a reason, a command - so headings with filler
under them earn nothing (see :mod:`graders.rubric`). In a lab these cells stay manually
graded: the grader's process stores the check's verdict as the cell's suggested score.

======================= ======================================================================
check                   parts
======================= ======================================================================
design_review           problem, alternatives, failure modes / blast radius, reversibility,
                        operational cost, compliance and security
adr_parts               context, decision, consequences, status (the repo's ADR format)
sbi_feedback            situation, behaviour, impact; grounded in the trainee's game-day events
retro_css               continue, start, stop; grounded in the trainee's game-day events
roadmap_framing         the ask, the frame (risk, SLO/budget, toil, compliance, cost), the one
                        sentence a non-engineer repeats; the trainee's own recorded numbers
prioritisation_decision proposals, cost of delay, decision-maker, decision, accepted trade-off
vendor_risk             SLA against our SLO, data terms, deprecation, pricing, fallback, verdict
======================= ======================================================================

``data_classification`` (a table) and ``corpus_runbook`` (a runbook the live service would
retrieve) live in :mod:`graders.govchecks`.

Checks that take ``evidence`` get, in grading, the bundle of :func:`graders.evidence.trainee_evidence`
for the student graded; called without it (``evidence=None``) they skip the grounding part and
say so.
"""

from __future__ import annotations

import re
from typing import Any

from . import evidence as _evidence
from . import rubric as r
from .checks import register
from sandbox.observe import Observation, broken, holds

TRAITS = re.compile(r"\b(you are|you're|you were|he is|she is|they are)\s+(so\s+|really\s+|very\s+)?"
                    r"(great|good|bad|careless|lazy|smart|sloppy|amazing|awesome|brilliant|"
                    r"rude|slow|weak|strong|terrible|the best|a natural|a rockstar)\b", re.IGNORECASE)
ACTIONS = (r"\b(declared|announced|asked|paged|escalated|rolled back|ran|wrote|checked|named|called|posted|"
           r"opened|stated|waited|skipped|restarted|deployed|read|looked|said|kept|handed|assigned|silenced|"
           r"noticed|measured|logged|stopped|started|chose|reverted|proposed|reviewed|challenged|paused|changed|"
           r"fixed|set|raised|lowered|switched|interrupted|repeated|summarised|summarized)\b")
LOADED = re.compile(r"\b(obviously|clearly|just|simply|only sensible|no-?brainer|of course|waste of time|"
                    r"pointless|nonsense|silly|must-have)\b", re.IGNORECASE)
JARGON = re.compile(r"\b(p9\d|slos?|slis?|mttr|mttd|recall@\d+|promql|k8s|kubernetes|pods?|replicas?|"
                    r"reranker|embeddings?|rollouts?|canary|readyz|quota|burn rate|error budget|eval set|"
                    r"vectors?|index(es)?|latency)\b", re.IGNORECASE)
PERCENT = re.compile(r"\d+(?:\.\d+)?\s?%")

_CLOCK = r.Req("a time of day (HH:MM)", lambda s: bool(r.TIME_OF_DAY.search(s.text)))


def _detail(label: str) -> r.Req:
    return r.any_of(label, r.number(), r.code(), _CLOCK)


DESIGN_REVIEW: tuple[r.Part, ...] = (
    r.Part("problem", "Problem", ("problem", "problem statement", "motivation", "background"),
           (r.role("who is affected"), r.number(label="how big the problem is (a number)")),
           "state the problem and who it hurts, with a number (how often, how long, how many)"),
    r.Part("alternatives", "Alternatives", ("alternatives", "alternatives considered", "options considered", "options"),
           (r.items(2, "two alternatives"), r.reason(2, "why each was rejected or kept (because ...)")),
           "list at least two other approaches and why each was rejected"),
    r.Part("failure-modes", "Failure modes", ("failure modes", "failure mode", "blast radius", "what breaks", "risks"),
           (r.items(2, "two failure modes"),
            r.terms(r"blast radius|all (users|replicas|traffic|queries|searches|trainees)|every (replica|user|search|"
                    r"query|revision)|\d+\s?% of|scope|affected|whole (service|fleet|cohort)", "the blast radius"),
            r.number()),
           "name what breaks first, how far it spreads (blast radius) and how likely, in numbers"),
    r.Part("reversibility", "Reversibility", ("reversibility", "reversible", "backing out", "back out", "undo"),
           (r.any_of("how to back out (a command, flag or procedure)", r.code(),
                     r.terms(r"roll(ed|s)? back|revert|disable|switch (it )?off|feature flag|flag|turn off|remove", "")),
            r.number(label="what backing out costs (minutes, requests, money)")),
           "say how you back out if it is wrong and what that costs, in minutes or money"),
    r.Part("operational-cost", "Operational cost", ("operational cost", "operating cost", "operations", "ops cost",
                                                    "cost to operate", "pager", "on-call load", "operability"),
           (r.role("who carries the pager"),
            r.terms(r"\balerts?\b|\brunbooks?\b|\bdashboards?\b|\bpages?\b|\btoil\b", "the new alerts, runbooks or dashboards"),
            r.number()),
           "name who carries the pager, the new alerts and runbooks, and the load in numbers"),
    r.Part("compliance-security", "Compliance and security",
           ("compliance and security", "security and compliance", "compliance", "security", "privacy"),
           (r.terms(r"data flows?|personal data|\bpii\b|secrets?|credentials?|api keys?|\baccess\b|rbac|approv\w+|"
                    r"audit\w*|retention|\blogs?\b|change records?|evidence|consent|third part(y|ies)", 
                    "the data flows, secrets, access or approvals it touches", n=2),
            r.any_of("a concrete control or a named owner", r.code(), r.role(), r.number())),
           "name the new data flows, secrets, access boundaries and approvals, and who controls each"),
)

ADR: tuple[r.Part, ...] = (
    r.Part("context", "Context", ("context", "background", "context and problem"),
           (r.number(2, "the forces in numbers (two or more)"), r.role("who is affected or decides")),
           "describe the forces with numbers: what happened, how often, what it cost, who is affected"),
    r.Part("decision", "Decision", ("decision", "decision outcome"),
           (r.decision("a decision in the active voice (we will ...)"),
            r.any_of("exactly what (a threshold, command or scope)", r.number(), r.code())),
           "write the decision in the active voice, with its exact threshold or scope"),
    r.Part("consequences", "Consequences", ("consequences", "implications", "trade-offs", "tradeoffs"),
           (r.items(2, "two or more consequences"),
            r.terms(r"\b(costs?|risks?|slower|harder|loses?|lost|downside|trade-?off|we accept|accepted|negative|worse|"
                    r"more (work|pages|alerts|toil)|false (positive|trigger|alarm)s?)\b", "a downside you accept"),
            r.terms(r"\b(faster|reduce[sd]?|fewer|less|better|prevents?|protects?|caught|benefits?|positive|improves?)\b",
                    "a benefit")),
           "list what becomes easier and what becomes harder, including the downside you accept"),
    r.Part("status", "Status", ("status",),
           (r.terms(r"\b(proposed|accepted|rejected|deprecated|superseded)\b",
                    "a status (proposed, accepted, rejected, deprecated or superseded)"),
            r.any_of("a date or the deciders", r.when(), r.role())),
           "give the status and when / by whom it was set", min_words=1),
)

SBI: tuple[r.Part, ...] = (
    r.Part("situation", "Situation", ("situation", "the situation"),
           (r.when("when it happened (a time, a date or the game day)"),
            r.terms(r"game[- ]?day|incident|scenario|drill|review|shift|handover|hot wash|postmortem|\bw\d\d-|\bgd-?\d",
                    "the occasion (which game day, incident or meeting)")),
           "anchor it: which game day or incident, and when"),
    r.Part("behaviour", "Behaviour", ("behaviour", "behavior", "what you did", "observed behaviour"),
           (r.terms(ACTIONS, "an observable action (what they did)"),
            _detail("a concrete detail (a time, number, signal or command)"),
            r.Req("actions, not traits ('you were great' is a label)", lambda s: not TRAITS.search(s.text))),
           "describe what the person did, observably, with a detail a camera would have caught"),
    r.Part("impact", "Impact", ("impact", "effect", "the impact", "result"),
           (r.any_of("the effect in numbers or on named people", r.number(), r.role()),
            r.terms(r"\b(so|which|meant|means|saved|costs?|delayed|let|allowed|helped|caused|kept|made|gave|led|"
                    r"stopped|reduced|avoided|prevented|because|could|knew|able to|thanks to|as a result|therefore)\b",
                    "a consequence (what it led to)")),
           "say what the behaviour led to for users, the team or the clock, in numbers"),
)

CSS: tuple[r.Part, ...] = (
    r.Part("continue", "Continue", ("continue", "keep doing", "keep"),
           (r.items(1, "a practice to keep"), _detail("evidence from the game day (a time, number or signal)")),
           "name what worked, with the moment in the game day that shows it"),
    r.Part("start", "Start", ("start doing", "start"),
           (r.items(1, "a practice to add"), r.role("an owner"), r.when("by when")),
           "name what is missing, who adds it and by when"),
    r.Part("stop", "Stop", ("stop doing", "stop"),
           (r.items(1, "a practice to drop"),
            r.any_of("what it cost (minutes, noise, harm)", r.number(), r.reason(),
                     r.terms(r"\b(wasted|noise|harm|confus\w+|delay\w*)\b", ""))),
           "name what wasted time or caused harm, and what it cost"),
)

ROADMAP: tuple[r.Part, ...] = (
    r.Part("ask", "The ask", ("the ask", "ask", "proposal", "proposed work", "what we propose", "request"),
           (r.number(label="the effort or timeline (days, weeks)"), r.role("who does it or who decides")),
           "say what work you ask for, how long it takes and who does it"),
    r.Part("frame", "The frame", ("frame", "framing", "why now", "slo and error budget", "error budget", "risk",
                                  "toil", "compliance", "cost"),
           (r.number(2, "two numbers behind the frame"),
            r.terms(r"\b(risk|probability|outages?|slo|error budget|budget|toil|hours? (a|per) week|compliance|audit|"
                    r"controls?|costs?|saves?|per month)\b|[$\u20ac]", "the frame's own terms (risk, SLO and budget, toil, "
                    "compliance or cost)")),
           "frame it in risk, SLO and error budget, toil, compliance or cost - with numbers"),
    r.Part("sentence", "The one sentence", ("one sentence", "in one sentence", "the sentence", "for non-engineers",
                                            "non-engineer", "one-liner", "elevator pitch", "tl;dr", "tldr"),
           (r.Req("exactly one sentence", lambda s: len(r.sentences(s.text)) == 1),
            r.Req("at most 35 words", lambda s: len(s.text.split()) <= 35),
            r.Req("no jargon (p95, SLO, recall@5, replicas, metric names, code)",
                  lambda s: not JARGON.search(s.text) and not r.has_code(s.text)),
            r.any_of("something a listener remembers (a number or who is affected)", r.number(), r.role())),
           "write the one plain sentence a non-engineer repeats in a meeting you are not in"),
)

PRIORITISATION: tuple[r.Part, ...] = (
    r.Part("proposals", "Proposals", ("proposals", "the proposals", "the two proposals", "requests", "options"),
           (r.items(2, "both proposals"),
            r.Req("one sentence each", lambda s: len(s.items) >= 2 and all(len(r.sentences(i)) <= 1 for i in s.items[:2])),
            r.Req("stated neutrally (no 'obviously', 'just', 'clearly')", lambda s: not LOADED.search(s.text))),
           "state each proposal in one neutral sentence"),
    r.Part("cost-of-delay", "Cost of delay", ("cost of delay", "costs of delay", "delay costs", "cost of waiting"),
           (r.items(2, "a cost of delay for each proposal"),
            r.Req("a number for each", lambda s: sum(bool(r.numbers(i)) for i in s.items) >= 2),
            r.terms(r"\b(blocked|blocks|risk|deadline|slips?|launch|users?|customers?|outages?|minutes|stale|recall|"
                    r"audit)\b", "who is blocked, what risk grows or what deadline slips")),
           "for each proposal: who is blocked, what risk grows, what deadline slips - in numbers"),
    r.Part("decision-maker", "Decision-maker", ("decision-maker", "decision maker", "who decides", "decider",
                                                "decided by"),
           (r.accountable(),), "name the one accountable person (and role) who decides", min_words=2),
    r.Part("decision", "Decision", ("decision", "the decision", "outcome", "what we decided"),
           (r.decision(), r.terms(r"\b(first|before|then|after|next|now|defer\w*|postpone\w*|until)\b",
                                  "which goes first"), r.when("when"), r.role("who owns each next step")),
           "write the decision: which goes first, from when, owned by whom"),
    r.Part("trade-off", "Accepted trade-off", ("trade-off", "tradeoff", "trade off", "accepted trade-off",
                                               "what we accept", "accepted risk"),
           (r.terms(r"\b(accept\w*|trade-?off|at the cost of|in exchange|give up|risk)\b", "the trade-off, in words"),
            r.any_of("its size (a number or a date)", r.number(), r.when())),
           "write down the trade-off you accept and how big it is"),
)

VENDOR: tuple[r.Part, ...] = (
    r.Part("sla", "SLA against our SLO", ("sla", "service level", "availability and latency"),
           (r.Req("the provider's SLA and our SLO, both as numbers", lambda s: len(PERCENT.findall(s.text)) >= 2),
            r.terms(r"\b(below|above|short of|exceeds?|less than|more than|worse|better|gap|compared?|against|vs\.?|"
                    r"covers?|cannot)\b", "the comparison (does the SLA cover our SLO?)"),
            r.terms(r"\b(latency|p9\d|ms|availability|uptime|errors?)\b", "which objectives (availability, latency)")),
           "compare the provider's SLA with our SLO, objective by objective, in numbers"),
    r.Part("data", "Data terms", ("data terms", "data processing", "data use", "data", "privacy"),
           (r.terms(r"\b(retention|retain\w*|training|train|region|residency|location|eu|us|dpa|processing agreement|"
                    r"sub-?processors?|personal data|pii|logs?|deletion|delete|opt-?out)\b",
                    "what the terms say about retention, training use, location or deletion", n=2),
            r.number(label="the concrete term (days, region, clause)"),
            r.terms(r"\b(acceptable|unacceptable|not acceptable|requires?|must|conditions?|blockers?|blocks?)\b",
                    "our verdict on them")),
           "read the data terms: retention, training use, location, deletion - and say if they are acceptable"),
    r.Part("deprecation", "Deprecation", ("deprecation", "deprecation notice", "end of life", "sunset", "versioning"),
           (r.number(label="the notice period or date"),
            r.any_of("our migration lead time or plan", r.when(),
                     r.terms(r"\b(migrat\w*|lead time|plan|weeks? of work|days? of work|switch\w*)\b", ""))),
           "compare the notice period with how long our migration takes"),
    r.Part("pricing", "Pricing", ("pricing", "pricing change", "price", "costs"),
           (r.number(3, "price, volume and the monthly cost (three numbers)"),
            r.terms(r"per (month|year|1k|1,000|thousand|call|request)|monthly|/month|a month|increase|rise|%",
                    "the change over time"),
            r.terms(r"\b(budget|threshold|trigger|break-?even|walk away|renegotiat\w*|cap|limit|self-?host\w*)\b",
                    "what we do when it changes (a trigger or a break-even)")),
           "work out the monthly cost now and after the change, and the point where we act"),
    r.Part("fallback", "Fallback plan", ("fallback", "fallback plan", "degraded mode", "exit plan", "plan b",
                                         "contingency"),
           (r.terms(r"\b(vector order|degraded|fallback|without (the )?reranker|timeouts?|disable|switch|self-?host\w*|"
                    r"second provider|in-house)\b", "what serves when the provider is gone"),
            r.number(label="its measured cost (recall, p95 or minutes)"),
            r.any_of("how we switch (a command, config or owner)", r.code(), r.role())),
           "say what serves without the provider, what it costs (measured) and how you switch"),
    r.Part("verdict", "Recommendation", ("recommendation", "verdict", "conclusion", "decision"),
           (r.decision("a recommendation (approve, reject, approve with conditions)"), r.role("who signs it off")),
           "end with the recommendation and who signs it off"),
)


def _grounded(text: str, evidence: dict[str, Any] | None, need_values: int = 0) -> r.PartScore | None:
    """The grounding part: does the text cite the trainee's own recorded events and numbers?"""
    if evidence is None:
        return None
    part = r.PartScore("grounded", "Your own record", True,
                       ask="cite your own recorded game-day events (incident id, times or minutes)")
    if need_values:
        values = _evidence.cited_values(text, evidence)
        (part.met if len(values) >= need_values else part.missing).append(
            f"{need_values} of your recorded numbers (live checks, game days)")
        part.ask = "quote your own recorded numbers (labkit report / reports/live_checks.jsonl, game-day minutes)"
        return part
    (part.met if _evidence.cited_incidents(text, evidence) else part.missing).append("one of your recorded incidents")
    (part.met if _evidence.cited_times(text, evidence) else part.missing).append(
        "a recorded time or minutes from injection")
    if not evidence.get("gamedays"):
        part.ask = ("no game-day events of yours are in reports/gamedays.jsonl: ask the game master to export them,"
                    " then cite them")
    return part


def judge_artifact(name: str, parts: tuple[r.Part, ...], text: str, extra: r.PartScore | None = None,
                   what: str = "") -> Observation:
    """Score ``text`` against ``parts`` (plus ``extra``) as one check result."""
    judgement = r.judge(text or "", parts)
    if extra is not None:
        judgement.parts.append(extra)
    observed, hint = judgement.describe()
    if extra is None and name in GROUNDED:
        observed += " (not checked against your recorded events: no evidence given)"
    expected = what or ("every part concrete: " + ", ".join(p.key for p in judgement.parts))
    share = judgement.score()
    if share >= 1.0:
        return holds(name, observed, expected, parts=judgement.details())
    return broken(name, observed, expected, hint, share, parts=judgement.details())


GROUNDED = {"sbi_feedback", "retro_css", "roadmap_framing"}


@register("design_review", needs_sandbox=False)
def design_review(sb: Any, text: str = "") -> Observation:
    """A design review on the six-dimension rubric, every dimension with concrete content."""
    return judge_artifact("design_review", DESIGN_REVIEW, text)


@register("adr_parts", needs_sandbox=False)
def adr_parts(sb: Any, text: str = "") -> Observation:
    """An architecture decision record in the repo format: context, decision, consequences, status."""
    return judge_artifact("adr_parts", ADR, text)


@register("sbi_feedback", needs_sandbox=False)
def sbi_feedback(sb: Any, text: str = "", evidence: dict[str, Any] | None = None) -> Observation:
    """Situation-Behaviour-Impact feedback, anchored in the trainee's recorded game-day events."""
    return judge_artifact("sbi_feedback", SBI, text, _grounded(text, evidence))


@register("retro_css", needs_sandbox=False)
def retro_css(sb: Any, text: str = "", evidence: dict[str, Any] | None = None) -> Observation:
    """A Continue / Start / Stop retrospective of a game day, anchored in its recorded events."""
    return judge_artifact("retro_css", CSS, text, _grounded(text, evidence))


@register("roadmap_framing", needs_sandbox=False)
def roadmap_framing(sb: Any, text: str = "", evidence: dict[str, Any] | None = None) -> Observation:
    """A one-page proposal framed in risk, SLO/budget, toil, compliance or cost, with the
    trainee's own recorded numbers, ending in one sentence a non-engineer repeats."""
    return judge_artifact("roadmap_framing", ROADMAP, text, _grounded(text, evidence, need_values=2))


@register("prioritisation_decision", needs_sandbox=False)
def prioritisation_decision(sb: Any, text: str = "") -> Observation:
    """A cross-team prioritisation record: both proposals, cost of delay of each, the named
    decision-maker, the written decision and the accepted trade-off."""
    return judge_artifact("prioritisation_decision", PRIORITISATION, text)


@register("vendor_risk", needs_sandbox=False)
def vendor_risk(sb: Any, text: str = "") -> Observation:
    """A vendor risk review: SLA against our SLO, data terms, deprecation, pricing, fallback, verdict."""
    return judge_artifact("vendor_risk", VENDOR, text)
