"""The Kubernetes tier: the same ``Sandbox`` on kind or on a namespace of a shared cluster.

One sandbox is one namespace (``labkit-<sandbox id>`` unless ``LABKIT_KUBE_NAMESPACE``)::

    127.0.0.1:PORT (ServiceProxy) -> API server -> services/modelapi:http/proxy
         -> Service modelapi -> ready pods of Deployment modelapi (one ReplicaSet a revision)
              | PROVIDER_URL http://provider:8081 -> Deployment + Service provider
              | PVC labkit-data at /data (read-only), seeded by Job labkit-seed
    ConfigMap modelapi-config (defaults), ConfigMap labkit-state (faults, alerts)

The objects come from ``k8s/base`` (``sandbox._kube.manifests.render_base``). A deploy patches the
Deployment's pod template (JSON patch) and waits for the rollout like ``kubectl rollout
status``; the history is the ReplicaSets' (``sandbox._kube.rollout``); a rollback restores
a ReplicaSet's template like ``kubectl rollout undo``. Every call stays in the namespace
(``KubeApi``), every object carries the sandbox's labels, and ``down`` deletes only
labelled objects.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from .. import labels
from ..api import CONFIG_KEYS, DeploySpec, Revision, Sandbox, SandboxStatus
from ..errors import InfrastructureError, InvalidInput, PortInUse, SandboxNotUp, UnknownChoice
from ..logs import filter_logs
from ..settings import Settings
from . import rollout as ro
from . import waits
from .api import MERGE_PATCH, KubeApi, KubeApiError, ServiceProxy, check_namespace, ensure_ours, new_api_client
from .deploy import DEPLOYMENT, Rollouts
from .manifests import PSA_LABELS, registry_image, render_base
from .monitoring import KubeMonitored

PROVIDER, STATE = "provider", "labkit-state"
API_PORT = 8080  # the model API container port (k8s/base/modelapi-deployment.yaml)
#: What ``down`` deletes, in this order (ReplicaSets and Pods go with their owners).
OWNED_KINDS = ("Deployment", "Job", "Service", "ConfigMap", "Pod", "PersistentVolumeClaim")


class KubeSandbox(KubeMonitored, Sandbox):
    """``Sandbox`` on a Kubernetes cluster through the official ``kubernetes`` client."""

    backend = "kube"
    api_poll_s = 0.5  # how often waits read the cluster
    setup_timeout_s = 600.0

    def __init__(self, settings: Settings, api_client: Any = None) -> None:
        super().__init__(settings)
        self.namespace = settings.kube.namespace or f"labkit-{self.id}"
        self._api_client = api_client
        self._api: KubeApi | None = None
        self._proxy: ServiceProxy | None = None
        self._pod_proxies: dict[str, ServiceProxy] = {}
        self._state_rv: str | None = None
        check_namespace(self.namespace)

    @property
    def api(self) -> KubeApi:
        if self._api is None:
            client = self._api_client or new_api_client(self.settings)
            self._api = KubeApi(client, self.namespace, self.settings.kube.context)
        return self._api

    def _image(self, image: str) -> str:
        """Where the cluster gets ``image``: the instructor's registry for the kit's images."""
        if image.split(":")[0].split("@")[0] == self.settings.images.repository:
            return registry_image(image, self.settings.images.registry)
        return image

    def _base(self) -> dict[tuple[str, str], dict[str, Any]]:
        return render_base(self.id, self.namespace, self._image)

    @property
    def endpoint(self) -> str:
        if self._proxy is None:
            if self.api.read("Service", DEPLOYMENT) is None:
                raise SandboxNotUp(self.id)
            try:
                self._proxy = ServiceProxy(self.api, DEPLOYMENT, self.settings.kube.service_port)
            except OSError as e:
                raise PortInUse(self.settings.kube.service_port) from e
        return self._proxy.url

    # --- lifecycle --------------------------------------------------------------------
    def up(self) -> KubeSandbox:
        self.api.ping()
        self._ensure_namespace()
        base = self._base()
        for key in (("ConfigMap", "modelapi-config"), ("PersistentVolumeClaim", "labkit-data")):
            self._ensure(base[key])
        if self.api.read("ConfigMap", STATE) is None:
            self._ensure(self._state_map({"version": 1, "faults": {}}))
        self._seed(base[("Job", "labkit-seed")])
        for key in (("Deployment", PROVIDER), ("Service", PROVIDER), ("Service", DEPLOYMENT)):
            obj = self._ensure(base[key])
            if obj["kind"] == "Deployment" and not (obj.get("spec") or {}).get("replicas"):
                self.api.scale(PROVIDER, 1)  # stopped (an outage): start it again, as the Docker tier does
        waits.wait_available(self.api, PROVIDER, 1, self.setup_timeout_s, self.api_poll_s, "starting the provider")
        return self

    def _ensure_namespace(self) -> None:
        ns = self.api.read_namespace()
        if ns and (ns.get("status") or {}).get("phase") == "Terminating":  # reset() right after down()
            waits.poll(lambda: True if self.api.read_namespace() is None else None, 180, 1.0,
                       lambda: InfrastructureError(f"namespace {self.namespace} is still being deleted"))
            ns = None
        if ns is None:
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": self.namespace, "labels": {**labels.for_sandbox(self.id, "namespace"), **PSA_LABELS}}}
            try:
                self.api.create_namespace(body)
            except KubeApiError as e:
                if e.status != 403:
                    raise
                raise InfrastructureError(
                    f"namespace {self.namespace} does not exist and this account may not create it",
                    fix="ask your instructor for your cohort namespace (`labkit cluster cohort`), or set"
                        " LABKIT_KUBE_NAMESPACE to it") from e
        elif ns and labels.is_ours(ns["metadata"].get("labels")):  # the kit's, but maybe another sandbox's
            ensure_ours(ns, self.id, f"namespace {self.namespace}")

    def _ensure(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind, name = obj["kind"], obj["metadata"]["name"]
        existing = self.api.read(kind, name)
        ensure_ours(existing, self.id, f"{kind} {name} in namespace {self.namespace}")
        if existing is not None:
            return existing
        try:
            return self.api.create(obj)
        except KubeApiError as e:
            if e.status != 409:  # made by a concurrent up(): adopt it if it is ours
                raise
            existing = self.api.read(kind, name)
            ensure_ours(existing, self.id, f"{kind} {name} in namespace {self.namespace}")
            return existing or obj

    def _seed(self, job: dict[str, Any]) -> None:
        name = job["metadata"]["name"]
        existing = self.api.read("Job", name)
        ensure_ours(existing, self.id, f"Job {name}")
        if existing is not None and waits.job_state(existing) == "failed":  # repair a failed up()
            self.api.delete("Job", name)
            waits.poll(lambda: True if self.api.read("Job", name) is None else None, 60, self.api_poll_s,
                       lambda: InfrastructureError(f"Job {name} is not going away"))
            existing = None
        if existing is None:
            self.api.create(job)
        done = waits.wait_job(self.api, name, self.setup_timeout_s, self.api_poll_s, "seeding the data volume")
        if waits.job_state(done) == "failed":
            out = waits.job_output(self.api, name)
            raise InfrastructureError(f"seeding the data volume failed: {ro.describe_conditions(done)};"
                                      f" {waits.job_error(out)}", fix="run `labkit sandbox up` again")

    def down(self) -> list[str]:
        if self._proxy is not None:
            self._proxy.close()
            self._proxy = None
        for proxy in self._pod_proxies.values():
            proxy.close()
        self._pod_proxies.clear()
        self._close_monitoring_proxies()
        removed = []
        for kind in OWNED_KINDS:
            for obj in self.api.list(kind, labels.kube_selector(self.id)):
                name = obj["metadata"]["name"]
                if labels.is_ours(obj["metadata"].get("labels"), self.id) and self.api.delete(kind, name):
                    removed.append(f"{kind.lower()}/{name}")
        ns = self.api.read_namespace()
        ns_labels = (ns or {}).get("metadata", {}).get("labels")
        if ns and labels.is_ours(ns_labels, self.id) and "labkit.dev/cohort" not in ns_labels:
            self.api.delete_namespace()
            removed.append(f"namespace/{self.namespace}")
        self._state_rv = None
        return removed

    def preflight(self) -> None:
        self.api.ping()

    def foreign_objects(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Objects in the sandbox's namespace that the kit did not label (an instructor's)."""
        snap: dict[str, dict[str, dict[str, Any]]] = {}
        if self.api.read_namespace() is None:
            return snap
        for kind in OWNED_KINDS:
            for obj in self.api.list(kind, ""):
                meta = obj["metadata"]
                if not labels.is_ours(meta.get("labels")):
                    snap.setdefault(kind.lower() + "s", {})[meta.get("uid") or meta["name"]] = {
                        "name": meta["name"], "created": meta.get("creationTimestamp") or "",
                        "resourceVersion": meta.get("resourceVersion") or ""}
        return snap

    def reset(self) -> None:
        self.down()
        selector = labels.kube_selector(self.id)
        waits.poll(lambda: True if not (self.api.list("Pod", selector) or self.api.list(
            "PersistentVolumeClaim", selector)) else None, 180, 1.0,
            lambda: InfrastructureError("the old sandbox's pods and volume are still being deleted"))
        self.up()

    # --- state --------------------------------------------------------------------------
    def _state_map(self, doc: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": STATE, "labels": labels.for_sandbox(self.id, "state")},
                "data": {"state.json": json.dumps(doc, indent=1, sort_keys=True)}}

    def state(self) -> dict[str, Any]:
        cm = self.api.read("ConfigMap", STATE)
        if cm is None:
            raise SandboxNotUp(self.id)
        ensure_ours(cm, self.id, f"ConfigMap {STATE}")
        self._state_rv = cm["metadata"].get("resourceVersion")
        doc = json.loads((cm.get("data") or {}).get("state.json") or "{}")
        doc.setdefault("version", 1)
        doc.setdefault("faults", {})
        doc["revisions"] = [r.to_dict() for r in self.history()]
        return doc

    def save_state(self, state: dict[str, Any]) -> None:
        """Write faults/alerts back (revisions are live objects, not stored). Guarded by the
        resourceVersion ``state()`` read: a concurrent writer makes this fail (409)."""
        doc = {k: v for k, v in state.items() if k != "revisions"}
        body: dict[str, Any] = {"data": {"state.json": json.dumps(doc, indent=1, sort_keys=True)}}
        if self._state_rv:
            body["metadata"] = {"resourceVersion": self._state_rv}
        cm = self.api.patch("ConfigMap", STATE, body, MERGE_PATCH)
        self._state_rv = cm["metadata"].get("resourceVersion")

    # --- rollouts ---------------------------------------------------------------------
    @property
    def rollouts(self) -> Rollouts:
        return Rollouts(self.api, self.settings, self._image, lambda: self._base()[("Deployment", DEPLOYMENT)],
                        self.api_poll_s)

    def history(self) -> list[Revision]:
        return self.rollouts.history()

    def deploy(self, model: str | None = None, index: str | None = None, image: str | None = None,
               replicas: int | None = None, *, change_cause: str = "", wait: bool = True,
               **config: Any) -> Revision:
        if self.api.read("Service", DEPLOYMENT) is None:
            raise SandboxNotUp(self.id)
        spec = self._next_spec(self.history(), model, index, image, replicas, config)
        cause = change_cause or f"deploy model={spec.model} index={spec.index} image={spec.image}"
        return self.rollouts.roll_out(spec, cause, None, wait)

    def wait_for_rollout(self) -> Revision:
        return self.rollouts.wait_current()

    def revision_endpoints(self, revision: int) -> list[str]:
        """One local URL per pod of the revision, each through the API server's pod proxy."""
        dep, rss = self.rollouts.objects()
        rs = ro.rs_of(dep, rss, revision) if dep else None
        if rs is None:
            raise UnknownChoice("revision", revision, [r.number for r in ro.history(dep or {}, rss, self._image)])
        urls = []
        for pod in waits.pods_of(self.api, self.rollouts.pod_selector(rs)):
            name = pod["metadata"]["name"]
            if name not in self._pod_proxies:
                self._pod_proxies[name] = ServiceProxy(self.api, name, 0, target=f"pods/{name}:{API_PORT}")
            urls.append(self._pod_proxies[name].url)
        return urls

    def _next_spec(self, revs: list[Revision], model: str | None, index: str | None, image: str | None,
                   replicas: int | None, config: dict[str, Any]) -> DeploySpec:
        serving = [r for r in revs if r.state == "serving"]
        base = serving[-1].spec if serving else None
        model = self._validate_model(model or (base.model if base else "v1"))
        unknown = set(config) - set(CONFIG_KEYS)
        if unknown:
            raise UnknownChoice("deploy setting", sorted(unknown)[0], sorted(CONFIG_KEYS))
        available = [m["index_version"] for m in self.indexes() if not m.get("error")]
        if index is None and base and base.model == model:
            index = base.index
        elif index is None:
            snapshots = self.snapshots()
            if not snapshots:
                raise InvalidInput("no corpus snapshot in the sandbox; run `labkit sandbox reset`")
            index = snapshots[-1]
        index = self._resolve_index(index, model, available)
        image = image or (base.image if base else self.settings.images.default)
        replicas = self._validate_replicas(replicas if replicas is not None else (base.replicas if base else 1))
        merged = dict(base.config) if base else {}
        merged.update({k: str(v) for k, v in config.items() if v is not None})
        if merged.get("cpus"):
            ro.cpu_quantity(merged["cpus"])  # bad input fails before anything changes
        return DeploySpec(model, index, image, replicas, merged)

    def rollback(self, to_revision: int | None = None) -> Revision:
        return self.rollouts.rollback(to_revision)

    # --- observation ------------------------------------------------------------------
    def status(self) -> SandboxStatus:
        st = SandboxStatus(self.id, self.backend, up=False)
        if self.api.read("Service", DEPLOYMENT) is None:
            st.reason = f"sandbox is not up (no Service {DEPLOYMENT} in namespace {self.namespace})"
            return st
        st.up, st.endpoint = True, self.endpoint
        state = self.state()
        revs = [Revision.from_dict(r) for r in state["revisions"]]
        st.faults = sorted(state.get("faults", {}))
        st.components = self._components(revs)
        if revs:
            st.latest_revision = revs[-1].number
            st.rollout = {"serving": "complete", "failed": "failed"}.get(revs[-1].state, "progressing")
        serving = [r for r in revs if r.state == "serving"]
        if serving:
            st.serving_revision, st.spec = serving[-1].number, serving[-1].spec
        ready = self.readiness()
        st.ready = ready.ready
        st.reason = "" if ready.ready else f"{ready.reason}: {ready.detail}".strip(": ")
        if revs and revs[-1].state == "failed":
            st.reason = (st.reason + "; " if st.reason else "") + f"last rollout failed: {revs[-1].reason}"
        return st

    def _components(self, revs: list[Revision]) -> list[dict[str, Any]]:
        dep, rss = self.rollouts.objects()
        by_hash = {(rs["metadata"].get("labels") or {}).get(ro.HASH_LABEL): str(ro.revision_number(rs)) for rs in rss}
        out = []
        for pod in self.api.list("Pod", labels.kube_selector(self.id)):
            pod_labels = pod["metadata"].get("labels") or {}
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            waiting = [((cs.get("state") or {}).get("waiting") or {}).get("reason") for cs in statuses]
            state = next((w for w in waiting if w), (pod.get("status") or {}).get("phase", "Pending"))
            if state == "Running" and not all(cs.get("ready") for cs in statuses):
                state = "Running (not ready)"
            out.append({"name": pod["metadata"]["name"], "component": pod_labels.get(labels.COMPONENT, ""),
                        "revision": by_hash.get(pod_labels.get(ro.HASH_LABEL), ""), "state": state,
                        "image": ", ".join(c.get("image", "") for c in pod.get("spec", {}).get("containers", []))})
        return sorted(out, key=lambda d: d["name"])

    def logs(self, revision: int | None = None, tail: int = 200, level: str | None = None,
             request_id: str | None = None) -> str:
        dep, rss = self.rollouts.objects()
        revs = ro.history(dep, rss, self._image)
        if revision is None:
            rs = ro.serving(dep, rss) if dep else None
            rs = rs or (ro.current(dep, rss) if dep else None)
        else:
            if revision not in [r.number for r in revs]:
                raise UnknownChoice("revision", revision, [r.number for r in revs])
            rs = ro.rs_of(dep or {}, rss, revision)
        if rs is None:
            return ""
        parts = []
        for pod in waits.pods_of(self.api, self.rollouts.pod_selector(rs)):
            name = pod["metadata"]["name"]
            parts.append(f"==> {name} <==\n" + self.api.pod_log(name, tail=tail))
        return filter_logs("\n".join(parts), level, request_id)

    # --- indexes and corpora -------------------------------------------------------------
    def _read_data(self, cmd: list[str], what: str) -> str:
        """A read-only command on the data volume: exec in a ready pod, else a Job."""
        for component in (PROVIDER, DEPLOYMENT):
            pods = self.api.list("Pod", labels.kube_selector(self.id, component))
            out = waits.exec_read(self.api, pods, component, cmd)
            if out is not None:
                return out
        return self.run_job(cmd, what)

    def indexes(self) -> list[dict[str, Any]]:
        return json.loads(self._read_data(["python", "-m", "modelapi", "list-indexes", "--json"], "list-indexes"))

    def snapshots(self) -> list[str]:
        out = self._read_data(["python", "-m", "modelapi", "list-snapshots"], "list-snapshots")
        try:
            return sorted(json.loads(out))
        except ValueError:
            return sorted(line.strip() for line in out.splitlines() if line.strip())

    def run_job(self, cmd: list[str], what: str) -> str:
        """A one-off Job on the data volume (read-write); its stdout, or ``InvalidInput``."""
        name = f"labkit-job-{uuid.uuid4().hex[:6]}"
        job = waits.job_manifest(self._base()[("Job", "labkit-seed")], name, cmd, self.id)
        ok, out = waits.run_job(self.api, job, what, 300, self.api_poll_s)
        if not ok:
            raise InvalidInput(f"{what} failed: {waits.job_error(out)}")
        return out

    # --- fault primitives -------------------------------------------------------------------
    def provider_call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        status, payload, _ = self.api.proxy(f"services/{PROVIDER}:http", method, path, body)
        message = payload.decode(errors="replace").strip()
        if status >= 400:
            raise InfrastructureError(f"provider {method} {path} answered {status}: {message[-200:]}",
                                      fix="`labkit fault heal provider-outage` if the provider is stopped")
        return json.loads(message) if message else {}

    def set_provider_running(self, running: bool) -> None:
        dep = self.api.read("Deployment", PROVIDER)
        ensure_ours(dep, self.id, f"Deployment {PROVIDER}")
        if dep is None:
            if running:
                self._ensure(self._base()[("Deployment", PROVIDER)])
            else:
                return
        self.api.scale(PROVIDER, 1 if running else 0)
        what = "starting the provider" if running else "stopping the provider"
        waits.wait_available(self.api, PROVIDER, 1 if running else 0, 120, self.api_poll_s, what)

    def restart_serving(self) -> None:
        """Delete the serving ReplicaSet's pods (as a node reboot would); return once the
        replacements are ready, crashed, or answer /readyz 503 (bounded, never raises)."""
        dep, rss = self.rollouts.objects()
        rs = ro.serving(dep, rss) if dep else None
        if rs is None:
            return
        selector = self.rollouts.pod_selector(rs)
        old = set()
        for pod in self.api.list("Pod", selector):
            if labels.is_ours(pod["metadata"].get("labels"), self.id):
                self.api.delete("Pod", pod["metadata"]["name"])
                old.add(pod["metadata"]["name"])
        want = (rs.get("spec") or {}).get("replicas") or 1

        def settled() -> bool | None:
            pods = [p for p in self.api.list("Pod", selector) if p["metadata"]["name"] not in old]
            return True if len(pods) >= want and waits.pods_settled(self.api, pods) else None

        try:
            waits.poll(settled, self.settings.rollout.progress_deadline_s, self.api_poll_s,
                       lambda: InfrastructureError("replicas still starting"))
        except InfrastructureError:
            pass  # they keep starting; readiness tells the rest
