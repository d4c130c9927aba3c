"""The Docker tier: one sandbox = two networks, a data volume, a gateway, a provider and
the model API's revisions, all labelled with the sandbox id.

Layout (``<sid>`` is the sandbox id)::

    127.0.0.1:PORT -> labkit-<sid>-gateway  (TCP proxy, network labkit-<sid>-serving)
                          |  resolves alias "serving" per connection
                          v
    labkit-<sid>-modelapi-r<N>-<i>  (joined to the serving network only once ready)
         | network labkit-<sid>                 | volume labkit-<sid>-data at /data (ro)
         v                                      v
    labkit-<sid>-provider (alias "provider")    corpora, indexes, state/sandbox.json

The revision history lives in the data volume (``/data/state/sandbox.json``), written by
exec in the gateway, so it is live state of the sandbox, not of the process that made it.
"""

from __future__ import annotations

import time
from typing import Any

from concurrent.futures import ThreadPoolExecutor

from docker.errors import DockerException
from docker.models.containers import Container

from .. import labels
from ..api import CONFIG_KEYS, DeploySpec, Revision, Sandbox, SandboxStatus
from ..client import ServiceClient
from ..errors import (
    InfrastructureError,
    InvalidInput,
    NoRevisionDeployed,
    RolloutFailed,
    SandboxNotUp,
    UnknownChoice,
)
from ..logs import filter_logs
from ..settings import Settings
from . import engine
from .data import PROVIDER_PORT, DockerData
from .monitoring import MonitoredSandbox

GATEWAY_PORT = 8000
API_PORT = 8080


def _is_dated(snapshot: str) -> bool:
    """Release snapshots are plain dates (``2026-11-01``); others are drafts or hotfixes."""
    parts = snapshot.split("-")
    return len(parts) == 3 and all(p.isdigit() for p in parts)


