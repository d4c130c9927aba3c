"""Every fault on the Docker tier: inject -> detected (with a hint) -> the intended
remediation -> healthy; then heal restores the pre-fault state exactly; and heal alone,
without any remediation, also restores it."""

from __future__ import annotations

import pytest
from faultcheck import assert_broken, assert_holds, snapshot_of

from sandbox.faults import active_faults, heal, inject
from sandbox.faults.remediations import REMEDIATIONS
from sandbox.settings import RolloutSettings

pytestmark = pytest.mark.docker


@pytest.mark.parametrize("fault_id", sorted(REMEDIATIONS))
def test_fault_detect_remediate_heal(sandbox_factory, fault_id):
    # 20 s makes the faults that hold a revision back fail fast; a 0.02-core replica (saturation)
    # needs ~30 s to start, so that one keeps the default deadline
    deadline = RolloutSettings().progress_deadline_s if fault_id == "saturation" else 20
    sb = sandbox_factory("f", rollout=RolloutSettings(progress_deadline_s=deadline)).up()
    sb.deploy(model="v1", index="2026-11-01")
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

    # heal alone, with no remediation, also restores the pre-fault state exactly
    inject(sb, fault_id)
    assert_broken(sb, fault_id)
    heal(sb, fault_id)
    assert_holds(sb, fault_id)
    again = snapshot_of(sb)
    assert again["spec"] == before["spec"] and again["provider"] == before["provider"]
    assert set(again["indexes"]) == set(after["indexes"]) and again["snapshots"] == after["snapshots"]


def test_heal_of_a_fault_that_is_not_active_changes_nothing(sandbox):
    before = sandbox.history()
    assert heal(sandbox, "stale-index") == {"fault": "stale-index", "healed": False, "reason": "not active"}
    assert sandbox.history() == before
