"""The per-sandbox control endpoint: the only way a graded kernel reaches its sandbox.

It runs in the trusted grading process, holds the engine (the real ``Sandbox``), and serves a
small HTTP API on a unix socket that is the box's only channel out (the box has no network).
Each request carries the box's token; each operation is authorised (``policy``), carried out on
this one sandbox, and written to the audit log with the endpoint's own clock. HTTP to the
service (the front door, one replica of one revision) is proxied, so a canary can be checked
from the box without a route to anything.

    with ControlEndpoint(sandbox, socket_path, audit_path) as endpoint:
        env = endpoint.box_env()      # LABKIT_CONTROL_SOCKET, LABKIT_CONTROL_TOKEN for the kernel
        ...                           # the kernel runs
        endpoint.revoke()             # before the grader reads the live state
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from .. import access_review, evidence, faults
from ..api import CONFIG_KEYS, Sandbox
from ..client import shared_http
from ..errors import InvalidInput, LabkitError, WaitTimeout
from ..monitoring import kit_rule_files
from ..waiting import until
from .audit import AuditLog
from .policy import Refused, authorise, authorise_job
from .wire import error_to_wire, status_to_wire

DEPLOY_KEYS = {"model", "index", "image", "replicas", "change_cause", "wait", *CONFIG_KEYS}
PROXY_HEADERS = ("content-type",)


class ControlEndpoint:
    """Serve one sandbox to one box on a unix socket; a context manager that cleans up."""

    def __init__(self, sandbox: Sandbox, socket_path: Path, audit_path: Path, actor: str = "") -> None:
        self.sandbox = sandbox
        # Who the records name for this box's calls: the endpoint knows its caller is the box.
        sandbox.actor = actor or f"grading-box:{sandbox.id}"
        self.socket_path = Path(socket_path)
        self.audit = AuditLog(Path(audit_path))
        self.token = secrets.token_urlsafe(32)
        self._revoked = threading.Event()
        self._review_seed = secrets.randbits(64)  # the access-review overlay's: never leaves this process
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> ControlEndpoint:
        self.socket_path.unlink(missing_ok=True)
        config = uvicorn.Config(build_app(self), uds=str(self.socket_path), log_level="warning",
                                lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="labkit-control", daemon=True)
        self._thread.start()
        try:
            until(lambda: True if self._server is not None and self._server.started else None,
                  timeout_s=30, interval_s=0.02, what=f"control endpoint on {self.socket_path}")
        except WaitTimeout:
            self.__exit__()
            raise
        os.chmod(self.socket_path, 0o666)  # the box's kernel runs as another user
        return self

    def __exit__(self, *exc: object) -> None:
        self.revoke()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.socket_path.unlink(missing_ok=True)

    def revoke(self) -> None:
        """From now on every request is refused (the kernel is done; the grader reads)."""
        self._revoked.set()

    def box_env(self) -> dict[str, str]:
        return {"LABKIT_CONTROL_SOCKET": str(self.socket_path), "LABKIT_CONTROL_TOKEN": self.token,
                "LABKIT_SANDBOX_ID": self.sandbox.id, "LABKIT_BACKEND": self.sandbox.backend}

    def authorised(self, request: Request) -> None:
        given = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self._revoked.is_set() or not hmac.compare_digest(given.encode(), self.token.encode()):
            raise Refused("request", "no valid token for this sandbox (or the run is over)")

    # --- operations -----------------------------------------------------------------------
    def call(self, op: str, args: dict[str, Any]) -> Any:
        """Authorise, perform and audit one operation."""
        mark = len(evidence.appended(self.sandbox))
        try:
            authorise(op)
            if op == "access_review":
                return self._access_review()
            result = self._perform(op, args)
            if op in ROLLOUT_OPS:  # a promotion by wait_for_rollout (or a fault's deploy) is released too
                evidence.sync_releases(self.sandbox)
        except Refused as e:
            self.audit.append(op, args, "refused", {"error": e.message})
            raise
        except Exception as e:  # the kit's errors and any other (a client library's own): all audited
            message = e.message if isinstance(e, LabkitError) else str(e)
            self.audit.append(op, args, "error", {"error": type(e).__name__, "message": message[:300]})
            raise
        summary = _summary(op, result)
        fresh = evidence.appended(self.sandbox)[mark:]
        if fresh:  # the records' hashes, kept where the box cannot reach: a cut or rewrite shows
            summary["anchors"] = [list(a) for a in fresh]
        self.audit.append(op, args, "ok", summary)
        return result

    def _access_review(self) -> dict[str, Any]:
        """The overlay's files go to the box; the planted answer only to the audit log."""
        review = access_review.render(self._review_seed)
        self.audit.append("access_review", {}, "ok", {"files": len(review.files), "answer": review.answer})
        return {"files": review.files}

    def _perform(self, op: str, args: dict[str, Any]) -> Any:
        sb = self.sandbox
        if op in RECORD_OPS:
            return self._perform_record(op, args)
        if op == "info":
            return {"sandbox_id": sb.id, "backend": sb.backend, "images": asdict(sb.settings.images)}
        if op in ("up", "reset"):
            getattr(sb, op)()
            return {}
        if op == "status":
            return status_to_wire(sb.status())
        if op == "history":
            return [r.to_dict() for r in sb.history()]
        if op == "deploy":
            unknown = sorted(set(args) - DEPLOY_KEYS)
            if unknown:
                raise InvalidInput(f"unknown deploy argument {unknown[0]!r}; valid: {', '.join(sorted(DEPLOY_KEYS))}")
            return sb.deploy(**args).to_dict()
        if op == "rollback":
            return sb.rollback(args.get("to_revision")).to_dict()
        if op == "wait_for_rollout":
            return sb.wait_for_rollout().to_dict()
        if op == "revision_endpoints":
            return {"replicas": len(sb.revision_endpoints(int(args["revision"])))}
        if op == "logs":
            return {"text": sb.logs(args.get("revision"), int(args.get("tail", 200)))}
        if op in ("indexes", "snapshots"):
            return getattr(sb, op)()
        if op == "provider_pool":
            return sb.provider_pool(args.get("slots"))
        if op == "latency_budget":
            return {"ms": sb.latency_budget_ms(float(args["slo_ms"]))}
        if op == "build_index":
            return sb.build_index(str(args["model"]), str(args["corpus"]), args.get("name"))
        if op == "run_job":
            cmd = [str(c) for c in args.get("cmd") or []]
            authorise_job(cmd)
            out = sb.run_job(cmd, str(args.get("what") or cmd[3]))
            if cmd[3] in evidence.ACTOR_JOBS:
                _anchor_approval(sb, out)
            return {"stdout": out}
        if op == "inject":
            return faults.inject(sb, str(args["fault"]))
        if op == "promtool":  # checking and unit-testing rule files (no other promtool verb)
            argv = [str(a) for a in args.get("args") or []]
            if argv[:2] not in (["check", "rules"], ["test", "rules"]):
                raise Refused("promtool", "only `promtool check rules` and `promtool test rules`")
            code, out = sb._promtool(argv, {str(k): str(v) for k, v in (args.get("files") or {}).items()})
            return {"code": code, "out": out}
        if op in ("install_rule_file", "rule_file"):
            name = str(args.get("name", ""))
            if name in kit_rule_files():
                raise Refused(op, f"the rule file {name!r} is the kit's own SLO rules; load yours under another name")
            if op == "rule_file":
                return {"text": sb._rule_file(name)}
            sb._install_rule_file(name, None if args.get("text") is None else str(args["text"]))
            return {}
        if op == "reload_prometheus":
            return {"error": sb._reload_prometheus()}
        raise Refused(op, "unknown operation")

    def _perform_record(self, op: str, args: dict[str, Any]) -> Any:
        """Operations that leave evidence records, appended here with the box as the caller."""
        sb = self.sandbox
        if op == "evaluate":
            return asdict(sb.evaluate(int(args.get("k", 5))))
        if op == "event":  # a game day's step, on this clock; kept as an incident note too
            event = {"event": str(args.get("event", "")), "signal": str(args.get("signal", ""))}
            try:
                sb.note("incident", **event, note=str(args.get("note", ""))[:500])
            except LabkitError as e:  # the clock's event stands; the note's failure is said
                event["note_error"] = e.message[:200]
            return event
        fields = args.get("fields") or {}
        if not isinstance(fields, dict):
            raise InvalidInput("a note's fields are a JSON object")
        return sb.note(str(args.get("kind", "")), **fields)

    def proxy(self, target: str, method: str, path: str, query: str, body: bytes,
              content_type: str | None) -> httpx.Response:
        """Forward one HTTP request to the front door (``front``), a replica (``r<N>/<i>``), or
        the read API of the sandbox's Prometheus or Alertmanager (``GET api/...`` only: queries,
        rules, alerts; never an admin or reload endpoint)."""
        authorise("proxy")
        if target in MONITORING_TARGETS:
            if method != "GET" or not path.lstrip("/").startswith("api/"):
                raise Refused("proxy", f"{target}: only GET of its read API (api/...)")
            base = getattr(self.sandbox, MONITORING_TARGETS[target])
        elif target == "front":
            base = self.sandbox.endpoint
        else:
            number, _, index = target.removeprefix("r").partition("/")
            urls = self.sandbox.revision_endpoints(int(number))
            if not index.isdigit() or int(index) >= len(urls):
                raise InvalidInput(f"revision {number} has {len(urls)} replica(s); no replica {index!r}")
            base = urls[int(index)]
        url = f"{base.rstrip('/')}/{path.lstrip('/')}" + (f"?{query}" if query else "")
        headers = {"content-type": content_type} if content_type else {}
        try:
            answer = shared_http().request(method, url, content=body, headers=headers, timeout=10)
        except httpx.HTTPError as e:
            self.audit.append("proxy", {"target": target, "method": method, "path": path}, "error",
                              {"error": type(e).__name__})
            raise
        self.audit.append("proxy", {"target": target, "method": method, "path": path}, "ok",
                          {"status": answer.status_code})
        return answer


