"""Assertions the fault tests of both tiers share (Docker: tests/integration/docker, Kubernetes:
tests/integration/k8s): the same catalog, probes and verdicts on either backend."""

from __future__ import annotations

from sandbox.api import Sandbox
from sandbox.faults import probe_steady_state


def snapshot_of(sb: Sandbox) -> dict:
    """What heal must restore exactly: spec, indexes, snapshots and the provider's mode."""
    return {"spec": sb.status().spec, "indexes": sorted(m["index_version"] for m in sb.indexes()),
            "snapshots": sb.snapshots(), "provider": sb.provider_call("GET", "/admin/mode").get("mode")}


def assert_broken(sb: Sandbox, fault_id: str) -> None:
    """The fault's steady state is broken, and every failing probe says what to do."""
    probes = probe_steady_state(sb, fault_id)
    broken = [p for p in probes if not p.ok]
    assert broken, f"{fault_id}: injected but every probe holds: {probes}"
    assert all(p.hint for p in broken), f"{fault_id}: a failing probe gives no hint: {broken}"


def assert_holds(sb: Sandbox, fault_id: str) -> None:
    """Every probe of the fault's steady state holds."""
    probes = probe_steady_state(sb, fault_id)
    assert all(p.ok for p in probes), f"{fault_id}: steady state does not hold: {probes}"
