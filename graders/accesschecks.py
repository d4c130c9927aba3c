"""Checks of the access-review lab (registered into ``graders.checks.CHECKS``).

The lab's overlay (``sandbox.access_review``) is rendered, when graded, by the control endpoint
from a seed it never hands out; the planted grant (its binding, subject, what it gives) is kept
in the endpoint's audit log, which only the grader reads (``audit``). So:

* ``access_review_finding``: the trainee's ``access-review`` note (``sb.note(...)``, appended by
  the endpoint's process) names the planted RoleBinding and its subject - full credit for both,
  half for one. Outside a grading run the answer is the practice overlay's that this very
  sandbox object rendered (the kernel's self-check); nothing else counts as an answer.
* ``access_review_memo``: the memo, part by part for concrete content: the finding (binding,
  subject, namespace), the blast radius (what it lets whom do), the fix (a decision and the
  command), and the follow-up (an owner and a date).
"""

from __future__ import annotations

from typing import Any

from sandbox.access_review import matches
from sandbox.control.audit import AuditRecord
from sandbox.observe import Observation, broken, holds

from . import rubric as r
from .artifacts import judge_artifact
from .checks import register

NOTE = "access-review"
NO_ANSWER = ("no access-review overlay was handed out in this run (the setup cell calls"
             " sb.access_review(); only a graded run's audit log holds what was planted)")


def planted(sb: Any, audit: list[AuditRecord] | None) -> dict[str, Any]:
    """What was planted: from the audit log when graded, else this sandbox's practice overlay."""
    handed = [a for a in audit or [] if a.op == "access_review" and a.outcome == "ok"]
    if handed:
        return dict(handed[-1].result.get("answer") or {})
    practice = getattr(sb, "__dict__", {}).get("_practice_review")
    return dict(practice.answer) if practice is not None and not audit else {}


@register("access_review_finding")
def access_review_finding(sb: Any, audit: list[AuditRecord] | None = None) -> Observation:
    """The latest ``access-review`` note names the planted binding (half) and its subject (half)."""
    expected = "an access-review note (sb.note('access-review', binding=..., subject=...)) naming the planted grant"
    answer = planted(sb, audit)
    if not answer:
        return broken("access_review_finding", NO_ANSWER, expected, "run the setup cell: files = sb.access_review()")
    notes = [n for n in sb.evidence_records().get("notes") or [] if n.get("kind") == NOTE]
    if not notes:
        return broken("access_review_finding", "no access-review note", expected,
                      "record what your review found with sb.note('access-review', binding=..., subject=..., ...)")
    fields = notes[-1].get("fields") or {}
    b_ok, s_ok = matches(answer, fields.get("binding"), fields.get("subject"))
    observed = (f"note names binding {fields.get('binding')!r} ({'right' if b_ok else 'not the planted one'})"
                f" and subject {fields.get('subject')!r} ({'right' if s_ok else 'not its subject'})")
    if b_ok and s_ok:
        return holds("access_review_finding", observed, expected, variant=answer.get("variant"))
    return broken("access_review_finding", observed, expected,
                  "compare what each binding's subject may do with what the labkit-trainee Role gives that"
                  " trainee in their own namespace; a decoy grants nothing new", 0.5 * (b_ok + s_ok))


#: The memo's parts.
MEMO: tuple[r.Part, ...] = (
    r.Part("finding", "Finding", ("finding", "what we found", "summary", "the grant"),
           (r.terms(r"\brolebinding\b|\bbinding\b", "the binding by kind and name"),
            r.terms(r"\b(user|group|serviceaccount|service account|system:\S+)\b", "its subject"),
            r.terms(r"\blabkit-[a-z]+\b", "the namespace")),
           "name the binding, its subject and the namespace it is in"),
    r.Part("blast", "Blast radius", ("blast radius", "impact", "exposure", "what it allows", "risk"),
           (r.terms(r"\b(secrets?|exec|shell|deploy\w*|delete\w*|rolebindings?|roles?|impersonat\w*|every|any|all)\b",
                    "what the subject can do that it should not", n=2),
            r.terms(r"\b(who|anyone|every|trainee|contractors?|serviceaccounts?|group|members?)\b", "who can do it"),
            r.any_of("how far it reaches (a number, a namespace, another sandbox)", r.number(),
                     r.terms(r"\b(namespace|sandbox|cluster|data volume|token)\b", ""))),
           "say who can do what, how far it reaches, and what they could take or break"),
    r.Part("fix", "Fix", ("fix", "remediation", "the fix", "change", "action"),
           (r.any_of("the decision (delete, remove, replace, revoke)", r.decision(),
                     r.terms(r"\b(delete[sd]?|remove[sd]?|revoke[sd]?|replace[sd]?|drop(ped)?|narrow(ed)?)\b", "")),
            r.code("the command or manifest change (kubectl ..., the file)")),
           "decide the fix and give the command or the file to change"),
    r.Part("followup", "Follow-up", ("follow-up", "follow up", "prevention", "next steps", "owner"),
           (r.role(), r.any_of("when (a date or a deadline)", r.when(), r.number())),
           "who makes sure it does not come back, and by when (a review, a policy check in CI)"),
)


@register("access_review_memo", needs_sandbox=False)
def access_review_memo(sb: Any, text: str = "") -> Observation:
    """An access-review memo: finding, blast radius, fix, follow-up - each concrete."""
    return judge_artifact("access_review_memo", MEMO, text)
