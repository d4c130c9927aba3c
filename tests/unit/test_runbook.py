"""The runbook parser: sections by heading synonyms, steps with evidence, partial credit."""

from __future__ import annotations

import pytest

import graders
from graders import runbook

COMPLETE = """\
# Runbook: bad rollout of the model API

## Problem
Search errors rise right after a deploy; /readyz of the new revision says `defect`.

## Pre-checks
- Confirm which revision serves: `sb.status()`.

## Steps
1. Read the rollout history: `labkit rollout history` - note the last good revision.
2. Roll back to it:
   ```
   sb.rollback(to_revision=1)
   ```
3. Watch modelapi_requests_total{status="500"} stop rising.

## Validation
`expect("serving", model="v1")` passes and recall@5 is back at baseline.

## Escalation criteria
Page the model owner if the rollback does not restore readiness within 10 minutes.

## Rollback
If the rollback itself fails, redeploy revision 1's spec with `sb.deploy(...)`.
"""


def test_complete_runbook_scores_full_points():
    book = runbook.parse(COMPLETE)
    assert book.present() == list(runbook.SECTIONS)
    assert len(book.steps) == 3 and not book.steps_without_evidence()
    assert book.score() == 1.0
    r = graders.check("runbook_sections", text=COMPLETE, points=6)
    assert r.passed and r.points == 6


def test_missing_sections_are_named_and_scored_as_a_share():
    text = COMPLETE.split("## Validation")[0]  # problem, pre-checks, steps only
    r = graders.check("runbook_sections", text=text, points=6)
    assert not r.passed and r.points == 3.0
    assert "validation, escalation, rollback" in r.hint
    assert "3/6 sections" in r.observed
    with pytest.raises(AssertionError, match="add headed sections for: validation, escalation, rollback"):
        graders.expect("runbook_sections", text=text)


def test_synonyms_levels_and_bold_headings():
    text = """\
### 1. Symptoms
Users see answers about the wrong product.

**Before you start**
Check you are on the right cluster: `kubectl config current-context`.

# Procedure
- Compare the index with `curl /version` output.

#### How to verify
The eval shows recall@5 >= 0.85.

## When to escalate
After 15 minutes without improvement.

## Back out
Redeploy the previous index.
"""
    book = runbook.parse(text)
    assert book.present() == list(runbook.SECTIONS)
    assert book.headings["pre-checks"] == "Before you start"
    assert book.score() == 1.0


@pytest.mark.parametrize(("heading", "section"), [
    ("Rollback steps", "rollback"), ("Validation steps", "validation"), ("Post-checks", "validation"),
    ("Pre-flight checks", "pre-checks"), ("Escalation criteria", "escalation"), ("Remediation", "steps"),
    ("Problem statement", "problem"), ("Revert plan", "rollback"), ("Notes", None), ("Owners", None),
])
def test_heading_classification(heading, section):
    assert runbook.classify_heading(heading) == section


def test_steps_without_evidence_earn_part_of_the_steps_section():
    text = COMPLETE.replace("3. Watch modelapi_requests_total{status=\"500\"} stop rising.",
                            "3. Tell the team it is fixed.")
    book = runbook.parse(text)
    assert [s.has_evidence for s in book.steps] == [True, True, False]
    assert book.score() == pytest.approx((5 + 2 / 3) / 6)
    r = graders.check("runbook_sections", text=text)
    assert r.partial and "'3. Tell the team it is fixed.'" in r.hint and "2/3 steps cite evidence" in r.observed


def test_sub_headed_steps_and_headings_inside_code_are_not_sections():
    text = """\
## Problem
p95 above SLO.
## Steps
### Step 1: look
Look at `modelapi_request_latency_seconds`.
### Step 2: fix
Add a replica.
```
# Rollback
sb.deploy(replicas=2)
```
"""
    book = runbook.parse(text)
    assert "rollback" not in book.present()
    assert [s.title for s in book.steps] == ["### Step 1: look", "### Step 2: fix"]
    assert [s.has_evidence for s in book.steps] == [True, True]  # the code block joins step 2


def test_empty_section_counts_as_missing():
    text = COMPLETE.replace("Page the model owner if the rollback does not restore readiness within 10 minutes.\n", "")
    book = runbook.parse(text)
    assert book.empty() == ["escalation"] and "escalation" in book.missing()
    _, hint = runbook.describe(book)
    assert "write something under: escalation" in hint


def test_an_unrelated_heading_ends_a_section():
    text = COMPLETE + "\n## Notes\nSee the chat log.\n"
    book = runbook.parse(text)
    assert "chat log" not in book.sections["rollback"]
    assert runbook.parse("").score() == 0.0


def test_headings_with_filler_only_count_as_missing():
    text = "\n".join(f"## {h}\nTBD\n" for h in ("Problem", "Pre-checks", "Steps", "Validation", "Escalation",
                                                "Rollback"))
    text = text.replace("## Steps\nTBD", "## Steps\n- `TBD`\n- see above")
    r = graders.check("runbook_sections", text=text, points=6)
    assert r.points == 0.0 and "write something under" in r.hint, r
    assert runbook.parse(text).empty() == list(runbook.SECTIONS)


def test_a_step_cites_this_kit_not_just_the_words_of_evidence():
    """Six headings over "- expect it works" earned 1.0; a step must name a real command, metric,
    endpoint or output value of this kit."""
    hollow = "\n".join(f"## {h}\nWe handle this part carefully as a team.\n" for h in
                       ("Problem", "Pre-checks", "Validation", "Escalation", "Rollback"))
    hollow += "\n## Steps\n- expect it works\n- `TBD later`\n- kubectl frobnicate the cluster\n" \
              "- watch `modelapi_magic_total`\n- `sb.fix_everything()`\n- shows it is fine\n"
    book = runbook.parse(hollow)
    assert len(book.steps) == 6 and book.steps_without_evidence() == book.steps
    assert book.score() == pytest.approx(5 / 6)
    assert "evidence from this kit" in graders.check("runbook_sections", text=hollow).hint


@pytest.mark.parametrize("step", [
    "- run `kubectl rollout undo deployment/modelapi --to-revision=2`",
    "- docker logs the serving replica",
    "- read slo:search_errors:ratio_rate5m",
    "- SearchErrorBudgetBurnFast stops firing",
    "- `sb.rollback(to_revision=1)`",
    '- `expect("serving", model="v1")`',
    "- curl /readyz on the new replica",
    "- the eval shows recall@5 >= 0.85",
    "- expect HTTP 503 from the defect revision",
    "- modelapi_provider_latency_seconds_bucket p95 under the timeout",
])
def test_each_kind_of_real_evidence_counts(step):
    from graders import vocabulary
    assert vocabulary.kit().citations(step), step
    assert runbook.parse(f"## Steps\n{step}\n").steps[0].has_evidence


def test_the_vocabulary_comes_from_the_kit_itself():
    from graders import vocabulary
    from sandbox.api import Sandbox

    kit = vocabulary.kit()
    assert {"modelapi_requests_total", "modelapi_request_latency_seconds_bucket", "provider_requests_total",
            "gateway_open_connections"} <= kit.metrics
    assert {"slo:search_errors:ratio_rate5m", "ModelAPIReplicaDown"} <= kit.rules
    assert {"/readyz", "/v1/search", "/metrics", "/rerank"} <= kit.endpoints
    assert "/docs" not in kit.endpoints and "rollback" in kit.api and set(kit.api) <= set(dir(Sandbox))
    assert "serving" in kit.checks and "runbook_sections" in kit.checks
