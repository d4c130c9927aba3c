"""Checks of the evidence records (registered into ``graders.checks.CHECKS``).

The records (``sandbox.evidence``: approvals, releases, evaluations, notes; hash chains on the
sandbox's data volume) are appended only by the process that holds the engine - the control
endpoint's, when graded - never by a trainee's job; that process also keeps each appended
entry's hash in the endpoint's audit log (``anchors``), which the box never sees. So:

* ``release_evidenced``: every chain verifies (and, when graded, holds every anchored hash
  unchanged: an entry edited, deleted, reordered or cut off the end shows), and the revision that
  serves has a release record resting on an approval entry that is on record and not revoked;
* ``reconstruction_recorded``: the trainee's ``reconstruction`` note (``sb.note(...)``) answers
  "who approved what served at the moment of the run's first evaluation record" as the grader's
  own replay of the records answers it - the moment taken from the records, not from the note.
"""

from __future__ import annotations

from typing import Any

from sandbox.control.audit import AuditRecord
from sandbox.evidence import anchors_of
from sandbox.evidence import verify as verify_records
from sandbox.observe import Observation, broken, holds

from .checks import register

#: Fields of a reconstruction note, and where the replay keeps each.
ANSWER = {
    "revision": ("served", "revision"), "index": ("served", "index"),
    "corpus_snapshot": ("served", "corpus_snapshot"), "corpus_sha256": ("served", "corpus_sha256"),
    "approved_by": ("approval", "approver"), "approval_seq": ("approval", "seq"),
}


def audit_anchors(audit: list[AuditRecord] | None) -> dict[str, dict[int, str]]:
    """The records' hashes the endpoint kept, since the sandbox was last reset (a reset starts
    its records afresh)."""
    records = list(audit or [])
    resets = [r.seq for r in records if r.op == "reset" and r.outcome == "ok"]
    since = resets[-1] if resets else 0
    return anchors_of([r.result for r in records if r.seq > since and r.outcome == "ok"])


@register("release_evidenced")
def release_evidenced(sb: Any, audit: list[AuditRecord] | None = None) -> Observation:
    """The records verify, and what serves rests on a release record with an approval on record.

    No credit while what serves has no approval behind it; half while it has but a record fails.
    """
    expected = ("every evidence record verifies, and the serving revision's release record rests on an"
                " approval that is on record and not revoked")
    verdict = sb.verify_evidence() if not audit else verify_records(sb, audit_anchors(audit))
    now = sb.evidence()
    served, approval = now.get("served"), now.get("approval")
    if not served or served.get("revision") != sb.status().serving_revision:
        return broken("release_evidenced", "no release record for the serving revision", expected,
                      "deploy through the kit (sb.deploy / sb.rollback / sb.wait_for_rollout): each leaves one")
    if not approval or not approval.get("on_record") or approval.get("revoked_by"):
        why = "no approval" if not approval else "an approval not on record" if not approval.get("on_record") \
            else f"an approval revoked by {approval['revoked_by']}"
        return broken("release_evidenced", f"revision {served['revision']} (index {served.get('index')}, snapshot"
                      f" {served.get('corpus_snapshot')}) rests on {why}", expected,
                      "release an index built from an approved snapshot; sb.evidence() shows what it rests on")
    observed = (f"revision {served['revision']} from {served.get('corpus_snapshot')}, approval {approval['seq']}"
                f" by {approval['approver']}; records: {verdict['reason']}")
    if verdict["ok"]:
        return holds("release_evidenced", observed, expected)
    return broken("release_evidenced", observed, expected, "records are appended, never edited: sb.verify_evidence()"
                  " names the first broken link", 0.5)


def _truth(replay: dict[str, Any], field: str) -> Any:
    part, key = ANSWER[field]
    return (replay.get(part) or {}).get(key)


@register("reconstruction_recorded")
def reconstruction_recorded(sb: Any) -> Observation:
    """The latest ``reconstruction`` note names what served at the first evaluation record's
    moment, its snapshot and sha256, and the approval it rested on (None where there was none).

    Partial credit: the share of the six fields that match the grader's replay.
    """
    expected = ("a reconstruction note (sb.note('reconstruction', ...)) whose " + ", ".join(ANSWER)
                + " match the records' replay at the first evaluation record")
    logs = sb.evidence_records()
    evaluations = logs.get("evaluations") or []
    if not evaluations:
        return broken("reconstruction_recorded", "no evaluation record in this run", expected,
                      "measure with sb.evaluate(k=5): each run is kept as an evaluation record")
    moment = float(evaluations[0]["at"])
    notes = [n for n in logs.get("notes") or [] if n.get("kind") == "reconstruction"]
    if not notes:
        return broken("reconstruction_recorded", "no reconstruction note", expected,
                      "replay the records at that moment with sb.evidence(at=...) and record the answer with"
                      " sb.note('reconstruction', ...)")
    answer = notes[-1].get("fields") or {}
    replay = sb.evidence(at=moment)
    wrong = [f"{f}: {answer.get(f)!r}, the records say {_truth(replay, f)!r}" for f in ANSWER
             if answer.get(f) != _truth(replay, f)]
    observed = (f"at the first evaluation ({moment:.0f}): {replay.get('reason')}; the note"
                f" {'matches' if not wrong else 'differs: ' + '; '.join(wrong)}")
    if not wrong:
        return holds("reconstruction_recorded", observed, expected, moment=moment)
    share = (len(ANSWER) - len(wrong)) / len(ANSWER)
    return broken("reconstruction_recorded", observed, expected,
                  "take the moment from sb.evidence_records()['evaluations'][0]['at'] and copy the replay's"
                  " served and approval fields (None where there was no approval)", share, moment=moment)
