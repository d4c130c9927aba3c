"""The one ``Sandbox`` interface both tiers implement, and the records it returns.

A lab never branches on the tier: everything a notebook or a grader needs is here. Deploys are
revisions, as a Kubernetes Deployment's are: a new revision starts beside the old one, must pass
``/readyz`` before it takes traffic, and a revision that never gets ready is a failed rollout
while the old one keeps serving. What a deploy means (``sandbox.spec``), the rollout states and
the undo rule are written once, here and in ``sandbox.spec``; a tier only reads and changes its
engine (``_revision_facts``, ``_roll_out``, ``_components``...).
"""

from __future__ import annotations

import abc
import json
import secrets
import time
from typing import Any

from . import access_review, evidence
from .calibrate import budget_ms
from .client import EvalReport, Readiness, ServiceClient
from .errors import NoRevisionDeployed, PrometheusUnavailable, UnknownChoice
from .monitoring import MonitoringSurface
from .records import (
    CONFIG_KEYS,
    MODELS,
    Component,
    ComponentState,
    DeploySpec,
    Revision,
    RevisionState,
    RolloutState,
    SandboxStatus,
)
from .settings import Settings
from .spec import (
    RevisionFacts,
    SpecRequest,
    resolve_spec,
    revisions,
    rollout_state,
    serving_revision,
    undo_target,
    validate_model,
    validate_pool_slots,
)

__all__ = ["Sandbox", "CONFIG_KEYS", "MODELS", "Component", "ComponentState", "DeploySpec", "Revision",
           "RevisionState", "RolloutState", "SandboxStatus"]

