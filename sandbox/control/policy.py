"""What a trainee's kernel may do to its sandbox through the control endpoint.

The endpoint authorises each operation the way an API server with RBAC does: a verb on a
resource of *this* sandbox, nothing else. Allowed are the operations a lab asks the trainee to
perform (deploy, roll back, wait for a rollout, read history, status, logs, indexes, search,
evaluate, metrics, resizing the provider's accelerator pool, the kit's data jobs (arguments that
are names, never paths), reading and verifying the evidence records, appending a note to them,
the access-review lab's overlay (its files; the planted answer stays in the audit log), index builds, a lab's own fault injection, PromQL
queries and alerts, checking, testing and loading the trainee's own rule files). Refused are
what would let a kernel change its grade without doing the work: healing or listing a lab's
faults, the fault primitives (provider control, in-place throttling, restarts), tearing the
sandbox down while it is graded, and any job outside the data-governance commands - among them
the ``record-*`` jobs that append release and evaluation records (the endpoint appends those).
"""

from __future__ import annotations

from ..errors import LabkitError

#: ``python -m modelapi`` sub-commands a trainee may run as a job on the data volume.
ALLOWED_JOBS = frozenset({
    "list-indexes", "list-snapshots", "eval-index", "build-index", "validate-corpus", "approve-snapshot",
    "revoke-snapshot", "approvals", "lineage", "quarantine", "quarantine-list",
    "evidence", "evidence-log", "evidence-verify",
})
#: Options of those jobs whose value is prose (may hold a slash); every other argument is a name.
FREE_TEXT = frozenset({"--reason", "--note"})
#: Operations and whether the kernel may perform them (anything unlisted is refused).
OPERATIONS: dict[str, bool] = {
    "info": True, "up": True, "reset": True, "status": True, "history": True, "deploy": True,
    "rollback": True, "wait_for_rollout": True, "revision_endpoints": True, "logs": True,
    "indexes": True, "snapshots": True, "build_index": True, "run_job": True, "inject": True,
    "proxy": True, "event": True, "promtool": True, "install_rule_file": True, "rule_file": True,
    "reload_prometheus": True, "evaluate": True, "note": True, "access_review": True, "latency_budget": True,
    "provider_pool": True,
    "down": False, "heal": False, "faults": False, "provider_call": False, "set_provider_running": False,
    "restart_serving": False, "throttle_serving": False,
}


class Refused(LabkitError):
    """The control endpoint does not let a trainee's kernel do this (as an API server's 403)."""

    exit_code = 2

    def __init__(self, operation: str, why: str) -> None:
        super().__init__(f"refused: {operation}: {why}",
                         fix="do the lab's work through sb.deploy / sb.rollback / sb.run_job; the grader"
                             " reads the live state, not the kit's own records")
        self.operation = operation


def authorise(operation: str) -> None:
    if not OPERATIONS.get(operation, False):
        reasons = {
            "heal": "healing a lab's fault is the instructor's; repair the sandbox the way the lab asks",
            "faults": "which faults a lab injected is not observable in production; read the signals",
            "down": "the sandbox being graded stays up until the grader has read it",
        }
        raise Refused(operation, reasons.get(operation, "not an operation of a trainee's kernel"))


def authorise_job(cmd: list[str]) -> None:
    if len(cmd) < 3 or cmd[:3] != ["python", "-m", "modelapi"] or len(cmd) == 3:
        raise Refused("run_job", "jobs are `python -m modelapi <command> ...`")
    if cmd[3] not in ALLOWED_JOBS:
        raise Refused("run_job", f"`{cmd[3]}` is not a trainee's job; allowed: {', '.join(sorted(ALLOWED_JOBS))}")
    free = {i + 1 for i, c in enumerate(cmd) if c in FREE_TEXT}  # prose, never a file name
    pathlike = [c for i, c in enumerate(cmd) if i > 3 and i not in free
                and ("/" in c or "\\" in c or c.startswith("..") or c.startswith("--data-dir"))]
    if pathlike:  # names stay names: nothing a job writes may land outside its own folder
        raise Refused("run_job", f"job arguments are names, not paths: {pathlike[0]!r}")