#: Operations that append evidence records (``_perform_record``).
RECORD_OPS = frozenset({"evaluate", "event", "note"})
#: Operations after which a revision may have taken traffic (a release record is due).
ROLLOUT_OPS = frozenset({"deploy", "rollback", "wait_for_rollout", "inject"})


def _anchor_approval(sb: Sandbox, stdout: str) -> None:
    try:
        entry = json.loads(stdout)
    except ValueError:
        return
    if isinstance(entry, dict):
        evidence.anchor(sb, "approvals", [entry])


#: Proxy targets of the monitoring stack -> the sandbox's attribute holding its URL.
MONITORING_TARGETS = {"prometheus": "prometheus_url", "alertmanager": "alertmanager_url"}


def _summary(op: str, result: Any) -> dict[str, Any]:
    """What of a result the audit log keeps (numbers and states, not whole documents)."""
    if isinstance(result, dict) and "number" in result:
        return {"revision": result["number"], "state": result.get("state"),
                "rollback_of": result.get("rollback_of")}
    if op == "run_job":
        return {"bytes": len(result.get("stdout", ""))}
    if isinstance(result, list):
        return {"items": len(result)}
    return {k: v for k, v in (result or {}).items() if isinstance(v, (str, int, float, bool))} \
        if isinstance(result, dict) else {}


