"""``RemoteSandbox``: the sandbox as a graded kernel sees it, through its control endpoint.

Inside a grading box ``connect()`` returns one of these (``LABKIT_CONTROL_SOCKET`` and
``LABKIT_CONTROL_TOKEN`` are set by the box). It offers the public surface a lab uses - deploy,
rollback, history, status, logs, indexes, jobs, search, evaluate, canary endpoints, PromQL,
alerts and rule files - each one
a request the endpoint authorises, performs on the real sandbox and audits. It has no engine
client, no fault records and no primitives: what the endpoint refuses (healing, listing faults,
tearing down) raises ``Refused`` with the reason. HTTP to the service goes through the
endpoint's proxy, so ``ServiceClient`` works unchanged on the URLs it hands out.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import httpx

from .. import evidence
from ..client import EvalReport, Readiness, ServiceClient
from ..monitoring import MonitoringSurface, PrometheusClient
from ..errors import InfrastructureError, NoRevisionDeployed
from ..records import Revision, SandboxStatus
from ..settings import Settings
from .wire import error_from_wire, revision_from_wire, status_from_wire

HOST = "http://labkit-control"
SOCKET_ENV, TOKEN_ENV = "LABKIT_CONTROL_SOCKET", "LABKIT_CONTROL_TOKEN"


def control_transport() -> tuple[httpx.HTTPTransport, dict[str, str]] | None:
    """The unix-socket transport and auth header of the box's endpoint, if this is a box."""
    socket = os.environ.get(SOCKET_ENV, "")
    if not socket:
        return None
    return _uds_transport(socket), {"Authorization": f"Bearer {os.environ.get(TOKEN_ENV, '')}"}


@functools.lru_cache(maxsize=4)
def _uds_transport(socket: str) -> httpx.HTTPTransport:
    """One (thread-safe, pooled) transport per socket: building one loads a TLS context, tens of
    milliseconds of CPU, and the box's clients ask for it on every Prometheus call."""
    return httpx.HTTPTransport(uds=socket)


