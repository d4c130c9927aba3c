"""One deliberately wrong submission per lab, and the grade cells it must fail.

A wrong submission is the instructor solution with some solution cells (named by their
``grade_id``) replaced by plausible but wrong code. Graded, it must earn partial credit
(0 < score < max) and the grade cells in ``failing`` must be among those that lost points.
A lab in ``labs/source`` without an entry here fails ``test_wrong_submission_partial_credit``
with a message saying to add one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nbformat

EXEMPLARS = Path(__file__).resolve().parents[2] / "curriculum" / "facilitator" / "exemplars"


def borderline(check: str) -> str:
    """The facilitator kit's borderline answer for a rubric check: plausible, thin."""
    return (EXEMPLARS / check / "borderline.md").read_text(encoding="utf-8")


@dataclass(frozen=True)
class WrongSubmission:
    """Which solution cells to replace with what, and which grade cells must then fail."""

    replace: dict[str, str]
    """``grade_id`` of a solution cell -> the wrong code that replaces its whole source."""

    failing: frozenset[str]
    """``grade_id`` of grade cells that must lose points."""

    why: str = ""
    """The mistake a trainee would make, in one line."""

    passing: frozenset[str] = field(default_factory=frozenset)
    """``grade_id`` of grade cells that must keep full points (optional, documents intent)."""

    suggest_partial: frozenset[str] = field(default_factory=frozenset)
    """``grade_id`` of written answers whose suggested score must be partial (rubric checks)."""


