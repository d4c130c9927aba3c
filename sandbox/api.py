"""The one ``Sandbox`` interface both backends implement, and the records it returns.

A lab never branches on the backend: everything a notebook or a grader needs is here.
Deploys are revisions, as a Kubernetes Deployment's are: a new revision starts beside the
old one, must pass ``/readyz`` before the old one is retired, and a revision that never gets
ready is a failed rollout while the old one keeps serving.
"""

from __future__ import annotations

import abc
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .client import EvalReport, Readiness, ServiceClient
from .errors import InvalidReplicas, NoRevisionDeployed, PrometheusUnavailable, UnknownChoice
from .monitoring import Alert, PrometheusClient, Rules, Sample, Series
from .settings import Settings

MODELS = ("v1", "v2")
REVISION_STATES = ("progressing", "serving", "failed", "superseded")

#: Service settings a deploy may change besides model/index/image/replicas,
#: with the environment variable of the model API each one sets.
CONFIG_KEYS: dict[str, str | None] = {
    "top_k": "TOP_K",
    "provider_timeout_s": "PROVIDER_TIMEOUT_S",
    "data_dir": "DATA_DIR",
    "cpus": None,  # a resource limit of each replica, not an environment variable
}


@dataclass(frozen=True)
class DeploySpec:
    """What a revision runs: the pod template of the Docker tier."""

    model: str
    index: str
    image: str
    replicas: int = 1
    config: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DeploySpec:
        return cls(
            model=raw["model"],
            index=raw["index"],
            image=raw["image"],
            replicas=int(raw.get("replicas", 1)),
            config={str(k): str(v) for k, v in (raw.get("config") or {}).items()},
        )

    def env(self) -> dict[str, str]:
        """Environment variables of the model API for this spec."""
        env = {"MODEL_VERSION": self.model, "INDEX_NAME": self.index}
        for key, value in self.config.items():
            var = CONFIG_KEYS.get(key, key.upper())
            if var:
                env[var] = value
        return env


@dataclass
class Revision:
    """One entry of the rollout history."""

    number: int
    spec: DeploySpec
    state: str
    created_at: float
    change_cause: str = ""
    rollback_of: int | None = None
    ready_at: float | None = None
    finished_at: float | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["spec"] = asdict(self.spec)
        return d

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Revision:
        raw = dict(raw)
        raw["spec"] = DeploySpec.from_dict(raw["spec"])
        return cls(**raw)


@dataclass
class SandboxStatus:
    """A snapshot of the sandbox as the engine and the service report it."""

    sandbox_id: str
    backend: str
    up: bool
    endpoint: str | None = None
    serving_revision: int | None = None
    latest_revision: int | None = None
    rollout: str = "none"  # none | complete | progressing | failed
    ready: bool = False
    reason: str = ""
    spec: DeploySpec | None = None
    components: list[dict[str, Any]] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["spec"] = asdict(self.spec) if self.spec else None
        return d


