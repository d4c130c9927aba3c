"""A fake Kubernetes cluster for the kube tier: kmock's API emulator (it stores what the real
``kubernetes`` client creates, and applies JSON and merge patches) plus, behind it, the
controllers and kubelet a real cluster runs, small enough to read.

Two ways in, both fixtures of ``tests/conftest.py``:

    async def test_x(kube_sb, fake):       # in the test's event loop (kmock's own fixture)
        await run(kube_sb.up)               # sandbox calls are synchronous: run them in a thread
        fake.images.discard(DEFECT)         # knobs: see FakeCluster's attributes

    def test_y(kube_cluster):              # served from a thread of its own: a plain sync test,
        sb = kube_cluster.sandbox()         # so one test body can run against both tiers
        sb.up()
        kube_cluster.sync(lambda c: c.all("pods"))   # read the cluster in its own thread

What runs behind the API (``tests.kubecontrollers``, after every write and when a progress
deadline falls due):

* Deployment controller: a ReplicaSet per pod template (``pod-template-hash``), Kubernetes
  revision numbers, rolling update (the new ReplicaSet at full scale at once, the old ones to 0
  once it is available), status with ``observedGeneration`` and the ``Available`` and
  ``Progressing`` conditions, ``ProgressDeadlineExceeded`` after ``progressDeadlineSeconds``.
* ReplicaSet controller and garbage collector: pods to ``spec.replicas``; ReplicaSets of
  deleted Deployments and pods of deleted ReplicaSets go.
* API server: ``resourceVersion`` on every write, a 409 for a stale one, ``generation`` on a
  spec change, the ``resize`` subresource (applied at once), nodes listing ``images``.
* Kubelet (``tests.kubeworkload``): a pod's container behaves as the model API would for its
  spec: the defect image crashes (exit code 3), a model/index mismatch or a missing index
  runs but is not ready (the model API's own ``/readyz`` reason), an image no node holds is
  ``ErrImageNeverPull``; pods answer HTTP through the pod proxy and, when ready and selected
  by the Service's selector, through the service proxy, and count what they served.
* Jobs finish at once with the output the data volume would give (``ls``, ``list-indexes``,
  ``build-index``...; ``job_out`` / ``job_fail`` add answers).
"""

from __future__ import annotations

import asyncio
import functools
import contextlib
import copy
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import kmock as km

from kubecontrollers import ApiWrites, Controllers, iso, meta, owned_by, ready, selected
from kubeworkload import DEFECT_IMAGE, MONITORING_IMAGE, DataVolume, Workload

NS, SID = "labkit-t1", "t1"
VERSION = {"major": "1", "minor": "33", "gitVersion": "v1.33.1", "gitCommit": "8adc0f041b8e7ad1d30e29cc59c6ae7a15e19828",
           "gitTreeState": "clean", "buildDate": "2025-05-15T08:19:08Z", "goVersion": "go1.24.2", "compiler": "gc",
           "platform": "linux/amd64"}
GROUPS = {"configmaps": "", "persistentvolumeclaims": "", "services": "", "pods": "", "events": "",
          "serviceaccounts": "", "deployments": "apps", "replicasets": "apps", "jobs": "batch",
          "roles": "rbac.authorization.k8s.io", "rolebindings": "rbac.authorization.k8s.io"}
R = {plural: km.resource(group, "v1", plural) for plural, group in GROUPS.items()}
COMPONENT = "app.kubernetes.io/component"
Obj = dict[str, Any]


