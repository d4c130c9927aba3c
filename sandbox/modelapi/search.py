"""The model API's search routes: ``POST /v1/search`` and the ops agent's ``POST /v1/agent``.

Both retrieve the same way (the query guard, the index, the reranker); the app module wires them
(``create_app``) and holds the state they read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .agent import AgentRequest, act, guard_query

if TYPE_CHECKING:
    from .app import ServiceState

__all__ = ["MAX_K", "SearchRequest", "agent", "search", "state_of"]

MAX_K = 50
"""The most results a search may ask for (``k``, and ``TOP_K``)."""


class SearchRequest(BaseModel):
    """Body of ``POST /v1/search``."""

    model_config = ConfigDict(extra="ignore")

    query: str = Field(min_length=1, max_length=4000)
    k: int | None = Field(default=None, ge=1, le=MAX_K)

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        """Reject whitespace-only queries."""
        if not value.strip():
            raise ValueError("query must not be blank")
        return value


def state_of(request: Request) -> ServiceState:
    """The ServiceState of the app serving ``request`` (every route of the app reads it so)."""
    return request.app.state.service


async def _retrieve(state: ServiceState, query: str, k: int) -> tuple[list[dict[str, Any]], str]:
    """The top ``k`` runbooks for ``query`` (after the query guard), reranked when a provider is set."""
    n_candidates = min(MAX_K, 2 * k) if state.config.provider_url else k
    hits = state.index.search(state.model.embed_one(query), n_candidates)
    if hits:
        state.drift.add(hits[0][1])
        state.metrics.top1.observe(max(0.0, hits[0][1]))
    hits, outcome = await state.rerank(query, hits)
    return [{**doc.to_dict(), "score": round(score, 6)} for doc, score in hits[:k]], outcome


def _unavailable(state: ServiceState) -> JSONResponse | None:
    """The error answer when this instance cannot search (a defect, no index), else None."""
    config = state.config
    if config.defect == "http-500":
        body = {"error": "internal-error", "detail": "defect: http-500"}
        return JSONResponse(body | {"revision": config.image_revision}, status_code=500)
    ready = state.check_ready()
    if not ready.ready or state.index is None:
        return JSONResponse(ready.body(config), status_code=503)
    return None


async def search(body: SearchRequest, request: Request) -> JSONResponse:
    """Return the runbooks most similar to ``query``, optionally reranked."""
    state = state_of(request)
    config = state.config
    if (down := _unavailable(state)) is not None:
        return down
    results, outcome = await _retrieve(state, guard_query(body.query, config.query_guard), body.k or config.top_k)
    return JSONResponse(
        {
            "results": results,
            "model": config.model_version,
            "index": config.index_name,
            "revision": config.image_revision,
            "reranked": outcome == "ok",
            "provider": outcome,
        }
    )


async def agent(body: AgentRequest, request: Request) -> JSONResponse:
    """The ops agent: search with the query, propose the commands of its context, execute
    (simulated) the first one the release's policy allows (:mod:`modelapi.agent`)."""
    state = state_of(request)
    if (down := _unavailable(state)) is not None:
        return down
    used = guard_query(body.query, state.config.query_guard)
    results, _ = await _retrieve(state, used, 1)
    top = results[0]["id"] if results else None
    snapshot = state.index.manifest.corpus_snapshot
    result = act(body.query, top, state.runbooks.body(snapshot, top) if top else "", state.policy, used)
    for p in result.proposals:
        state.metrics.agent_actions.labels(decision=p.decision, source=p.source).inc()
    return JSONResponse(result.to_dict() | {"alert": body.alert, "revision": state.config.image_revision})
