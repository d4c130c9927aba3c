"""The Kubernetes tier: the same ``Sandbox`` on kind or on a namespace of a shared cluster.

One sandbox is one namespace (``labkit-<sandbox id>`` unless ``LABKIT_KUBE_NAMESPACE``)::

    127.0.0.1:PORT (ServiceProxy) -> API server -> services/modelapi:http/proxy
         -> Service modelapi (track: stable) -> ready pods of Deployment modelapi
                                                (one ReplicaSet a revision)
    revision_endpoints(N) -> API server -> pods/<pod>:8080/proxy (any track)
         canary: Deployment modelapi-canary-r<N> (track: canary), never behind the Service
              | PROVIDER_URL http://provider:8081 -> Deployment + Service provider
              | PVC labkit-data at /data (read-only), seeded by Job labkit-seed
    ConfigMap modelapi-config (defaults), ConfigMap labkit-state (fault records)
    Deployment + Service prometheus and alertmanager, their ConfigMaps, ServiceAccount + Role +
         RoleBinding for pod discovery: made by up(), never waited for (``sandbox._kube.monitoring``)

The objects come from ``k8s/base`` (``sandbox._kube.manifests.render_base``). Revisions are
numbered by the kit as on the Docker tier and read back off the ReplicaSets
(``sandbox._kube.history``); rollouts, canaries and promotion are ``sandbox._kube.deploy``'s;
the rollout rules are ``sandbox.spec``'s. Every call stays in the namespace (``KubeApi``),
every object carries the sandbox's labels, and ``down`` deletes only labelled objects.
"""

from __future__ import annotations

from typing import Any

from .. import labels
from ..api import Sandbox
from ..errors import InfrastructureError, KubeApiError, PortInUse, SandboxNotUp, UnknownChoice, WaitTimeout
from ..records import Component, DeploySpec, Revision
from ..logs import filter_logs
from ..settings import Settings
from ..spec import RevisionFacts, is_image_of, parse_cpus, serving_revision
from ..waiting import until
from . import pods as kpods
from . import rollout as ro
from . import waits
from .api import KubeApi, ServiceProxy, check_namespace, ensure_ours, new_api_client
from .data import PROVIDER, STATE, KubeData
from .deploy import Rollouts
from .manifests import PSA_LABELS, registry_image, render_base
from .monitoring import KubeMonitored

API_PORT = 8080  # the model API container port (k8s/base/modelapi-deployment.yaml)
#: What ``down`` deletes, in this order (ReplicaSets and Pods go with their owners).
OWNED_KINDS = ("Deployment", "Job", "Service", "ConfigMap", "Pod", "PersistentVolumeClaim")
#: What ``foreign_objects`` looks at.
FOREIGN_KINDS = (*OWNED_KINDS, "ReplicaSet")
NODE_MAX_IMAGES = 50  # the kubelet reports at most this many images a node (nodeStatusMaxImages)


