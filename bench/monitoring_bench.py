"""Monitoring figures for ``make bench`` (section ``monitoring`` of ``bench/run.py``): search
throughput with Prometheus scraping every second against a sandbox without the stack (alternating,
so the machine's drift hits both alike), ``up()`` and the first deploy to ready with and without
the stack against a plain ``docker run`` of the same image, and the stack's memory per sandbox."""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

from run import REPEATS, _load, _median, _run_plain, _settings, _wait_ready

from sandbox._docker import engine
from sandbox._docker.backend import DockerSandbox
from sandbox.settings import Settings


def _stack_memory_mb(sb: DockerSandbox) -> dict[str, float]:
    out = {}
    for what in ("prometheus", "alertmanager"):
        stats = sb.docker.containers.get(sb.monitoring.names[what]).stats(stream=False)["memory_stats"]
        out[f"{what}_mb"] = round(stats.get("usage", 0) / 1e6, 1)
    out["stack_mb"] = round(sum(out.values()), 1)
    return out


def run(results: dict[str, Any]) -> None:
    """Search throughput with Prometheus scraping every 1 s vs a sandbox without the stack (both up,
    alternating),
    up() and deploy to ready with the monitoring stack vs without vs a plain docker run, and the
    memory of the stack per sandbox."""
    client = engine.connect_engine()
    image = Settings.from_env().images.default

    def up_to_ready(monitoring: bool) -> tuple[float, float]:
        sb = DockerSandbox(Settings.from_env(sandbox_id=f"bench-mon-{uuid.uuid4().hex[:6]}",
                                             monitoring=_monitoring(monitoring)), client=client)
        try:
            t0 = time.monotonic()
            sb.up()
            up_s = time.monotonic() - t0
            sb.deploy(model="v1", index="2026-11-01")
            _wait_ready(sb.endpoint)
            return up_s, time.monotonic() - t0
        finally:
            sb.down()

    def plain() -> float:
        t0 = time.monotonic()
        c = _run_plain(client, image, ["python", "-m", "modelapi", "serve"], {"INDEX_NAME": "2026-11-01-v1"}, 8080)
        try:
            c.reload()
            _wait_ready(f"http://127.0.0.1:{c.attrs['NetworkSettings']['Ports']['8080/tcp'][0]['HostPort']}")
            return time.monotonic() - t0
        finally:
            c.remove(force=True)

    with_stack = [up_to_ready(True) for _ in range(REPEATS)]
    without = [up_to_ready(False) for _ in range(REPEATS)]
    plain_s = _median(plain)
    figures: dict[str, Any] = {
        "up_s_with_stack": round(statistics.median(u for u, _ in with_stack), 2),
        "up_s_without_stack": round(statistics.median(u for u, _ in without), 2),
        "up_and_deploy_to_ready_s_with_stack": round(statistics.median(r for _, r in with_stack), 2),
        "up_and_deploy_to_ready_s_without_stack": round(statistics.median(r for _, r in without), 2),
        "plain_docker_run_to_ready_s": round(plain_s, 2),
    }
    figures["ratio_to_plain_docker_run"] = round(figures["up_and_deploy_to_ready_s_with_stack"] / plain_s, 2)
    monitored = DockerSandbox(_settings("mon"), client=client)
    plain_sb = DockerSandbox(Settings.from_env(sandbox_id=f"bench-nomon-{uuid.uuid4().hex[:6]}",
                                               monitoring=_monitoring(False)), client=client)
    try:
        for sb in (monitored, plain_sb):
            sb.up()
            sb.deploy(model="v1", index="2026-11-01")
            _load(sb.endpoint, seconds=1)  # warm-up
        scraped, quiet = [], []
        for _ in range(2 * REPEATS):  # alternate, so drift of the machine hits both alike
            scraped.append(_load(monitored.endpoint, seconds=4)["rps"])
            quiet.append(_load(plain_sb.endpoint, seconds=4)["rps"])
        figures.update(
            search_rps_scraped_every_1s=statistics.median(scraped), search_rps_without_stack=statistics.median(quiet),
            ratio_search_rps=round(statistics.median(scraped) / statistics.median(quiet), 3), target=">= 0.95",
            scrape_interval_s=monitored.settings.monitoring.scrape_interval_s, **_stack_memory_mb(monitored))
    finally:
        monitored.down()
        plain_sb.down()
    results["monitoring"] = figures


def _monitoring(enabled: bool):
    from dataclasses import replace

    return replace(Settings.from_env().monitoring, enabled=enabled)