class RemoteSandbox(MonitoringSurface):
    """A sandbox reached through its control endpoint (see the module doc)."""

    backend = "remote"
    settings: Settings

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        found = control_transport()
        if found is None:
            raise InfrastructureError(f"{SOCKET_ENV} is not set: this process is not in a grading box")
        transport, headers = found
        self._http = httpx.Client(transport=transport, base_url=HOST, headers=headers, timeout=None)

    @property
    def id(self) -> str:
        return self.settings.sandbox_id

    def _call(self, op: str, **args: Any) -> Any:
        try:
            answer = self._http.post(f"/v1/call/{op}", json=args)
        except httpx.HTTPError as e:
            raise InfrastructureError(f"the control endpoint did not answer {op}: {e!r}",
                                      fix="the grading run is over or the grader stopped") from e
        body = answer.json() if answer.content else {}
        if answer.status_code >= 400:
            raise error_from_wire(body if isinstance(body, dict) else {})
        return body.get("result")

    # --- the public surface a lab uses ----------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"{HOST}/v1/proxy/front/-"

    @property
    def client(self) -> ServiceClient:
        return ServiceClient(self.endpoint)

    def up(self) -> RemoteSandbox:
        self._call("up")
        return self

    def down(self) -> list[str]:
        return self._call("down")

    def reset(self) -> None:
        self._call("reset")

    def status(self) -> SandboxStatus:
        return status_from_wire(self._call("status"))

    def history(self) -> list[Revision]:
        return [revision_from_wire(r) for r in self._call("history")]

    def current(self) -> Revision:
        live = [r for r in self.history() if r.state == "serving"]
        if not live:
            raise NoRevisionDeployed(self.id)
        return live[-1]

    def deploy(self, model: str | None = None, index: str | None = None, image: str | None = None,
               replicas: int | None = None, *, change_cause: str = "", wait: bool = True,
               **config: Any) -> Revision:
        asked = {"model": model, "index": index, "image": image, "replicas": replicas}
        args = {k: v for k, v in asked.items() if v is not None} | {"change_cause": change_cause, "wait": wait}
        return revision_from_wire(self._call("deploy", **args, **config))

    def rollback(self, to_revision: int | None = None) -> Revision:
        return revision_from_wire(self._call("rollback", to_revision=to_revision))

    def wait_for_rollout(self) -> Revision:
        return revision_from_wire(self._call("wait_for_rollout"))

    def revision_endpoints(self, revision: int) -> list[str]:
        count = self._call("revision_endpoints", revision=revision)["replicas"]
        return [f"{HOST}/v1/proxy/r{revision}/{i}/-" for i in range(count)]

    def logs(self, revision: int | None = None, tail: int = 200) -> str:
        return self._call("logs", revision=revision, tail=tail)["text"]

    def indexes(self) -> list[dict[str, Any]]:
        return self._call("indexes")

    def snapshots(self) -> list[str]:
        return self._call("snapshots")

    def build_index(self, model: str, corpus: str, name: str | None = None) -> dict[str, Any]:
        return self._call("build_index", model=model, corpus=corpus, name=name)

    def run_job(self, cmd: list[str], what: str) -> str:
        return self._call("run_job", cmd=list(cmd), what=what)["stdout"]

    def inject(self, fault_id: str) -> dict[str, Any]:
        """A lab's own fault injection (its locked setup cell), performed by the endpoint."""
        return self._call("inject", fault=fault_id)

    def latency_budget_ms(self, slo_ms: float) -> float:
        # measured where the grader takes its verdict: this box's interpreter and its CPU quota
        # would read another speed
        return float(self._call("latency_budget", slo_ms=float(slo_ms))["ms"])

    def provider_pool(self, slots: int | None = None) -> dict[str, Any]:
        return self._call("provider_pool", slots=slots)

    def record_event(self, event: str, signal: str = "", note: str = "") -> dict[str, Any]:
        """Tell the kit's clock a game-day event (``detected``, ``mitigated``); stamped there."""
        return self._call("event", event=event, signal=signal, note=note)

    # --- monitoring: queries and alerts through the proxy, rule files as operations -------
    @property
    def prometheus_url(self) -> str:
        return f"{HOST}/v1/proxy/prometheus/-"

    @property
    def alertmanager_url(self) -> str:
        return f"{HOST}/v1/proxy/alertmanager/-"

    @property
    def prometheus(self) -> PrometheusClient:
        found = control_transport()
        transport, headers = found if found is not None else (None, {})
        return PrometheusClient(self.prometheus_url, self.alertmanager_url, transport=transport, headers=headers)

    def _promtool(self, args: list[str], files: dict[str, str]) -> tuple[int, str]:
        done = self._call("promtool", args=list(args), files=dict(files))
        return int(done["code"]), str(done["out"])

    def _install_rule_file(self, name: str, text: str | None) -> None:
        self._call("install_rule_file", name=name, text=text)

    def _rule_file(self, name: str) -> str | None:
        return self._call("rule_file", name=name)["text"]

    def _reload_prometheus(self) -> str:
        return str(self._call("reload_prometheus")["error"])

    def search(self, text: str, k: int | None = None) -> dict[str, Any]:
        return self.client.search(text, k)

    def agent(self, query: str, alert: str = "") -> dict[str, Any]:
        return self.client.agent(query, alert)

    def metrics(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        return self.client.metrics()

    def version(self) -> dict[str, Any]:
        return self.client.version()

    def readiness(self) -> Readiness:
        return self.client.readiness()

    def evaluate(self, k: int = 5) -> EvalReport:
        """Run by the endpoint against the front door, and kept there as an evaluation record."""
        return EvalReport(**self._call("evaluate", k=k))

    # --- evidence: the endpoint appends the records; the box reads them -------------------
    def evidence(self, at: Any = None) -> dict[str, Any]:
        return evidence.served_at(self, at)

    def evidence_records(self) -> dict[str, list[dict[str, Any]]]:
        return evidence.records(self)

    def verify_evidence(self) -> dict[str, Any]:
        return evidence.verify(self)

    def note(self, kind: str, **fields: Any) -> dict[str, Any]:
        return self._call("note", kind=kind, fields=fields)

    def access_review(self) -> dict[str, str]:
        """The access-review overlay of this grading run (the endpoint keeps what was planted)."""
        return self._call("access_review")["files"]

    def __enter__(self) -> RemoteSandbox:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        """The grader tears the sandbox down after it has read it; the box never does."""

    def __repr__(self) -> str:
        return f"<RemoteSandbox id={self.id!r} via {os.environ.get(SOCKET_ENV)}>"
