"""settings_sound: the grader refuses settings a lab argues against, read from the serving spec."""

from __future__ import annotations

import pytest

import graders
from graders.preprocessor import declaration_problems
from sandbox.records import DeploySpec, SandboxStatus


class Serving:
    """A sandbox whose serving revision runs ``spec`` (what the engine would report)."""

    id = "settings-fake"

    def __init__(self, replicas: int = 1, **config: str) -> None:
        self.spec = DeploySpec("v1", "2026-11-01-v1", "labkit/modelapi:1.0.0", replicas, config)

    def status(self) -> SandboxStatus:
        return SandboxStatus(self.id, "docker", True, "http://127.0.0.1:1", 3, 3, "complete", True, spec=self.spec)


@pytest.mark.parametrize(("config", "passed"), [
    ({"provider_timeout_s": "0.05"}, True),    # lab 9's answer: above the 40 ms healthy p99
    ({"provider_timeout_s": "0.04"}, True),    # at the bound
    ({"provider_timeout_s": "0.001"}, False),  # p95 bought by never reranking
    ({}, True),                                # the 0.5 s default is not below the p99
])
def test_a_provider_timeout_under_the_healthy_p99_is_refused(config, passed):
    r = graders.check("settings_sound", Serving(**config), provider_timeout_min_s=0.04, points=5)
    assert r.passed is passed and r.points == (5 if passed else 0)
    assert "provider timeout" in r.observed and ">= 40 ms" in r.expected
    if not passed:
        assert "healthy p99" in r.hint


@pytest.mark.parametrize(("replicas", "cpus", "passed"), [
    (2, "0.5", True), (4, "0.5", True), (2, "1.5", False), (3, "1000m", False), (2, None, False),
])
def test_replicas_times_cpus_must_fit_the_quota(replicas, cpus, passed):
    config = {"cpus": cpus} if cpus else {}
    r = graders.check("settings_sound", Serving(replicas, **config), cpu_quota=2.0)
    assert r.passed is passed, r
    assert f"{replicas} x" in r.observed and "<= 2 cores" in r.expected


def test_nothing_serving_is_the_trainees_state_not_a_pass():
    sb = Serving()
    sb.spec = None
    r = graders.check("settings_sound", sb, cpu_quota=2.0)
    assert not r.passed and r.points == 0


def test_a_refuse_declaration_is_validated_like_a_check():
    ok = {"p95": {"check": "p95_within_slo", "args": {"slo_ms": 300}, "refuse": {"cpu_quota": 2.0}}}
    assert declaration_problems(ok) == []
    bad = {"p95": {"check": "p95_within_slo", "refuse": {"cpu_qouta": 2.0}}}
    problems = declaration_problems(bad)
    assert problems and "cell p95.labkit.refuse" in str(problems[0])
