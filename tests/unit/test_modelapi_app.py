"""Unit tests of the model API app (readiness, search, metrics, provider, defects) and
the provider service. No Docker: apps run in-process with TestClient, and the
provider runs under uvicorn in a thread where a real socket is needed."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from sandbox.modelapi.__main__ import PACKAGE_DATA
from sandbox.modelapi.app import AppConfig, ConfigError, ServiceState, create_app
from sandbox.modelapi.corpus import load_queries
from sandbox.modelapi.index import build_index
from sandbox.modelapi.provider import ProviderConfig, create_provider_app, rank

SANDBOX_DIR = Path(__file__).resolve().parents[2] / "sandbox"
DOCS = [
    ("rb-0001", "Disk full on a database host", "storage", "Free space on /var, rotate logs."),
    ("rb-0002", "Pod OOMKilled", "capacity", "Raise the memory limit or fix the heap leak."),
    ("rb-0003", "TLS certificate expiring", "certificates", "Renew the certificate."),
    ("rb-0004", "DNS resolution failures", "network", "Check CoreDNS pods, NXDOMAIN rates."),
    ("rb-0005", "High p99 latency", "latency", "Look for slow upstream calls and timeouts."),
    ("rb-0006", "Memory leak in the model server", "capacity", "Heap grows until OOMKilled."),
]


def write_corpus(path: Path, docs: list[tuple[str, str, str, str]] = DOCS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = ("id", "title", "incident_class", "body")
    path.write_text("".join(json.dumps(dict(zip(keys, d, strict=True))) + "\n" for d in docs))
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    corpus = write_corpus(tmp_path / "corpus" / "2026-11-01.jsonl")
    for model in ("v1", "v2"):
        build_index(model, corpus, tmp_path / "indexes", built_at="2026-11-01T00:00:00Z")
    return tmp_path


def config_for(data_dir: Path, **overrides: Any) -> AppConfig:
    return replace(AppConfig(data_dir=data_dir, index_name="2026-11-01-v1"), **overrides)


@contextmanager
def client_for(config: AppConfig) -> Iterator[TestClient]:
    with TestClient(create_app(config)) as client:
        yield client


def metric(text: str, name: str, **labels: str) -> float:
    """Return the value of one sample in Prometheus text (fails if absent)."""
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(3) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(4))
    raise AssertionError(f"sample {name}{labels} not found")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def provider_server(data_dir: Path, port: int | None = None, **settings: Any) -> Iterator[str]:
    """Run the provider under uvicorn in a thread; yield its base URL."""
    port = port or free_port()
    app = create_provider_app(ProviderConfig(data_dir=data_dir, **settings))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "provider did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def search(client: TestClient, query: str, k: int | None = None) -> httpx.Response:
    return client.post("/v1/search", json={"query": query, "k": k})


# --- configuration ------------------------------------------------------------------


def test_config_from_env_defaults_and_parsing() -> None:
    cfg = AppConfig.from_env({})
    assert (cfg.model_version, cfg.data_dir, cfg.index_name, cfg.top_k) == (
        "v1",
        Path("/data"),
        "",
        5,
    )
    assert (cfg.provider_url, cfg.provider_timeout_s, cfg.image_revision) == ("", 0.5, "dev")
    assert (cfg.defect, cfg.port, cfg.index_dir) == ("", 8080, None)
    cfg = AppConfig.from_env(
        {
            "MODEL_VERSION": "v2",
            "DATA_DIR": "/x",
            "INDEX_NAME": "i1",
            "TOP_K": "7",
            "PROVIDER_URL": "http://p:8081/",
            "PROVIDER_TIMEOUT_S": "0.25",
            "PORT": "9000",
        }
    )
    assert cfg.index_dir == Path("/x/indexes/i1") and cfg.top_k == 7
    assert cfg.provider_url == "http://p:8081" and cfg.provider_timeout_s == 0.25
    with pytest.raises(AttributeError):
        cfg.top_k = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"MODEL_VERSION": "v9"}, "MODEL_VERSION"),
        ({"TOP_K": "many"}, "TOP_K"),
        ({"TOP_K": "0"}, "TOP_K"),
        ({"PROVIDER_TIMEOUT_S": "-1"}, "PROVIDER_TIMEOUT_S"),
        ({"MODELAPI_DEFECT": "explode"}, "MODELAPI_DEFECT"),
        ({"INDEX_NAME": "../etc"}, "INDEX_NAME"),
        ({"PROVIDER_URL": "https://provider:8081"}, "PROVIDER_URL"),
    ],
)
def test_config_rejects_bad_values(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        AppConfig.from_env(env)


# --- health and readiness -----------------------------------------------------------


def test_ready_with_a_good_index(data_dir: Path) -> None:
    with client_for(config_for(data_dir)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        resp = client.get("/readyz")
        assert resp.status_code == 200
        assert resp.json() == {"ready": True, "model": "v1", "index": "2026-11-01-v1"}


@pytest.mark.parametrize(
    ("overrides", "reason", "detail"),
    [
        ({"index_name": ""}, "no-index-configured", "INDEX_NAME"),
        ({"index_name": "2026-12-01-v1"}, "index-missing", "does not exist"),
        ({"index_name": "2026-11-01-v2"}, "model-mismatch", "built by model v2 (dim 384)"),
        ({"defect": "http-500"}, "defect", "defect: http-500"),
    ],
)
def test_not_ready_reasons(
    data_dir: Path, overrides: dict[str, Any], reason: str, detail: str
) -> None:
    with client_for(config_for(data_dir, **overrides)) as client:
        assert client.get("/healthz").status_code == 200, "liveness must not depend on the index"
        resp = client.get("/readyz")
        assert resp.status_code == 503
        body = resp.json()
        assert body["ready"] is False and body["reason"] == reason and detail in body["detail"]
        search_resp = search(client, "disk full")
        if reason == "defect":
            assert search_resp.status_code == 500
            assert search_resp.json()["detail"] == "defect: http-500"
        else:
            assert search_resp.status_code == 503 and search_resp.json()["reason"] == reason


def test_corrupt_index_is_not_ready(data_dir: Path) -> None:
    vectors = data_dir / "indexes" / "2026-11-01-v1" / "vectors.npy"
    data = bytearray(vectors.read_bytes())
    data[-1] ^= 0xFF
    vectors.write_bytes(bytes(data))
    with client_for(config_for(data_dir)) as client:
        body = client.get("/readyz").json()
        assert body["reason"] == "index-corrupt" and "sha256" in body["detail"]
        assert search(client, "disk full").json()["reason"] == "index-corrupt"


def test_index_appearing_later_makes_the_service_ready(data_dir: Path) -> None:
    with client_for(config_for(data_dir, index_name="late")) as client:
        assert client.get("/readyz").json()["reason"] == "index-missing"
        build_index(
            "v1", data_dir / "corpus" / "2026-11-01.jsonl", data_dir / "indexes", name="late"
        )
        time.sleep(1.1)  # retries are rate-limited to one per second
        assert client.get("/readyz").status_code == 200
        assert search(client, "disk full").status_code == 200


def test_load_retries_are_rate_limited(data_dir: Path) -> None:
    now = [100.0]
    state = ServiceState(config_for(data_dir, index_name="late"), clock=lambda: now[0])
    assert state.check_ready().reason == "index-missing"
    build_index("v1", data_dir / "corpus" / "2026-11-01.jsonl", data_dir / "indexes", name="late")
    now[0] += 0.5
    assert not state.check_ready().ready, "a retry within one second must not hit the disk"
    now[0] += 0.6
    assert state.check_ready().ready


# --- search -------------------------------------------------------------------------


def test_search_shape_and_ranking(data_dir: Path) -> None:
    with client_for(config_for(data_dir, top_k=3, image_revision="abc123")) as client:
        body = search(client, "pod OOMKilled memory limit").json()
        assert set(body) == {"results", "model", "index", "revision", "reranked", "provider"}
        assert (body["model"], body["index"], body["revision"]) == ("v1", "2026-11-01-v1", "abc123")
        assert (body["reranked"], body["provider"]) == (False, "disabled")
        assert len(body["results"]) == 3
        top = body["results"][0]
        assert set(top) == {"id", "title", "incident_class", "score"}
        assert top["id"] == "rb-0002" and top["incident_class"] == "capacity"
        scores = [r["score"] for r in body["results"]]
        assert scores == sorted(scores, reverse=True)
        assert len(search(client, "disk", k=1).json()["results"]) == 1
        assert len(search(client, "disk", k=50).json()["results"]) == len(DOCS)


def test_v2_service_with_v2_index(data_dir: Path) -> None:
    cfg = config_for(data_dir, model_version="v2", index_name="2026-11-01-v2")
    with client_for(cfg) as client:
        body = search(client, "certificate expired").json()
        assert body["model"] == "v2" and body["results"][0]["id"] == "rb-0003"


@pytest.mark.parametrize(
    "payload",
    [
        {"query": ""},
        {"query": "   "},
        {"query": "x", "k": 0},
        {"query": "x", "k": 51},
        {"k": 3},
        {},
    ],
)
def test_search_validation_errors(data_dir: Path, payload: dict[str, Any]) -> None:
    with client_for(config_for(data_dir)) as client:
        assert client.post("/v1/search", json=payload).status_code == 422


def test_version_endpoint(data_dir: Path) -> None:
    with client_for(config_for(data_dir, image_revision="r7")) as client:
        body = client.get("/version").json()
        assert body["model"] == "v1" and body["index"] == "2026-11-01-v1"
        assert body["image_revision"] == "r7" and body["corpus_snapshot"] == "2026-11-01"
        assert body["index_manifest"]["vectors_sha256"] and body["index_manifest"]["doc_count"] == 6
    with client_for(config_for(data_dir, index_name="nope")) as client:
        body = client.get("/version").json()
        assert body["index_manifest"] is None and body["corpus_snapshot"] is None


# --- metrics ------------------------------------------------------------------------


def test_metrics_names_labels_and_counters(data_dir: Path) -> None:
    with client_for(config_for(data_dir)) as client:
        before = client.get("/metrics").text
        for name in (
            "modelapi_model_info",
            "modelapi_index_info",
            "modelapi_index_age_seconds",
            "modelapi_ready",
            "modelapi_query_drift_score",
        ):
            assert f"\n{name}" in before
        assert (
            "modelapi_request_latency_seconds" in before and "modelapi_query_top1_score" in before
        )
        assert metric(before, "modelapi_ready") == 1.0
        assert metric(before, "modelapi_model_info", model_version="v1") == 1.0
        assert (
            metric(
                before,
                "modelapi_index_info",
                index="2026-11-01-v1",
                model_version="v1",
                corpus_snapshot="2026-11-01",
            )
            == 1.0
        )
        assert metric(before, "modelapi_index_age_seconds") > 0
        assert metric(before, "modelapi_query_drift_score") == 0.0
        tops = [search(client, q).json()["results"][0]["score"] for q in ("disk full", "dns")]
        client.get("/no/such/path")
        after = client.get("/metrics").text
        assert (
            metric(
                after, "modelapi_requests_total", route="/v1/search", method="POST", status="200"
            )
            == 2
        )
        assert (
            metric(after, "modelapi_requests_total", route="/metrics", method="GET", status="200")
            >= 1
        )
        assert metric(after, "modelapi_requests_total", route="<unmatched>", status="404") == 1
        assert 'route="/no/such/path"' not in after
        assert metric(after, "modelapi_request_latency_seconds_count", route="/v1/search") == 2
        assert metric(after, "modelapi_query_top1_score_count") == 2
        drift = metric(after, "modelapi_query_drift_score")
        assert drift == pytest.approx(1 - sum(tops) / 2, abs=1e-4)


def test_each_app_has_its_own_registry(data_dir: Path) -> None:
    with client_for(config_for(data_dir)) as a, client_for(config_for(data_dir)) as b:
        search(a, "disk full")
        b_text = b.get("/metrics").text
        with pytest.raises(AssertionError):
            metric(b_text, "modelapi_requests_total", route="/v1/search")
        assert metric(a.get("/metrics").text, "modelapi_requests_total", route="/v1/search") == 1


def test_not_ready_metric_is_zero(data_dir: Path) -> None:
    with client_for(config_for(data_dir, index_name="missing")) as client:
        assert metric(client.get("/metrics").text, "modelapi_ready") == 0.0


def test_drift_rises_on_drifted_traffic_with_real_data(tmp_path: Path) -> None:
    """Replay the packaged baseline then drifted query sets against the real corpus."""
    snapshots = sorted(p.stem for p in (PACKAGE_DATA / "corpus").glob("*.jsonl"))
    assert snapshots, "packaged corpus missing"
    build_index("v1", PACKAGE_DATA / "corpus" / f"{snapshots[-1]}.jsonl", tmp_path / "indexes")
    baseline = load_queries(PACKAGE_DATA / "queries" / "baseline.jsonl")
    drifted = load_queries(PACKAGE_DATA / "queries" / "drifted.jsonl")
    assert len(baseline) >= 200 and len(drifted) >= 200
    with client_for(config_for(tmp_path, index_name=f"{snapshots[-1]}-v1")) as client:
        for query in baseline[:200]:
            assert search(client, query, k=1).status_code == 200
        base_score = metric(client.get("/metrics").text, "modelapi_query_drift_score")
        for query in drifted[:200]:
            search(client, query, k=1)
        text = client.get("/metrics").text
        assert metric(text, "modelapi_query_drift_window") == 200
        assert metric(text, "modelapi_query_drift_score") > base_score + 0.08


# --- provider (reranker) ------------------------------------------------------------


def test_rerank_with_a_healthy_provider(data_dir: Path) -> None:
    with (
        provider_server(data_dir) as url,
        client_for(config_for(data_dir, provider_url=url)) as client,
    ):
        body = search(client, "memory leak model server", k=2).json()
        assert (body["provider"], body["reranked"]) == ("ok", True)
        # the title-overlap reranker puts rb-0006 ("Memory leak in the model server") first
        assert body["results"][0]["id"] == "rb-0006" and len(body["results"]) == 2
        text = client.get("/metrics").text
        assert metric(text, "modelapi_provider_requests_total", outcome="ok") == 1


def test_slow_provider_times_out_and_search_degrades(data_dir: Path) -> None:
    with provider_server(data_dir, mode="slow", delay_s=2.0) as url:
        cfg = config_for(data_dir, provider_url=url, provider_timeout_s=0.2)
        with client_for(cfg) as client:
            start = time.monotonic()
            resp = search(client, "disk full", k=3)
            elapsed = time.monotonic() - start
            assert resp.status_code == 200 and elapsed < 2.0  # it did not wait for the provider's 2 s
            body = resp.json()
            assert (body["provider"], body["reranked"]) == ("timeout", False)
            assert body["results"][0]["id"] == "rb-0001" and len(body["results"]) == 3
            text = client.get("/metrics").text
            assert metric(text, "modelapi_provider_requests_total", outcome="timeout") == 1


def test_provider_error_and_unreachable_provider_degrade(data_dir: Path) -> None:
    with (
        provider_server(data_dir, mode="error") as url,
        client_for(config_for(data_dir, provider_url=url)) as client,
    ):
        body = search(client, "disk full").json()
        assert (body["provider"], body["reranked"]) == ("error", False)
    unused = f"http://127.0.0.1:{free_port()}"
    with client_for(config_for(data_dir, provider_url=unused)) as client:
        resp = search(client, "disk full")
        assert resp.status_code == 200 and resp.json()["provider"] == "error"
        text = client.get("/metrics").text
        assert metric(text, "modelapi_provider_requests_total", outcome="error") == 1


def test_rerank_client_keeps_connections_and_survives_a_provider_restart(data_dir: Path) -> None:
    """The rerank hop reuses one connection per concurrent call, and a pooled connection the
    provider closed (restart, outage) costs one retry, never a failed search."""
    from sandbox.modelapi.provider import RerankClient

    port = free_port()
    ids = ["rb-0001", "rb-0006"]

    async def calls(client: RerankClient, n: int) -> list[str]:
        return [(await client.rerank("memory leak model server", ids)).outcome for _ in range(n)]

    async def scenario() -> None:
        client = RerankClient(f"http://127.0.0.1:{port}", timeout_s=2.0)
        with provider_server(data_dir, port=port):
            assert await calls(client, 5) == ["ok"] * 5
            assert len(client._idle) == 1  # five calls, one connection
            order = (await client.rerank("memory leak model server", ids)).order
            assert order == ["rb-0006", "rb-0001"]
        down = await client.rerank("x", ids)
        assert down.outcome == "error" and not client._idle  # stale connection dropped, provider gone
        with provider_server(data_dir, port=port):
            assert await calls(client, 2) == ["ok", "ok"]
        await client.aclose()

    asyncio.run(scenario())


def test_rerank_client_retries_on_a_fresh_connection_when_every_pooled_one_is_stale(data_dir: Path) -> None:
    """After a burst the pool holds several connections; when the provider closes them all (its
    keep-alive timeout, a restart) the retry must not pick another stale one: a search would
    fall back to vector order with the provider healthy. Connections idle past the provider's
    keep-alive are not reused at all."""
    from sandbox.modelapi import provider as prov

    port = free_port()
    ids = ["rb-0001", "rb-0006"]

    async def scenario() -> None:
        client = prov.RerankClient(f"http://127.0.0.1:{port}", timeout_s=2.0)
        with provider_server(data_dir, port=port):
            outcomes = await asyncio.gather(*[client.rerank("memory leak", ids) for _ in range(4)])
            assert [o.outcome for o in outcomes] == ["ok"] * 4 and len(client._idle) >= 2
        with provider_server(data_dir, port=port):  # every pooled connection is now dead
            assert (await client.rerank("memory leak", ids)).outcome == "ok"
            for conn in client._idle:
                conn.idle_since -= prov.IDLE_REUSE_S + 1
            stale = list(client._idle)
            assert (await client.rerank("memory leak", ids)).outcome == "ok"
            assert not set(map(id, stale)) & set(map(id, client._idle))  # aged out, not reused
        await client.aclose()

    asyncio.run(scenario())


def test_provider_app_modes_and_ranking(data_dir: Path) -> None:
    app = create_provider_app(ProviderConfig(data_dir=data_dir))
    with TestClient(app) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ids = ["rb-0001", "rb-0003", "rb-0099"]
        body = client.post("/rerank", json={"query": "TLS certificate", "candidates": ids}).json()
        assert body["ids"] == ["rb-0003", "rb-0001", "rb-0099"] and body["scores"][0] == 1.0
        assert client.post("/admin/mode", json={"mode": "error"}).json()["mode"] == "error"
        assert client.post("/rerank", json={"query": "x", "candidates": ids}).status_code == 503
        assert client.post("/admin/mode", json={"mode": "bogus"}).status_code == 422
        client.post("/admin/mode", json={"mode": "slow", "delay_s": 0.05})
        assert client.get("/admin/mode").json() == {"mode": "slow", "delay_s": 0.05}
        start = time.monotonic()
        assert client.post("/rerank", json={"query": "x", "candidates": ids}).status_code == 200
        assert time.monotonic() - start >= 0.05


def test_rank_is_stable_on_ties() -> None:
    titles = {"a": {"disk"}, "b": {"disk"}, "c": {"dns"}}
    assert [i for i, _ in rank("dns disk", ["a", "b", "c"], titles)] == ["a", "b", "c"]
    assert [i for i, _ in rank("dns", ["a", "b", "c"], titles)] == ["c", "a", "b"]


# --- the real process ---------------------------------------------------------------


def _module_env(**extra: str) -> dict[str, str]:
    """Environment that runs the package as top-level ``modelapi``, like the image."""
    return {**os.environ, "PYTHONPATH": str(SANDBOX_DIR), **extra}


def test_crash_on_start_defect_exits_3() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "modelapi", "serve"],
        env=_module_env(MODELAPI_DEFECT="crash-on-start", PORT=str(free_port())),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "crash-on-start" in line["msg"] and line["level"] == "critical"


def test_serve_process_starts_logs_json_and_stops_on_sigterm(data_dir: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelapi", "serve"],
        env=_module_env(DATA_DIR=str(data_dir), INDEX_NAME="2026-11-01-v1", PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not become ready"
            time.sleep(0.05)
        assert (
            httpx.post(
                f"http://127.0.0.1:{port}/v1/search", json={"query": "disk"}, timeout=5
            ).status_code
            == 200
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status shows it
    assert proc.returncode in (0, -signal.SIGTERM)
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    msgs = [r["msg"] for r in records]
    assert any(m.startswith("loaded index 2026-11-01-v1 (model v1, 6 docs") for m in msgs)
    access = [r for r in records if r["logger"] == "modelapi.access"]
    assert {"route": "/v1/search", "status": 200} in [
        {"route": r["route"], "status": r["status"]} for r in access
    ]
    assert all(isinstance(r["latency_ms"], float) for r in access)
    assert "Application shutdown complete." in msgs


# --- packaging ----------------------------------------------------------------------

PACKAGE_DIR = SANDBOX_DIR / "modelapi"


def _imports(path: Path) -> set[str]:
    import ast

    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_package_is_self_contained_and_requirements_cover_its_imports() -> None:
    stdlib = set(sys.stdlib_module_names)
    third_party = set()
    for module in PACKAGE_DIR.glob("*.py"):
        imported = _imports(module)
        assert not imported & {"sandbox", "modelapi", "docker", "kubernetes"}, module.name
        third_party |= imported - stdlib - {"__future__"}
    requirements = (PACKAGE_DIR / "requirements.txt").read_text()
    declared = {
        re.split(r"[\[<>=]", line)[0].strip().lower().replace("-", "_")
        for line in requirements.splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert all(">=" in line for line in requirements.splitlines() if line and line[0].isalpha())
    provided_by = {"starlette": "fastapi", "uvloop": "uvicorn"}  # uvloop: uvicorn[standard]
    missing = {provided_by.get(name, name) for name in third_party} - declared
    assert not missing, f"imported but not in requirements.txt: {missing}"
    assert {"fastapi", "uvicorn", "numpy", "prometheus_client", "h11"} <= declared


def test_dockerfile_contract() -> None:
    lines = [
        line.strip()
        for line in (PACKAGE_DIR / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] == "ARG BASE=python:3.11-slim"
    assert [line for line in lines if line.startswith("FROM")][-1] == "FROM ${BASE}"
    assert "USER 10001:10001" in lines
    assert 'CMD ["python", "-m", "modelapi", "serve"]' in lines
    assert any("python -m modelapi seed --data-dir /data" in line for line in lines)
    assert any("--no-index" in line for line in lines), "the build must never reach an index"
    steps = [i for i, line in enumerate(lines) if line.split()[0] in {"RUN", "COPY"}]
    defect = lines.index("ARG MODELAPI_DEFECT=")
    assert defect > max(steps), "the defect variant must reuse every build step"
    assert lines.index("ARG IMAGE_REVISION=dev") > max(steps)


# --- request ids, saturation and the provider's own metrics -----------------------------------


def test_request_ids_are_kept_or_assigned_answered_logged_and_sent_to_the_provider(
        data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sandbox.modelapi import configure_logging

    configure_logging("INFO")
    with (
        provider_server(data_dir) as url,
        client_for(config_for(data_dir, provider_url=url)) as client,
    ):
        kept = client.post("/v1/search", json={"query": "memory leak"}, headers={"X-Request-ID": "trace-42"})
        assert kept.headers["x-request-id"] == "trace-42"
        fresh = client.post("/v1/search", json={"query": "memory leak"}, headers={"X-Request-ID": "bad id\x7f"})
        assert re.fullmatch(r"[0-9a-f]{16}", fresh.headers["x-request-id"])
        assert httpx.get(url + "/no-such-route").status_code == 404
        httpx.get(url + "/metrics")
        provider_metrics = httpx.get(url + "/metrics").text
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    mine = [r for r in lines if r.get("request_id") == "trace-42"]
    assert {r["logger"] for r in mine} == {"modelapi.access", "modelapi.provider"}
    assert metric(provider_metrics, "provider_requests_total", route="/rerank", status="200") == 2
    assert metric(provider_metrics, "provider_request_latency_seconds_count", route="/rerank") == 2
    assert metric(provider_metrics, "provider_requests_total", route="<unmatched>", status="404") == 1
    assert 'route="/metrics"' not in provider_metrics  # scrapes are neither counted nor logged


def test_saturation_and_rerank_hop_metrics_are_exported(data_dir: Path, tmp_path: Path) -> None:
    from sandbox.modelapi.telemetry import cgroup_cpu_limit

    v2, v1 = tmp_path / "v2", tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    v2.mkdir()
    (v2 / "cpu.max").write_text("2000 100000\n")
    assert cgroup_cpu_limit(v2) == pytest.approx(0.02)
    (v2 / "cpu.max").write_text("max 100000\n")
    assert math.isnan(cgroup_cpu_limit(v2))  # no limit
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    assert cgroup_cpu_limit(v1) == pytest.approx(0.5)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert math.isnan(cgroup_cpu_limit(v1))
    assert math.isnan(cgroup_cpu_limit(tmp_path / "none"))
    from sandbox.modelapi.telemetry import Metrics

    for root, resized in ((v2, ("cpu.max", "2000 100000\n")), (v1, ("cpu/cpu.cfs_quota_us", "2000\n"))):
        live = Metrics(cgroup=root)
        assert math.isnan(metric(live.render().decode(), "modelapi_cpu_limit_cores"))
        (root / resized[0]).write_text(resized[1])  # resized in place while the replica runs
        assert metric(live.render().decode(), "modelapi_cpu_limit_cores") == pytest.approx(0.02)
    with client_for(config_for(data_dir)) as client:
        text = client.get("/metrics").text
        assert metric(text, "modelapi_requests_in_flight") == 1  # the scrape itself
        assert metric(text, "process_cpu_seconds_total") >= 0
        for outcome in ("ok", "timeout", "error"):  # exported at 0 before the first call
            assert metric(text, "modelapi_provider_latency_seconds_count", outcome=outcome) == 0
