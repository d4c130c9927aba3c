"""The monitoring surface without a sandbox: the PromQL client against a mock Prometheus, the
rule-file helpers, log filtering, and (with Docker) the kit's shipped rules through promtool."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from sandbox import labels
from sandbox.errors import BadQuery, PrometheusUnavailable, UnknownChoice
from sandbox.logs import filter_logs
from sandbox.monitoring import KIT_RULES_DIR, PrometheusClient, kit_rule_files, promtool_problems, rule_name
from sandbox.settings import Settings


def _client(handler) -> PrometheusClient:
    return PrometheusClient("http://prom", "http://am", transport=httpx.MockTransport(handler))


def test_query_parses_vectors_scalars_and_range_selectors():
    answers = {
        "up": {"resultType": "vector", "result": [{"metric": {"job": "modelapi"}, "value": [10.5, "1"]}]},
        "1+1": {"resultType": "scalar", "result": [10.5, "2"]},
        "up[1m]": {"resultType": "matrix", "result": [{"metric": {"job": "x"}, "values": [[1, "0"], [2, "1"]]}]},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        form = dict(request.url.params)
        return httpx.Response(200, json={"status": "success", "data": answers[form["query"]]})

    prom = _client(handler)
    [s] = prom.query("up")
    assert (s.labels, s.value, s.time) == ({"job": "modelapi"}, 1.0, 10.5)
    assert prom.query("1+1")[0].value == 2.0
    [series] = prom.query("up[1m]")
    assert (series.times, series.values) == ([1.0, 2.0], [0.0, 1.0])


def test_bad_promql_carries_prometheus_message_and_down_says_the_fix():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"status": "error", "errorType": "bad_data",
                                         "error": '1:14: parse error: unexpected ")"'})

    with pytest.raises(BadQuery, match=r"parse error: unexpected"):
        _client(handler).query("sum(rate(x[5m)")

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(PrometheusUnavailable) as info:
        _client(down).query("up")
    assert "labkit sandbox up" in str(info.value) and info.value.temporary


def test_query_range_takes_negative_offsets_and_alerts_come_from_alertmanager():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "am":
            return httpx.Response(200, json=[{"labels": {"alertname": "QueryDrift", "severity": "ticket"},
                                              "annotations": {"summary": "s"}, "startsAt": "t0",
                                              "endsAt": "t1", "status": {"state": "active"}}])
        seen.update(request.url.params)
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "matrix", "result": []}})

    prom = _client(handler)
    assert prom.query_range("up", -600) == []
    assert float(seen["end"]) - float(seen["start"]) == pytest.approx(600, abs=1)
    assert float(seen["step"]) == pytest.approx(2.4)
    [alert] = prom.alerts("QueryDrift")
    assert (alert.name, alert.state, alert.labels["severity"]) == ("QueryDrift", "active", "ticket")
    assert prom.alerts("Other") == []


def test_rule_names_and_promtool_problems():
    assert rule_name("rules/query-drift.yml") == "query-drift"
    assert rule_name("SLO.rules.yaml") == "slo"
    out = "Checking rules.yml\n  FAILED:\nrules.yml: 5:13: group \"g\", rule 1: could not parse expression\n\n"
    assert promtool_problems(out) == ['rules.yml: 5:13: group "g", rule 1: could not parse expression']
    assert set(kit_rule_files()) == {"slo"}


def test_filter_logs_by_level_and_request_id():
    lines = [json.dumps({"level": "info", "msg": "request", "request_id": "a"}),
             json.dumps({"level": "warning", "msg": "provider timeout", "request_id": "b"}),
             "not json"]
    text = "==> r1-0 <==\n" + "\n".join(lines) + "\n==> provider <==\n" + json.dumps({"level": "info", "request_id": "b"})
    assert filter_logs(text) == text
    kept = filter_logs(text, request_id="b").splitlines()
    assert kept == ["==> r1-0 <==", lines[1], "==> provider <==", json.dumps({"level": "info", "request_id": "b"})]
    assert filter_logs(text, level="warning").splitlines() == ["==> r1-0 <==", lines[1]]
    with pytest.raises(UnknownChoice, match="valid: debug, info"):
        filter_logs(text, level="loud")


def test_shipped_rules_write_out_the_window_arithmetic_for_the_course_period():
    text = (KIT_RULES_DIR / "slo.rules.yml").read_text()
    for fact in ("28-day", "14.4x over 1 h", "2.14 %", "6x  over 6 h", "5.36 %", "0.072", "0.72", "20x"):
        assert fact in text, fact


@pytest.mark.docker
@pytest.mark.parametrize("command", [["check", "rules", "slo.rules.yml"], ["test", "rules", "slo.tests.yml"]])
def test_shipped_rules_pass_promtool(docker_client, command):
    from sandbox._docker.monitoring import run_promtool

    image = Settings.from_env().monitoring.image
    try:
        docker_client.images.get(image)
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"image {image} missing ({e}); run `make images` first", pytrace=False)
    files = {p.name: p.read_text() for p in Path(KIT_RULES_DIR).glob("*.yml")}
    code, out = run_promtool(docker_client, image, labels.for_sandbox(f"t-{uuid.uuid4().hex[:8]}", "job"),
                             f"labkit-promtool-test-{uuid.uuid4().hex[:8]}", command, files)
    assert code == 0 and "SUCCESS" in out, out
