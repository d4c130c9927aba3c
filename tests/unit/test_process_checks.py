"""Process checks read from the control endpoint's audit log (``graders.process``)."""

from __future__ import annotations

from graders import check
from sandbox.control.audit import AuditRecord


def log(*ops: tuple) -> list[AuditRecord]:
    return [AuditRecord(i + 1, 1000.0 + i, op, args, "ok", result) for i, (op, args, result) in enumerate(ops)]


CANARY = ("deploy", {"model": "v2", "wait": False}, {"revision": 3, "state": "progressing"})
PROMOTE = ("wait_for_rollout", {}, {"revision": 3, "state": "serving"})


def probe(n: int, target: str = "r3/0") -> list[tuple]:
    return [("proxy", {"target": target, "method": "POST", "path": "v1/search"}, {"status": 200})] * n


def test_a_canary_measured_on_its_own_replicas_before_promotion_passes():
    assert check("canary_gated", audit=log(CANARY, *probe(77), PROMOTE)).passed


def test_measuring_after_promotion_or_through_the_front_door_does_not_count():
    late = check("canary_gated", audit=log(CANARY, PROMOTE, *probe(77)))
    front = check("canary_gated", audit=log(CANARY, *probe(77, "front"), PROMOTE))
    assert not late.passed and late.points == 0 and "0 request(s)" in late.observed
    assert not front.passed and front.points == 0


def test_a_plain_deploy_is_no_canary_and_no_log_is_no_verdict():
    plain = check("canary_gated", audit=log(("deploy", {"model": "v2", "wait": True},
                                             {"revision": 3, "state": "serving"}), *probe(30)))
    assert not plain.passed and "none promoted" in plain.observed
    assert not check("canary_gated", audit=[]).passed


def test_a_rollback_must_name_its_target():
    named = log(("rollback", {"to_revision": 1}, {"revision": 4, "rollback_of": 1}))
    unnamed = log(("rollback", {"to_revision": None}, {"revision": 4, "rollback_of": 1}))
    assert check("rollback_named_target", audit=named).passed
    result = check("rollback_named_target", audit=unnamed)
    assert not result.passed and result.points == 0.5
