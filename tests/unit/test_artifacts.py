"""Rubric checks of written artifacts: concrete content earns points, headings with filler do not.

Every check is run the way a lab runs it (``graders.check(name, text=...)``). The calibrated
strong / borderline / weak exemplars of the facilitator's kit are scored in
``test_facilitator.py``; here each rule is pinned on small texts.
"""

from __future__ import annotations

import json

import nbformat
import pytest
from offline_index import OfflineIndex
from traitlets.config import Config

import graders
from graders import evidence as ev
from graders import rubric
from graders.preprocessor import LiveStateGrader, declaration_problems

ARTIFACTS = {
    "design_review": ("Problem", "Alternatives", "Failure modes", "Reversibility", "Operational cost",
                      "Compliance and security"),
    "adr_parts": ("Context", "Decision", "Consequences", "Status"),
    "sbi_feedback": ("Situation", "Behaviour", "Impact"),
    "retro_css": ("Continue", "Start", "Stop"),
    "roadmap_framing": ("The ask", "The frame", "In one sentence"),
    "prioritisation_decision": ("Proposals", "Cost of delay", "Decision-maker", "Decision", "Accepted trade-off"),
    "vendor_risk": ("SLA against our SLO", "Data terms", "Deprecation", "Pricing", "Fallback plan", "Recommendation"),
}
FILLERS = ("TBD", "TODO: fill this in later", "See above.", "N/A", "Looks good, best practices, etc.",
           "We should think about it.", "Lorem ipsum dolor sit amet.", "Not sure, it depends.")


def _headed(headings: tuple[str, ...], bodies: list[str]) -> str:
    return "\n\n".join(f"## {h}\n{b}" for h, b in zip(headings, bodies, strict=True))


@pytest.mark.parametrize("name", sorted(ARTIFACTS))
def test_every_heading_with_filler_scores_nothing(name):
    headings = ARTIFACTS[name]
    text = _headed(headings, [FILLERS[i % len(FILLERS)] for i in range(len(headings))])
    r = graders.check(name, text=text)
    assert r.points == 0.0, r
    assert "filler only" in r.observed
    assert all(h.split()[0].lower() in r.hint.lower() for h in headings[:2])


@pytest.mark.parametrize("name", sorted(ARTIFACTS))
def test_headings_with_vague_prose_stay_low(name):
    """Whole sentences that name nothing concrete - no number, person, decision - are not enough."""
    vague = "This is an important area and the team has looked at it carefully and will keep improving it."
    text = _headed(ARTIFACTS[name], [vague] * len(ARTIFACTS[name]))
    r = graders.check(name, text=text, **({"evidence": ev.empty("x")} if name in ("sbi_feedback", "retro_css",
                                                                             "roadmap_framing") else {}))
    assert r.points <= 0.4, r


def test_a_missing_part_costs_its_share_and_is_named():
    text = """\
## Context
REL-1102 served a stale index for 180 minutes; recall@5 was 0.727 against 0.922. The service owner asked for it.

## Decision
We will roll back when recall@5 is more than 0.02 below the release record's baseline.

## Consequences
- Regressions are undone in 6 minutes instead of 180, fewer wrong answers.
- We accept a false-trigger risk when a baseline is wrong.
"""
    r = graders.check("adr_parts", text=text, points=4)
    assert r.partial and r.points == pytest.approx(3.0)
    assert "missing: status" in r.observed and "Status: give the status" in r.hint
    full = graders.check("adr_parts", text=text + "\n## Status\nAccepted on 2026-11-27 by the service owner.\n")
    assert full.passed


def test_inline_labels_open_parts_and_traits_are_not_behaviour():
    text = ("**Situation:** In the week-12 game day, scenario w12-provider-outage, at 11:00 UTC.\n\n"
            "**Behaviour:** You were great.\n\n"
            "**Impact:** The 5-minute detection meant users kept their search.")
    found = rubric.split(text, {"situation": ("situation",), "behaviour": ("behaviour",), "impact": ("impact",)},
                         labels=True)
    assert list(found) == ["situation", "behaviour", "impact"]
    assert found["behaviour"].text == "You were great."
    r = graders.check("sbi_feedback", text=text)
    assert not r.passed and "behaviour" in r.observed
    assert "not checked against your recorded events" in r.observed


