"""``make bench``: speed and memory figures, each a ratio against a baseline measured in the
same run on the same machine. Writes ``bench/results.json``. Not a test: nothing here asserts.

Sections (``python bench/run.py [section ...]``): build, up, rollout, search, monitoring, faults,
course, hub.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox import labels  # noqa: E402
from sandbox._docker import engine  # noqa: E402
from sandbox.client import ServiceClient, load_queries  # noqa: E402
from sandbox._docker.backend import DockerSandbox  # noqa: E402
from sandbox.settings import Settings  # noqa: E402

RESULTS = ROOT / "bench" / "results.json"
REPEATS = 3


def _settings(prefix: str) -> Settings:
    return Settings.from_env(sandbox_id=f"bench-{prefix}-{uuid.uuid4().hex[:6]}")


def _median(fn: Callable[[], float], n: int = REPEATS) -> float:
    return statistics.median(fn() for _ in range(n))


def _wait_ready(url: str, timeout: float = 60) -> None:
    client = ServiceClient(url, timeout_s=1)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if client.readiness().ready:
            return
        time.sleep(0.02)
    raise RuntimeError(f"{url} not ready in {timeout}s")


def _run_plain(client, image: str, command: list[str], env: dict[str, str], port: int):
    return client.containers.run(
        image, command, detach=True, environment=env, ports={f"{port}/tcp": ("127.0.0.1",)},
        labels=labels.for_sandbox(f"bench-plain-{uuid.uuid4().hex[:6]}", "bench"),
        read_only=True, tmpfs={"/tmp": "size=32m"},
    )


# --- build ---------------------------------------------------------------------------------
def bench_build(results: dict[str, Any]) -> None:
    """Cold build (no layer cache) of the model API image vs a warm rebuild (cache)."""
    from sandbox.images import assemble_context, build_one

    settings = Settings.from_env()
    client = engine.connect_engine(timeout=900)
    context = assemble_context(settings.home, lambda _: None)
    base = client.images.get(settings.images.default).labels.get("org.opencontainers.image.base.name") \
        or _base_of(client, settings)
    tag = f"labkit/modelapi:bench-{uuid.uuid4().hex[:6]}"
    t0 = time.monotonic()
    stream = client.api.build(path=str(context), tag=tag, buildargs={"BASE": base}, nocache=True,
                              rm=True, forcerm=True, decode=True,
                              labels={labels.MANAGED_BY: labels.MANAGED_BY_VALUE})
    for _ in stream:
        pass
    cold = time.monotonic() - t0
    t0 = time.monotonic()
    build_one(client, context, tag, {"BASE": base}, lambda _: None)
    warm = time.monotonic() - t0
    size_mb = client.images.get(settings.images.default).attrs["Size"] / 1e6
    client.images.remove(tag, force=True)
    results["build"] = {"base": base, "cold_s": round(cold, 1), "warm_s": round(warm, 2),
                        "warm_over_cold": round(warm / cold, 3), "image_mb": round(size_mb)}


def _base_of(client, settings: Settings) -> str:
    from sandbox.images import OFFLINE_BASE, ONLINE_BASE

    for candidate in (ONLINE_BASE, OFFLINE_BASE):
        try:
            client.images.get(candidate)
            return candidate
        except Exception:  # noqa: BLE001
            continue
    return OFFLINE_BASE


# --- up to ready ---------------------------------------------------------------------------
def bench_up(results: dict[str, Any]) -> None:
    """A sandbox's up()+deploy() to ready vs a plain `docker run` of the same image to ready."""
    client = engine.connect_engine()
    image = Settings.from_env().images.default

    def plain() -> float:
        t0 = time.monotonic()
        c = _run_plain(client, image, ["python", "-m", "modelapi", "serve"],
                       {"INDEX_NAME": "2026-11-01-v1"}, 8080)
        try:
            c.reload()
            port = c.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
            _wait_ready(f"http://127.0.0.1:{port}")
            return time.monotonic() - t0
        finally:
            c.remove(force=True)

    def ours() -> float:
        sb = DockerSandbox(_settings("up"), client=client)
        t0 = time.monotonic()
        try:
            sb.up()
            sb.deploy(model="v1", index="2026-11-01")
            _wait_ready(sb.endpoint)
            return time.monotonic() - t0
        finally:
            sb.down()

    plain_s, ours_s = _median(plain), _median(ours)
    results["up"] = {"plain_docker_run_to_ready_s": round(plain_s, 2), "up_to_ready_s": round(ours_s, 2),
                     "ratio": round(ours_s / plain_s, 2), "target": "<= 1.3"}


# --- rollouts ------------------------------------------------------------------------------
def bench_rollout(results: dict[str, Any]) -> None:
    """Deploy-to-ready of a new revision and rollback-to-ready, median of three each."""
    client = engine.connect_engine()
    sb = DockerSandbox(_settings("roll"), client=client)
    try:
        sb.up()
        sb.deploy(model="v1", index="2026-11-01")
        deploys, rollbacks = [], []
        for _ in range(REPEATS):
            t0 = time.monotonic()
            sb.deploy(model="v2")
            deploys.append(time.monotonic() - t0)
            t0 = time.monotonic()
            sb.rollback()
            rollbacks.append(time.monotonic() - t0)
        results["rollout"] = {"deploy_to_ready_s": round(statistics.median(deploys), 2),
                              "rollback_to_ready_s": round(statistics.median(rollbacks), 2)}
    finally:
        sb.down()


# --- search throughput -----------------------------------------------------------------------
BASELINE_APP = """
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
class Q(BaseModel):
    query: str
    k: int | None = None
app = FastAPI()
@app.post('/v1/search')
def search(q: Q):
    return {'results': [], 'query': q.query}
uvicorn.run(app, host='0.0.0.0', port=8080, log_level='warning', access_log=False)
"""


