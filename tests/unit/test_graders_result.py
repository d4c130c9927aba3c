"""CheckResult formatting, check()/expect(), and how live results become nbgrader grades."""

from __future__ import annotations

import nbformat
import pytest
from nbgrader.utils import determine_grade

import graders
from graders.checks import CHECKS
from sandbox.load import percentile
from graders.preprocessor import live_outputs
from graders.result import CheckResult, failed, passed
from sandbox.errors import CheckFailed, DockerUnavailable, InvalidInput, SandboxNotUp, UnknownChoice


def test_failed_result_prints_observed_expected_and_hint():
    r = CheckResult("serving", False, 0, 1, "model v2 / index 2026-11-01-v2", "model v1",
                    "roll back with sb.rollback()")
    assert str(r) == ("✗ serving: observed model v2 / index 2026-11-01-v2; expected model v1\n"
                      "  hint: roll back with sb.rollback()")
    assert "Traceback" not in str(r)


def test_passed_result_has_no_hint_and_partial_shows_points():
    ok = passed("ready", "/readyz 200", "/readyz 200")
    assert str(ok) == "✓ ready: observed /readyz 200; expected /readyz 200"
    part = failed("runbook_sections", "4/6 sections", "6 sections", "add rollback", share=0.5).scaled(2)
    assert part.partial and part.points == 1.0 and part.max_points == 2.0
    assert str(part).startswith("◐ runbook_sections [1/2]: observed 4/6 sections")
    assert part.to_dict()["hint"] == "add rollback"
    assert CheckResult.from_dict(part.to_dict()) == part


def test_scaled_gives_full_points_only_when_passed():
    assert passed("x", "o").scaled(3).points == 3
    assert failed("x", "o", "e", "h").scaled(3).points == 0
    assert failed("x", "o", "e", "h", share=1.0).points < 1  # a failed check never earns all


@pytest.fixture
def fake_check():
    calls = []

    @graders.register("unit-fake")
    def fake(sb, ok: bool = True):
        calls.append(sb)
        if ok:
            return passed("unit-fake", "all good", "good")
        return failed("unit-fake", "bad", "good", "run sb.rollback()")

    yield calls
    CHECKS.pop("unit-fake")


def test_expect_raises_checkfailed_an_assertion_error(fake_check):
    sentinel = object()
    assert graders.expect("unit-fake", sentinel).passed
    with pytest.raises(CheckFailed) as info:
        graders.expect("unit-fake", sentinel, ok=False)
    assert isinstance(info.value, AssertionError)
    assert "✗ unit-fake: observed bad; expected good" in str(info.value)
    assert "hint: run sb.rollback()" in str(info.value)
    assert info.value.result.points == 0
    assert fake_check == [sentinel, sentinel]


def test_check_points_override_and_unknown_names(fake_check):
    assert graders.check("unit-fake", object(), points=4).points == 4
    with pytest.raises(UnknownChoice, match="serving"):
        graders.check("no-such-check", object())
    with pytest.raises(InvalidInput, match="valid arguments: ok"):
        graders.check("unit-fake", object(), model="v1")


class _DownSandbox:
    id = "t-down"

    def readiness(self):
        raise SandboxNotUp("t-down")


class _NoDocker:
    def readiness(self):
        raise DockerUnavailable("unix:///nope")


def test_trainee_state_errors_fail_with_the_fix_as_hint_but_infrastructure_propagates():
    r = graders.check("ready", _DownSandbox())
    assert not r.passed and "sandbox t-down is not up" in r.observed
    assert "labkit sandbox up" in r.hint
    with pytest.raises(DockerUnavailable):
        graders.check("ready", _NoDocker())


def _graded(result: CheckResult) -> float:
    cell = nbformat.v4.new_code_cell("expect('serving', model='v1')")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "points": result.max_points,
                                 "grade_id": "g", "locked": True}
    cell.outputs = live_outputs(result)
    score, _ = determine_grade(cell)
    return score


def test_live_outputs_are_scored_by_nbgrader_as_the_result_says():
    assert _graded(passed("serving", "model v1").scaled(2)) == 2
    assert _graded(failed("serving", "model v2", "model v1", "roll back").scaled(2)) == 0
    assert _graded(failed("recall_at_least", "0.7", "0.85", "h", share=0.25).scaled(2)) == 0.5
    error = live_outputs(failed("serving", "model v2", "model v1", "roll back"))[0]
    assert error.ename == "CheckFailed" and "hint: roll back" in error.evalue


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 95) == 95 and percentile(values, 50) == 50
    assert percentile([], 95) == 0.0 and percentile([7.0], 95) == 7.0


def test_source_declarations_are_read_from_the_instructor_notebook_and_validated():
    from pathlib import Path

    from graders.preprocessor import declaration_problems, declared_checks

    fixture = Path(__file__).parents[1] / "integration" / "docker" / "fixtures" / "lab.ipynb"
    declared = declared_checks(fixture)
    assert declared["serving-v1"] == {"check": "serving", "args": {"model": "v1"},
                                      "capability": "model-rollback", "points": 2.0}
    assert set(declared) == {"serving-v1", "rolled-back", "foreign", "runbook"}
    assert declaration_problems(declared, {"model-rollback", "change-management", "incident-response"}) == []
    bad = {"x": {"check": "serving", "args": {"modle": "v1"}}, "y": {"check": "fault_healed"},
           "z": {"check": "nope"}, "w": {"check": "ready", "capability": "typo"}}
    problems = declaration_problems(bad, {"model-rollback"})
    assert problems[0] == "x: check serving: got an unexpected keyword argument 'modle'"
    assert "y: check fault_healed: missing a required argument: 'fault'" in problems
    assert any(p.startswith("z: unknown check 'nope'; valid: drift_alert_fires") for p in problems)
    assert "w: unknown capability 'typo'; valid: model-rollback" in problems