WRONG: dict[str, WrongSubmission] = {
    "lab00-fixture": WrongSubmission(
        replace={"task-deploy": "sb.deploy(model='v2', index='2026-11-01')"},
        failing=frozenset({"check-serving"}),
        passing=frozenset({"check-ready"}),
        why="deploys v2 instead of v1: the service is ready but serves the wrong model",
    ),
    "lab01-first-deploy": WrongSubmission(
        replace={"task-deploy": (
            'rev = sb.deploy(model="v2", index="2026-11-01", change_cause="OPS-101: first deploy, newest model")\n'
            'print(rev.number, rev.spec.model, rev.spec.index)')},
        failing=frozenset({"check-serving-v1"}),
        passing=frozenset({"check-ready"}),
        why="deploys the newest model (v2) instead of the v1 the ticket asks for",
    ),
    "lab02-probes-slos": WrongSubmission(
        replace={"task-undo-defect": (
            "# the old revision still serves, so the failed candidate can stay in the history\n"
            "print(sb.status().rollout)")},
        failing=frozenset({"check-rollout-complete"}),
        passing=frozenset({"check-defect-held"}),
        why="sees the failed candidate held but never undoes it: the latest rollout stays failed",
    ),
    "lab03-new-index": WrongSubmission(
        replace={
            "task-canary": (
                'cand = sb.deploy(model="v2", index="2026-11-01",\n'
                '                 change_cause="CHG-0342: model v2 on the 2026-11-01 index")\n'
                "candidate = sb.evaluate(k=5)\n"
                'print(candidate.summary())'),
            "task-ship": 'print(sb.version()["index"])',
        },
        failing=frozenset({"check-candidate-serving"}),
        passing=frozenset({"check-fresh-recall"}),
        why="ships v2 on the prebuilt 2026-11-01 index, not the index the change approved, no canary",
    ),
    "lab04-incident-triage": WrongSubmission(
        replace={"task-mitigate": (
            'fix = sb.deploy(top_k="5", change_cause="fix default k")\n'
            'print(fix.number, fix.spec.config)')},
        failing=frozenset({"check-rolled-back"}),
        passing=frozenset({"check-healed"}),
        why="fixes forward with a new config instead of rolling back the last change",
    ),
    "lab05-bad-rollout": WrongSubmission(
        replace={"task-fix-forward": 'print("no time for the hotfix: rolling back straight away")'},
        failing=frozenset({"check-held"}),
        passing=frozenset({"check-rolled-back", "check-serving-good"}),
        why="rolls back correctly but skips the supervised fix-forward attempt the lab asks for",
    ),
    "lab06-stale-index-lineage": WrongSubmission(
        replace={"task-redeploy": (
            "rb = sb.rollback()   # undo the hotfix\n"
            'print(rb.number, rb.spec.index)')},
        failing=frozenset({"check-fresh-corpus", "check-fresh-recall"}),
        passing=frozenset({"check-lineage"}),
        why="reflex rollback: undoes the untraceable hotfix but lands on Monday's stale index",
    ),
    "lab07-drift-alerting": WrongSubmission(
        replace={
            "task-threshold": (
                "THRESHOLD, MIN_QUERIES = 0.9, 100   # high enough to never page by mistake\n"
                'Path("rules").mkdir(exist_ok=True)\n'
                'Path("rules/query-drift.yml").write_text(f"""groups:\n'
                "  - name: query-drift\n"
                "    rules:\n"
                "      - alert: QueryDrift\n"
                "        expr: modelapi_query_drift_score > {THRESHOLD} and modelapi_query_drift_window >= {MIN_QUERIES}\n"
                "        for: 15s\n"
                "        labels: {{severity: ticket}}\n"
                '""")\n'
                'print(sb.rules.load("rules/query-drift.yml"))'),
            "task-resolve": 'replay("baseline", 200)\nprint(window_state())',
        },
        failing=frozenset({"check-alert-tuned"}),
        passing=frozenset({"check-resolved"}),
        why="loads a well-formed rule with a threshold above the drifted level: quiet, but it never fires",
    ),
    "lab08-poisoned-corpus": WrongSubmission(
        replace={
            "task-quarantine": 'print("contained by the rollback; nothing else to do")',
            "task-release": 'print("not releasing the update")',
        },
        failing=frozenset({"check-quarantine", "check-clean-release"}),
        passing=frozenset({"check-contained", "check-lineage"}),
        why="contains by rolling back but never quarantines the document nor releases the clean update",
    ),
    "lab08-agent-injection": WrongSubmission(
        replace={"task-policy": (
            "READ_ONLY = ['kubectl get', 'kubectl describe', 'kubectl logs', 'kubectl top', 'kubectl rollout status']\n"
            "rev = sb.deploy(agent_sources='runbook', agent_allow=','.join(READ_ONLY), agent_deny='secret',\n"
            "                change_cause='SEC-0812: ops-bot read-only from runbooks')\n"
            "print(sb.status().spec.config)")},
        failing=frozenset({"check-not-reordered"}),
        passing=frozenset({"check-agent-guarded"}),
        why="locks the agent down but leaves the query guard off: an appended order still steers retrieval",
    ),
    "lab09-provider-outage": WrongSubmission(
        replace={"task-timeout": (
            'sb.deploy(provider_timeout_s="0.4",\n'
            '          change_cause="INC-0909: provider timeout 500 -> 400 ms (a bit less)")')},
        failing=frozenset({"check-p95-degraded"}),
        passing=frozenset({"check-config-restored"}),
        why="reverts the tweak but trims the provider timeout without a budget: p95 stays over the SLO",
    ),
    "lab10-capacity": WrongSubmission(
        replace={"task-ship": (
            "# one replica held the SLO in the load test, so ship nothing more\n"
            "final = timed_load(sb, requests=120, concurrency=4)\n"
            "print(final)")},
        failing=frozenset({"check-n-plus-one"}),
        why="sizes the replica correctly but runs N instead of N+1: no headroom for a lost replica",
    ),
    "lab10-accelerator-pool": WrongSubmission(
        replace={"task-resize": (
            "# the provider account allows 8 slots: take them all, latency is what matters\n"
            "print(sb.provider_pool(slots=8))\n"
            "after = rate_load(sb, 24, 240)\n"
            "print(after)")},
        failing=frozenset({"check-pool-budget"}),
        passing=frozenset({"check-pool-slo"}),
        why="holds the SLO by buying the provider account's whole quota: 8 slots against a 5-slot budget",
    ),
    "lab12-game-day": WrongSubmission(
        replace={"task-gd2-mitigate": (
            'log("gd-2", "note", "escalated to provider support sev2; waiting for the vendor")')},
        failing=frozenset({"check-gd2"}),
        passing=frozenset({"check-gd1"}),
        why="handles gd-1 but only escalates gd-2: the slow provider keeps p95 over the SLO",
    ),
    "lab11-governed-release": WrongSubmission(
        replace={"task-release": (
            "sb.rollback()   # latency looked noisy: call the release off\n"
            'print(sb.version()["index"])')},
        failing=frozenset({"check-release-serving", "check-lineage", "check-evidence"}),
        passing=frozenset({"check-rollout", "check-reconstruction"}),
        why="calls an approved release off on noise, leaving the untraceable hotfix index serving"
            " (its release record rests on no approval; the reconstruction of the baseline still holds)",
    ),
    "lab13-capstone": WrongSubmission(
        replace={
            "task-mitigate": (
                'rev = sb.deploy(index="2026-10-01", change_cause="INC-1301: last month\'s index loads fine")\n'
                'log("capstone", "mitigated", f"rev {rev.number} serving 2026-10-01")'),
            "task-verify": "after = dashboard(sb)",
        },
        failing=frozenset({"check-recall"}),
        passing=frozenset({"check-ready", "check-rollout"}),
        why="restores readiness with last month's index instead of rebuilding: ready but stale answers",
    ),
    "lab06-data-classification": WrongSubmission(
        replace={"classification-table": borderline("data_classification")},
        failing=frozenset(), suggest_partial=frozenset({"classification-table"}),
        why="classifies the queries as internal, kept a year, without personal data or the provider flow",
    ),
    "lab09-vendor-risk": WrongSubmission(
        replace={"vendor-review": borderline("vendor_risk")},
        failing=frozenset(), suggest_partial=frozenset({"vendor-review"}),
        why="calls a 99.5 % SLA a match for a 99.5 % SLO and approves without conditions or sign-off",
    ),
    "lab10-prioritisation": WrongSubmission(
        replace={"tabletop-record": borderline("prioritisation_decision")},
        failing=frozenset(), suggest_partial=frozenset({"tabletop-record"}),
        why="a loaded proposal, costs of delay without numbers, a team as decision-maker, no trade-off",
    ),
    "lab10-access-review": WrongSubmission(
        replace={
            "task-note": (
                "top = findings[0]\n"
                "# who gets it? the role it binds\n"
                "sb.note('access-review', binding=top['binding'], subject=top['role'],\n"
                "        grants='more than labkit-trainee', fix='delete it')"),
            "access-memo": borderline("access_review_memo"),
        },
        failing=frozenset({"check-finding"}),
        suggest_partial=frozenset({"access-memo"}),
        why="finds the binding but records its roleRef as the subject (who holds the grant is the finding's half)",
    ),
    "lab11-design-review": WrongSubmission(
        replace={
            "task-guard": (
                "def guard(sb, record, k=5, margin=0.02):\n"
                "    report = sb.evaluate(k=k)\n"
                "    if report.recall >= record['baseline_recall'] - margin:\n"
                "        return {'action': 'none'}\n"
                "    return {'action': 'rolled-back', 'revision': sb.rollback().number}   # undo the last change\n"
                "\n"
                "print(guard(sb, RELEASE_RECORDS['REL-1102']))"),
            "design-review": borderline("design_review"),
        },
        failing=frozenset({"check-guard-target", "check-guard-recall"}),
        passing=frozenset({"check-guard-acted"}),
        suggest_partial=frozenset({"design-review"}),
        why="the guard undoes the last change (the config tweak) and lands on the stale release again",
    ),
    "lab12-feedback-retro": WrongSubmission(
        replace={"sbi-feedback": borderline("sbi_feedback"), "retro-css": borderline("retro_css")},
        failing=frozenset(), suggest_partial=frozenset({"sbi-feedback", "retro-css"}),
        why="feedback from memory: labels ('you were great') and no recorded moment or minutes",
    ),
    "lab13-roadmap": WrongSubmission(
        replace={"roadmap-proposal": borderline("roadmap_framing")},
        failing=frozenset(), suggest_partial=frozenset({"roadmap-proposal"}),
        why="an unbounded ask, numbers that are not the trainee's own, a jargon sentence",
    ),
}


def make_wrong(source: Path, spec: WrongSubmission, dest: Path) -> Path:
    """Write ``source`` with the cells of ``spec.replace`` swapped to ``dest``.

    Raises ``KeyError`` naming the grade ids that the notebook does not have (a stale spec).
    """
    nb = nbformat.read(str(source), as_version=4)
    seen = set()
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in spec.replace:
            cell.source = spec.replace[grade_id]
            if cell.cell_type == "code":
                cell.outputs = []
            seen.add(grade_id)
    missing = sorted(set(spec.replace) - seen)
    if missing:
        raise KeyError(f"{source.name} has no solution cells {missing}; update wrong_submissions.py")
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(dest))
    return dest
