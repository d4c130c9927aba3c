"""The game-day clock rules of the plan (``game_days.timing``), as ``labkit.gamedays`` applies them."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from labkit import gamedays
from sandbox.errors import InvalidInput, SteadyStateBroken, UnknownChoice
from sandbox.observe import Observation

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


def at(minutes: float) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).isoformat()


def _scenario(root, incident, *events, timebox=45.0, timed=True, fault="config-drift"):
    gamedays.record(root, "alice", incident, "injected", at=at(0), fault=fault, timebox_min=timebox, timed=timed)
    for event, minute, extra in events:
        gamedays.record(root, "alice", incident, event, at=at(minute), **extra)


def _times(root, now_min=600):
    return {t.incident: t for t in gamedays.incident_times(gamedays.load(root), now=T0 + dt.timedelta(minutes=now_min))}


def test_optional_fields_round_trip_and_defaults_stay_off_the_line(tmp_path):
    gamedays.record(tmp_path, "alice", "gd1", "injected", at=at(0), fault="stale-index", timebox_min=45.0)
    gamedays.record(tmp_path, "alice", "gd1", "mitigated", at=at(3))
    lines = [json.loads(x) for x in gamedays.events_path(tmp_path).read_text().splitlines()]
    assert lines[0]["fault"] == "stale-index" and lines[0]["timebox_min"] == 45.0
    assert set(lines[1]) == {"trainee", "incident", "event", "at"}  # old readers see the old shape
    loaded = gamedays.load(tmp_path)
    assert loaded[0].fault == "stale-index" and loaded[1].counts is True
    with pytest.raises(UnknownChoice, match="timebox_min"):
        gamedays.record(tmp_path, "alice", "gd1", "detected", timebox=3)


def test_timebox_caps_late_and_open_scenarios_but_not_one_still_running(tmp_path):
    _scenario(tmp_path, "on-time", ("detected", 4, {}), ("resolved", 20, {}))
    _scenario(tmp_path, "late", ("detected", 50, {}), ("resolved", 70, {}))
    _scenario(tmp_path, "gave-up", ("detected", 6, {}))
    t = _times(tmp_path)
    assert (t["on-time"].ttd_min, t["on-time"].ttr_min, t["on-time"].capped) == (4, 20, ())
    assert (t["late"].ttd_min, t["late"].ttr_min, t["late"].capped) == (45, 45, ("ttd", "ttr"))
    assert (t["gave-up"].ttd_min, t["gave-up"].ttr_min, t["gave-up"].capped) == (6, 45, ("ttr",))
    # giving up never scores better than finishing late
    assert t["gave-up"].ttr_min >= t["late"].ttr_min
    running = _times(tmp_path, now_min=30)["gave-up"]
    assert running.ttr_min is None and running.capped == ()


def test_a_declaration_on_a_wrong_symptom_does_not_stop_the_clock(tmp_path):
    _scenario(tmp_path, "gd", ("detected", 2, {"signal": "log", "counts": False}),
              ("detected", 7, {"signal": "eval"}), ("resolved", 12, {}))
    assert _times(tmp_path)["gd"].ttd_min == 7


def test_untimed_tabletops_stay_out_of_mttd_and_mttr(tmp_path):
    _scenario(tmp_path, "tabletop", ("detected", 30, {}), ("resolved", 55, {}), timebox=60, timed=False)
    _scenario(tmp_path, "timed", ("detected", 3, {}), ("resolved", 15, {}))
    assert gamedays.mttd_mttr(gamedays.load(tmp_path), now=T0) == (3, 15)


def test_schedule_comes_from_the_plan():
    assert gamedays.schedule_for(8)["timebox_minutes"] == 45
    assert gamedays.schedule_for(4)["timed"] is False
    with pytest.raises(UnknownChoice, match="game-day week 5"):
        gamedays.schedule_for(5)


def test_detect_checks_the_signal_against_the_injected_fault(tmp_path):
    with pytest.raises(InvalidInput, match="start it first"):
        gamedays.declare_detected(tmp_path, "alice", "nope", "eval")
    _scenario(tmp_path, "gd")  # config-drift: its signals are endpoint and rollout, not log
    with pytest.raises(UnknownChoice, match="signal kind"):
        gamedays.declare_detected(tmp_path, "alice", "gd", "vibes")
    wrong = gamedays.declare_detected(tmp_path, "alice", "gd", "log", at=at(1))
    right = gamedays.declare_detected(tmp_path, "alice", "gd", "endpoint", at=at(5))
    assert (wrong.counts, right.counts) == (False, True)
    assert _times(tmp_path)["gd"].ttd_min == 5


def test_resolve_logs_the_first_passing_check_only_after_the_confirmation(tmp_path, monkeypatch):
    _scenario(tmp_path, "gd")
    verdicts = iter([True, False])
    monkeypatch.setattr("labkit.gamedays.probe_steady_state",
                        lambda sb, fault, catalog=None: [Observation("ready", next(verdicts), "obs", "exp", "hint")])
    naps = []
    ev = gamedays.resolve(tmp_path, object(), "alice", "gd", confirm_s=0.0, sleep=naps.append)
    assert ev.event == "resolved" and naps == []
    with pytest.raises(SteadyStateBroken, match="does not hold now: ready: obs"):
        gamedays.resolve(tmp_path, object(), "alice", "gd", confirm_s=0.0)
    verdicts = iter([True, False])
    with pytest.raises(SteadyStateBroken, match="after .* s of confirmation"):
        gamedays.resolve(tmp_path, object(), "alice", "gd", confirm_s=60, interval_s=1, sleep=lambda s: None)
    assert [e.event for e in gamedays.load(tmp_path)].count("resolved") == 1


def test_a_team_scenario_is_logged_once_and_read_by_every_member(tmp_path):
    from graders.evidence import incidents, trainee_evidence

    gamedays.record(tmp_path, "alice", "w12-t1", "injected", at=at(0), fault="config-drift", timebox_min=60.0,
                    team=("bob", "alice", "carol"))
    gamedays.record(tmp_path, "alice", "w12-t1", "resolved", at=at(12))
    [injected, _] = gamedays.load(tmp_path)
    assert injected.team == ("bob", "carol")  # the commander is not listed twice
    assert json.loads(gamedays.events_path(tmp_path).read_text().splitlines()[0])["team"] == ["bob", "carol"]
    assert [t.trainee for t in gamedays.incident_times(gamedays.load(tmp_path))] == ["alice"]  # one clock
    assert incidents(trainee_evidence(tmp_path, "bob"))[0]["ttr_min"] == 12.0
    assert trainee_evidence(tmp_path, "dave")["gamedays"] == []


def test_graded_runs_feed_the_clock_from_the_control_endpoints_times(tmp_path):
    from graders import check
    from labkit.gamedays import graded_events, incident_times, load
    from sandbox.control.audit import AuditRecord

    t0 = 1_790_000_000.0
    ops = [("inject", {"fault": "provider-outage"}), ("event", {"event": "detected", "signal": "metric"}),
           ("deploy", {"provider_timeout_s": "0.05"}), ("event", {"event": "resolved"})]
    audit = [AuditRecord(i + 1, t0 + 60 * i, op, args) for i, (op, args) in enumerate(ops)]
    result = check("gameday_clock", audit=audit, scenarios=1)
    reports = tmp_path / "reports"
    reports.mkdir()
    old = {**result.to_dict(), "check": "gameday_clock", "student": "alice", "assignment": "lab12-game-day",
           "details": {"incidents": [{**result.details["incidents"][0], "resolved_at": None}]}}
    new = {**result.to_dict(), "check": "gameday_clock", "student": "alice", "assignment": "lab12-game-day"}
    (reports / "live_checks.jsonl").write_text(json.dumps(old) + "\n" + json.dumps(new) + "\n")
    events = graded_events(tmp_path)
    assert [e.event for e in events] == ["injected", "detected", "mitigated", "resolved"]  # the last run wins
    assert events[0].fault == "provider-outage" and events[1].signal == "metric"
    assert events == load(tmp_path)
    [times] = incident_times(events)
    assert (times.trainee, times.incident, times.ttd_min, times.ttr_min) == (
        "alice", "lab12-game-day:provider-outage", 1.0, 3.0)