def build_app(endpoint: ControlEndpoint) -> FastAPI:
    """The FastAPI app of one endpoint: ``POST /v1/call/{op}`` and the service proxy."""
    app = FastAPI(title="labkit control endpoint", docs_url=None, redoc_url=None, openapi_url=None)
    auth = Depends(endpoint.authorised)

    @app.exception_handler(LabkitError)
    async def labkit_error(request: Request, e: LabkitError) -> JSONResponse:
        code = 403 if isinstance(e, Refused) else 400 if isinstance(e, InvalidInput) else 409
        return JSONResponse(error_to_wire(e), status_code=code)

    @app.post("/v1/call/{op}", dependencies=[auth])
    def call(op: str, args: dict[str, Any] | None = None) -> JSONResponse:
        return JSONResponse({"result": endpoint.call(op, args or {})})

    @app.api_route("/v1/proxy/{target:path}/-/{path:path}", methods=["GET", "POST"], dependencies=[auth])
    async def proxy(target: str, path: str, request: Request) -> Response:
        body = await request.body()
        try:
            answer = await run_in_threadpool(endpoint.proxy, target, request.method, path, request.url.query,
                                             body, request.headers.get("content-type"))
        except httpx.HTTPError as e:
            return JSONResponse({"error": "unreachable", "detail": type(e).__name__}, status_code=502)
        headers = {k: v for k, v in answer.headers.items() if k.lower() in PROXY_HEADERS}
        return Response(answer.content, status_code=answer.status_code, headers=headers)

    return app
