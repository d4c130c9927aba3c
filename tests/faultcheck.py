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


def assert_round_trip(sb: Sandbox, fault_id: str) -> None:
    """inject -> broken (with hints) -> the catalog's remediation -> holds -> heal restores the
    pre-fault state; then heal alone, with no remediation, restores it exactly too."""
    from sandbox.faults import active_faults, heal, inject
    from sandbox.faults.remediations import REMEDIATIONS

    assert_holds(sb, fault_id)
    before = snapshot_of(sb)

    assert inject(sb, fault_id)["injected"]
    assert inject(sb, fault_id)["injected"] is False  # twice is harmless
    assert_broken(sb, fault_id)

    REMEDIATIONS[fault_id](sb)
    assert_holds(sb, fault_id)

    assert heal(sb, fault_id)["healed"]
    assert active_faults(sb) == {}
    after = snapshot_of(sb)
    assert after["spec"] == before["spec"] and after["provider"] == before["provider"]
    assert set(before["snapshots"]) <= set(after["snapshots"])

    inject(sb, fault_id)  # heal alone, with no remediation, also restores the pre-fault state
    assert_broken(sb, fault_id)
    heal(sb, fault_id)
    assert_holds(sb, fault_id)
    again = snapshot_of(sb)
    assert again["spec"] == before["spec"] and again["provider"] == before["provider"]
    assert set(again["indexes"]) == set(after["indexes"]) and again["snapshots"] == after["snapshots"]