class Sandbox(abc.ABC):
    """A trainee's sandbox: the toy model API, its gateway, its provider and their history.

    Use it as a context manager to tear it down on exit (grading does), or keep it across
    notebook cells (labs do)::

        from sandbox import connect
        sb = connect()
        sb.deploy(model="v1", index="2026-11-01")
    """

    backend: str = "abstract"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # --- identity ---------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.settings.sandbox_id

    @property
    @abc.abstractmethod
    def endpoint(self) -> str:
        """Base URL of the sandbox's stable front door on 127.0.0.1."""

    # --- lifecycle --------------------------------------------------------------------
    @abc.abstractmethod
    def up(self) -> Sandbox:
        """Create what is missing (idempotent; repairs an interrupted ``up``)."""

    @abc.abstractmethod
    def down(self) -> list[str]:
        """Remove everything of this sandbox (selected by label); returns what was removed."""

    @abc.abstractmethod
    def status(self) -> SandboxStatus: ...

    @abc.abstractmethod
    def preflight(self) -> None:
        """Raise the ``InfrastructureError`` that would stop this sandbox from working (engine
        or API server unreachable, image missing) before anything is created."""

    @abc.abstractmethod
    def foreign_objects(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every object in this sandbox's reach that the kit did not make, by kind and id
        (JSON-ready): what a trainee must never touch."""

    @abc.abstractmethod
    def deploy(
        self,
        model: str | None = None,
        index: str | None = None,
        image: str | None = None,
        replicas: int | None = None,
        *,
        change_cause: str = "",
        wait: bool = True,
        **config: Any,
    ) -> Revision:
        """Roll out a new revision; unspecified fields keep the current spec.

        Raises ``RolloutFailed`` if the revision is not ready by the progress deadline;
        the previous revision keeps serving.
        """

    def wait_for_rollout(self) -> Revision:
        """Finish a rollout started with ``deploy(wait=False)`` (``kubectl rollout status``).

        Returns the serving revision, or raises ``RolloutFailed``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support wait=False yet")

    def revision_endpoints(self, revision: int) -> list[str]:
        """Base URLs reaching each replica of one revision directly (canary checks)."""
        raise NotImplementedError(f"{type(self).__name__} cannot reach single revisions")

    @abc.abstractmethod
    def history(self) -> list[Revision]: ...

    @abc.abstractmethod
    def rollback(self, to_revision: int | None = None) -> Revision:
        """Return to the previous (or a named) revision, as ``kubectl rollout undo``."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Tear down and bring up again from scratch: a clean sandbox, no history."""

    @abc.abstractmethod
    def logs(self, revision: int | None = None, tail: int = 200, level: str | None = None,
             request_id: str | None = None) -> str:
        """Logs (JSON lines) of the serving (or a named) revision's replicas, of the last
        ``tail`` lines each, keeping only lines at ``level`` or above and/or of ``request_id``
        (``sandbox.logs.filter_logs``; with a request id the provider's lines are searched too)."""

    @abc.abstractmethod
    def indexes(self) -> list[dict[str, Any]]:
        """Index artifacts available to deploys (their manifests)."""

    def build_index(self, model: str, corpus: str, name: str | None = None) -> dict[str, Any]:
        """Build an index from a corpus snapshot with a model (a one-off job on the data
        volume, like a Kubernetes Job); returns its manifest."""
        self._validate_model(model)
        snapshots = self.snapshots()
        if corpus not in snapshots:
            raise UnknownChoice("corpus snapshot", corpus, snapshots)
        cmd = ["python", "-m", "modelapi", "build-index", "--model", model, "--corpus", corpus]
        return json.loads(self.run_job(cmd + (["--name", name] if name else []), "build-index"))

    @abc.abstractmethod
    def snapshots(self) -> list[str]:
        """Corpus snapshots available to index builds."""

    # --- primitives the fault catalog and the graders use (every backend) ---------------
    @abc.abstractmethod
    def state(self) -> dict[str, Any]:
        """The sandbox's live state document: ``revisions``, ``faults``, ``alerts``."""

    @abc.abstractmethod
    def save_state(self, state: dict[str, Any]) -> None:
        """Write the state document back (faults and alert rules; not for trainees)."""

    @abc.abstractmethod
    def run_job(self, cmd: list[str], what: str) -> str:
        """Run ``python -m modelapi ...`` once on the data volume (read-write); its stdout."""

    @abc.abstractmethod
    def provider_call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call the provider's own HTTP API (``/admin/mode``) from inside the sandbox."""

    @abc.abstractmethod
    def set_provider_running(self, running: bool) -> None:
        """Stop (outage) or start the provider."""

    @abc.abstractmethod
    def restart_serving(self) -> None:
        """Restart the serving revision's replicas in place (as after a node reboot)."""

    # --- the service, through the front door (same for every backend) --------------------
    @property
    def client(self) -> ServiceClient:
        return ServiceClient(self.endpoint)

    def search(self, text: str, k: int | None = None) -> dict[str, Any]:
        """Ask the serving revision which runbooks fit ``text``."""
        return self.client.search(text, k)

    def metrics(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        """The service's Prometheus samples, parsed."""
        return self.client.metrics()

    def version(self) -> dict[str, Any]:
        return self.client.version()

    def readiness(self) -> Readiness:
        return self.client.readiness()

    def evaluate(self, k: int = 5) -> EvalReport:
        """recall@k of the live service on the labelled eval set."""
        return self.client.evaluate(k)

    # --- monitoring: Prometheus and Alertmanager, over HTTP (same for every backend) -----
    @property
    def prometheus_url(self) -> str:
        """Base URL of the sandbox's Prometheus on 127.0.0.1 (each tier says where)."""
        raise PrometheusUnavailable("Prometheus", f"the {self.backend} tier runs no monitoring stack")

    @property
    def alertmanager_url(self) -> str:
        """Base URL of the sandbox's Alertmanager on 127.0.0.1 (each tier says where)."""
        raise PrometheusUnavailable("Alertmanager", f"the {self.backend} tier runs no monitoring stack")

    @property
    def prometheus(self) -> PrometheusClient:
        return PrometheusClient(self.prometheus_url, self.alertmanager_url)

    def query(self, promql: str, at: Any = None) -> list[Sample]:
        """PromQL instant query against the sandbox's Prometheus (``BadQuery`` on a typo)."""
        return self.prometheus.query(promql, at)

    def query_range(self, promql: str, start: Any, end: Any = None, step: float | None = None) -> list[Series]:
        """PromQL range query; ``start``/``end`` are epochs, datetimes or negative seconds from now."""
        return self.prometheus.query_range(promql, start, end, step)

    def alerts(self, name: str | None = None) -> list[Alert]:
        """Alerts firing now, as the sandbox's Alertmanager holds them."""
        return self.prometheus.alerts(name)

    @property
    def rules(self) -> Rules:
        """The sandbox's rule files: ``check``, ``test``, ``load``, ``unload``, ``loaded``."""
        return Rules(self)

    def _promtool(self, args: list[str], files: dict[str, str]) -> tuple[int, str]:
        """Run ``promtool ARGS`` with ``files`` in its working directory (tier hook of ``rules``)."""
        raise PrometheusUnavailable("promtool", f"the {self.backend} tier cannot run promtool")

    def _install_rule_file(self, name: str, text: str | None) -> None:
        """Install (None: remove) the trainee rule file ``name``; no reload (tier hook)."""
        raise PrometheusUnavailable("Prometheus", f"the {self.backend} tier cannot install rule files")

    def _rule_file(self, name: str) -> str | None:
        """Text of the installed trainee rule file ``name``, None if absent (tier hook)."""
        raise PrometheusUnavailable("Prometheus", f"the {self.backend} tier cannot read rule files")

    # --- helpers for backends -----------------------------------------------------------
    def _validate_replicas(self, replicas: int) -> int:
        high = self.settings.rollout.max_replicas
        if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= high:
            raise InvalidReplicas(replicas, 1, high)
        return replicas

    @staticmethod
    def _validate_model(model: str) -> str:
        if model not in MODELS:
            raise UnknownChoice("model", model, MODELS)
        return model

    def _resolve_index(self, index: str, model: str, available: list[str]) -> str:
        """``2026-11-01`` means the index of that snapshot built by ``model``."""
        if index in available:
            return index
        candidate = f"{index}-{model}"
        if candidate in available:
            return candidate
        raise UnknownChoice("index", index, sorted(available))

    def _current(self) -> Revision:
        serving = [r for r in self.history() if r.state == "serving"]
        if not serving:
            raise NoRevisionDeployed(self.id)
        return serving[-1]

    def __enter__(self) -> Sandbox:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} id={self.id!r} backend={self.backend!r}>"