class FakeCluster(ApiWrites, Controllers):
    """The controllers behind kmock's emulator. Knobs (plain attributes):

    * ``images``: image names the node holds; ``nodes_readable``: whether the account may
      list nodes (a cohort trainee may not);
    * ``refuse(plural, error, times)``: the API server refuses the next writes of a kind;
    * ``quota_pods``: the ResourceQuota's pod limit (the ReplicaSet controller cannot create more);
    * ``outcome``: force every new model API pod to ``"crash"``, ``"unready"`` or ``"noimage"``;
    * ``job_out`` / ``job_fail``: output (or failure) of a ``modelapi`` subcommand's Job;
    * ``image_missing``: the Jobs' pods cannot get their image (set-up fails);
    * ``provider_crashes``: the provider's pods crash-loop;
    * ``resize_refused``: the kubelet reports in-place resizes ``Infeasible``;
    * ``exec_allowed``: whether ``pods/exec`` works (kmock serves no websockets, so the exec the
      kit reads the data volume with is answered at the client: ``exec_read``, in ``execs``);
    * ``data``: the data volume (snapshots and index manifests);
    * ``workloads``: pod name -> ``Workload`` (what each pod served: ``served[route]``).
    """

    def __init__(self, kmock: Any, default_image: str = "labkit/modelapi:1.0.0") -> None:
        self.k = kmock
        self.images: set[str] = {default_image, DEFECT_IMAGE, MONITORING_IMAGE}
        self.nodes_readable = True
        self.quota_pods: int | None = None
        self.answers: dict[str, Callable[[Any], tuple[int, Any]]] = {}
        """Services whose proxy a test answers itself: name -> fn(request) -> (status, payload)."""
        self._refusals: dict[str, list[Exception]] = {}
        self._rs_failures: dict[str, str] = {}
        self.outcome = ""
        self.job_out: dict[str, str] = {}
        self.job_fail: dict[str, str] = {}
        self.image_missing = self.provider_crashes = self.resize_refused = False
        self.exec_allowed = True
        self.execs: list[list[str]] = []
        self.data = DataVolume()
        self.provider: Obj = {"mode": "ok", "delay_s": 0.0}
        self.pool: Obj = {"slots": 0, "service_ms": 0.0, "busy": 0, "queued": 0}  # the provider's accelerator pool
        self.workloads: dict[str, Workload] = {}
        self.logs: dict[str, str] = {}
        self.namespace: Obj | None = {"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": NS, "labels": {"app.kubernetes.io/managed-by": "labkit", "labkit.dev/sandbox": SID}}}
        self.rv = 100
        self._ids = itertools.count(1)
        self._rr = itertools.count()
        self._progress: dict[str, tuple[str, float]] = {}
        self._done: dict[str, tuple[str, str]] = {}
        self._deadlines: dict[str, float] = {}
        for res in R.values():
            kmock.resources[res] = {}
        self._routes()

    def _routes(self) -> None:
        """Reactions on the root, each picking its own requests: kmock checks a filtered
        reaction against its whole request log, so this keeps a long test fast. (A reaction
        that answers with ``km.Response`` keeps that status and headers for its next answers,
        hence one reaction for the text answers and one, always explicit, for the proxies.)"""
        self.k << self._logs
        self.k << self._proxies
        self.k << self._dispatch

    def _logs(self, req: Any) -> Any:
        if req.resource != R["pods"] or req.subresource != "log":
            raise NotImplementedError
        return km.Response(status=200, payload=self.logs.get(req.name, "").encode(),
                           headers={"Content-Type": "text/plain"})

    def _proxies(self, req: Any) -> Any:
        sub = req.subresource or ""
        if req.resource not in (R["pods"], R["services"]) or not sub.startswith("proxy"):
            raise NotImplementedError
        answer = self.answers.get(req.name.split(":")[0]) if req.resource == R["services"] else None
        try:
            status, payload = answer(req) if answer else \
                (self._service_proxy if req.resource == R["services"] else self._pod_proxy)(req)
        except km.KubernetesError as e:
            status, payload = e.status, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                         "message": e.message, "reason": e.reason, "code": e.status}
        if isinstance(payload, bytes):
            return km.Response(status=status, payload=payload, headers={"Content-Type": "text/plain; version=0.0.4"})
        return km.Response(status=status, payload=json.dumps(payload).encode(),
                           headers={"Content-Type": "application/json"})

    def _dispatch(self, req: Any) -> Any:
        path, method = req.url.path, req.method.upper()
        if path in ("/version", "/version/"):
            return VERSION
        if path == f"/api/v1/namespaces/{NS}" and method in ("GET", "DELETE"):
            return self._get_namespace() if method == "GET" else self.namespace
        if path == "/api/v1/nodes":
            return self._nodes()
        if req.resource == R["pods"] and req.subresource == "exec":
            raise km.KubernetesError(status=403, reason="Forbidden", message="pods/exec is not served by the fake")
        plural = req.resource.plural if req.resource else None
        if plural not in R or req.namespace != NS:
            raise NotImplementedError  # the emulator's own answer (kmock's fallbacks)
        if req.action in (km.action.CREATE, km.action.UPDATE, km.action.DELETE):
            self._written(req)
        return self._serve(plural, req)

    def _serve(self, plural: str, req: Any) -> Any:
        """Reads, and the object a write leaves, from the store (kmock's own fallbacks check
        every past request: slow once a test made a few hundred)."""
        name = req.name or ((req.data or {}).get("metadata") or {}).get("name")
        if req.action == km.action.LIST:
            return {"metadata": {"resourceVersion": str(self.rv)}, "items": self.all(plural)}
        key = (R[plural], NS, name)
        obj = self.k.objects[key] if key in self.k.objects else None
        if obj is None or (obj.deleted and req.action != km.action.DELETE):
            raise km.KubernetesError(status=404, reason="NotFound", message=f'{plural} "{name}" not found')
        return copy.deepcopy(obj.last.raw)

    async def run(self) -> None:
        """The controllers' clock (the fixture runs it as a task and cancels it): writes
        reconcile at once; this only acts when a progress deadline falls due."""
        while True:
            if any(due <= time.time() for due in self._deadlines.values()):
                self.reconcile()
            await asyncio.sleep(0.02)

    # --- the object store ------------------------------------------------------------------
    def _key(self, plural: str, name: str) -> tuple[Any, str, str]:
        return (R[plural], NS, name)

    def get(self, plural: str, name: str) -> Obj | None:
        key = (R[plural], NS, name)
        obj = self.k.objects[key] if key in self.k.objects else None
        return copy.deepcopy(obj.raw) if obj is not None and not obj.deleted else None

    def all(self, plural: str) -> list[Obj]:
        return [copy.deepcopy(o.raw) for (res, ns, _), o in self.k.objects.items()
                if res == R[plural] and ns == NS and not o.deleted]

    def put(self, plural: str, obj: Obj) -> Obj:
        """Store ``obj`` as the API server would after a write (resourceVersion, uid...)."""
        self.rv += 1
        m = meta(obj)
        m.update(namespace=NS, resourceVersion=str(self.rv))
        m.setdefault("uid", f"uid-{plural}-{m['name']}-{next(self._ids)}")
        m.setdefault("creationTimestamp", iso())
        self.k.objects[R[plural], NS, m["name"]] = obj
        return obj

    def update(self, plural: str, obj: Obj) -> None:
        """Store ``obj`` only if it changed (a controller that writes nothing new bumps nothing)."""
        if obj != self.get(plural, meta(obj)["name"]):
            self.put(plural, obj)

    def delete(self, plural: str, name: str) -> None:
        key = (R[plural], NS, name)
        if key in self.k.objects and not self.k.objects[key].deleted:
            self.k.objects[key].delete()
            self.rv += 1

    def pods_of(self, owner: Obj) -> list[Obj]:
        return [p for p in self.all("pods") if owned_by(p, owner)]

    def served(self, pod: str, route: str = "/v1/search") -> int:
        return self.workloads[pod].served[route]

    def exec_read(self, api: Any, pods: list[Obj], container: str, cmd: list[str]) -> str | None:
        """``sandbox._kube.waits.exec_read`` on this cluster: stdout of ``cmd`` in the first
        ready pod, or None (no ready pod, exec not allowed, no output)."""
        if not self.exec_allowed or not any(ready(p) for p in pods):
            return None
        self.execs.append(list(cmd))
        out = self.data.run(cmd, self.job_out)
        return out if out.strip() else None

    def provider_mode(self) -> str:
        """What a search's rerank hop gets: ``ok``, ``timeout`` (slow), ``error`` (no provider)."""
        up = [p for p in self.all("pods") if (meta(p).get("labels") or {}).get(COMPONENT) == "provider" and ready(p)]
        if not up:
            return "error"
        return {"ok": "ok", "slow": "timeout"}.get(self.provider.get("mode", "ok"), "error")

    # --- the API server --------------------------------------------------------------------------
    def _get_namespace(self) -> Obj:
        if self.namespace is None:
            raise km.KubernetesError(status=404, reason="NotFound", message=f'namespaces "{NS}" not found')
        return self.namespace

    def _nodes(self) -> Obj:
        if not self.nodes_readable:
            raise km.KubernetesError(status=403, reason="Forbidden", message='nodes is forbidden: User "alice"'
                                     ' cannot list resource "nodes" in API group "" at the cluster scope')
        names = [{"names": [f"docker.io/{i}"], "sizeBytes": 1} for i in sorted(self.images)]
        return {"kind": "NodeList", "apiVersion": "v1", "metadata": {},
                "items": [{"metadata": {"name": "labkit-control-plane"}, "status": {"images": names}}]}

    def refuse(self, plural: str, error: Exception, times: int = 1) -> None:
        """The next ``times`` writes (create, patch, delete) of ``plural`` get ``error``; the
        emulator's stored change is undone, as if the API server had refused it."""
        self._refusals.setdefault(plural, []).extend([error] * times)

    def _written(self, req: Any) -> None:
        """After kmock stored a write: stamp it like the API server, then run the controllers."""
        plural = req.resource.plural if req.resource else None
        if plural in R and req.namespace == NS and not (req.subresource or "").startswith("proxy"):
            name = req.name or ((req.data or {}).get("metadata") or {}).get("name")
            if self._refusals.get(plural) and name:
                self._undo(plural, name, req)
                raise self._refusals[plural].pop(0)
            if req.action != km.action.DELETE and name:
                self._stamp(plural, name, req)
            self.reconcile()

    # --- proxies ---------------------------------------------------------------------------------
    def _service_proxy(self, req: Any) -> Any:
        name = req.name.split(":")[0]
        service = self.get("services", name)
        if service is None:
            raise km.KubernetesError(status=404, reason="NotFound", message=f'services "{name}" not found')
        selector = service["spec"].get("selector") or {}
        endpoints = [p for p in self.all("pods") if selected(p, selector) and ready(p)]
        if not endpoints:
            raise km.KubernetesError(status=503, reason="ServiceUnavailable",
                                     message=f'no endpoints available for service "{req.name}"')
        pod = endpoints[next(self._rr) % len(endpoints)]
        return self._answer(pod, req)

    def _pod_proxy(self, req: Any) -> Any:
        pod = self.get("pods", req.name.split(":")[0])
        if pod is None or (pod.get("status") or {}).get("phase") != "Running":
            raise km.KubernetesError(status=503, reason="ServiceUnavailable", message=(
                f"error trying to reach service: dial tcp 10.244.0.9:8080: connect: connection refused"))
        return self._answer(pod, req)

    def _answer(self, pod: Obj, req: Any) -> Any:
        workload = self.workloads.get(meta(pod)["name"])
        path = "/" + (req.subresource or "proxy").split("/", 1)[1] if "/" in (req.subresource or "") else "/"
        if workload is None or workload.state in ("crash", "noimage"):
            raise km.KubernetesError(status=503, reason="ServiceUnavailable",
                                     message="error trying to reach service: connection refused")
        return workload.http(req.method.upper(), path, req.data, self)