class KubeSandbox(KubeMonitored, KubeData, Sandbox):
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
        check_namespace(self.namespace)

    @property
    def api(self) -> KubeApi:
        if self._api is None:
            client = self._api_client or new_api_client(self.settings)
            self._api = KubeApi(client, self.namespace, self.settings.kube.context)
        return self._api

    def _image(self, image: str) -> str:
        """Where the cluster gets ``image``: the instructor's registry for the kit's images."""
        if self._is_kit_image(image):
            return registry_image(image, self.settings.images.registry)
        return image

    def _is_kit_image(self, image: str) -> bool:
        return is_image_of(image, self.settings.images.repository)

    def _base(self) -> dict[tuple[str, str], dict[str, Any]]:
        return render_base(self.id, self.namespace, self._image)

    @property
    def endpoint(self) -> str:
        if self._proxy is None:
            if not self._is_up():
                raise SandboxNotUp(self.id)
            try:
                self._proxy = ServiceProxy(self.api, ro.MAIN, self.settings.kube.service_port)
            except OSError as e:
                raise PortInUse(self.settings.kube.service_port) from e
        return self._proxy.url

    def _is_up(self) -> bool:
        service = self.api.read("Service", ro.MAIN)
        return service is not None and labels.is_ours(service["metadata"].get("labels"), self.id)

    # --- lifecycle --------------------------------------------------------------------
    def up(self) -> KubeSandbox:
        self.api.ping()
        self._ensure_namespace()
        base = self._base()
        for key in (("ConfigMap", "modelapi-config"), ("PersistentVolumeClaim", "labkit-data")):
            self._ensure(base[key])
        self._ensure_monitoring(base)  # not waited for: Prometheus starts while the seed Job runs
        if self.api.read("ConfigMap", STATE) is None:
            self._ensure(self._state_map({"version": 2, "faults": {}}))
        self._seed(base[("Job", "labkit-seed")])
        for key in (("Deployment", PROVIDER), ("Service", PROVIDER), ("Service", ro.MAIN)):
            obj = self._ensure(base[key])
            if obj["kind"] == "Deployment" and not (obj.get("spec") or {}).get("replicas"):
                self.api.scale(PROVIDER, 1)  # stopped (an outage): start it again, as the Docker tier does
            want = (base[key].get("spec") or {}).get("selector")
            if obj["kind"] == "Service" and (obj.get("spec") or {}).get("selector") != want:
                # made before canaries had a track of their own: select the stable track only
                self.api.patch("Service", obj["metadata"]["name"], {"spec": {"selector": want}})
        waits.wait_available(self.api, PROVIDER, 1, self.setup_timeout_s, self.api_poll_s, "starting the provider")
        return self

    def _ensure_namespace(self) -> None:
        ns = self.api.read_namespace()
        if ns and (ns.get("status") or {}).get("phase") == "Terminating":  # reset() right after down()
            until(lambda: True if self.api.read_namespace() is None else None, timeout_s=180, interval_s=1.0,
                  what=f"namespace {self.namespace} being deleted",
                  on_timeout=lambda: InfrastructureError(f"namespace {self.namespace} is still being deleted"))
            ns = None
        if ns is None:
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": self.namespace, "labels": {**labels.for_sandbox(self.id, "namespace"), **PSA_LABELS}}}
            try:
                self.api.create_namespace(body)
            except KubeApiError as e:
                if e.code != 403:
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
            if e.code != 409:  # made by a concurrent up(): adopt it if it is ours
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
            until(lambda: True if self.api.read("Job", name) is None else None, timeout_s=60,
                  interval_s=self.api_poll_s, what=f"Job {name} going away",
                  on_timeout=lambda: InfrastructureError(f"Job {name} is not going away"))
            existing = None
        if existing is None:
            self.api.create(job)
        done = waits.wait_job(self.api, name, self.setup_timeout_s, self.api_poll_s, "seeding the data volume")
        if waits.job_state(done) == "failed":
            out = waits.job_output(self.api, name)
            raise InfrastructureError(f"seeding the data volume failed: {ro.describe_conditions(done)};"
                                      f" {waits.job_error(out)}", fix="run `labkit sandbox up` again")

    def down(self) -> list[str]:
        for proxy in [self._proxy, *self._pod_proxies.values()]:
            if proxy is not None:
                proxy.close()
        self._proxy = None
        self._pod_proxies.clear()
        self._close_monitoring_proxies()
        removed = []
        for kind in OWNED_KINDS:
            for obj in self.api.list(kind, labels.kube_selector(self.id)):
                name = obj["metadata"]["name"]
                if labels.is_ours(obj["metadata"].get("labels"), self.id) and self.api.delete(kind, name):
                    removed.append(f"{kind.lower()}/{name}")
        removed += self._remove_monitoring_rbac()
        ns = self.api.read_namespace()
        ns_labels = (ns or {}).get("metadata", {}).get("labels")
        if ns and labels.is_ours(ns_labels, self.id) and "labkit.dev/cohort" not in ns_labels:
            self.api.delete_namespace()
            removed.append(f"namespace/{self.namespace}")
        return removed

    def reset(self) -> None:
        self.down()
        selector = labels.kube_selector(self.id)
        until(lambda: True if not (self.api.list("Pod", selector) or self.api.list(
            "PersistentVolumeClaim", selector)) else None, timeout_s=180, interval_s=1.0,
            what="the old sandbox's pods and volume being deleted",
            on_timeout=lambda: InfrastructureError("the old sandbox's pods and volume are still being deleted"))
        self.up()

    def preflight(self) -> None:
        self.api.ping()
        self._require_image(self.settings.images.default)

    def foreign_objects(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Objects in the sandbox's namespace that the kit did not label (an instructor's)."""
        snap: dict[str, dict[str, dict[str, Any]]] = {}
        if self.api.read_namespace() is None:
            return snap
        for kind in FOREIGN_KINDS:
            for obj in self.api.list(kind, ""):
                meta = obj["metadata"]
                if labels.is_ours(meta.get("labels")):
                    continue
                entry = {"name": meta["name"], "created": meta.get("creationTimestamp") or "",
                         "resourceVersion": meta.get("resourceVersion") or ""}
                if kind == "Pod":
                    status = obj.get("status") or {}
                    entry.update(status=status.get("phase") or "", started=status.get("startTime") or "",
                                 restarts=sum(int(cs.get("restartCount") or 0)
                                              for cs in status.get("containerStatuses") or []))
                snap.setdefault(kind.lower() + "s", {})[meta.get("uid") or meta["name"]] = entry
        return snap

    # --- rollouts (the rules are sandbox.spec's; ``Rollouts`` acts) -------------------------
    @property
    def rollouts(self) -> Rollouts:
        return Rollouts(self.api, self.settings, self._image, lambda: self._base()[("Deployment", ro.MAIN)],
                        self.api_poll_s)

    def _revision_facts(self) -> list[RevisionFacts]:
        return self.rollouts.facts()

    def _require_image(self, image: str) -> None:
        """Refuse a kit image no node holds when the cluster has nowhere to pull it from (kind
        before `labkit cluster load-image`). Unknown when the nodes are not readable or report
        a truncated list; a pod that cannot get its image then fails the rollout at once."""
        if not self._is_kit_image(image) or self.settings.images.registry:
            return
        held = self.api.node_images()
        if held is None or len(held) >= NODE_MAX_IMAGES:
            return
        if not {image, f"docker.io/{image}", f"docker.io/library/{image}"} & held:
            raise waits.ImageNotInCluster(image, "no node of the cluster holds it")

    def _roll_out(self, spec: DeploySpec, cause: str, rollback_of: int | None, wait: bool) -> Revision:
        if not self._is_up():
            raise SandboxNotUp(self.id)
        return self.rollouts.roll_out(spec, cause, rollback_of, wait)

    def wait_for_rollout(self) -> Revision:
        return self.rollouts.wait_current()

    def revision_endpoints(self, revision: int) -> list[str]:
        """One local URL per running pod of the revision (canary or stable), each through the
        API server's pod proxy."""
        known = [r.number for r in self.history()]
        if revision not in known:
            raise UnknownChoice("revision", revision, known)
        urls = []
        for pod in self.rollouts.pods(revision):
            if (pod.get("status") or {}).get("phase") != "Running":
                continue
            name = pod["metadata"]["name"]
            if name not in self._pod_proxies:
                self._pod_proxies[name] = ServiceProxy(self.api, name, 0, target=f"pods/{name}:{API_PORT}")
            urls.append(self._pod_proxies[name].url)
        return urls

    # --- observation ------------------------------------------------------------------
    def _components(self) -> list[Component]:
        return [kpods.component(p) for p in self.api.list("Pod", labels.kube_selector(self.id))
                if labels.is_ours(p["metadata"].get("labels"), self.id)]

    def logs(self, revision: int | None = None, tail: int = 200, level: str | None = None,
             request_id: str | None = None) -> str:
        history = self.history()
        if revision is None:
            live = serving_revision(history)
            revision = live.number if live else (history[-1].number if history else None)
        elif revision not in [r.number for r in history]:
            raise UnknownChoice("revision", revision, [r.number for r in history])
        if revision is None:
            return ""
        pods = self.rollouts.pods(revision)
        if pods:
            return filter_logs("\n".join(f"==> {p['metadata']['name']} <==\n"
                                          + self.api.pod_log(p["metadata"]["name"], tail=tail) for p in pods),
                               level, request_id)
        kept = [ro.annotations(rs).get(ro.LAST_LOGS, "") for rs in self.rollouts.objects().rss_of(revision)]
        return filter_logs("\n".join(_tail_sections(text, tail) for text in kept if text), level, request_id)

    # --- in-place changes (fault primitives) ----------------------------------------------
    def _serving_pods(self) -> tuple[Revision | None, list[dict[str, Any]]]:
        live = serving_revision(self.history())
        return live, (self.rollouts.pods(live.number, ro.STABLE) if live else [])

    def restart_serving(self) -> None:
        """Delete the serving revision's pods (as a node reboot would); return once the
        replacements are ready, crashed, or answer /readyz 503 (bounded, never raises)."""
        live, pods = self._serving_pods()
        if live is None:
            return
        old = set()
        for pod in pods:
            self.api.delete("Pod", pod["metadata"]["name"])
            old.add(pod["metadata"]["name"])

        def settled() -> bool | None:
            fresh = [p for p in self.rollouts.pods(live.number, ro.STABLE) if p["metadata"]["name"] not in old]
            return True if len(fresh) >= live.spec.replicas and waits.pods_settled(self.api, fresh) else None

        try:
            until(settled, timeout_s=self.settings.rollout.progress_deadline_s, interval_s=self.api_poll_s,
                  what="the serving replicas restarting")
        except WaitTimeout:
            pass  # they keep starting; readiness tells the rest

    def throttle_serving(self, cpus: float | None) -> None:
        """In-place pod resize of the serving pods' CPU limit (no new revision, no restart);
        ``None`` gives them back what their revision's template says."""
        cores = parse_cpus(cpus) if cpus is not None else None  # bad input fails before anything changes
        live, pods = self._serving_pods()
        if live is None or not pods:
            return
        objs = self.rollouts.objects()
        template = ro.container_resources(ro.template_of(objs.main_rs(live.number) or objs.main or {}))
        if cores is None:
            resources = template
            cores = kpods.live_cpus({"spec": {"containers": [{"name": ro.CONTAINER, "resources": template}]}})
        else:
            resources = ro.cpu_resources(template, cores)
        for pod in pods:
            self._resize(pod, resources)
        names = {p["metadata"]["name"] for p in pods}

        def applied() -> bool | None:
            verdicts = [kpods.resized(p, cores) for p in self.rollouts.pods(live.number, ro.STABLE)
                        if p["metadata"]["name"] in names]
            refused = [v for v in verdicts if v not in (None, "done")]
            if refused:
                raise InfrastructureError(f"the kubelet refused the in-place resize: {refused[0]}",
                                          fix="free CPU on the node, or ask for a smaller change")
            return True if all(v == "done" for v in verdicts) else None

        until(applied, timeout_s=60, interval_s=self.api_poll_s, what=f"resizing revision {live.number} in place")

    def _resize(self, pod: dict[str, Any], resources: dict[str, Any]) -> None:
        name = pod["metadata"]["name"]
        try:
            self.api.resize(name, kpods.resize_patch(pod, resources))
        except KubeApiError as e:
            if e.code != 404 or self.api.read("Pod", name) is None:
                if e.code == 404:
                    return  # the pod went away meanwhile (a restart): its replacement runs the template
                raise
            raise InfrastructureError(f"this cluster has no in-place pod resize ({e.message})",
                                      fix="use Kubernetes 1.33 or newer (kind: a recent node image)") from e


def _tail_sections(text: str, tail: int) -> str:
    """The last ``tail`` lines of each ``==> pod <==`` section of kept logs."""
    out, section = [], []
    for line in text.splitlines():
        if line.startswith("==> ") and line.endswith(" <=="):
            out += section[-tail:] if tail else section
            out.append(line)
            section = []
        else:
            section.append(line)
    out += section[-tail:] if tail else section
    return "\n".join(out)
