"""Contract of the kube tier's monitoring: Prometheus and Alertmanager reached through the API
server's service proxy, trainee rule files as keys of a labelled ConfigMap (kmock, the real
client)."""

from __future__ import annotations

import pytest
from kubefake import run, NS

from sandbox import labels


def requests(kmock, method: str, plural: str | None = None) -> list:
    return [r for r in kmock if r.method == method and (plural is None or r.resource is not None
                                                         and r.resource.plural == plural)]


def ours(obj: dict, component: str | None = None) -> dict:
    obj.setdefault("metadata", {})["labels"] = labels.for_sandbox("t1", component)
    return obj


# --- monitoring: Prometheus and Alertmanager through the API server's service proxy --------------
def _monitoring_services(fake, prometheus=None, alertmanager=None) -> None:
    """Services of the monitoring stack whose proxies answer ``(status, payload)``."""
    fake.answers.update({"prometheus": prometheus or (lambda req: (404, {})),
                         "alertmanager": alertmanager or (lambda req: (404, {}))})
    for name in ("prometheus", "alertmanager"):
        fake.put("services", ours({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                                   "spec": {"ports": [{"name": "web", "port": 9090}]}}, name))


async def test_promql_and_alerts_go_through_the_service_proxy(kube_sb, kmock, fake):
    sb = kube_sb
    vector = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"job": "modelapi", "revision": "7d9f"}, "value": [1.5, "1"]}]}}
    firing = [{"labels": {"alertname": "SearchLatencyBudgetBurnFast", "severity": "page"},
               "annotations": {}, "startsAt": "2026-11-20T09:00:00Z", "status": {"state": "active"}}]
    _monitoring_services(fake, lambda req: (200, vector), lambda req: (200, firing))
    query = f"/api/v1/namespaces/{NS}/services/prometheus:web/proxy/api/v1/query"
    assert (await run(lambda: sb.prometheus_url)).startswith("http://127.0.0.1:")
    [sample] = await run(sb.query, 'up{job="modelapi"}')
    assert (sample.labels["revision"], sample.value) == ("7d9f", 1.0)
    [call] = [r for r in kmock if r.url.path == query]
    assert call.method == "GET" and call.params["query"] == 'up{job="modelapi"}'
    [alert] = await run(sb.alerts)
    assert alert.name == "SearchLatencyBudgetBurnFast" and alert.labels["severity"] == "page"


async def test_bad_promql_through_the_proxy_is_bad_input_and_no_service_is_monitoring_down(kube_sb, kmock, fake):
    from sandbox.errors import BadQuery, PrometheusUnavailable

    sb = kube_sb
    with pytest.raises(PrometheusUnavailable, match="no Service prometheus"):
        await run(sb.query, "up")
    _monitoring_services(fake, lambda req: (400, {"status": "error", "errorType": "bad_data",
                                                   "error": "1:3: parse error: unexpected end of input"}))
    with pytest.raises(BadQuery, match="parse error: unexpected end of input"):
        await run(sb.query, "up{")


async def test_a_trainee_rule_file_is_a_key_of_a_labelled_configmap(kube_sb, kmock, fake, monkeypatch):
    from sandbox._kube import waits

    sb = kube_sb
    seen: list[str] = []
    monkeypatch.setattr(waits, "exec_read", lambda api, pods, container, cmd: seen.append(cmd[-1]) or
                        (sb._rule_file("query-drift") or ""))
    text = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n"
    await run(sb._install_rule_file, "query-drift", text)
    cm = fake.get("configmaps", "prometheus-rules-trainee")
    assert cm["data"] == {"query-drift.yml": text} and labels.is_ours(cm["metadata"]["labels"], "t1")
    assert await run(sb._rule_file, "query-drift") == text
    assert any("/etc/labkit/rules/trainee/query-drift.yml" in c for c in seen)
    await run(sb._install_rule_file, "other", text)
    [patch] = [r for r in requests(kmock, "PATCH", "configmaps") if r.data and "other.yml" in r.data.get("data", {})]
    assert patch.data == {"data": {"other.yml": text}}