class Sandbox(MonitoringSurface, abc.ABC):
    """A trainee's sandbox: the toy model API, its gateway, its provider and their history.

    Use it as a context manager to tear it down on exit (grading does), or keep it across
    notebook cells (labs do)::

        from sandbox import connect
        sb = connect()
        sb.deploy(model="v1", index="2026-11-01")
    """

    backend: str = "abstract"

    settings: Settings

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def id(self) -> str:
        return self.settings.sandbox_id

    @property
    def actor(self) -> str:
        """Who makes this process's calls, as the records name them (``sandbox.evidence``): the
        hub or login user; a control endpoint sets the grading box it serves."""
        return self.__dict__.get("_actor") or evidence.local_actor()

    @actor.setter
    def actor(self, name: str) -> None:
        self.__dict__["_actor"] = name

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

    def reset(self) -> None:
        """Tear down and bring up again from scratch: a clean sandbox, no history."""
        self.down()
        self.up()

    @abc.abstractmethod
    def preflight(self) -> None:
        """Raise the ``InfrastructureError`` that would stop this sandbox from working (engine
        or API server unreachable, image missing) before anything is created."""

    def held(self) -> str:
        """"" if the sandbox's own machinery held since it was brought up; else what broke
        (the engine restarted under it, its front door was recreated). A tier that cannot tell
        says "" (the grader then relies on the errors its checks raise)."""
        return ""

    def preflight_image(self, image: str) -> None:
        """Raise ``ImageMissing`` unless the engine can run ``image`` (the grading box, say)."""
        self._require_image(image)

    @abc.abstractmethod
    def foreign_objects(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every object in this sandbox's reach that the kit did not make, by kind and id
        (JSON-ready): what a trainee must never touch."""

    def __enter__(self) -> Sandbox:
        try:
            return self.up()
        except BaseException:  # a half-made sandbox is torn down, not left behind
            self.down()
            raise

    def __exit__(self, *exc: object) -> None:
        self.down()

    # --- rollouts (the rules are sandbox.spec's; the tier only acts) --------------------
    def deploy(self, model: str | None = None, index: str | None = None, image: str | None = None,
               replicas: int | None = None, *, change_cause: str = "", wait: bool = True,
               **config: Any) -> Revision:
        """Roll out a new revision; unspecified fields keep the serving revision's.

        With ``wait=False`` the revision starts as a canary that takes no user traffic until
        ``wait_for_rollout()`` promotes it; ``revision_endpoints(n)`` reaches its replicas.
        Raises ``RolloutFailed`` if it is not ready by the progress deadline (the previous
        revision keeps serving) and ``InvalidInput`` before anything changes on bad input.
        """
        live = serving_revision(self.history())
        request = SpecRequest(model, index, image, replicas, tuple(config.items()))
        spec = resolve_spec(request, live.spec if live else None, indexes=self._index_names(),
                            snapshots=self.snapshots(), default_image=self.settings.images.default,
                            max_replicas=self.settings.rollout.max_replicas,
                            image_repository=self.settings.images.repository)
        self._require_image(spec.image)
        cause = change_cause or f"deploy model={spec.model} index={spec.index} image={spec.image}"
        return self._released(self._roll_out(spec, cause, None, wait))

    def rollback(self, to_revision: int | None = None) -> Revision:
        """Return to the previous (or a named) revision, as ``kubectl rollout undo``: a new
        revision running the target's spec, with ``rollback_of`` naming the target."""
        target = undo_target(self.history(), to_revision)
        self._require_image(target.spec.image)
        return self._released(self._roll_out(target.spec, f"rollback to revision {target.number}", target.number, True))

    def _released(self, revision: Revision) -> Revision:
        """Leave a release record for what took traffic (``sandbox.evidence.sync_releases``)."""
        if revision.state == "serving":
            evidence.sync_releases(self)
        return revision

    @abc.abstractmethod
    def wait_for_rollout(self) -> Revision:
        """Finish a rollout started with ``deploy(wait=False)`` (``kubectl rollout status``):
        promote the canary once ready. Returns the serving revision, or raises ``RolloutFailed``."""

    @abc.abstractmethod
    def revision_endpoints(self, revision: int) -> list[str]:
        """Base URLs reaching each replica of one revision directly (canary checks)."""

    def history(self) -> list[Revision]:
        """The rollout history, oldest first, read off the engine."""
        return revisions(self._revision_facts(), time.time(), self.settings.rollout.progress_deadline_s)

    def current(self) -> Revision:
        """The serving revision, or ``NoRevisionDeployed``."""
        live = serving_revision(self.history())
        if live is None:
            raise NoRevisionDeployed(self.id)
        return live

    # --- observation --------------------------------------------------------------------
    def status(self) -> SandboxStatus:
        """Serving revision, rollout state, readiness and components, as the engine says."""
        st = SandboxStatus(self.id, self.backend, up=self._is_up())
        st.components = sorted(self._components(), key=lambda c: c.name)
        if not st.up:
            st.reason = "sandbox is not up"
            return st
        st.endpoint = self.endpoint
        revs = self.history()
        st.faults = sorted(self._fault_records())
        st.rollout = rollout_state(revs)
        st.latest_revision = revs[-1].number if revs else None
        live = serving_revision(revs)
        if live is not None:
            st.serving_revision, st.spec = live.number, live.spec
        if not revs:  # nothing was ever deployed: no replica to ask (the front door would wait
            st.reason = "no-revision: nothing is deployed yet"  # its whole connect timeout to say so)
            return st
        ready = self.readiness()
        st.ready = ready.ready
        st.reason = "" if ready.ready else f"{ready.reason}: {ready.detail}".strip(": ")
        if st.rollout == "failed":
            st.reason = (st.reason + "; " if st.reason else "") + f"last rollout failed: {revs[-1].reason}"
        return st

    @abc.abstractmethod
    def logs(self, revision: int | None = None, tail: int = 200, level: str | None = None,
             request_id: str | None = None) -> str:
        """Logs (JSON lines) of the serving (or a named) revision's replicas, of the last
        ``tail`` lines each, keeping only lines at ``level`` or above and/or of ``request_id``
        (``sandbox.logs.filter_logs``; with a request id the provider's lines are searched too)."""

    @abc.abstractmethod
    def indexes(self) -> list[dict[str, Any]]:
        """Index artifacts available to deploys (their manifests)."""

    @abc.abstractmethod
    def snapshots(self) -> list[str]:
        """Corpus snapshots available to index builds."""

    def build_index(self, model: str, corpus: str, name: str | None = None) -> dict[str, Any]:
        """Build an index from a corpus snapshot with a model (a one-off job on the data
        volume, like a Kubernetes Job); returns its manifest."""
        validate_model(model)
        snapshots = self.snapshots()
        if corpus not in snapshots:
            raise UnknownChoice("corpus snapshot", corpus, snapshots)
        cmd = ["python", "-m", "modelapi", "build-index", "--model", model, "--corpus", corpus]
        return json.loads(self.run_job(cmd + (["--name", name] if name else []), "build-index"))

    # --- the service, through the front door (same for every tier) --------------------
    @property
    def client(self) -> ServiceClient:
        return ServiceClient(self.endpoint)

    def search(self, text: str, k: int | None = None) -> dict[str, Any]:
        """Ask the serving revision which runbooks fit ``text``."""
        return self.client.search(text, k)

    def agent(self, query: str, alert: str = "") -> dict[str, Any]:
        """The ops agent's answer to ``query`` under the serving policy (``modelapi.agent``)."""
        return self.client.agent(query, alert)

    def metrics(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        """The service's Prometheus samples, parsed."""
        return self.client.metrics()

    def version(self) -> dict[str, Any]:
        return self.client.version()

    def readiness(self) -> Readiness:
        return self.client.readiness()

    def evaluate(self, k: int = 5) -> EvalReport:
        """recall@k of the live service on the labelled eval set (kept as an evaluation record)."""
        report = self.client.evaluate(k)
        evidence.record_evaluation(self, report, k)
        return report

    # --- evidence: release, approval, evaluation and note records (sandbox.evidence) -----
    def evidence(self, at: Any = None) -> dict[str, Any]:
        """What served at ``at`` (epoch seconds, ISO-8601 or a datetime; default now): revision,
        model, index, corpus snapshot and sha256, the approval it rested on (who, when), its
        evaluations - replayed from the records."""
        evidence.sync_releases(self)
        return evidence.served_at(self, at)

    def evidence_records(self) -> dict[str, list[dict[str, Any]]]:
        """Every record, by log: approvals, releases, evaluations, notes."""
        evidence.sync_releases(self)
        return evidence.records(self)

    def verify_evidence(self) -> dict[str, Any]:
        """Does every record chain hold? ``ok``, and per log the first broken link."""
        return evidence.verify(self)

    def note(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Append a note (``incident``, ``reconstruction``...) to the records, stamped with who
        made the call and when (the kit's clock); the fields are the caller's."""
        return evidence.record_note(self, kind, fields)

    def latency_budget_ms(self, slo_ms: float) -> float:
        """``slo_ms`` as the grader judges a p95 on this machine now (``sandbox.calibrate``): the
        stated budget plus what a healthy p95 grows by on a slower or busier machine. Through a
        control endpoint it is measured on the endpoint's side, where the verdict is taken."""
        return budget_ms(slo_ms)

    def provider_pool(self, slots: int | None = None) -> dict[str, Any]:
        """The provider's accelerator pool (``modelapi.pool``): ``slots`` (0: none), ``service_ms``,
        ``busy``, ``queued``; with ``slots`` (1 to ``spec.POOL_SLOT_QUOTA``), resized first. The
        service time is the hardware's, no caller's to change."""
        if slots is None:
            return self.provider_call("GET", "/admin/pool")
        return self.provider_call("POST", "/admin/pool", {"slots": validate_pool_slots(slots)})

    def record_event(self, event: str, signal: str = "", note: str = "") -> dict[str, Any]:
        """Tell the kit's clock a triage or game-day event (``hypothesis``, ``detected``,
        ``resolved``...). In a grading box the control endpoint stamps it into the audit log the
        grader reads (``graders.process``); a sandbox driven directly has no such clock, so
        nothing is kept and ``{}`` comes back."""
        return {}

    def access_review(self) -> dict[str, str]:
        """The cohort overlay with one over-broad grant planted (``sandbox.access_review``): path ->
        YAML. In a grading box the control endpoint renders it from a seed it keeps, and only the
        grader learns what was planted; here it is a practice overlay from a random seed."""
        review = access_review.render(secrets.randbits(64))
        self.__dict__["_practice_review"] = review  # for the kernel's own self-check, never a grade
        return review.files

    def _record(self, cmd: list[str]) -> str:
        """Run a ``record-*`` job of the kit's own (a tier may run it more cheaply)."""
        return self.run_job(cmd, cmd[3])

    # --- monitoring: Prometheus and Alertmanager, over HTTP (same for every backend) -----
    @property
    def prometheus_url(self) -> str:
        """Base URL of the sandbox's Prometheus on 127.0.0.1 (each tier says where)."""
        raise PrometheusUnavailable("Prometheus", f"the {self.backend} tier runs no monitoring stack")

    @property
    def alertmanager_url(self) -> str:
        """Base URL of the sandbox's Alertmanager on 127.0.0.1 (each tier says where)."""
        raise PrometheusUnavailable("Alertmanager", f"the {self.backend} tier runs no monitoring stack")

    def _promtool(self, args: list[str], files: dict[str, str]) -> tuple[int, str]:
        """Run ``promtool ARGS`` with ``files`` in its working directory (tier hook of ``rules``)."""
        raise PrometheusUnavailable("promtool", f"the {self.backend} tier cannot run promtool")

    def _install_rule_file(self, name: str, text: str | None) -> None:
        """Install (None: remove) the trainee rule file ``name``; no reload (tier hook)."""
        raise PrometheusUnavailable("Prometheus", f"the {self.backend} tier cannot install rule files")

    def _rule_file(self, name: str) -> str | None:
        """Text of the installed trainee rule file ``name``, None if absent (tier hook)."""
        raise PrometheusUnavailable("Prometheus", f"the {self.backend} tier cannot read rule files")

    # --- primitives of the kit's jobs and fault catalog (every tier) --------------------
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

    @abc.abstractmethod
    def throttle_serving(self, cpus: float | None) -> None:
        """Change the CPU limit of the serving replicas in place, without a new revision (a
        noisy neighbour, an in-place resize); ``None`` restores what their spec says."""

    @abc.abstractmethod
    def _fault_records(self) -> dict[str, dict[str, Any]]:
        """Active faults by id (the only state with no engine object of its own)."""

    @abc.abstractmethod
    def _save_fault(self, fault_id: str, record: dict[str, Any] | None) -> None:
        """Record (or, with None, forget) one active fault."""

    # --- what a tier implements ----------------------------------------------------------
    @abc.abstractmethod
    def _is_up(self) -> bool: ...

    @abc.abstractmethod
    def _revision_facts(self) -> list[RevisionFacts]:
        """One ``RevisionFacts`` per revision the engine still holds."""

    @abc.abstractmethod
    def _components(self) -> list[Component]: ...

    @abc.abstractmethod
    def _index_names(self) -> list[str]:
        """Names of the index artifacts a deploy may use."""

    @abc.abstractmethod
    def _require_image(self, image: str) -> None:
        """Raise ``ImageMissing`` unless the engine can run ``image``."""

    @abc.abstractmethod
    def _roll_out(self, spec: DeploySpec, cause: str, rollback_of: int | None, wait: bool) -> Revision:
        """Start the next revision running ``spec``; with ``wait`` promote it once ready."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} id={self.id!r} backend={self.backend!r}>"
