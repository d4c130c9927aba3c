"""A game day through `labkit gameday` on a real sandbox: the kit keeps the clock that
`labkit report` reads MTTD and MTTR from, and `resolve` logs nothing the probes do not back."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from labkit.cli.main import app
from sandbox.faults import active_faults

pytestmark = pytest.mark.docker


def test_game_day_clock_through_the_cli(sandbox, tmp_path):
    root = tmp_path / "course"
    (root / "reports").mkdir(parents=True)
    (root / "nbgrader_config.py").write_text("c = get_config()  # noqa: F821\n")
    env = {"LABKIT_SANDBOX_ID": sandbox.id, "LABKIT_HOME": str(sandbox.settings.home),
           "LABKIT_COURSE_ROOT": str(root)}
    runner = CliRunner()

    def labkit(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == code, result.output
        return result.output if args[1] == "times" else " ".join(result.output.split())  # unwrap rich

    base = ("--trainee", "alice", "--incident", "w08-config-drift")
    out = labkit("gameday", "start", "config-drift", "--trainee", "alice", "--week", "8")
    assert "w08-config-drift: config-drift injected" in out and "timebox 45 min" in out
    assert "config-drift" in active_faults(sandbox)  # the fault is live, not only logged
    assert "already started" in labkit("gameday", "start", "config-drift", "--trainee", "alice", "--week", "8",
                                       code=2)

    assert "clock keeps running" in labkit("gameday", "detect", *base, "--signal", "log")
    assert "clock stopped" in labkit("gameday", "detect", *base, "--signal", "endpoint")
    broken = labkit("gameday", "resolve", *base, "--confirm-s", "0", code=1)
    assert "does not hold now" in broken and "labkit fault status" in broken

    sandbox.rollback()  # the trainee's remediation: undo the drifted config
    labkit("gameday", "mitigate", *base, "--note", "rollout undo to the last good config")
    assert "resolved at" in labkit("gameday", "resolve", *base, "--confirm-s", "2", "--interval-s", "1")

    times = json.loads(labkit("gameday", "times", "--json"))
    assert len(times) == 1 and times[0]["incident"] == "w08-config-drift" and times[0]["timed"]
    assert 0 <= times[0]["ttd_min"] <= times[0]["ttr_min"] < 5 and times[0]["capped"] == []
    events = [json.loads(line)["event"] for line in (root / "reports" / "gamedays.jsonl").read_text().splitlines()]
    assert events == ["injected", "detected", "detected", "mitigated", "resolved"]
