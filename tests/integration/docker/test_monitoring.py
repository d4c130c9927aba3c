"""The monitoring stack of a real Docker sandbox: Prometheus scrapes every replica and drops
retired ones; the kit's burn-rate alerts fire on saturation and stay quiet on baseline (and
on bad-rollout, where readiness keeps users away and the replica-down ticket fires instead);
lab 7's solution rule fires and resolves in Alertmanager; a rejected rule file leaves the
loaded rules as they were; bad input says what is wrong. No timed assertions: every wait
has a deadline generous enough for a machine twice as slow, and the one latency-like
assertion compares Prometheus's own timestamps with the revision's readiness."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import nbformat
import pytest
from typer.testing import CliRunner

import graders
from labkit.cli.main import app
from sandbox.client import load_queries
from sandbox.errors import BadQuery, RuleFileRejected, RuleTestsFailed
from sandbox.faults import heal, inject
from sandbox.load import send_searches

pytestmark = pytest.mark.docker

LAB07 = Path(__file__).parents[3] / "labs" / "source" / "lab07-drift-alerting" / "lab07-drift-alerting.ipynb"


def lab07_solution_files(threshold: float = 0.778, min_queries: int = 100, lo: float = 0.72,
                         hi: float = 0.83) -> dict[str, str]:
    """RULE and TESTS of lab 7's solution cell (f-strings), evaluated with the lab's numbers."""
    cell = next(c for c in nbformat.read(str(LAB07), as_version=4).cells
                if c.metadata.get("nbgrader", {}).get("grade_id") == "task-threshold")
    names = {"THRESHOLD": threshold, "MIN_QUERIES": min_queries, "lo": lo, "hi": hi}
    out = {}
    for node in ast.walk(ast.parse(cell.source)):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and node.targets[0].id in ("RULE", "TESTS"):
            out[node.targets[0].id] = eval(compile(ast.Expression(node.value), "lab07", "eval"), {}, names)  # noqa: S307
    return out


def _until(condition, timeout_s: float = 60.0, poll_s: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not hold within {timeout_s:.0f}s", pytrace=False)
        time.sleep(poll_s)


def _up(sb, revision: int) -> list:
    return [s for s in sb.query(f'up{{job="modelapi", revision="{revision}"}}')]


def test_every_replica_is_scraped_within_one_interval_of_readiness_and_a_retired_one_dropped(sandbox):
    interval = sandbox.settings.monitoring.scrape_interval_s
    rev = sandbox.deploy(replicas=2)
    _until(lambda: len([s for s in _up(sandbox, rev.number) if s.value == 1]) == 2, what="both replicas up")
    for s in _up(sandbox, rev.number):
        assert {s.labels[k] for k in ("model", "index")} == {"v1", "2026-11-01-v1"}
        assert s.labels["replica"] in ("0", "1") and s.labels["instance"].endswith(":8080")
    # Prometheus's own record: the first successful scrape of each replica came no later than
    # one scrape interval after the kit saw the revision ready (it promotes a revision once
    # Prometheus scrapes it: target changes reach Prometheus's scrape loops in 5 s ticks).
    raw = sandbox.query(f'up{{job="modelapi", revision="{rev.number}"}}[5m]')
    assert len(raw) == 2
    for series in raw:
        first_up = min(t for t, v in zip(series.times, series.values, strict=True) if v == 1)
        assert first_up <= rev.ready_at + interval + 0.25, (series.labels, first_up - rev.ready_at)
    old = rev.number - 1
    _until(lambda: not _up(sandbox, old), what=f"retired revision {old} dropped from the targets")
    assert {t["labels"]["revision"] for t in sandbox.prometheus.targets() if t["labels"]["job"] == "modelapi"} \
        == {str(rev.number)}


def _burning(sb) -> set[str]:
    return {a.name for a in sb.alerts() if "BudgetBurn" in a.name}


def test_burn_rate_alerts_quiet_on_baseline_and_firing_on_saturation(sandbox):
    send_searches(sandbox.endpoint, load_queries("baseline"), 60, 2)
    _until(lambda: sandbox.query("slo:search_slow:ratio_rate5m"), what="the SLO ratios recorded")
    time.sleep(3 * sandbox.settings.monitoring.scrape_interval_s)  # a few evaluations on baseline
    assert _burning(sandbox) == set()
    assert {r.state for r in sandbox.rules.loaded() if "BudgetBurn" in r.name} == {"inactive"}
    inject(sandbox, "saturation")
    try:
        # users keep searching while the budget burns (a burst that ended would leave the short
        # windows to age out): a batch before every look at Alertmanager
        def burning_under_traffic() -> set[str]:
            send_searches(sandbox.endpoint, load_queries("baseline"), 24, 12)
            return _burning(sandbox)

        send_searches(sandbox.endpoint, load_queries("baseline"), 96, 12)
        fired = _until(burning_under_traffic, 180, what="a latency burn-rate alert in Alertmanager")
        assert fired <= {"SearchLatencyBudgetBurnFast", "SearchLatencyBudgetBurnSlow"}, fired
        ratio = sandbox.query("slo:search_slow:ratio_rate5m")[0].value
        assert ratio > 0.30, f"slow ratio {ratio:.2f} should burn >= 6x the 5% budget"
    finally:
        heal(sandbox, "saturation")


def test_bad_rollout_burns_no_budget_but_pages_the_replica_down_ticket(sandbox):
    send_searches(sandbox.endpoint, load_queries("baseline"), 40, 2)
    inject(sandbox, "bad-rollout")
    try:
        send_searches(sandbox.endpoint, load_queries("baseline"), 40, 2)  # the old revision serves
        down = _until(lambda: sandbox.alerts("ModelAPIReplicaDown"), 60, what="ModelAPIReplicaDown firing")
        failed = [r for r in sandbox.history() if r.state == "failed"][-1]
        assert down[0].labels["revision"] == str(failed.number)
        assert _burning(sandbox) == set(), "readiness gating kept users away from the crashing revision"
    finally:
        heal(sandbox, "bad-rollout")
    _until(lambda: not sandbox.alerts("ModelAPIReplicaDown"), 60, what="ModelAPIReplicaDown resolved")


def test_lab07_solution_rule_passes_promtool_fires_and_resolves(sandbox, tmp_path):
    files = lab07_solution_files()
    rules, tests = tmp_path / "query-drift.yml", tmp_path / "query-drift.test.yml"
    rules.write_text(files["RULE"])
    tests.write_text(files["TESTS"])
    assert "SUCCESS" in sandbox.rules.check(rules)
    assert "SUCCESS" in sandbox.rules.test(rules, tests)
    loaded = sandbox.rules.load(rules)
    assert [r.name for r in loaded] == ["QueryDrift"] and loaded[0].duration > 0
    result = graders.expect("drift_alert_fires", sandbox)
    assert "baseline: quiet" in result.observed and "resolved after" in result.observed


def test_a_rejected_rule_file_leaves_the_loaded_rules_as_they_were(sandbox, tmp_path):
    good = tmp_path / "mine.yml"
    good.write_text("groups:\n- name: mine\n  rules:\n  - alert: Mine\n    expr: up == 0\n    for: 5s\n")
    sandbox.rules.load(good)
    before = sorted((r.file, r.name) for r in sandbox.rules.loaded())
    good.write_text("groups:\n- name: mine\n  rules:\n  - alert: Mine\n    expr: sum(rate(up[5m)\n"
                    "  - record: bad name\n    expr: up\n")
    with pytest.raises(RuleFileRejected) as info:
        sandbox.rules.load(good)
    assert "mine.yml" in str(info.value) and "nothing loaded" in str(info.value)
    assert all(line.strip() for line in info.value.problems)
    assert sorted((r.file, r.name) for r in sandbox.rules.loaded()) == before
    assert "alert: Mine\n    expr: up == 0" in sandbox.rules.source("mine")


def test_bad_input_says_what_is_wrong(sandbox, tmp_path, monkeypatch):
    with pytest.raises(BadQuery, match="parse error"):
        sandbox.query("sum(rate(modelapi_requests_total[5m)")
    rules = tmp_path / "r.yml"
    rules.write_text("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n")
    tests = tmp_path / "r.test.yml"
    tests.write_text("tests:\n- interval: 1m\n  input_series:\n  - series: 'up{job=\"x\"}'\n    values: '1x5'\n"
                     "  alert_rule_test:\n  - eval_time: 2m\n    alertname: A\n"
                     "    exp_alerts: [{exp_labels: {job: x}}]\n")
    with pytest.raises(RuleTestsFailed, match="alertname: A"):
        sandbox.rules.test(rules, tests)
    monkeypatch.setenv("LABKIT_SANDBOX_ID", sandbox.id)
    monkeypatch.setenv("LABKIT_IMAGE_REPOSITORY", sandbox.settings.images.repository)
    monkeypatch.setenv("LABKIT_IMAGE_TAG", sandbox.settings.images.tag)
    runner = CliRunner()
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up ==\n")
    for args in (["monitor", "rules", "load", str(bad)], ["monitor", "query", "up{"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
    monitor = sandbox.monitoring
    sandbox.docker.containers.get(monitor.names["prometheus"]).stop(timeout=2)
    result = runner.invoke(app, ["monitor", "query", "up"])
    assert result.exit_code == 2 and "labkit sandbox up" in result.output


def test_a_request_id_finds_one_search_in_the_model_api_and_the_provider_logs(sandbox):
    import json

    import httpx

    r = httpx.post(sandbox.endpoint + "/v1/search", json={"query": "disk full on node"},
                   headers={"X-Request-ID": "lab-trace-0001"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "lab-trace-0001"
    fresh = httpx.post(sandbox.endpoint + "/v1/search", json={"query": "disk full on node"})
    assert len(fresh.headers["x-request-id"]) == 16  # assigned by the model API
    text = _until(lambda: (t := sandbox.logs(request_id="lab-trace-0001")).count("<==") == 2 and t,
                  30, what="the request id in both services' logs")
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert {r["logger"] for r in records} >= {"modelapi.access", "modelapi.provider"}
    assert all(r["request_id"] == "lab-trace-0001" for r in records)
    assert all(json.loads(line)["level"] in ("warning", "error", "critical")
               for line in sandbox.logs(level="warning").splitlines() if line.startswith("{"))
