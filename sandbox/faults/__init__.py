"""The fault catalog: inject, observe and heal the incidents the labs are built on.

    from sandbox import connect
    from sandbox.faults import inject, heal, probe_steady_state
    sb = connect(); inject(sb, "stale-index")

Each fault's steady-state probes fail while it is active and pass once it is remediated
(by the trainee) or healed (by ``heal``, which restores the pre-fault state exactly).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from ..api import Sandbox
from ..control.client import RemoteSandbox
from ..control.policy import Refused
from ..errors import InfrastructureError, NoRevisionDeployed
from ..observe import Observation, broken, observe
from .actions import ACTIONS, remove_artifacts
from .catalog import Catalog, CatalogInvalid, Fault, load_catalog

__all__ = ["load_catalog", "inject", "heal", "active_faults", "probe_steady_state", "Fault", "Observation",
           "Catalog", "CatalogInvalid"]


def inject(sb: Sandbox, fault_id: str, catalog: Catalog | None = None) -> dict[str, Any]:
    """Inject a fault; injecting one that is already active changes nothing."""
    fault = (catalog or load_catalog()).get(fault_id)
    if isinstance(sb, RemoteSandbox):  # a lab's setup cell in a grading box: the endpoint injects
        return sb.inject(fault.id)
    if fault_id in sb._fault_records():
        return {"fault": fault_id, "injected": False, "reason": "already active"}
    st = sb.status()
    if st.spec is None:
        raise NoRevisionDeployed(sb.id)
    record: dict[str, Any] = {
        "injected_at": time.time(),
        "before": {"revision": st.serving_revision, "spec": asdict(st.spec)},
        "state": "injecting",
    }
    sb._save_fault(fault_id, record)  # recorded first: an interrupted injection can still be healed
    extra = ACTIONS.get(fault.inject.name).fn(sb, record, **fault.inject.args)
    record.update(extra, state="active")
    sb._save_fault(fault_id, record)
    return {"fault": fault_id, "injected": True} | extra


def heal(sb: Sandbox, fault_id: str, catalog: Catalog | None = None) -> dict[str, Any]:
    """Restore the pre-fault state exactly (spec, provider, data artifacts); idempotent."""
    fault = (catalog or load_catalog()).get(fault_id)
    if isinstance(sb, RemoteSandbox):
        raise Refused("heal", "healing a lab's fault is the instructor's; repair the sandbox the way the lab asks")
    record = sb._fault_records().get(fault_id)
    if record is None:
        return {"fault": fault_id, "healed": False, "reason": "not active"}
    ACTIONS.get(fault.heal.name).fn(sb, record, **fault.heal.args)
    removed = remove_artifacts(sb, record)
    sb._save_fault(fault_id, None)
    return {"fault": fault_id, "healed": True, "removed": removed}


def active_faults(sb: Sandbox) -> dict[str, dict[str, Any]]:
    """Faults injected and not healed, with their records."""
    if isinstance(sb, RemoteSandbox):
        raise Refused("faults", "which faults a lab injected is not observable in production; read the signals")
    return sb._fault_records()


def probe_steady_state(sb: Sandbox, fault_id: str, catalog: Catalog | None = None) -> list[Observation]:
    """Run the fault's steady-state hypothesis against the live sandbox."""
    fault = (catalog or load_catalog()).get(fault_id)
    results = []
    for step in fault.steady_state:
        try:
            results.append(observe(step.name, sb, **step.args))
        except InfrastructureError as e:
            results.append(broken(step.name, f"could not probe: {e}", "a working probe", e.fix or ""))
    return results