EVENTS = [
    {"trainee": "alice", "incident": "w12-provider-outage", "event": "injected", "at": "2026-11-24T11:00:00+00:00",
     "fault": "provider-outage", "timebox_min": 60.0},
    {"trainee": "alice", "incident": "w12-provider-outage", "event": "detected", "at": "2026-11-24T11:02:00+00:00",
     "signal": "endpoint", "counts": False},
    {"trainee": "alice", "incident": "w12-provider-outage", "event": "detected", "at": "2026-11-24T11:05:00+00:00",
     "signal": "metric"},
    {"trainee": "alice", "incident": "w12-provider-outage", "event": "resolved", "at": "2026-11-24T11:24:00+00:00"},
    {"trainee": "bob", "incident": "w12-stale-index", "event": "injected", "at": "2026-11-24T10:00:00+00:00"},
]
SBI = ("**Situation:** Week-12 game day, w12-provider-outage, while you commanded.\n\n"
       "**Behaviour:** You asked me to read `modelapi_provider_requests_total` by outcome and re-declared at 11:05.\n\n"
       "**Impact:** Detection stopped at 5 minutes, so the scribe's timeline for the postmortem had no gap.")


def _course(tmp_path, events=EVENTS, checks=()):
    reports = tmp_path / "reports"
    reports.mkdir(parents=True)
    (reports / "gamedays.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events) + "{torn line\n")
    (reports / "live_checks.jsonl").write_text("".join(json.dumps(c) + "\n" for c in checks))
    (tmp_path / "nbgrader_config.py").write_text("")
    return tmp_path


def test_evidence_is_the_trainees_own_and_follows_the_clock_rules(tmp_path):
    root = _course(tmp_path)
    alice = ev.trainee_evidence(root, "alice")
    assert {e["trainee"] for e in alice["gamedays"]} == {"alice"}
    [incident] = ev.incidents(alice)
    assert incident["ttd_min"] == 5.0 and incident["ttr_min"] == 24.0  # the wrong-symptom 11:02 stops nothing
    assert incident["times"]["detected"] == "11:05"
    folder = root / "autograded" / "alice" / "lab12-feedback-retro"
    folder.mkdir(parents=True)
    assert ev.find_evidence(folder)["student"] == "alice"
    assert ev.find_evidence(folder)["course_root"] == str(root)


def test_feedback_is_grounded_only_in_events_the_trainee_recorded(tmp_path):
    alice = ev.trainee_evidence(_course(tmp_path), "alice")
    assert graders.check("sbi_feedback", text=SBI, evidence=alice).passed
    bob = ev.trainee_evidence(tmp_path, "bob")  # the same words, another trainee's record
    r = graders.check("sbi_feedback", text=SBI, evidence=bob, points=4)
    assert r.partial and r.points == pytest.approx(3.0)
    assert "grounded (lacks one of your recorded incidents" in r.observed
    nobody = graders.check("sbi_feedback", text=SBI, evidence=ev.empty("carol"))
    assert "ask the game master" in nobody.hint


def test_roadmap_counts_only_numbers_the_kit_recorded_for_the_trainee(tmp_path):
    checks = [{"student": "alice", "assignment": "lab10-capacity", "details": {"p95_ms": 212.4}},
              {"student": "alice", "assignment": "lab13-capstone", "details": {"recall": 0.922}}]
    alice = ev.trainee_evidence(_course(tmp_path, checks=checks), "alice")
    text = """\
## The ask
2 engineer-weeks in January for the platform team; the service owner decides.

## The frame: SLO and error budget
My provider game day (w12-provider-outage) took 24 minutes to restore; capacity p95 was 212 ms against
a 300 ms SLO; a 24-minute outage spends 12 % of the month's error budget.

## In one sentence
When our search supplier fails, on-call engineers lose runbook search for twenty minutes; two weeks fixes it.
"""
    assert sorted(ev.cited_values(text, alice)) == ["p95_ms 212.4 (lab10-capacity)",
                                                    "ttr_min 24 (w12-provider-outage)"]
    assert graders.check("roadmap_framing", text=text, evidence=alice).passed
    invented = text.replace("212 ms", "150 ms").replace("24 minutes to restore", "11 minutes to restore")
    r = graders.check("roadmap_framing", text=invented, evidence=alice)
    assert not r.passed and "2 of your recorded numbers" in r.observed


def test_the_one_sentence_is_plain_and_single():
    base = "## The ask\n2 weeks of the platform team, owner: me.\n\n## The frame\nRisk: 3 outages, 30 % chance.\n\n"
    jargon = graders.check("roadmap_framing", text=base + "## In one sentence\nWe must keep search p95 latency within the SLO during the launch week.\n")
    assert "no jargon" in jargon.observed
    two = graders.check("roadmap_framing", text=base + "## In one sentence\nUsers lose search. Two weeks fix it.\n")
    assert "exactly one sentence" in two.observed


CLASSIFICATION = """\
| asset | classification | personal data | retention | owner | deletion |
|---|---|---|---|---|---|
| corpus snapshots | internal | no | 13 months | corpus owner | delete snapshot and its indexes |
| index vectors | internal | no | 13 months | service owner | with its snapshot |
| search queries (sent to the reranker provider) | confidential | yes, names and emails | 30 days | service owner | provider deletion ticket within 30 days |
| eval set | internal | no | 6 months | model owner | git history with DPO approval |
| quarantine records | restricted | no | 2 years | security lead | after the incident closes |
| metrics | internal | no | 15 days | platform owner | expire by retention |
"""


def test_classification_holds_queries_to_the_stricter_bar():
    assert graders.check("data_classification", text=CLASSIFICATION).passed
    lax = CLASSIFICATION.replace("| confidential | yes, names and emails | 30 days |", "| internal | no | 1 year |")
    r = graders.check("data_classification", text=lax)
    assert not r.passed and 0.5 < r.points < 1
    assert "personal data: yes" in r.observed and "retention at most 90 days" in r.observed
    no_table = graders.check("data_classification", text="## Corpus\nInternal, kept 13 months.")
    assert no_table.points == 0 and "markdown table" in no_table.hint


RUNBOOK = """\
# ModelAPIReadyzFailing: index-corrupt (vectors sha256 mismatch on load)

## Problem
/readyz 503 `index-corrupt`: the replica refused an index whose vectors sha256 differs from its manifest.

## Pre-checks
- `sb.readiness()` shows reason index-corrupt; `modelapi_ready` is 0.

## Steps
1. Rebuild from the approved snapshot under a new name: `sb.build_index("v1", "2026-11-01", name="rebuild")`.
2. Deploy it: `sb.deploy(index="rebuild")`; expect the rollout to complete.

## Validation
`sb.evaluate(k=5)` shows recall@5 >= 0.90 and `/readyz` 200.

## Escalation
Security if no change record explains the changed bytes; the incident manager at sev1.

## Rollback
If the new revision never gets ready, `sb.rollback()` and rebuild from the previous snapshot.
"""
ALERT = "ModelAPIReadyzFailing readyz 503 index-corrupt vectors sha256 mismatch after restart"


def test_corpus_runbook_rank_comes_from_the_serving_models_own_scores():
    index = OfflineIndex()
    r = graders.check("corpus_runbook", index, text=RUNBOOK, alert=ALERT, incident_class="index")
    assert r.passed and r.details["rank"] <= 3, r
    off_topic = RUNBOOK.replace("# ModelAPIReadyzFailing: index-corrupt (vectors sha256 mismatch on load)",
                                "# Notes from Tuesday").replace("sha256", "bytes").replace("index-corrupt", "bad")
    weak = graders.check("corpus_runbook", index, text=off_topic, alert=ALERT, incident_class="index")
    assert not weak.passed and weak.details["rank"] > 3 and 0.5 <= weak.points < 1
    assert "start the runbook with the alert name" in weak.hint


def test_the_grader_supplies_the_cells_text_and_the_students_evidence(tmp_path):
    root = _course(tmp_path)
    config = Config()
    config.CourseDirectory.root = str(root)
    grader = LiveStateGrader(config=config)
    cell = nbformat.v4.new_markdown_cell(SBI, metadata={"nbgrader": {"grade": True, "solution": True,
                                                                     "grade_id": "sbi", "points": 4}})
    record = grader._grade_cell(cell, {"check": "sbi_feedback", "points": 4.0}, None, {},
                                {"student": "alice", "assignment": "lab12-feedback-retro", "notebook": "x"})
    assert record["kind"] == "suggestion" and record["points"] == 4.0
    assert cell.metadata["labkit"]["suggested"]["points"] == 4.0
    record = grader._grade_cell(cell, {"check": "sbi_feedback", "points": 4.0}, None, {},
                                {"student": "bob", "assignment": "lab12-feedback-retro", "notebook": "x"})
    assert record["points"] == 3.0  # bob's record does not hold alice's incident


def test_declarations_of_text_checks_need_no_text_argument():
    declared = {"review": {"check": "design_review"}, "sbi": {"check": "sbi_feedback"},
                "rb": {"check": "corpus_runbook", "args": {"alert": ALERT}}, "bad": {"check": "corpus_runbook",
                                                                                     "args": {"alrt": "x"}}}
    [problem] = declaration_problems(declared)
    assert problem.path == "cell bad.labkit.check"
    assert "unexpected keyword argument 'alrt'" in problem.message and "valid: text, alert" in problem.message