def _load(url: str, seconds: float = 5.0, threads: int = 4) -> dict[str, float]:
    """Closed-loop load: ``threads`` keep-alive clients for ``seconds``; latency and rate."""
    queries = load_queries("baseline")
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(offset: int) -> None:
        mine, i = [], offset
        with httpx.Client(base_url=url, timeout=5) as c:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                r = c.post("/v1/search", json={"query": queries[i % len(queries)], "k": 5})
                mine.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors[0] += 1
                i += threads
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    t0 = time.monotonic()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - t0
    latencies.sort()
    return {"rps": round(len(latencies) / elapsed, 1),
            "p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
            "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 2),
            "errors": errors[0]}


def _peak_memory_mb(container) -> float:
    stats = container.stats(stream=False)["memory_stats"]
    return round((stats.get("max_usage") or stats.get("usage", 0)) / 1e6, 1)


def bench_search(results: dict[str, Any]) -> None:
    """Search through the sandbox (front door and one replica directly) vs a minimal FastAPI
    endpoint on the same server stack, in a container of the same image."""
    client = engine.connect_engine()
    image = Settings.from_env().images.default
    base = _run_plain(client, image, ["python", "-c", BASELINE_APP], {}, 8080)
    sb = DockerSandbox(_settings("search"), client=client)
    try:
        sb.up()
        base.reload()
        base_url = f"http://127.0.0.1:{base.attrs['NetworkSettings']['Ports']['8080/tcp'][0]['HostPort']}"
        _wait_port(base_url)
        rev = sb.deploy(model="v1", index="2026-11-01")
        replica = sb.revision_endpoints(rev.number)[0]
        _load(sb.endpoint, seconds=1)  # warm-up
        baseline = _load(base_url)
        front = _load(sb.endpoint)
        direct = _load(replica)
        sb.deploy(provider_timeout_s="0.0001")
        no_rerank = _load(sb.revision_endpoints(sb.status().serving_revision)[0])
        api = [c for c in sb.containers("modelapi") if c.status == "running"][0]
        results["search"] = {
            "baseline_minimal_fastapi": baseline, "front_door": front, "replica_direct": direct,
            "replica_without_reranker": no_rerank,
            "ratio_front_door_rps": round(front["rps"] / baseline["rps"], 2),
            "ratio_replica_rps": round(direct["rps"] / baseline["rps"], 2),
            "target": ">= 0.6", "peak_memory_mb_service": _peak_memory_mb(api),
            "peak_memory_mb_baseline": _peak_memory_mb(base),
        }
    finally:
        sb.down()
        base.remove(force=True)


def _wait_port(url: str, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            httpx.post(url + "/v1/search", json={"query": "x"}, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)


# --- faults --------------------------------------------------------------------------------
def bench_faults(results: dict[str, Any]) -> None:
    """Per fault: inject-to-detectable and remediation-to-healthy (steady state holds)."""
    from sandbox.faults import heal, inject, probe_steady_state
    from sandbox.faults.remediations import REMEDIATIONS

    client = engine.connect_engine()
    figures = {}
    sb = DockerSandbox(_settings("faults"), client=client)
    try:
        sb.up()
        sb.deploy(model="v1", index="2026-11-01")
        for fault_id, remedy in REMEDIATIONS.items():
            t0 = time.monotonic()
            inject(sb, fault_id)
            _until(lambda: not all(p.ok for p in probe_steady_state(sb, fault_id)))
            detect = time.monotonic() - t0
            t0 = time.monotonic()
            remedy(sb)
            _until(lambda: all(p.ok for p in probe_steady_state(sb, fault_id)))
            recover = time.monotonic() - t0
            heal(sb, fault_id)
            figures[fault_id] = {"inject_to_detectable_s": round(detect, 2),
                                 "remediation_to_healthy_s": round(recover, 2)}
            print(f"  {fault_id}: {figures[fault_id]}", flush=True)
    finally:
        sb.down()
    results["faults"] = figures


def _until(predicate: Callable[[], bool], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise RuntimeError("condition not reached in time")
        time.sleep(0.1)


def bench_course(results: dict[str, Any]) -> None:
    """Grading time per submission and the parallel speedup (bench/course_bench.py)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import course_bench

    course_bench.run(results)


def bench_hub(results: dict[str, Any]) -> None:
    """Login to a ready Lab and sandbox, memory per trainee, hub API p95 by trainees (bench/hub_bench.py)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import hub_bench

    hub_bench.run(results)


def bench_monitoring(results: dict[str, Any]) -> None:
    """Search throughput scraped every 1 s vs no stack, up()/deploy to ready with and without it, stack memory (bench/monitoring_bench.py)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import monitoring_bench

    monitoring_bench.run(results)


SECTIONS = {"build": bench_build, "up": bench_up, "rollout": bench_rollout, "search": bench_search,
            "monitoring": bench_monitoring, "faults": bench_faults, "course": bench_course,
            "hub": bench_hub}


def main(argv: list[str]) -> int:
    chosen = argv or list(SECTIONS)
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() and argv else {}
    for name in chosen:
        print(f"== {name}: {SECTIONS[name].__doc__.strip().splitlines()[0]}", flush=True)
        t0 = time.monotonic()
        try:
            SECTIONS[name](results)
        except Exception as e:  # noqa: BLE001 - a failed section is reported, the rest still run
            results[name] = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(results.get(name), indent=2), f"({time.monotonic() - t0:.0f}s)", flush=True)
    results["machine"] = {"cores": _cores(), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


def _cores() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
