"""The reference remediation of each fault: what a trainee who diagnosed it correctly does.

Tests (both tiers) and ``make bench`` use these to prove that each fault's steady state comes
back through the intended fix, not only through ``heal``. Instructors can read them as the
answer key of the drills. Each uses only the public ``Sandbox`` API.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..api import Sandbox
from ..errors import InvalidInput
from .pool_probes import drained
from .probes import send_traffic


def rebuild_index(sb: Sandbox) -> None:
    """Never hand-repair an artifact: rebuild it from its snapshot under a new name."""
    model = sb.status().spec.model if sb.status().spec else "v1"
    sb.build_index(model, "2026-11-01", name=f"2026-11-01-{model}-rebuilt")
    sb.deploy(index=f"2026-11-01-{model}-rebuilt", change_cause="rebuild corrupt index from its snapshot")


def quarantine_poison(sb: Sandbox) -> None:
    """Run the gate on the served snapshot, quarantine what it flags, ship a clean index."""
    snapshot = sb.version()["corpus_snapshot"]
    gate = json.loads(sb.run_job(["python", "-m", "modelapi", "validate-corpus", snapshot, "--json"], "gate"))
    flagged = sorted({v["doc_id"] for v in gate["violations"]})
    if gate["ok"] or not flagged:
        raise InvalidInput(f"the gate found nothing to quarantine in {snapshot}")
    args = ["python", "-m", "modelapi", "quarantine", "--snapshot", snapshot, "--json"]
    for doc_id in flagged:
        args += ["--doc", doc_id]
    sb.run_job(args, "quarantine")
    model = sb.status().spec.model if sb.status().spec else "v1"
    sb.build_index(model, f"{snapshot}-q")
    sb.deploy(index=f"{snapshot}-q-{model}", change_cause=f"clean index without {', '.join(flagged)}")


REMEDIATIONS: dict[str, Callable[[Sandbox], object]] = {
    "bad-rollout": lambda sb: sb.rollback(),
    "stale-index": lambda sb: sb.deploy(index="2026-11-01"),
    "corrupt-index": rebuild_index,
    "model-index-mismatch": lambda sb: sb.rollback(),
    "provider-outage": lambda sb: sb.deploy(provider_timeout_s="0.05"),
    "saturation": lambda sb: sb.deploy(cpus="1.0"),
    "accelerator-shortfall": lambda sb: (sb.provider_pool(slots=4), drained(sb)),
    "query-drift": lambda sb: send_traffic(sb, "baseline"),
    "poisoned-document": quarantine_poison,
    "config-drift": lambda sb: sb.rollback(),
    "lineage-break": lambda sb: sb.rollback(),
}
