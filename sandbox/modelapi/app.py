"""The model API: FastAPI service answering "which runbook fits this alert?".

Configuration comes only from environment variables, read once at start-up
into a frozen :class:`AppConfig` (see :meth:`AppConfig.from_env` for the list).

Endpoints:

* ``GET /healthz`` - liveness: 200 while the process runs, whatever the index.
* ``GET /readyz`` - readiness: 200 ``{"ready": true, ...}`` or 503
  ``{"ready": false, "reason": CODE, "detail": TEXT}`` with CODE one of
  ``no-index-configured``, ``index-missing``, ``index-corrupt``,
  ``model-mismatch``, ``defect``. A failed index load is retried on demand, at
  most once per second, so an index that appears later makes the service ready.
  Once loaded, the index is held in memory: changes on disk take a restart.
* ``POST /v1/search`` - ``{"query": str, "k": int|null}`` -> ranked runbooks.
  If ``PROVIDER_URL`` is set, candidates are reranked by ``POST
  {PROVIDER_URL}/rerank``; on timeout or error the vector order is served
  (degraded, counted in ``modelapi_provider_requests_total``), never a failure.
  ``QUERY_GUARD=strip`` cuts an instruction off the query first (:mod:`modelapi.agent`).
* ``POST /v1/agent`` - ``{"query": str, "alert": str}`` -> the ops agent's proposals and the
  command its policy let it execute (simulated; :mod:`modelapi.agent`, routes in ``search``).
* ``GET /version`` - model, index, manifest, image revision, corpus snapshot.
* ``GET /metrics`` - Prometheus text from the app's own registry.

Injected faults (``MODELAPI_DEFECT``): ``http-500`` makes searches fail with
500 and readiness report ``defect``; ``crash-on-start`` is acted on by the
``serve`` command, which logs it and exits with status 3 before serving.

Query drift signal. ``modelapi_query_drift_score`` is ``1 - mean(top1)``
where ``top1`` is the cosine similarity between a query and its best-matching
runbook (before reranking), averaged over a sliding window of the last
:data:`DRIFT_WINDOW` (200) searches. It is 0 until the first search
(``modelapi_query_drift_window`` gives the number of queries in the window).
When users start asking about things the corpus does not cover, or the corpus
and queries stop sharing vocabulary, top-1 scores fall and the score rises.
Its absolute level depends on the model; alert on change against a baseline.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from . import REQUEST_ID, __version__
from .agent import AgentPolicy, Runbooks
from .envconfig import ConfigError, EnvConfig, env_field
from .embedding import MODELS, EmbeddingModel, get_model
from .index import IndexedDoc, IndexLoadError, LoadedIndex, load_index, validate_index_name
from .provider import RerankClient
from .search import MAX_K, agent, search, state_of
from .telemetry import DRIFT_WINDOW, DriftWindow, InstrumentationMiddleware, Metrics

__all__ = [
    "AppConfig",
    "ConfigError",
    "DEFECTS",
    "DRIFT_WINDOW",
    "MAX_K",
    "Metrics",
    "ServiceState",
    "create_app",
]

log = logging.getLogger("modelapi")

DEFECTS = ("crash-on-start", "http-500")
RETRY_INTERVAL_S = 1.0
_REASON_CODES = {
    "missing": "index-missing",
    "corrupt": "index-corrupt",
    "model-mismatch": "model-mismatch",
}


@dataclass(frozen=True)
class AppConfig(EnvConfig):
    """Service configuration; build it with :meth:`from_env` in production: ``MODEL_VERSION``
    (v1), ``DATA_DIR`` (/data), ``INDEX_NAME`` (unset = not ready), ``TOP_K`` (5),
    ``PROVIDER_URL`` (unset = no reranker), ``PROVIDER_TIMEOUT_S`` (0.5), ``IMAGE_REVISION``
    (dev), ``MODELAPI_DEFECT`` (unset, ``crash-on-start`` or ``http-500``), ``PORT`` (8080),
    ``LOG_LEVEL`` (INFO); the ops agent's policy ``AGENT_SOURCES`` (any), ``AGENT_ALLOW`` (*),
    ``AGENT_DENY`` (none) and ``QUERY_GUARD`` (off): see :mod:`modelapi.agent`."""

    model_version: str = env_field("v1", "MODEL_VERSION")
    data_dir: Path = env_field(Path("/data"), "DATA_DIR")
    index_name: str = env_field("", "INDEX_NAME")
    top_k: int = env_field(5, "TOP_K")
    provider_url: str = env_field("", "PROVIDER_URL", clean=lambda raw: raw.strip().rstrip("/"))
    provider_timeout_s: float = env_field(0.5, "PROVIDER_TIMEOUT_S")
    image_revision: str = env_field("dev", "IMAGE_REVISION")
    defect: str = env_field("", "MODELAPI_DEFECT")
    port: int = env_field(8080, "PORT")
    log_level: str = env_field("INFO", "LOG_LEVEL", clean=lambda raw: raw.strip().upper())
    agent_sources: str = env_field("any", "AGENT_SOURCES", clean=lambda raw: raw.strip().lower())
    agent_allow: str = env_field("*", "AGENT_ALLOW")
    agent_deny: str = env_field("", "AGENT_DENY")
    query_guard: str = env_field("off", "QUERY_GUARD", clean=lambda raw: raw.strip().lower())

    def __post_init__(self) -> None:
        try:
            AgentPolicy.parse(self.agent_sources, self.agent_allow, self.agent_deny)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.query_guard not in ("off", "strip"):
            raise ConfigError(f"QUERY_GUARD={self.query_guard!r} must be 'off' or 'strip'")
        if self.model_version not in MODELS:
            valid = ", ".join(sorted(MODELS))
            raise ConfigError(f"MODEL_VERSION={self.model_version!r} is unknown; valid: {valid}")
        if self.index_name:
            try:
                validate_index_name(self.index_name)
            except ValueError as exc:
                raise ConfigError(f"INDEX_NAME: {exc}") from None
        if not 1 <= self.top_k <= MAX_K:
            raise ConfigError(f"TOP_K={self.top_k} must be between 1 and {MAX_K}")
        if not self.provider_timeout_s > 0:
            raise ConfigError(f"PROVIDER_TIMEOUT_S={self.provider_timeout_s} must be > 0")
        if self.provider_url and not re.fullmatch(r"http://[^/:]+(:\d+)?", self.provider_url):
            raise ConfigError(f"PROVIDER_URL={self.provider_url!r} must be http://HOST[:PORT]")
        if self.defect and self.defect not in DEFECTS:
            raise ConfigError(
                f"MODELAPI_DEFECT={self.defect!r} is not one of: {', '.join(DEFECTS)} (or empty)"
            )
        if not 0 < self.port < 65536:
            raise ConfigError(f"PORT={self.port} is not a valid TCP port")

    @property
    def index_dir(self) -> Path | None:
        """``$DATA_DIR/indexes/$INDEX_NAME``, or None when no index is configured."""
        return self.data_dir / "indexes" / self.index_name if self.index_name else None


@dataclass(frozen=True)
class Readiness:
    """Outcome of a readiness check."""

    ready: bool
    reason: str = ""
    detail: str = ""

    def body(self, config: AppConfig) -> dict[str, Any]:
        """Return the JSON body for /readyz (and 503 search responses)."""
        if self.ready:
            return {"ready": True, "model": config.model_version, "index": config.index_name}
        return {"ready": False, "reason": self.reason, "detail": self.detail}


class ServiceState:
    """Everything one app instance holds: config, model, index, metrics, client."""

    def __init__(self, config: AppConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.model: EmbeddingModel = get_model(config.model_version)
        self.metrics = Metrics()
        self.drift = DriftWindow()
        self.index: LoadedIndex | None = None
        self.policy = AgentPolicy.parse(config.agent_sources, config.agent_allow, config.agent_deny)
        self.runbooks = Runbooks(config.data_dir / "corpus")
        self.provider = (
            RerankClient(config.provider_url, config.provider_timeout_s)
            if config.provider_url
            else None
        )
        self._clock = clock
        self._lock = threading.Lock()
        self._last_attempt = -math.inf
        self._failure = Readiness(False, "index-missing", "index not loaded yet")
        self._wire_metrics()

    def _wire_metrics(self) -> None:
        """Set the static info metrics and attach scrape-time callbacks."""
        m = self.metrics
        m.model_info.labels(model_version=self.model.version).set(1)
        m.build_info.labels(revision=self.config.image_revision, version=__version__).set(1)
        m.ready.set_function(lambda: 1.0 if self.check_ready().ready else 0.0)
        m.index_age.set_function(self._index_age)
        m.drift.set_function(self.drift.score)
        m.drift_window.set_function(lambda: float(self.drift.count()))

    def _index_age(self) -> float:
        """Seconds since the loaded index was built (NaN when none is loaded)."""
        if self.index is None:
            return math.nan
        return time.time() - self.index.manifest.built_at_datetime().timestamp()

    def try_load(self, force: bool = False) -> None:
        """Load the index unless loaded, retrying at most once per second."""
        index_dir = self.config.index_dir
        if self.index is not None or index_dir is None:
            return
        with self._lock:
            now = self._clock()
            if self.index is not None or (
                not force and now - self._last_attempt < RETRY_INTERVAL_S
            ):
                return
            self._last_attempt = now
            try:
                index = load_index(index_dir, self.model.version)
            except IndexLoadError as exc:
                failure = Readiness(
                    False, _REASON_CODES.get(exc.reason, "index-corrupt"), exc.message
                )
                if failure != self._failure or force:
                    log.warning(
                        "index not ready: %s", exc.message, extra={"reason": failure.reason}
                    )
                self._failure = failure
                return
            self._on_loaded(index)

    def _on_loaded(self, index: LoadedIndex) -> None:
        """Publish a freshly loaded index and log it."""
        man = index.manifest
        self.index = index
        self.metrics.index_info.labels(
            index=self.config.index_name,
            model_version=man.model_version,
            corpus_snapshot=man.corpus_snapshot,
        ).set(1)
        log.info(
            "loaded index %s (model %s, %d docs, built %s, snapshot %s)",
            self.config.index_name,
            man.model_version,
            man.doc_count,
            man.built_at,
            man.corpus_snapshot,
            extra={"index": self.config.index_name, "vectors_sha256": man.vectors_sha256},
        )

    def check_ready(self) -> Readiness:
        """Return the current readiness, retrying a failed index load if due."""
        if self.config.defect == "http-500":
            return Readiness(
                False, "defect", "defect: http-500 (fault injected via MODELAPI_DEFECT)"
            )
        if self.config.index_dir is None:
            return Readiness(
                False, "no-index-configured", "INDEX_NAME is not set; no index to serve"
            )
        self.try_load()
        return Readiness(True) if self.index is not None else self._failure

    async def rerank(
        self, query: str, hits: list[tuple[IndexedDoc, float]]
    ) -> tuple[list[tuple[IndexedDoc, float]], str]:
        """Reorder ``hits`` with the provider; return ``(hits, outcome)``.

        Outcome is ``disabled`` (no provider), ``ok``, ``timeout`` or ``error``;
        on timeout or error the vector order is returned unchanged (degraded).
        """
        if self.provider is None or not hits:
            return hits, "disabled"
        start = time.perf_counter()
        result = await self.provider.rerank(query, [doc.id for doc, _ in hits], REQUEST_ID.get())
        self.metrics.provider.labels(outcome=result.outcome).inc()
        self.metrics.provider_latency.labels(outcome=result.outcome).observe(time.perf_counter() - start)
        if result.order is None:
            log.warning(
                "provider %s (%s); serving vector order",
                result.outcome,
                result.problem,
                extra={"provider": result.outcome},
            )
            return hits, result.outcome
        by_id = {doc.id: (doc, score) for doc, score in hits}
        return [by_id[doc_id] for doc_id in result.order], result.outcome


async def healthz() -> dict[str, str]:
    """Liveness: the process is up."""
    return {"status": "ok"}


async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when an index is loaded for the served model, else 503."""
    state = state_of(request)
    ready = state.check_ready()
    return JSONResponse(ready.body(state.config), status_code=200 if ready.ready else 503)


