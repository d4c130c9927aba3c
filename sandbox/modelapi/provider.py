"""A tiny reranker "provider" service that the model API depends on.

It stands in for an external model provider: ``POST /rerank`` takes
``{"query": str, "candidates": [doc ids]}`` and answers
``{"ids": [...], "scores": [...], "mode": ...}`` with the candidates reordered
by a deterministic rule: the share of the query's words found in the doc's
title and incident class (ties keep the incoming order, unknown ids score 0).
Titles come from every snapshot in ``$DATA_DIR/corpus/`` (newer snapshots win),
so ids from any index are known; with no corpus all scores are 0.

Fault injection, for exercises on degraded dependencies:

* ``PROVIDER_MODE=ok`` (default) - answer normally;
* ``PROVIDER_MODE=slow`` - sleep ``PROVIDER_DELAY_S`` (default 2.0) first;
* ``PROVIDER_MODE=error`` - answer 503.

``GET /admin/mode`` shows and ``POST /admin/mode {"mode": ..., "delay_s": ...}``
changes the mode at run time. ``GET /healthz`` is liveness. Port: ``PORT``
(default 8081).

The simulated accelerator pool (``PROVIDER_SLOTS``, ``PROVIDER_SERVICE_MS``; off by default):
see :mod:`modelapi.pool`. ``GET /admin/pool`` shows it, ``POST /admin/pool`` resizes it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

import h11
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, Field

from . import REQUEST_ID_HEADER, __version__
from .corpus import CorpusError, list_snapshots, load_snapshot, snapshot_path
from .envconfig import ConfigError, EnvConfig, env_field
from .embedding import tokenize
from .pool import MAX_SLOTS, PoolRequest, SlotPool
from .telemetry import PROVIDER_BUCKETS, InstrumentationMiddleware

__all__ = [
    "MODES",
    "ProviderConfig",
    "RerankClient",
    "RerankResult",
    "create_provider_app",
    "load_titles",
    "rank",
]

log = logging.getLogger("modelapi.provider")

MODES = ("ok", "slow", "error")
Mode = Literal["ok", "slow", "error"]


@dataclass(frozen=True)
class ProviderConfig(EnvConfig):
    """Provider configuration; :meth:`from_env` reads ``DATA_DIR``, ``PROVIDER_MODE``,
    ``PROVIDER_DELAY_S``, ``PROVIDER_SLOTS``, ``PROVIDER_SERVICE_MS``, ``PORT`` and ``LOG_LEVEL``."""

    data_dir: Path = env_field(Path("/data"), "DATA_DIR")
    mode: str = env_field("ok", "PROVIDER_MODE")
    delay_s: float = env_field(2.0, "PROVIDER_DELAY_S")
    slots: int = env_field(0, "PROVIDER_SLOTS")
    service_ms: float = env_field(0.0, "PROVIDER_SERVICE_MS")
    port: int = env_field(8081, "PORT")
    log_level: str = env_field("INFO", "LOG_LEVEL", clean=lambda raw: raw.strip().upper())

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"PROVIDER_MODE={self.mode!r} must be one of {', '.join(MODES)}")
        if self.delay_s < 0:
            raise ConfigError(f"PROVIDER_DELAY_S={self.delay_s} must be >= 0")
        if not 0 <= self.slots <= MAX_SLOTS:
            raise ConfigError(f"PROVIDER_SLOTS={self.slots} must be 0 (pool off) to {MAX_SLOTS}")
        if not 0 <= self.service_ms <= 5000:
            raise ConfigError(f"PROVIDER_SERVICE_MS={self.service_ms} must be 0 to 5000")


class RerankResult(NamedTuple):
    """Outcome of one rerank call: ``order`` is None unless ``outcome == "ok"``."""

    order: list[str] | None
    outcome: str
    problem: str = ""


#: Idle pooled connections older than this are not reused (uvicorn, the provider's server,
#: closes a connection idle for 5 s: its ``timeout_keep_alive``).
IDLE_REUSE_S = 4.0


class RerankClient:
    """Client side of ``POST /rerank`` with an overall deadline; it never raises.

    HTTP/1.1 on asyncio streams, parsed by ``h11``, with a pool of keep-alive connections: the
    rerank hop is on every search, and a general-purpose client costs more CPU than the
    provider's answer. A connection is reused only when h11 says both sides finished the
    exchange cleanly; one that failed or was cut by the deadline is closed. Connections are
    made on demand in the event loop that uses the client; :meth:`aclose` closes the pool.
    """

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        url = urlsplit(self.base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"PROVIDER_URL={base_url!r} must be http://HOST[:PORT] (the hop is plain HTTP/1.1)")
        self._host, self._port = url.hostname, url.port or 80
        self._idle: list[_Conn] = []

    async def aclose(self) -> None:
        """Close every pooled connection."""
        while self._idle:
            self._idle.pop().writer.close()

    async def _connect(self) -> _Conn:
        reader, writer = await asyncio.open_connection(self._host, self._port)
        return _Conn(reader, writer, h11.Connection(h11.CLIENT))

    def _pooled(self) -> _Conn | None:
        """The most recently used idle connection young enough that the provider kept it open
        (older ones are closed: the provider's server drops idle connections after its
        keep-alive timeout, and a request sent on one fails)."""
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.idle_since < IDLE_REUSE_S:
                return conn
            conn.writer.close()
        return None

    async def _post(self, body: bytes, request_id: str = "") -> tuple[int, bytes]:
        for attempt in (1, 2):  # a pooled connection the provider closed meanwhile: one retry, fresh
            conn = self._pooled() if attempt == 1 else None
            reused = conn is not None
            conn = conn or await self._connect()
            try:
                status, payload = await conn.exchange(self._host, body, request_id)
            except BaseException as exc:
                conn.writer.close()
                if reused and attempt == 1 and isinstance(exc, (ConnectionError, h11.RemoteProtocolError)):
                    continue
                raise
            if conn.reusable():
                conn.idle_since = time.monotonic()
                self._idle.append(conn)
            else:
                conn.writer.close()
            return status, payload
        raise ConnectionResetError("the provider closed the connection")

    async def rerank(self, query: str, ids: list[str], request_id: str = "") -> RerankResult:
        """Ask the provider to reorder ``ids`` (sending ``request_id`` along); ``timeout`` or
        ``error`` on failure."""
        body = json.dumps({"query": query, "candidates": ids}).encode()
        try:
            async with asyncio.timeout(self.timeout_s):
                status, payload = await self._post(body, request_id)
            if status >= 400:
                return RerankResult(None, "error", f"provider answered {status}")
            return RerankResult(_parse_ranking(json.loads(payload), ids), "ok")
        except TimeoutError:
            return RerankResult(None, "timeout", f"no answer within {self.timeout_s:g}s")
        except (OSError, ValueError, IndexError, h11.ProtocolError) as exc:
            return RerankResult(None, "error", str(exc) or type(exc).__name__)


class _Conn:
    """One pooled HTTP/1.1 connection to the provider: the stream pair and its h11 state."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, http: h11.Connection) -> None:
        self.reader, self.writer, self.http = reader, writer, http
        self.idle_since = time.monotonic()

    async def exchange(self, host: str, body: bytes, request_id: str = "") -> tuple[int, bytes]:
        headers = [("Host", host), ("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if request_id:
            headers.append((REQUEST_ID_HEADER, request_id))
        self.writer.write(self.http.send(h11.Request(method="POST", target="/rerank", headers=headers))
                          + self.http.send(h11.Data(data=body)) + self.http.send(h11.EndOfMessage()))
        status, chunks = 0, []
        while True:
            event = self.http.next_event()
            if event is h11.NEED_DATA:
                data = await self.reader.read(65536)
                if not data and status == 0:
                    raise ConnectionResetError("the provider closed the connection")
                self.http.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                return status, b"".join(chunks)

    def reusable(self) -> bool:
        if self.http.our_state is h11.DONE and self.http.their_state is h11.DONE:
            self.http.start_next_cycle()
            return True
        return False


def _parse_ranking(payload: Any, candidates: list[str]) -> list[str]:
    """Validate a provider answer ``{"ids": [...]}``: a permutation of ``candidates``."""
    ids = payload.get("ids") if isinstance(payload, dict) else None
    if not isinstance(ids, list) or sorted(map(str, ids)) != sorted(candidates):
        raise ValueError("provider returned a ranking that is not a permutation of the candidates")
    return [str(doc_id) for doc_id in ids]


class RerankRequest(BaseModel):
    """Body of ``POST /rerank``."""

    query: str = Field(max_length=4000)
    candidates: list[str] = Field(max_length=200)


class ModeRequest(BaseModel):
    """Body of ``POST /admin/mode``."""

    mode: Mode
    delay_s: float | None = Field(default=None, ge=0, le=60)


#: Unknown candidate ids make the provider re-read the corpora, at most this often.
TITLES_RELOAD_S = 1.0


def load_titles(corpus_dir: Path) -> dict[str, set[str]]:
    """Map doc id to the word set of its title and incident class, for all snapshots."""
    words: dict[str, set[str]] = {}
    for name in list_snapshots(corpus_dir):
        try:
            docs = load_snapshot(snapshot_path(corpus_dir, name))
        except CorpusError as exc:
            log.warning("skipping snapshot %s: %s", name, exc)
            continue
        for doc in docs:
            words[doc.id] = set(tokenize(f"{doc.title} {doc.incident_class}"))
    return words


def rank(
    query: str, candidates: list[str], titles: Mapping[str, set[str]]
) -> list[tuple[str, float]]:
    """Order ``candidates`` by the share of query words in their title words.

    Stable: equal scores keep the incoming order, so the vector order survives.
    """
    query_words = set(tokenize(query))
    scored = []
    for doc_id in candidates:
        overlap = len(query_words & titles.get(doc_id, set()))
        scored.append((doc_id, overlap / len(query_words) if query_words else 0.0))
    return sorted(scored, key=lambda item: -item[1])


class ProviderMetrics:
    """The provider's own Prometheus metrics: requests and latency as it serves them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("provider_requests_total", "Provider HTTP requests", ["route", "status"],
                                registry=self.registry)
        self.latency = Histogram("provider_request_latency_seconds", "Provider latency as it serves",
                                 ["route"], buckets=PROVIDER_BUCKETS, registry=self.registry)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request and record how long serving it took."""
        self.requests.labels(route=route, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)


def _instrument(app: FastAPI, metrics: ProviderMetrics) -> None:
    """Count and time each request, log it as one JSON line with the caller's request id."""
    app.add_middleware(InstrumentationMiddleware, metrics=metrics, logger=log,
                       routes=frozenset({"/rerank", "/admin/mode", "/admin/pool", "/healthz"}), unobserved=frozenset({"/metrics"}))

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        """Prometheus exposition of the provider's registry."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def create_provider_app(config: ProviderConfig | None = None) -> FastAPI:
    """Build the provider app; ``config`` defaults to :meth:`ProviderConfig.from_env`."""
    config = config or ProviderConfig.from_env()
    app = FastAPI(title="labkit provider", version=__version__)
    metrics = app.state.metrics = ProviderMetrics()  # its registry holds the pool's metrics too
    _instrument(app, metrics)
    app.state.pool = SlotPool(metrics.registry, config.slots, config.service_ms)
    app.state.mode = config.mode
    app.state.delay_s = config.delay_s
    app.state.titles = load_titles(config.data_dir / "corpus")
    app.state.titles_loaded_at = time.monotonic()
    log.info(
        "provider starting (mode %s, delay %.2fs, %d titles)",
        config.mode,
        config.delay_s,
        len(app.state.titles),
    )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness."""
        return {"status": "ok"}

    @app.post("/rerank")
    async def rerank(body: RerankRequest, request: Request) -> JSONResponse:
        """Reorder the candidate ids (or fail / stall, as the mode says)."""
        state = request.app.state
        if state.mode == "error":
            return JSONResponse({"error": "provider unavailable (mode=error)"}, status_code=503)
        if state.mode == "slow":
            await asyncio.sleep(state.delay_s)
        if any(c not in state.titles for c in body.candidates) and (
            not state.titles or time.monotonic() - state.titles_loaded_at > TITLES_RELOAD_S
        ):  # a snapshot added since start (new docs), or started before the volume was filled
            state.titles = load_titles(config.data_dir / "corpus")
            state.titles_loaded_at = time.monotonic()
        async with state.pool.serve():  # the accelerator's time (no-op with the pool off)
            ranked = rank(body.query, body.candidates, state.titles)
        return JSONResponse(
            {
                "ids": [doc_id for doc_id, _ in ranked],
                "scores": [round(score, 6) for _, score in ranked],
                "mode": state.mode,
            }
        )

    @app.get("/admin/mode")
    async def get_mode(request: Request) -> dict[str, Any]:
        """Show the fault-injection mode."""
        return {"mode": request.app.state.mode, "delay_s": request.app.state.delay_s}

    @app.post("/admin/mode")
    async def set_mode(body: ModeRequest, request: Request) -> dict[str, Any]:
        """Change the fault-injection mode (and optionally the delay)."""
        state = request.app.state
        state.mode = body.mode
        if body.delay_s is not None:
            state.delay_s = body.delay_s
        log.warning("provider mode set to %s (delay %.2fs)", state.mode, state.delay_s)
        return {"mode": state.mode, "delay_s": state.delay_s}

    @app.get("/admin/pool")
    async def get_pool(request: Request) -> dict[str, Any]:
        """Show the accelerator pool: slots, service time, busy slots, queued requests."""
        return request.app.state.pool.describe()

    @app.post("/admin/pool")
    async def set_pool(body: PoolRequest, request: Request) -> dict[str, Any]:
        """Resize the accelerator pool (and optionally its service time)."""
        pool = request.app.state.pool.resize(body.slots, body.service_ms)
        log.warning("provider pool set to %d slot(s) at %.0f ms per request", pool["slots"], pool["service_ms"])
        return pool

    return app
