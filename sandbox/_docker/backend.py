"""The Docker tier: one sandbox = two networks, a data volume, a gateway, a provider and the
model API's revisions, all labelled with the sandbox id.

Layout (``<sid>`` is the sandbox id)::

    127.0.0.1:PORT -> labkit-<sid>-gateway  (TCP proxy, network labkit-<sid>-serving)
                          |  resolves alias "serving" per connection
                          v
    labkit-<sid>-modelapi-r<N>-<i>  (joined to the serving network only once ready: promoted)
         | network labkit-<sid>                 | volume labkit-<sid>-data at /data (ro)
         v                                      v
    labkit-<sid>-provider (alias "provider")    corpora, indexes, state/faults.json

The rollout history is read off the engine (``sandbox._docker.revisions``): container labels,
the engine's timestamps and exit codes, membership of the serving network. The tier decides
nothing about states; ``sandbox.spec`` does, for both tiers.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from docker.errors import DockerException
from docker.models.containers import Container

from .. import labels
from ..api import Sandbox
from ..client import ServiceClient
from ..errors import InfrastructureError, RolloutFailed, SandboxNotUp, UnknownChoice
from ..records import Component, DeploySpec, Revision
from ..logs import filter_logs
from ..settings import Settings
from ..spec import RevisionFacts, parse_cpus, retired_beyond_limit, revisions, serving_revision
from ..waiting import until
from . import engine
from . import revisions as revs
from .data import PROVIDER_PORT, DockerData
from .monitoring import MonitoredSandbox

GATEWAY_PORT = 8000
API_PORT = 8080
HELD_SLACK_S = 60.0  # up() makes the volume, then the gateway: seconds apart even when slow


class DockerSandbox(MonitoredSandbox, DockerData, Sandbox):
    """``Sandbox`` on the local Docker engine."""

    backend = "docker"

    def __init__(self, settings: Settings, client: Any = None) -> None:
        super().__init__(settings)
        self._client = client
        prefix = f"labkit-{self.id}"
        self.names = {
            "network": prefix,
            "serving_network": f"{prefix}-serving",
            "volume": f"{prefix}-data",
            "gateway": f"{prefix}-gateway",
            "provider": f"{prefix}-provider",
        }

    # --- engine -----------------------------------------------------------------------
    @property
    def docker(self) -> Any:
        if self._client is None:
            self._client = engine.connect_engine(self.settings.docker_host)
        return self._client

    def _labels(self, component: str, **extra: str) -> dict[str, str]:
        lease = {labels.GRADER: self.settings.grader} if self.settings.grader else {}
        return labels.for_sandbox(self.id, component, **lease, **extra)

    def _gateway(self, required: bool = True) -> Container | None:
        container = engine.get_container(self.docker, self.names["gateway"])
        ok = container is not None and labels.is_ours(container.labels, self.id)
        if ok and container.status == "running":
            return container
        if required:
            raise SandboxNotUp(self.id)
        return None

    def _is_up(self) -> bool:
        return self._gateway(required=False) is not None

    @property
    def endpoint(self) -> str:
        port = engine.published_port(self._gateway(), GATEWAY_PORT)
        if port is None:
            raise SandboxNotUp(self.id)
        return f"http://127.0.0.1:{port}"

    def containers(self, component: str | None = None) -> list[Container]:
        """The sandbox's containers (labelled ones only), optionally of one component."""
        found = self.docker.containers.list(all=True, filters=labels.docker_filters(self.id, component),
                                            ignore_removed=True)
        return [c for c in found if labels.is_ours(c.labels, self.id)]

    # --- lifecycle --------------------------------------------------------------------
    def preflight(self) -> None:
        engine.ensure_image(self.docker, self.settings.images.default)

    def foreign_objects(self) -> dict[str, dict[str, dict[str, Any]]]:
        return engine.foreign_inventory(self.docker)

    def up(self) -> DockerSandbox:
        image = self.settings.images.default
        engine.ensure_image(self.docker, image)
        with ThreadPoolExecutor(max_workers=3) as pool:
            jobs = [pool.submit(engine.ensure_network, self.docker, self.names[key], self._labels("network"))
                    for key in ("network", "serving_network")]
            jobs.append(pool.submit(engine.ensure_volume, self.docker, self.names["volume"], self._labels("data")))
            for job in jobs:
                job.result()
        # Docker populates a fresh volume from the image at the first mount that asks for it: the
        # gateway's. The provider mounts with nocopy, so it starts alongside (it reads the corpus
        # titles again when a candidate is unknown); revisions come after, onto a full volume.
        with ThreadPoolExecutor(max_workers=3) as pool:
            started = [pool.submit(self._ensure_gateway, image), pool.submit(self._ensure_provider, image)]
            started.append(pool.submit(self.monitoring.ensure))
            for job in started:
                job.result()
        self._restart_serving()
        return self

    def _ensure_running(self, name: str, start: Any) -> Container:
        container = engine.get_container(self.docker, name)
        if container is not None and not labels.is_ours(container.labels, self.id):
            raise InfrastructureError(
                f"a container named {name} exists but was not made by this sandbox",
                fix="choose another LABKIT_SANDBOX_ID; the kit never touches foreign objects",
            )
        if container is not None and container.status == "running":
            return container
        if container is not None:  # left over from an interrupted up(): replace it
            container.remove(force=True)
        return start()

    def _ensure_gateway(self, image: str) -> Container:
        return self._ensure_running(self.names["gateway"], lambda: engine.run_container(
            self.docker, image=image, name=self.names["gateway"], labels_=self._labels("gateway"),
            network=self.names["serving_network"], host_port=self.settings.port or None,
            container_port=GATEWAY_PORT, command=["python", "-m", "modelapi", "gateway"],
            environment={"GATEWAY_PORT": str(GATEWAY_PORT), "UPSTREAM_HOST": revs.SERVING_ALIAS},
            volumes={self.names["volume"]: {"bind": "/data", "mode": "rw"}}, mem_limit="256m"))

    def _ensure_provider(self, image: str) -> Container:
        return self._ensure_running(self.names["provider"], lambda: engine.run_container(
            self.docker, image=image, name=self.names["provider"], labels_=self._labels("provider"),
            network=self.names["network"], aliases=["provider"], container_port=PROVIDER_PORT,
            command=["python", "-m", "modelapi", "provider"], environment={"PORT": str(PROVIDER_PORT)},
            volumes={self.names["volume"]: {"bind": "/data", "mode": "ro,nocopy"}}, mem_limit="256m"))

    def _restart_serving(self) -> None:
        """After an engine restart, start the serving revision's stopped replicas again."""
        live = serving_revision(self.history())
        if live is None:
            return
        for c in self._replicas().get(live.number, []):
            if c.status != "running":
                c.start()

    def down(self) -> list[str]:
        """Everything of the sandbox but a grading box that grades it (the grader removes that;
        a ``reset()`` from inside the box must not remove the box)."""
        return engine.remove_labelled(self.docker, self.id, keep=(labels.GRADING_BOX,))

    def held(self) -> str:
        """The front door must be the one ``up()`` made with the data volume and still run: an
        engine restart stops it, and an ``up()`` after one makes another, later."""
        gateway = engine.get_container(self.docker, self.names["gateway"])
        if gateway is None or gateway.status != "running":
            return f"the gateway of {self.id} is not running (the engine restarted, or it was killed)"
        try:
            volume = self.docker.volumes.get(self.names["volume"])
        except DockerException as e:
            return f"the data volume of {self.id} is gone ({e})"
        made = revs.parse_time(volume.attrs.get("CreatedAt")) or 0.0
        created = revs.parse_time(gateway.attrs.get("Created")) or 0.0
        restarts = int(gateway.attrs.get("RestartCount") or 0)
        if restarts or created - made > HELD_SLACK_S:
            return (f"the gateway of {self.id} was recreated {created - made:.0f} s after its data volume"
                    f" ({restarts} restarts): the engine restarted during the run")
        return ""

    # --- history, read off the engine -----------------------------------------------------
    def _replicas(self) -> dict[int, list[Container]]:
        return revs.replicas_by_revision(self.containers("modelapi"), self.id)

    def _revision_facts(self) -> list[RevisionFacts]:
        deadline = self.settings.rollout.progress_deadline_s
        replicas = self._replicas()
        facts = [revs.facts(n, cs, self.names["serving_network"], deadline) for n, cs in replicas.items()]
        if facts and revs.awaiting(facts[-1], deadline):  # a canary past its deadline: is it ready?
            last = facts[-1]
            ready = all(self._replica_ready(last.number, c, {}) for c in replicas[last.number])
            facts[-1] = dataclasses.replace(last, ready=ready)
        return facts

    def _index_names(self) -> list[str]:
        return self._names("/data/indexes")

    def _require_image(self, image: str) -> None:
        engine.ensure_image(self.docker, image)

    # --- rollouts -------------------------------------------------------------------------
    def _roll_out(self, spec: DeploySpec, cause: str, rollback_of: int | None, wait: bool) -> Revision:
        self._gateway()  # the sandbox must be up
        history = self.history()
        self._retire_unpromoted(history)
        number = max((r.number for r in history), default=0) + 1
        replicas = self._start_replicas(spec, number, cause, rollback_of)
        return self._finish(number, replicas) if wait else self._revision(number)

    def _revision(self, number: int) -> Revision:
        return next(r for r in self.history() if r.number == number)

    def wait_for_rollout(self) -> Revision:
        history = self.history()
        latest = history[-1] if history else None
        if latest is not None and latest.state == "progressing":
            return self._finish(latest.number, self._replicas().get(latest.number, []))
        if latest is not None and latest.state == "failed":
            live = serving_revision(history)
            raise RolloutFailed(latest.number, latest.reason, live.number if live else None)
        return self.current()

    def _finish(self, number: int, replicas: list[Container]) -> Revision:
        """Wait for readiness by the progress deadline, then promote the revision and retire
        the one that served. A revision that never gets ready is stopped (kept as history)."""
        try:
            self._wait_ready(number, replicas)
        except BaseException:
            revs.stop(replicas)  # never leave a half rollout running
            raise
        old = serving_revision(self.history())
        self.monitoring.wait_scraped(replicas, max(0.0, min(20.0, self._deadline_of(replicas) - time.time())))
        revs.promote(self.docker, self.names["serving_network"], replicas, int(time.time() * 1000))
        if old is not None:
            revs.stop(self._replicas().get(old.number, []))
        self._prune()
        return self._revision(number)

    def _start_replicas(self, spec: DeploySpec, number: int, cause: str, rollback_of: int | None) -> list[Container]:
        env = spec.env() | {"PORT": str(API_PORT), "PROVIDER_URL": f"http://provider:{PROVIDER_PORT}",
                            "DATA_DIR": spec.env().get("DATA_DIR", "/data")}
        limits = revs.cpu_limit(parse_cpus(spec.config["cpus"])) if spec.config.get("cpus") else {}
        started: list[Container] = []
        try:
            for i in range(spec.replicas):
                started.append(engine.run_container(
                    self.docker, image=spec.image, name=f"labkit-{self.id}-modelapi-r{number}-{i}",
                    labels_=self._labels("modelapi", **revs.revision_labels(number, spec, cause, rollback_of)),
                    network=self.names["network"], aliases=[f"r{number}"], container_port=API_PORT,
                    command=["python", "-m", "modelapi", "serve"], environment=env,
                    volumes={self.names["volume"]: {"bind": "/data", "mode": "ro"}}, **limits))
        except BaseException:
            revs.remove(started)  # a revision that could not start all its replicas never existed
            raise
        self.monitoring.refresh_targets()
        return started

    def _wait_ready(self, number: int, replicas: list[Container]) -> None:
        deadline_s = self.settings.rollout.progress_deadline_s
        created = min(revs.parse_time(c.attrs.get("Created")) or time.time() for c in replicas)
        pending = {c.name: c for c in replicas}
        last = {"reason": "not ready yet"}

        def all_ready() -> bool | None:
            for name, c in list(pending.items()):
                if self._replica_ready(number, c, last):
                    del pending[name]
            return True if not pending else None

        def timed_out() -> RolloutFailed:
            logs = "\n".join(c.logs(tail=20).decode(errors="replace") for c in pending.values())
            return RolloutFailed(number, f"not ready within {deadline_s:g}s (progress deadline exceeded);"
                                         f" last: {last['reason']}"[:400], self._serving_number(), logs)

        remaining = created + deadline_s - time.time()
        until(all_ready, timeout_s=max(0.0, remaining), interval_s=self.settings.rollout.poll_interval_s,
              what=f"revision {number}", on_timeout=timed_out)

    def _replica_ready(self, number: int, c: Container, last: dict[str, str]) -> bool:
        """One readiness probe of a replica; raises ``RolloutFailed`` if it died."""
        port = engine.published_port(c, API_PORT)  # reloads the container
        if c.status in ("exited", "dead"):
            tail = c.logs(tail=5).decode(errors="replace").strip().splitlines()
            reason = revs.crash_of(c) or f"{c.name} stopped"
            raise RolloutFailed(number, f"{reason}: {tail[-1] if tail else ''}"[:300],
                                self._serving_number(), "\n".join(tail))
        if port is None:
            return False
        ready = ServiceClient(f"http://127.0.0.1:{port}", timeout_s=2).readiness()
        if not ready.ready and ready.reason:
            last["reason"] = f"/readyz {ready.status_code} {ready.reason}: {ready.detail}"
        return ready.ready

    def _serving_number(self) -> int | None:
        live = serving_revision(self.history())
        return live.number if live else None

    def _retire_unpromoted(self, history: list[Revision]) -> None:
        """Before a new rollout: stop what never took traffic (a stuck or waiting canary)."""
        replicas = self._replicas()
        for r in history:
            if r.state in ("progressing", "failed"):
                revs.stop(replicas.get(r.number, []))

    def _deadline_of(self, replicas: list[Container]) -> float:
        created = min(revs.parse_time(c.attrs.get("Created")) or time.time() for c in replicas)
        return created + self.settings.rollout.progress_deadline_s

    def _prune(self) -> None:
        """Keep the newest ``revision_history_limit`` finished revisions (their stopped
        containers); remove the older ones, as a Deployment prunes ReplicaSets."""
        replicas = self._replicas()
        deadline = self.settings.rollout.progress_deadline_s
        history = revisions([revs.facts(n, cs, self.names["serving_network"], deadline)
                             for n, cs in replicas.items()], time.time(), deadline)
        for r in retired_beyond_limit(history, self.settings.rollout.revision_history_limit):
            revs.remove(replicas.get(r.number, []))
        self.monitoring.refresh_targets()

    def revision_endpoints(self, revision: int) -> list[str]:
        replicas = self._replicas()
        if revision not in replicas:
            raise UnknownChoice("revision", revision, sorted(replicas))
        ports = [engine.published_port(c, API_PORT) for c in replicas[revision]]
        return [f"http://127.0.0.1:{p}" for p in ports if p]

    # --- observation --------------------------------------------------------------------
    def _components(self) -> list[Component]:
        return [revs.component_of(c) for c in self.containers()]

    def logs(self, revision: int | None = None, tail: int = 200, level: str | None = None,
             request_id: str | None = None) -> str:
        replicas = self._replicas()
        if revision is None:
            history = self.history()
            live = serving_revision(history)
            revision = live.number if live else (history[-1].number if history else None)
        elif revision not in replicas:
            raise UnknownChoice("revision", revision, sorted(replicas))
        parts = [f"==> {c.name} <==\n" + c.logs(tail=tail).decode(errors="replace")
                 for c in replicas.get(revision, []) if revision is not None]
        if request_id is not None and (provider := engine.get_container(self.docker, self.names["provider"])):
            parts.append(f"==> {provider.name} <==\n" + provider.logs(tail=tail).decode(errors="replace"))
        return filter_logs("\n".join(parts), level, request_id)

    # --- in-place changes (fault primitives) ----------------------------------------------
    def _serving_replicas(self) -> list[Container]:
        live = serving_revision(self.history())
        return self._replicas().get(live.number, []) if live else []

    def restart_serving(self) -> None:
        for c in self._serving_replicas():
            c.restart(timeout=5)

    def throttle_serving(self, cpus: float | None) -> None:
        for c in self._serving_replicas():
            spec = DeploySpec.from_dict(revs._spec_label(c))
            cores = cpus if cpus is not None else (parse_cpus(spec.config["cpus"]) if spec.config.get("cpus") else None)
            try:
                c.update(**(revs.cpu_limit(cores) if cores is not None else {"cpu_quota": -1}))
            except DockerException as e:
                raise engine.wrap(e, f"changing the CPU limit of {c.name}") from e
