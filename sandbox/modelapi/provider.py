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
"""

from __future__ import annotations

import asyncio
import time
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from . import __version__
from .corpus import CorpusError, list_snapshots, load_snapshot, snapshot_path
from .embedding import tokenize

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
class ProviderConfig:
    """Provider configuration (environment: see :meth:`from_env`)."""

    data_dir: Path = Path("/data")
    mode: str = "ok"
    delay_s: float = 2.0
    port: int = 8081
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"PROVIDER_MODE={self.mode!r} must be one of {', '.join(MODES)}")
        if self.delay_s < 0:
            raise ValueError(f"PROVIDER_DELAY_S={self.delay_s} must be >= 0")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProviderConfig:
        """Read ``DATA_DIR``, ``PROVIDER_MODE``, ``PROVIDER_DELAY_S``, ``PORT``, ``LOG_LEVEL``."""
        env = os.environ if env is None else env
        try:
            delay = float(env.get("PROVIDER_DELAY_S", "") or 2.0)
            port = int(env.get("PORT", "") or 8081)
        except ValueError as exc:
            raise ValueError(f"invalid provider setting: {exc}") from None
        return cls(
            data_dir=Path(env.get("DATA_DIR", "") or "/data"),
            mode=(env.get("PROVIDER_MODE", "") or "ok").strip(),
            delay_s=delay,
            port=port,
            log_level=(env.get("LOG_LEVEL", "") or "INFO").upper(),
        )


class RerankResult(NamedTuple):
    """Outcome of one rerank call: ``order`` is None unless ``outcome == "ok"``."""

    order: list[str] | None
    outcome: str
    problem: str = ""


class RerankClient:
    """Client side of ``POST /rerank`` with an overall deadline; it never raises.

    Create one per app and call :meth:`open` inside the event loop that will
    use it (the connection pool is shared for the app's life); :meth:`aclose`
    releases it.
    """

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None

    def open(self) -> None:
        """Create the pooled HTTP client (idempotent)."""
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout_s)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def rerank(self, query: str, ids: list[str]) -> RerankResult:
        """Ask the provider to reorder ``ids``; ``timeout`` or ``error`` on failure."""
        self.open()
        assert self._client is not None
        try:
            async with asyncio.timeout(self.timeout_s):
                resp = await self._client.post("/rerank", json={"query": query, "candidates": ids})
            resp.raise_for_status()
            return RerankResult(_parse_ranking(resp.json(), ids), "ok")
        except (TimeoutError, httpx.TimeoutException):
            return RerankResult(None, "timeout", f"no answer within {self.timeout_s:g}s")
        except (httpx.HTTPError, ValueError) as exc:
            return RerankResult(None, "error", str(exc) or type(exc).__name__)


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


def create_provider_app(config: ProviderConfig | None = None) -> FastAPI:
    """Build the provider app; ``config`` defaults to :meth:`ProviderConfig.from_env`."""
    config = config or ProviderConfig.from_env()
    app = FastAPI(title="labkit provider", version=__version__)
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

    return app