def _revision(record: dict[str, Any]) -> Revision:
    return Revision.from_dict({k: v for k, v in record.items() if k != "containers"})


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
        return labels.for_sandbox(self.id, component, **extra)

    def _gateway(self, required: bool = True) -> Container | None:
        container = engine.get_container(self.docker, self.names["gateway"])
        ok = container is not None and labels.is_ours(container.labels, self.id)
        if ok and container.status == "running":
            return container
        if required:
            raise SandboxNotUp(self.id)
        return None

    @property
    def endpoint(self) -> str:
        gateway = self._gateway()
        port = engine.published_port(gateway, GATEWAY_PORT)
        if port is None:
            raise SandboxNotUp(self.id)
        return f"http://127.0.0.1:{port}"

    # --- lifecycle --------------------------------------------------------------------
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
        def start() -> Container:
            return engine.run_container(
                self.docker,
                image=image,
                name=self.names["gateway"],
                labels_=self._labels("gateway"),
                network=self.names["serving_network"],
                host_port=self.settings.port or None,
                container_port=GATEWAY_PORT,
                command=["python", "-m", "modelapi", "gateway"],
                environment={"GATEWAY_PORT": str(GATEWAY_PORT), "UPSTREAM_HOST": "serving"},
                volumes={self.names["volume"]: {"bind": "/data", "mode": "rw"}},
                mem_limit="256m",
            )

        return self._ensure_running(self.names["gateway"], start)

    def _ensure_provider(self, image: str) -> Container:
        def start() -> Container:
            return engine.run_container(
                self.docker,
                image=image,
                name=self.names["provider"],
                labels_=self._labels("provider"),
                network=self.names["network"],
                aliases=["provider"],
                container_port=PROVIDER_PORT,
                command=["python", "-m", "modelapi", "provider"],
                environment={"PORT": str(PROVIDER_PORT)},
                volumes={self.names["volume"]: {"bind": "/data", "mode": "ro,nocopy"}},
                mem_limit="256m",
            )

        return self._ensure_running(self.names["provider"], start)

    def _restart_serving(self) -> None:
        """After a daemon restart, start the serving revision's stopped containers again."""
        state = self._read_state()
        for rev in state["revisions"]:
            if rev["state"] != "serving":
                continue
            for name in rev.get("containers", []):
                c = engine.get_container(self.docker, name)
                if c is not None and c.status != "running" and labels.is_ours(c.labels, self.id):
                    c.start()

    def preflight(self) -> None:
        engine.ensure_image(self.docker, self.settings.images.default)

    def foreign_objects(self) -> dict[str, dict[str, dict[str, Any]]]:
        return engine.foreign_inventory(self.docker)

    def down(self) -> list[str]:
        return engine.remove_labelled(self.docker, self.id)

    def reset(self) -> None:
        self.down()
        self.up()

    def history(self) -> list[Revision]:
        return self._revisions(self._read_state())

    def _revisions(self, state: dict[str, Any]) -> list[Revision]:
        """Revisions as a controller would report them: a rollout still progressing past its
        deadline is failed (Kubernetes' ProgressDeadlineExceeded)."""
        deadline = self.settings.rollout.progress_deadline_s
        revs = []
        for r in state["revisions"]:
            rev = _revision(r)
            if rev.state == "progressing" and time.time() > rev.created_at + deadline:
                rev.state, rev.reason = "failed", "progress deadline exceeded (not ready in time)"
            revs.append(rev)
        return revs

    # --- rollouts ---------------------------------------------------------------------
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
        state = self._read_state()
        spec = self._next_spec(state, model, index, image, replicas, config)
        cause = change_cause or f"deploy model={spec.model} index={spec.index} image={spec.image}"
        return self._roll_out(state, spec, cause, rollback_of=None, wait=wait)

    def _next_spec(
        self,
        state: dict[str, Any],
        model: str | None,
        index: str | None,
        image: str | None,
        replicas: int | None,
        config: dict[str, Any],
    ) -> DeploySpec:
        serving = [r for r in state["revisions"] if r["state"] == "serving"]
        base = DeploySpec.from_dict(serving[-1]["spec"]) if serving else None
        model = self._validate_model(model or (base.model if base else "v1"))
        available = self._names("/data/indexes")
        if index is None:
            index = base.index if base and base.model == model else self._latest_snapshot()
        index = self._resolve_index(index, model, available)
        image = image or (base.image if base else self.settings.images.default)
        engine.ensure_image(self.docker, image)
        replicas = self._validate_replicas(replicas if replicas is not None else (base.replicas if base else 1))
        unknown = set(config) - set(CONFIG_KEYS)
        if unknown:
            raise UnknownChoice("deploy setting", sorted(unknown)[0], sorted(CONFIG_KEYS))
        merged = dict(base.config) if base else {}
        merged.update({k: str(v) for k, v in config.items() if v is not None})
        return DeploySpec(model, index, image, replicas, merged)

    def _latest_snapshot(self) -> str:
        snapshots = [s for s in self.snapshots() if _is_dated(s)]
        if not snapshots:
            raise InvalidInput("no corpus snapshot in the sandbox; run `labkit sandbox reset`")
        return snapshots[-1]

    def _roll_out(
        self, state: dict[str, Any], spec: DeploySpec, cause: str, rollback_of: int | None,
        wait: bool = True,
    ) -> Revision:
        number = max([r["number"] for r in state["revisions"]], default=0) + 1
        rev = Revision(number, spec, "progressing", time.time(), cause, rollback_of)
        record = rev.to_dict() | {"containers": []}
        self._retire_failed(state)
        state["revisions"].append(record)
        try:
            record["containers"] = [c.name for c in self._start_replicas(spec, number)]
        except BaseException as e:
            record.update(state="failed", reason=f"could not start: {e}"[:300], finished_at=time.time())
            self._write_state(state)
            raise
        self._write_state(state)
        if not wait:
            return _revision(record)
        return self._finish(state, record)

    def wait_for_rollout(self) -> Revision:
        state = self._read_state()
        progressing = [r for r in state["revisions"] if r["state"] == "progressing"]
        if progressing:
            return self._finish(state, progressing[-1])
        latest = state["revisions"][-1] if state["revisions"] else None
        if latest is not None and latest["state"] == "failed":
            raise RolloutFailed(latest["number"], latest["reason"], self._serving_number())
        return _revision(self._current_record(state))

    def _current_record(self, state: dict[str, Any]) -> dict[str, Any]:
        serving = [r for r in state["revisions"] if r["state"] == "serving"]
        if not serving:
            raise NoRevisionDeployed(self.id)
        return serving[-1]

    def _finish(self, state: dict[str, Any], record: dict[str, Any]) -> Revision:
        """Wait for readiness, then promote the revision and retire the one that served."""
        containers = [c for n in record["containers"] if (c := engine.get_container(self.docker, n))]
        deadline = record["created_at"] + self.settings.rollout.progress_deadline_s
        try:
            self._wait_ready(record["number"], containers, deadline)
        except RolloutFailed as e:
            record.update(state="failed", reason=e.reason, finished_at=time.time())
            self._write_state(state)
            raise
        except BaseException as e:  # interrupted: never leave a half rollout behind
            record.update(state="failed", reason=f"interrupted: {e!r}"[:300], finished_at=time.time())
            self._write_state(state)
            raise
        self.monitoring.wait_scraped(containers, max(0.0, min(20.0, deadline - time.time())))
        self._promote(containers)
        for old in [r for r in state["revisions"] if r["state"] == "serving"]:
            self._stop_revision(old)
            old["state"] = "superseded"
        record.update(state="serving", ready_at=time.time(), finished_at=time.time())
        self._write_state(state)
        return _revision(record)

    def revision_endpoints(self, revision: int) -> list[str]:
        records = [r for r in self._read_state()["revisions"] if r["number"] == revision]
        if not records:
            raise UnknownChoice("revision", revision, [r["number"] for r in self.history()])
        urls = []
        for name in records[0].get("containers", []):
            c = engine.get_container(self.docker, name)
            port = engine.published_port(c, API_PORT) if c is not None else None
            if port:
                urls.append(f"http://127.0.0.1:{port}")
        return urls

    def _start_replicas(self, spec: DeploySpec, number: int) -> list[Container]:
        env = spec.env() | {
            "PORT": str(API_PORT),
            "PROVIDER_URL": f"http://provider:{PROVIDER_PORT}",
            "DATA_DIR": spec.env().get("DATA_DIR", "/data"),
        }
        resources: dict[str, Any] = {}
        if spec.config.get("cpus"):
            resources["nano_cpus"] = int(float(spec.config["cpus"]) * 1e9)
        containers = []
        for i in range(spec.replicas):
            stale = engine.get_container(self.docker, f"labkit-{self.id}-modelapi-r{number}-{i}")
            if stale is not None and labels.is_ours(stale.labels, self.id):
                stale.remove(force=True)  # left by a rollout whose record was never written
            containers.append(
                engine.run_container(
                    self.docker,
                    image=spec.image,
                    name=f"labkit-{self.id}-modelapi-r{number}-{i}",
                    labels_=self._labels(
                        "modelapi", **{labels.REVISION: str(number), labels.SPEC: spec.to_json()}
                    ),
                    network=self.names["network"],
                    aliases=[f"r{number}"],
                    container_port=API_PORT,
                    command=["python", "-m", "modelapi", "serve"],
                    environment=env,
                    volumes={self.names["volume"]: {"bind": "/data", "mode": "ro"}},
                    **resources,
                )
            )
        self.monitoring.refresh_targets()
        return containers

    def _wait_ready(self, number: int, containers: list[Container], deadline: float) -> None:
        pending = {c.name: c for c in containers}
        last_reason = "not ready yet"
        while pending:
            for name, c in list(pending.items()):
                port = engine.published_port(c, API_PORT)  # reloads the container
                if c.status in ("exited", "dead"):
                    code = c.attrs["State"].get("ExitCode")
                    tail = c.logs(tail=5).decode(errors="replace").strip().splitlines()
                    last = tail[-1] if tail else ""
                    raise RolloutFailed(number, f"{name} exited with code {code}: {last}"[:300],
                                        self._serving_number(), "\n".join(tail))
                if port is None:
                    continue
                ready = ServiceClient(f"http://127.0.0.1:{port}", timeout_s=2).readiness()
                if ready.ready:
                    del pending[name]
                elif ready.reason:
                    last_reason = f"/readyz {ready.status_code} {ready.reason}: {ready.detail}"
            if pending and time.time() > deadline:
                logs = "\n".join(c.logs(tail=20).decode(errors="replace") for c in pending.values())
                raise RolloutFailed(
                    number,
                    f"not ready within {self.settings.rollout.progress_deadline_s:.0f}s"
                    f" (progress deadline exceeded); last: {last_reason}"[:400],
                    self._serving_number(),
                    logs,
                )
            if pending:
                time.sleep(self.settings.rollout.poll_interval_s)

    def _serving_number(self) -> int | None:
        serving = [r for r in self._read_state()["revisions"] if r["state"] == "serving"]
        return serving[-1]["number"] if serving else None

    def _promote(self, containers: list[Container]) -> None:
        network = self.docker.networks.get(self.names["serving_network"])
        for c in containers:
            network.connect(c, aliases=["serving"])

    def _stop_revision(self, record: dict[str, Any]) -> None:
        """Retire a revision: stop gracefully (in-flight requests finish), then remove."""
        for name in record.get("containers", []):
            c = engine.get_container(self.docker, name)
            if c is None or not labels.is_ours(c.labels, self.id):
                continue
            try:
                c.stop(timeout=5)
                c.remove(force=True)
            except DockerException:
                pass
        self.monitoring.refresh_targets()

    def _retire_failed(self, state: dict[str, Any]) -> None:
        for r in state["revisions"]:
            if r["state"] in ("failed", "progressing"):
                self._stop_revision(r)
                if r["state"] == "progressing":
                    r.update(state="failed", reason="superseded before it became ready")

    def rollback(self, to_revision: int | None = None) -> Revision:
        state = self._read_state()
        revs = state["revisions"]
        serving = [r for r in revs if r["state"] == "serving"]
        candidates = [r for r in revs if r["state"] == "superseded"]
        if to_revision is None:
            target = self._undo_target(revs, serving, candidates)
        else:
            matches = [r for r in revs if r["number"] == to_revision and r["state"] != "failed"]
            if not matches:
                valid = [r["number"] for r in revs if r["state"] != "failed"]
                raise UnknownChoice("revision", to_revision, valid)
            target = matches[0]
        spec = DeploySpec.from_dict(target["spec"])
        cause = f"rollback to revision {target['number']}"
        if serving and DeploySpec.from_dict(serving[-1]["spec"]) == spec:
            return self._adopt(state, serving[-1], target["number"], cause)
        engine.ensure_image(self.docker, spec.image)
        return self._roll_out(state, spec, cause, rollback_of=target["number"])

    @staticmethod
    def _undo_target(revs: list, serving: list, candidates: list) -> dict[str, Any]:
        latest = revs[-1] if revs else None
        if latest is not None and latest["state"] in ("failed", "progressing") and serving:
            return serving[-1]  # undo a stuck rollout: back to what serves
        if not candidates:
            raise InvalidInput("no previous revision to roll back to; see `labkit rollout history`")
        return candidates[-1]

    def _adopt(self, state: dict[str, Any], serving: dict, target: int, cause: str) -> Revision:
        """Undo to the spec that already serves: a new revision number, same replicas."""
        self._retire_failed(state)
        number = max(r["number"] for r in state["revisions"]) + 1
        now = time.time()
        rev = Revision(number, DeploySpec.from_dict(serving["spec"]), "serving", now, cause,
                       target, now, now)
        serving["state"] = "superseded"
        state["revisions"].append(rev.to_dict() | {"containers": serving.get("containers", [])})
        serving["containers"] = []
        self._write_state(state)
        return rev

    # --- observation ------------------------------------------------------------------
    def status(self) -> SandboxStatus:
        st = SandboxStatus(self.id, self.backend, up=False)
        gateway = self._gateway(required=False)
        st.components = self._components()
        if gateway is None:
            st.reason = "sandbox is not up"
            return st
        st.up = True
        st.endpoint = self.endpoint
        state = self._read_state()  # one read: the exec costs more than everything else here
        revs = self._revisions(state)
        st.faults = sorted(state.get("faults", {}))
        if revs:
            st.latest_revision = revs[-1].number
            st.rollout = {"serving": "complete", "failed": "failed"}.get(revs[-1].state, "progressing")
        serving = [r for r in revs if r.state == "serving"]
        if serving:
            st.serving_revision = serving[-1].number
            st.spec = serving[-1].spec
        ready = self.readiness()
        st.ready = ready.ready
        st.reason = "" if ready.ready else f"{ready.reason}: {ready.detail}".strip(": ")
        if st.rollout == "failed":
            st.reason = (st.reason + "; " if st.reason else "") + f"last rollout failed: {revs[-1].reason}"
        return st

    def _components(self) -> list[dict[str, Any]]:
        out = []
        for c in self.docker.containers.list(all=True, filters=labels.docker_filters(self.id)):
            out.append({
                "name": c.name,
                "component": c.labels.get(labels.COMPONENT, ""),
                "revision": c.labels.get(labels.REVISION, ""),
                "state": c.status,
                "image": c.image.tags[0] if c.image.tags else c.image.short_id,
            })
        return sorted(out, key=lambda d: d["name"])

    def containers(self, component: str | None = None) -> list[Container]:
        """The sandbox's containers (labelled ones only), optionally of one component."""
        return self.docker.containers.list(all=True, filters=labels.docker_filters(self.id, component))

    def logs(self, revision: int | None = None, tail: int = 200, level: str | None = None,
             request_id: str | None = None) -> str:
        revs = self._read_state()["revisions"]
        if revision is None:
            chosen = [r for r in revs if r["state"] == "serving"] or revs[-1:]
        else:
            chosen = [r for r in revs if r["number"] == revision]
            if not chosen:
                raise UnknownChoice("revision", revision, [r["number"] for r in revs])
        parts = []
        for name in chosen[-1].get("containers", []) if chosen else []:
            c = engine.get_container(self.docker, name)
            if c is not None:
                parts.append(f"==> {name} <==\n" + c.logs(tail=tail).decode(errors="replace"))
        if request_id is not None and (provider := engine.get_container(self.docker, self.names["provider"])):
            parts.append(f"==> {provider.name} <==\n" + provider.logs(tail=tail).decode(errors="replace"))
        return filter_logs("\n".join(parts), level, request_id)
