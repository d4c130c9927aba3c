"""Every fault on the Docker tier: inject -> detected (with a hint) -> the intended
remediation -> healthy; then heal restores the pre-fault state exactly; and heal alone,
without any remediation, also restores it."""

from __future__ import annotations

import pytest
from faultcheck import assert_round_trip

from sandbox.faults import heal
from sandbox.faults.remediations import REMEDIATIONS
from sandbox.settings import RolloutSettings

pytestmark = pytest.mark.docker


@pytest.mark.parametrize("fault_id", sorted(REMEDIATIONS))
def test_fault_detect_remediate_heal(sandbox_factory, fault_id):
    # 20 s makes the faults that hold a revision back fail fast (saturation resizes ready replicas
    # in place, so no fault here needs a revision to start under a starved limit)
    sb = sandbox_factory("f", rollout=RolloutSettings(progress_deadline_s=20)).up()
    sb.deploy(model="v1", index="2026-11-01")
    assert_round_trip(sb, fault_id)


def test_heal_of_a_fault_that_is_not_active_changes_nothing(sandbox):
    before = sandbox.history()
    assert heal(sandbox, "stale-index") == {"fault": "stale-index", "healed": False, "reason": "not active"}
    assert sandbox.history() == before
