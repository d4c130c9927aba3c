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


INJECT = ("inject", {"fault": "config-drift"}, {"fault": "config-drift", "injected": True})
ROLLBACK = ("rollback", {"to_revision": 2}, {"revision": 4, "rollback_of": 2})


def hypothesis(cls: str = "config") -> tuple:
    return ("event", {"event": "hypothesis", "signal": cls, "note": "rev 3 set TOP_K=1"}, {"event": "hypothesis"})


def test_a_hypothesis_logged_before_the_first_change_after_the_fault_earns_full():
    r = check("hypothesis_before_mitigation", audit=log(INJECT, hypothesis(), ROLLBACK), incident_class="config")
    assert r.passed, r


def test_a_hypothesis_after_the_fix_or_of_the_wrong_class_earns_half_at_most():
    late = check("hypothesis_before_mitigation", audit=log(INJECT, ROLLBACK, hypothesis()), incident_class="config",
                 points=2)
    wrong = check("hypothesis_before_mitigation", audit=log(INJECT, hypothesis("capacity"), ROLLBACK),
                  incident_class="config", points=2)
    both = check("hypothesis_before_mitigation", audit=log(INJECT, ROLLBACK, hypothesis("capacity")),
                 incident_class="config", points=2)
    assert (late.points, wrong.points, both.points) == (1.0, 1.0, 0.0)
    assert "first change rollback" in late.observed and "capacity" in wrong.hint


def test_the_labs_own_changes_before_its_fault_do_not_count_and_no_hypothesis_is_nothing():
    setup = ("deploy", {"model": "v1"}, {"revision": 1, "state": "serving"})
    assert check("hypothesis_before_mitigation", audit=log(setup, INJECT, hypothesis(), ROLLBACK)).passed
    none = check("hypothesis_before_mitigation", audit=log(INJECT, ROLLBACK), points=3)
    assert none.points == 0 and "no hypothesis" in none.observed
    assert not check("hypothesis_before_mitigation", audit=[]).passed


# --- game-day clock ----------------------------------------------------------------------------

def event(name: str, signal: str = "") -> tuple:
    return ("event", {"event": name, "signal": signal, "note": ""}, {"event": name, "signal": signal})


INJECT_STALE = ("inject", {"fault": "stale-index"}, {})
INJECT_PROVIDER = ("inject", {"fault": "provider-outage"}, {})
ROLLBACK = ("rollback", {"to_revision": 1}, {"revision": 3})
DEPLOY = ("deploy", {"provider_timeout_s": "0.05"}, {"revision": 4})


def test_each_scenario_detected_on_a_catalog_signal_then_changed_then_resolved_passes():
    run = log(INJECT_STALE, event("injected"), event("detected", "eval"), ROLLBACK, event("resolved"),
              INJECT_PROVIDER, event("detected", "metric"), DEPLOY, event("resolved"))
    result = check("gameday_clock", audit=run, scenarios=2)
    assert result.passed and result.points == result.max_points
    clocks = result.details["incidents"]
    assert [c["fault"] for c in clocks] == ["stale-index", "provider-outage"]
    assert clocks[0]["ttd_min"] == round(2 / 60, 2) and clocks[1]["ttr_min"] == round(3 / 60, 2)


def test_a_detection_on_a_signal_the_fault_does_not_show_stops_the_clock_nowhere():
    run = log(INJECT_STALE, event("detected", "log"), ROLLBACK, event("resolved"))
    result = check("gameday_clock", audit=run, scenarios=1)
    assert not result.passed and result.points == 0
    assert "detection naming one of its signal kinds" in result.hint


def test_resolving_without_a_change_or_before_the_detection_earns_only_what_happened_in_order():
    no_change = check("gameday_clock", audit=log(INJECT_PROVIDER, event("detected", "metric"), event("resolved")))
    early_fix = check("gameday_clock", audit=log(INJECT_PROVIDER, DEPLOY, event("detected", "metric"),
                                                 event("resolved")))
    assert not no_change.passed and 0 < no_change.points < no_change.max_points
    assert not early_fix.passed and early_fix.points == no_change.points


def test_a_second_scenario_never_injected_or_no_log_is_no_full_clock():
    one = check("gameday_clock", audit=log(INJECT_STALE, event("detected", "eval"), ROLLBACK, event("resolved")),
                scenarios=2)
    assert not one.passed and not check("gameday_clock", audit=[], scenarios=2).passed