async def version(request: Request) -> dict[str, Any]:
    """Describe what this instance serves."""
    state = state_of(request)
    state.try_load()
    manifest = state.index.manifest if state.index is not None else None
    return {
        "model": state.config.model_version,
        "index": state.config.index_name or None,
        "index_manifest": manifest.to_dict() if manifest else None,
        "image_revision": state.config.image_revision,
        "corpus_snapshot": manifest.corpus_snapshot if manifest else None,
        "service_version": __version__,
    }


async def metrics(request: Request) -> Response:
    """Prometheus exposition of this app's registry."""
    return Response(state_of(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)


def create_app(config: AppConfig | None = None) -> FastAPI:
    """Build the model API; ``config`` defaults to :meth:`AppConfig.from_env`."""
    config = config or AppConfig.from_env()
    state = ServiceState(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Log the configuration, load the index; close the provider's connections at exit."""
        log.info(
            "modelapi %s starting (model %s, index %s, revision %s, provider %s)",
            __version__,
            config.model_version,
            config.index_name or "<none>",
            config.image_revision,
            config.provider_url or "<disabled>",
        )
        if config.index_dir is None:
            log.warning("index not ready: INDEX_NAME is not set")
        state.try_load(force=True)
        try:
            yield
        finally:
            if state.provider is not None:
                await state.provider.aclose()

    app = FastAPI(title="labkit modelapi", version=__version__, lifespan=lifespan)
    app.state.service = state
    app.add_api_route("/healthz", healthz, methods=["GET"])
    app.add_api_route("/readyz", readyz, methods=["GET"])
    app.add_api_route("/v1/search", search, methods=["POST"])
    app.add_api_route("/v1/agent", agent, methods=["POST"])
    app.add_api_route("/version", version, methods=["GET"])
    app.add_api_route("/metrics", metrics, methods=["GET"])
    app.add_middleware(InstrumentationMiddleware, metrics=state.metrics, in_flight=state.metrics.in_flight)
    return app
