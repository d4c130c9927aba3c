"""The controllers behind the fake cluster's API (``tests.kubefake``): what kube-controller-
manager and the kubelet do after a write, reduced to what the kit's rollouts depend on.

* Deployment controller: a ReplicaSet per pod template (``pod-template-hash``), Kubernetes
  revision numbers (an old template coming back takes the next one), rolling update (the new
  ReplicaSet at full scale at once, the old ones to 0 once it is available), status with
  ``observedGeneration`` and the ``Available`` / ``Progressing`` conditions, including
  ``ProgressDeadlineExceeded`` after ``progressDeadlineSeconds`` and ``ReplicaFailure`` when
  the quota refuses pods.
* ReplicaSet controller: pods to ``spec.replicas``, each with the ``Workload`` its spec gets
  (``tests.kubeworkload.classify``); garbage collector: ReplicaSets of deleted Deployments
  and pods of deleted owners go. Jobs run at once (``job_pod``).

``ApiWrites`` is what the API server does to a write besides storing it: a 409 for a stale
``resourceVersion``, ``generation`` on a spec change, the ``resize`` subresource applied, a
Job's pod started, a refusal undone. Both are mixed into ``FakeCluster``; they rely on its
store (``all``, ``get``, ``put``, ``update``, ``delete``, ``pods_of``) and knobs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from typing import Any

import kmock as km

from kubeworkload import classify, job_pod

K8S_REVISION = "deployment.kubernetes.io/revision"
HASH = "pod-template-hash"
Obj = dict[str, Any]


def iso(when: float | None = None) -> str:
    when = time.time() if when is None else when
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + f".{int(when * 1000) % 1000:03d}Z"


def meta(obj: Obj) -> Obj:
    return obj.setdefault("metadata", {})


def owned_by(obj: Obj, owner: Obj) -> bool:
    return any(o.get("uid") == meta(owner).get("uid") for o in meta(obj).get("ownerReferences") or [])


class ApiWrites:  # noqa: B903 - a mixin of FakeCluster
    """The API server's side of a write that kmock's emulator has stored."""

    def _undo(self, plural: str, name: str, req: Any) -> None:
        obj = self.k.objects[self._key(plural, name)]
        history = [v for v in obj.history if v is not None]
        if req.action == km.action.CREATE:
            obj.delete()
        elif req.action == km.action.DELETE:
            obj.create(copy.deepcopy(obj.last.raw))
        elif len(history) > 1:
            self.k.objects[self._key(plural, name)] = copy.deepcopy(history[-2].raw)

    def _stamp(self, plural: str, name: str, req: Any) -> None:
        obj = self.k.objects[self._key(plural, name)]
        before = obj.history[-2] if len(obj.history) > 1 and obj.history[-2] is not None else None
        now = copy.deepcopy(obj.raw)
        meta(now).setdefault("uid", f"uid-{plural}-{name}-{next(self._ids)}")
        if before is not None and req.action == km.action.UPDATE and not req.subresource:
            want = _precondition(req.data)
            if want is not None and want != (before.raw.get("metadata") or {}).get("resourceVersion"):
                self.k.objects[self._key(plural, name)] = copy.deepcopy(before.raw)
                raise km.KubernetesError(status=409, reason="Conflict", message=(
                    f'Operation cannot be fulfilled on {plural} "{name}": the object has been modified;'
                    " please apply your changes to the latest version and try again"))
        if plural == "deployments":
            old_spec = (before.raw if before is not None else {}).get("spec")
            generation = (meta(now).get("generation") or 0) + (1 if now.get("spec") != old_spec else 0)
            meta(now)["generation"] = max(1, generation)
        if plural == "pods" and req.subresource == "resize":
            self._resize(now)
        if plural == "jobs" and req.action == km.action.CREATE:
            self._job(now)
        self.put(plural, now)

    def _resize(self, pod: Obj) -> None:
        if self.resize_refused:
            pod.setdefault("status", {})["conditions"] = [{"type": "PodResizePending", "status": "True",
                                                           "reason": "Infeasible", "message": "Node didn't have"
                                                           " enough capacity: cpu, requested: 64000"}]
            return
        by_name = {c["name"]: c for c in pod["spec"]["containers"]}
        for cs in pod.get("status", {}).get("containerStatuses") or []:
            cs["resources"] = copy.deepcopy(by_name[cs["name"]].get("resources") or {})


class Controllers:  # noqa: B903 - a mixin of FakeCluster
    """Deployment, ReplicaSet, garbage collection and Job controllers."""

    def reconcile(self) -> None:
        """Run the controllers until they have nothing more to change (a few rounds: the
        Deployment scales the old ReplicaSet down once the new one's pods are ready)."""
        for _ in range(6):
            before = self.rv
            for dep in self.all("deployments"):
                self._deployment(dep)
            self._collect_garbage()
            for rs in self.all("replicasets"):
                self._replicaset(rs)
            for dep in self.all("deployments"):
                self._deployment_status(dep)
            if self.rv == before:
                return

    def _deployment(self, dep: Obj) -> None:
        name, want = meta(dep)["name"], dep["spec"].get("replicas", 1)
        template = copy.deepcopy(dep["spec"]["template"])
        (template.get("metadata") or {}).get("labels", {}).pop(HASH, None)
        pod_hash = hashlib.sha1(json.dumps(template, sort_keys=True).encode()).hexdigest()[:8]
        mine = [rs for rs in self.all("replicasets") if owned_by(rs, dep)]
        top = max((int(meta(rs).get("annotations", {}).get(K8S_REVISION, 0)) for rs in mine), default=0)
        rs = next((r for r in mine if meta(r)["name"] == f"{name}-{pod_hash}"), None)
        if rs is None:
            template["metadata"].setdefault("labels", {})[HASH] = pod_hash
            rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
                "name": f"{name}-{pod_hash}", "labels": dict(template["metadata"]["labels"]),
                "annotations": {K8S_REVISION: str(top + 1)},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                                     "uid": meta(dep)["uid"], "controller": True}]},
                "spec": {"replicas": want, "template": template, "selector": {"matchLabels": {
                    **dep["spec"]["selector"]["matchLabels"], HASH: pod_hash}}}}
            self._progress[name] = (meta(rs)["name"], time.time())
        elif meta(rs)["annotations"].get(K8S_REVISION) != meta(dep).get("annotations", {}).get(K8S_REVISION):
            meta(rs)["annotations"][K8S_REVISION] = str(top + 1) if rev(rs) != top else str(top)
            self._progress[name] = (meta(rs)["name"], time.time())
        cause = (meta(dep).get("annotations") or {}).get("kubernetes.io/change-cause")
        if cause is not None:
            meta(rs)["annotations"]["kubernetes.io/change-cause"] = cause
        rs["spec"]["replicas"] = want
        self.update("replicasets", rs)
        meta(dep).setdefault("annotations", {})[K8S_REVISION] = meta(rs)["annotations"][K8S_REVISION]
        self.update("deployments", dep)
        if sum(ready(p) for p in self.pods_of(rs)) >= want:
            for old in mine:
                if meta(old)["name"] != meta(rs)["name"] and old["spec"].get("replicas"):
                    old["spec"]["replicas"] = 0
                    self.update("replicasets", old)

    def _collect_garbage(self) -> None:
        deployments, jobs = self.all("deployments"), self.all("jobs")
        for rs in self.all("replicasets"):
            if not any(owned_by(rs, d) for d in deployments):
                self.delete("replicasets", meta(rs)["name"])
        replicasets = self.all("replicasets")
        for pod in self.all("pods"):
            refs = meta(pod).get("ownerReferences") or []
            owners = replicasets if any(r.get("kind") == "ReplicaSet" for r in refs) else jobs
            if refs and not any(owned_by(pod, o) for o in owners):
                self.delete("pods", meta(pod)["name"])

    def _replicaset(self, rs: Obj) -> None:
        pods = sorted(self.pods_of(rs), key=lambda p: meta(p)["creationTimestamp"])
        want = rs["spec"].get("replicas") or 0
        for _ in range(want - len(pods)):
            if self.quota_pods is not None and len(self.all("pods")) >= self.quota_pods:
                self._rs_failures[meta(rs)["name"]] = (
                    f'pods "{meta(rs)["name"]}-x" is forbidden: exceeded quota: labkit-quota, requested: pods=1,'
                    f" used: pods={self.quota_pods}, limited: pods={self.quota_pods}")
                break
            pods.append(self._new_pod(rs))
        for extra in pods[want:]:
            self.delete("pods", meta(extra)["name"])
        n_ready = sum(ready(p) for p in pods[:want])
        rs["status"] = {"replicas": min(want, len(pods)), "readyReplicas": n_ready, "availableReplicas": n_ready}
        self.update("replicasets", rs)

    def _new_pod(self, rs: Obj) -> Obj:
        name = f"{meta(rs)['name']}-{next(self._ids):05x}"
        template = rs["spec"]["template"]
        config = (self.get("configmaps", "modelapi-config") or {}).get("data") or {}
        workload = classify(template["spec"], config, self)
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": name, "labels": dict(template["metadata"]["labels"]),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": meta(rs)["name"],
                                 "uid": meta(rs)["uid"], "controller": True}]},
            "spec": copy.deepcopy(template["spec"]), "status": workload.pod_status(template["spec"])}
        self.workloads[name] = workload
        self.logs[name] = workload.log
        for event in workload.events(name):
            self.put("events", event)
        return self.put("pods", pod)

    def _deployment_status(self, dep: Obj) -> None:
        name, want = meta(dep)["name"], dep["spec"].get("replicas", 1)
        mine = [rs for rs in self.all("replicasets") if owned_by(rs, dep)]
        current = next((rs for rs in mine if meta(rs)["annotations"].get(K8S_REVISION)
                        == meta(dep).get("annotations", {}).get(K8S_REVISION)), None)
        if current is None:
            return
        pods = [p for rs in mine for p in self.pods_of(rs)]
        new = self.pods_of(current)
        ready_new, ready_all = sum(map(ready, new)), sum(map(ready, pods))
        rs_name, since = self._progress.get(name, (meta(current)["name"], time.time()))
        if ready_new >= want and len(pods) == len(new) and self._done.get(name, ("",))[0] != rs_name:
            self._done[name] = (rs_name, iso())
        done = self._done.get(name, ("", ""))
        deadline = dep["spec"].get("progressDeadlineSeconds", 600)
        self._deadlines.pop(name, None)
        if done[0] != rs_name and time.time() - since <= deadline:
            self._deadlines[name] = since + deadline + 0.01
        if done[0] == rs_name:
            progressing = ("True", "NewReplicaSetAvailable", f'ReplicaSet "{rs_name}" has successfully progressed.')
        elif time.time() - since > deadline:
            progressing = ("False", "ProgressDeadlineExceeded", f'ReplicaSet "{rs_name}" has timed out progressing.')
        else:
            progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
        available = "True" if ready_all >= want else "False"
        dep["status"] = {
            "observedGeneration": meta(dep).get("generation", 1), "replicas": len(pods), "updatedReplicas": len(new),
            "readyReplicas": ready_all, "availableReplicas": ready_all,
            "conditions": [{"type": "Available", "status": available, "reason": "MinimumReplicasAvailable"},
                           {"type": "Progressing", "status": progressing[0], "reason": progressing[1],
                            "message": progressing[2], "lastUpdateTime": done[1] or iso(since)}]}
        if len(pods) > ready_all:
            dep["status"]["unavailableReplicas"] = len(pods) - ready_all
        if meta(current)["name"] in self._rs_failures:
            dep["status"]["conditions"].append({"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                                                "message": self._rs_failures[meta(current)["name"]]})
        self.update("deployments", dep)

    def _job(self, job: Obj) -> None:
        pod, log, failed = job_pod(job, self)
        if pod["status"]["phase"] != "Pending":
            job["status"] = {"conditions": [{"type": "Failed" if failed else "Complete", "status": "True"}]}
        self.put("pods", pod)
        self.logs[meta(pod)["name"]] = log


def rev(rs: Obj) -> int:
    return int(meta(rs).get("annotations", {}).get(K8S_REVISION, 0))


def selected(pod: Obj, selector: dict[str, str]) -> bool:
    have = meta(pod).get("labels") or {}
    return all(have.get(k) == v for k, v in selector.items())


def ready(pod: Obj) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return bool(statuses) and all(cs.get("ready") for cs in statuses) and not meta(pod).get("deletionTimestamp")


def _precondition(body: Any) -> str | None:
    """The resourceVersion a write says it was based on (JSON patch or merge patch)."""
    if isinstance(body, list):
        return next((op.get("value") for op in body if op.get("path") == "/metadata/resourceVersion"), None)
    if isinstance(body, dict):
        return (body.get("metadata") or {}).get("resourceVersion")
    return None