def kube_sandbox(url: str, progress_deadline_s: float = 1.0, **kube: str) -> Any:
    """A ``KubeSandbox`` (sandbox ``t1``, namespace ``labkit-t1``) talking to the fake at
    ``url`` through the real ``kubernetes`` client; ``kube`` changes ``KubeSettings``."""
    from dataclasses import replace

    from kubernetes import client

    from sandbox._kube.backend import KubeSandbox
    from sandbox.settings import RolloutSettings, Settings

    cfg = client.Configuration()
    cfg.host, cfg.retries = url.rstrip("/"), 0
    settings = Settings(backend="kube", sandbox_id=SID, rollout=RolloutSettings(progress_deadline_s=progress_deadline_s))
    if kube:
        settings = replace(settings, kube=replace(settings.kube, **kube))
    sb = KubeSandbox(settings, api_client=client.ApiClient(cfg))
    sb.api_poll_s = 0.02
    return sb


class ThreadedCluster:
    """A ``FakeCluster`` served from an event loop in a thread of its own, for synchronous
    tests: ``sandbox()`` makes a sandbox on it, ``sync(fn)`` runs ``fn(cluster)`` in the
    cluster's thread (its objects change there), ``fake`` is the cluster for its knobs."""

    def __init__(self, fake: FakeCluster, loop: asyncio.AbstractEventLoop, url: str) -> None:
        self.fake, self.loop, self.url = fake, loop, url
        self.made: list[Any] = []

    def sandbox(self, progress_deadline_s: float = 1.0, **kube: str) -> Any:
        sb = kube_sandbox(self.url, progress_deadline_s, **kube)
        self.made.append(sb)
        return sb

    def sync(self, fn: Callable[[FakeCluster], Any]) -> Any:
        async def call() -> Any:
            return fn(self.fake)

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout=30)


@contextlib.contextmanager
def threaded_cluster() -> Iterator[ThreadedCluster]:
    """Start kmock's emulator and server and the fake's controllers in a thread; stop them."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="kubefake", daemon=True)
    thread.start()
    stack = contextlib.AsyncExitStack()

    async def start() -> tuple[FakeCluster, str, asyncio.Task]:
        kmock = await stack.enter_async_context(km.KubernetesEmulator())
        await stack.enter_async_context(km.Server(kmock))
        fake = FakeCluster(kmock)
        return fake, str(kmock.url), asyncio.create_task(fake.run())

    fake, url, task = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    cluster = ThreadedCluster(fake, loop, url)
    try:
        yield cluster
    finally:
        for sb in cluster.made:
            for proxy in [sb._proxy, *sb._pod_proxies.values()]:
                if proxy is not None:
                    proxy.close()

        async def stop() -> None:
            task.cancel()
            await stack.aclose()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


async def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a (synchronous) sandbox method in a worker thread: the fake cluster answers in
    the test's event loop, which must keep running meanwhile."""
    return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))
