"""Every fault on the Docker tier: inject -> detected (with a hint) -> the intended
remediation -> healthy; then heal restores the pre-fault state exactly; and heal alone,
without any remediation, also restores it."""

from __future__ import annotations

import pytest

from sandbox.api import Sandbox
from sandbox.faults import active_faults, heal, inject, probe_steady_state
from sandbox.faults.remediations import REMEDIATIONS
from sandbox.settings import RolloutSettings

pytestmark = pytest.mark.docker


def _snapshot_of(sb: Sandbox) -> dict:
    return {
        "spec": sb.status().spec,
        "indexes": sorted(m["index_version"] for m in sb.indexes()),
        "snapshots": sb.snapshots(),
        "provider": sb.provider_call("GET", "/admin/mode").get("mode"),
    }


def _assert_broken(sb: Sandbox, fault_id: str) -> None:
    probes = probe_steady_state(sb, fault_id)
    broken = [p for p in probes if not p.ok]
    assert broken, f"{fault_id}: injected but every probe holds: {probes}"
    assert all(p.hint for p in broken), f"{fault_id}: a failing probe gives no hint: {broken}"


def _assert_holds(sb: Sandbox, fault_id: str) -> None:
    probes = probe_steady_state(sb, fault_id)
    assert all(p.ok for p in probes), f"{fault_id}: steady state does not hold: {probes}"


@pytest.mark.parametrize("fault_id", sorted(REMEDIATIONS))
def test_fault_detect_remediate_heal(sandbox_factory, fault_id):
    sb = sandbox_factory("f", rollout=RolloutSettings(progress_deadline_s=20)).up()
    sb.deploy(model="v1", index="2026-11-01")
    _assert_holds(sb, fault_id)
    before = _snapshot_of(sb)

    assert inject(sb, fault_id)["injected"]
    assert inject(sb, fault_id)["injected"] is False  # twice is harmless
    _assert_broken(sb, fault_id)

    REMEDIATIONS[fault_id](sb)
    _assert_holds(sb, fault_id)

    assert heal(sb, fault_id)["healed"]
    assert active_faults(sb) == {}
    after = _snapshot_of(sb)
    assert after["spec"] == before["spec"] and after["provider"] == before["provider"]
    assert set(before["snapshots"]) <= set(after["snapshots"])

    # heal alone, with no remediation, also restores the pre-fault state exactly
    inject(sb, fault_id)
    _assert_broken(sb, fault_id)
    heal(sb, fault_id)
    _assert_holds(sb, fault_id)
    again = _snapshot_of(sb)
    assert again["spec"] == before["spec"] and again["provider"] == before["provider"]
    assert set(again["indexes"]) == set(after["indexes"]) and again["snapshots"] == after["snapshots"]


def test_heal_of_a_fault_that_is_not_active_changes_nothing(sandbox):
    before = sandbox.history()
    assert heal(sandbox, "stale-index") == {"fault": "stale-index", "healed": False, "reason": "not active"}
    assert sandbox.history() == before
