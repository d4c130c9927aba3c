"""Typed settings, read from ``LABKIT_*`` environment variables at the edge.

Everything below is a frozen dataclass with one docstring per field. ``Settings.from_env()``
is the only place that reads the environment; the rest of the kit takes a ``Settings``.
"""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import InvalidInput, UnknownChoice

BACKENDS = ("docker", "kube")
_ID_RE = re.compile(r"[^a-z0-9-]+")


def sanitize_id(raw: str) -> str:
    """Turn any user or sandbox name into a DNS-label-safe id (a-z, 0-9, '-', <= 40 chars)."""
    cleaned = _ID_RE.sub("-", raw.lower()).strip("-")[:40].strip("-")
    if not cleaned:
        raise InvalidInput(f"sandbox id {raw!r} has no usable characters; use a-z, 0-9 and '-'")
    return cleaned


def _default_sandbox_id() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "trainee"
    return sanitize_id(user or "trainee")


@dataclass(frozen=True)
class ImageSettings:
    """Which images the sandbox runs and how they are built."""

    repository: str = "labkit/modelapi"
    """Repository of the model API image (tags are ``<repository>:<tag>``)."""

    tag: str = "1.0.0"
    """Tag of the good image revision deployed by default."""

    defect_tag: str = "1.1.0-rc1"
    """Tag of a deliberately defective release candidate (crashes on start)."""

    base: str = "auto"
    """Base image: ``auto`` (pull ``python:3.11-slim`` if a registry answers, else build
    ``labkit/base:bookworm`` offline with mmdebstrap), or any image name."""

    registry: str = ""
    """Registry prefix for cohort clusters (``registry.example.edu/labkit``); empty = local."""

    box_repository: str = "labkit/box"
    """Repository of the grading box image (a submission's kernel, no network;
    ``LABKIT_BOX_REPOSITORY``: two checkouts of different versions on one engine keep apart)."""

    @property
    def box(self) -> str:
        return f"{self.box_repository}:{self.tag}"

    @property
    def default(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def defect(self) -> str:
        return f"{self.repository}:{self.defect_tag}"


@dataclass(frozen=True)
class RolloutSettings:
    """How deploys wait and how much history they keep."""

    progress_deadline_s: float = 45.0
    """A new revision that is not ready by then is a failed rollout (Kubernetes'
    ``progressDeadlineSeconds``)."""

    poll_interval_s: float = 0.1
    """How often readiness is polled while a rollout waits."""

    revision_history_limit: int = 10
    """How many old revisions ``history()`` keeps (Kubernetes' ``revisionHistoryLimit``)."""

    max_replicas: int = 4
    """Upper bound on replicas per revision in a sandbox."""


@dataclass(frozen=True)
class KubeSettings:
    """Where the Kubernetes backend works."""

    context: str = ""
    """kubeconfig context; empty = current context."""

    namespace: str = ""
    """Namespace of the sandbox; empty = ``labkit-<sandbox id>``."""

    kubeconfig: str = ""
    """Path of the kubeconfig file; empty = ``$KUBECONFIG`` or ``~/.kube/config``."""

    cluster_name: str = "labkit"
    """Name of the local kind cluster ``labkit cluster create`` makes."""

    service_port: int = 0
    """Local port for the port-forward to the Service; 0 = pick a free one."""


@dataclass(frozen=True)
class MonitoringSettings:
    """The Prometheus and Alertmanager every sandbox carries."""

    enabled: bool = True
    """Start the monitoring stack with the sandbox (``LABKIT_MONITORING=0`` leaves it out:
    ``sb.query`` and ``sb.rules`` then raise ``PrometheusUnavailable``)."""

    image: str = "labkit/monitoring:2.42.0-1"
    """Image with Prometheus, promtool and Alertmanager from Debian's packages
    (``LABKIT_MONITORING_IMAGE``; ``labkit images build`` makes it offline)."""

    scrape_interval_s: float = 1.0
    """How often Prometheus scrapes every target (and evaluates rules): the sandbox's clock
    runs fast, so that an alert's ``for:`` of seconds stands for minutes in production."""

    retention: str = "2h"
    """How long Prometheus keeps samples (``--storage.tsdb.retention.time``)."""

    memory: str = "256m"
    """Memory limit of each of the two containers."""

    scraped_before_serving: bool = True
    """A rollout promotes a revision only once Prometheus has scraped each of its replicas
    (bounded, never failing the rollout), so a revision is monitored from its first request.
    Prometheus applies target changes in 5 s ticks, which adds up to ~10 s to a deploy;
    ``LABKIT_SCRAPED_BEFORE_SERVING=0`` trades that guarantee for speed."""


@dataclass(frozen=True)
class Settings:
    """All settings of one sandbox."""

    backend: str = "docker"
    """``docker`` (embedded tier, default) or ``kube`` (kind or a shared cluster)."""

    sandbox_id: str = field(default_factory=_default_sandbox_id)
    """Names everything the sandbox creates; two ids never clash (``LABKIT_SANDBOX_ID``)."""

    port: int = 0
    """Host port of the sandbox endpoint on 127.0.0.1; 0 = let Docker pick a free one."""

    docker_host: str = ""
    """Docker daemon address; empty = the SDK's default (``DOCKER_HOST`` or the socket)."""

    home: Path = field(default_factory=lambda: Path.home() / ".labkit")
    """Where the kit keeps caches (wheels, build contexts) on the host."""

    grader: str = ""
    """``host:pid`` of the grading run that owns this sandbox (``LABKIT_GRADER``); its objects
    carry it as a label, so a later run reaps what a grader that died left behind."""

    images: ImageSettings = field(default_factory=ImageSettings)
    rollout: RolloutSettings = field(default_factory=RolloutSettings)
    kube: KubeSettings = field(default_factory=KubeSettings)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise UnknownChoice("backend", self.backend, BACKENDS)
        object.__setattr__(self, "sandbox_id", sanitize_id(self.sandbox_id))
        if not 0 <= self.port <= 65535:
            raise InvalidInput(f"LABKIT_PORT must be 0..65535, got {self.port}")

    def with_(self, **changes: object) -> Settings:
        """A copy with some top-level fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Read ``LABKIT_*`` variables; keyword arguments win over the environment."""
        env = dict(os.environ if env is None else env)
        images = ImageSettings(
            repository=env.get("LABKIT_IMAGE_REPOSITORY", ImageSettings.repository),
            tag=env.get("LABKIT_IMAGE_TAG", ImageSettings.tag),
            base=env.get("LABKIT_BASE_IMAGE", ImageSettings.base),
            registry=env.get("LABKIT_REGISTRY", ""),
            box_repository=env.get("LABKIT_BOX_REPOSITORY", ImageSettings.box_repository),
        )
        rollout = RolloutSettings(
            progress_deadline_s=_float(env, "LABKIT_PROGRESS_DEADLINE_S", 45.0),
        )
        kube = KubeSettings(
            context=env.get("LABKIT_KUBE_CONTEXT", ""),
            namespace=env.get("LABKIT_KUBE_NAMESPACE", ""),
            kubeconfig=env.get("KUBECONFIG", ""),
        )
        monitoring = MonitoringSettings(
            enabled=env.get("LABKIT_MONITORING", "1").strip().lower() not in ("0", "false", "no", "off"),
            image=env.get("LABKIT_MONITORING_IMAGE", MonitoringSettings.image),
            scrape_interval_s=_float(env, "LABKIT_SCRAPE_INTERVAL_S", MonitoringSettings.scrape_interval_s),
            scraped_before_serving=env.get("LABKIT_SCRAPED_BEFORE_SERVING", "1").strip().lower()
            not in ("0", "false", "no", "off"),
        )
        if not 0.2 <= monitoring.scrape_interval_s <= 60:
            raise InvalidInput(f"LABKIT_SCRAPE_INTERVAL_S must be 0.2..60, got {monitoring.scrape_interval_s:g}")
        values: dict[str, object] = {
            "backend": env.get("LABKIT_BACKEND", "docker"),
            "port": int(_float(env, "LABKIT_PORT", 0)),
            "docker_host": env.get("DOCKER_HOST", ""),
            "images": images,
            "rollout": rollout,
            "kube": kube,
            "monitoring": monitoring,
        }
        if env.get("LABKIT_GRADER"):
            values["grader"] = env["LABKIT_GRADER"]
        if env.get("LABKIT_SANDBOX_ID"):
            values["sandbox_id"] = env["LABKIT_SANDBOX_ID"]
        if env.get("LABKIT_HOME"):
            values["home"] = Path(env["LABKIT_HOME"])
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _float(env: dict[str, str], key: str, default: float) -> float:
    raw = env.get(key, "")
    if raw == "":
        return default
    try:
        return float(raw)
    except ValueError as e:
        raise InvalidInput(f"{key} must be a number, got {raw!r}") from e
