"""The records the ``Sandbox`` interface returns (re-exported by ``sandbox.api``): plain
dataclasses, JSON only at the edges (``to_dict``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

MODELS = ("v1", "v2")
RevisionState = Literal["progressing", "serving", "failed", "superseded"]
RolloutState = Literal["none", "complete", "progressing", "failed"]
ComponentState = Literal["running", "pending", "stopped", "failed"]
"""``running``: its process runs; ``pending``: created or starting; ``stopped``: stopped on
purpose (a retired revision, a provider outage); ``failed``: it died on its own."""

#: Service settings a deploy may change besides model/index/image/replicas,
#: with the environment variable of the model API each one sets.
CONFIG_KEYS: dict[str, str | None] = {
    "top_k": "TOP_K",
    "provider_timeout_s": "PROVIDER_TIMEOUT_S",
    "data_dir": "DATA_DIR",
    "agent_sources": "AGENT_SOURCES",  # the ops agent's policy check (modelapi.agent)
    "agent_allow": "AGENT_ALLOW",
    "agent_deny": "AGENT_DENY",
    "query_guard": "QUERY_GUARD",
    "cpus": None,  # a resource limit of each replica, not an environment variable
}


@dataclass(frozen=True)
class DeploySpec:
    """What a revision runs: its pod template."""

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
    state: RevisionState
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


@dataclass(frozen=True)
class Component:
    """One running unit of the sandbox (a container, a pod) as its engine reports it."""

    name: str
    component: str
    """``modelapi``, ``gateway``, ``provider``, ``job`` ..."""
    state: ComponentState
    revision: int | None = None
    image: str = ""
    detail: str = ""
    """The engine's own words (``exited (3)``, ``CrashLoopBackOff``, ``Running (not ready)``)."""
    cpus: float | None = None
    """The CPU limit the engine enforces on it right now (None: unlimited)."""


@dataclass
class SandboxStatus:
    """A snapshot of the sandbox as the engine and the service report it."""

    sandbox_id: str
    backend: str
    up: bool
    endpoint: str | None = None
    serving_revision: int | None = None
    latest_revision: int | None = None
    rollout: RolloutState = "none"
    ready: bool = False
    reason: str = ""
    spec: DeploySpec | None = None
    components: list[Component] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)

    def replicas(self, revision: int | None = None, state: ComponentState = "running") -> list[Component]:
        """The model API replicas of ``revision`` (default: the serving one) in ``state``."""
        number = self.serving_revision if revision is None else revision
        return [c for c in self.components
                if c.component == "modelapi" and c.revision == number and c.state == state]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["spec"] = asdict(self.spec) if self.spec else None
        return d
