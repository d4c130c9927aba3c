"""Contract tests of the kube backend through the real ``kubernetes`` client against kmock.

kmock's Kubernetes emulator stores what the client creates and patches (JSON patches
included). ``FakeCluster`` adds the controllers a real cluster runs behind the API: Jobs
finish with a log, Deployments roll out (a ReplicaSet per template, re-used on undo, like
the Deployment controller) or get stuck on a crashing release. The tests assert the exact
requests each operation sends (paths, verbs, patch content types and bodies) and how the
backend handles the server's 404, 409 and 422 answers.

The backend is synchronous and the emulator runs in the test's event loop, so every sandbox
call runs in a worker thread (``run``).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import re
from functools import partial
from typing import Any

import kmock as km
import pytest
from kubernetes import client

from sandbox import labels
from sandbox.errors import InfrastructureError, InvalidInput, RolloutFailed, SandboxNotUp
from sandbox.faults import active_faults, heal, inject
from sandbox._kube.backend import KubeSandbox
from sandbox._kube.api import KubeApiError
from sandbox.settings import RolloutSettings, Settings

NS = "labkit-t1"
R = {plural: km.resource(group, "v1", plural) for group, plural in [
    ("", "configmaps"), ("", "persistentvolumeclaims"), ("", "services"), ("", "pods"), ("", "events"),
    ("apps", "deployments"), ("apps", "replicasets"), ("batch", "jobs")]}
INDEXES = [{"index_version": f"{s}-{m}", "model_version": m, "corpus_snapshot": s}
           for s in ("2026-10-01", "2026-11-01") for m in ("v1", "v2")]
CRASH = '{"level":"error","msg":"defect crash-on-start: refusing to serve"}'


async def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(partial(fn, *args, **kwargs))


def ours(obj: dict, component: str | None = None) -> dict:
    obj.setdefault("metadata", {}).setdefault("labels", {}).update(labels.for_sandbox("t1", component))
    return obj


class FakeCluster:
    """The controllers behind the emulator: Jobs complete, Deployments roll out."""

    def __init__(self, kmock: Any) -> None:
        self.k = kmock
        self.outcome = "complete"  # "deadline": the new revision crashes; "unready": it runs, never ready
        self.job_out = {"list-indexes": json.dumps(INDEXES), "list-snapshots": json.dumps(["2026-10-01", "2026-11-01"]),
                        "seed": "seeded\n"}
        self.job_fail: dict[str, str] = {}
        self.image_missing = False
        self.provider_crashes = False
        self.namespace: dict | None = ours({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
                                           "namespace")
        self.rv = 100
        self.logs: dict[str, str] = {}
        for res in R.values():
            kmock.resources[res] = {}
        kmock["get /version/"] << {  # the client asks with a trailing slash
            "major": "1", "minor": "31", "gitVersion": "v1.31.2", "gitCommit": "5864a46", "gitTreeState": "clean",
            "buildDate": "2024-10-22T20:28:14Z", "goVersion": "go1.22.8", "compiler": "gc", "platform": "linux/amd64"}
        kmock[f"get /api/v1/namespaces/{NS}"] << self._get_namespace
        kmock[f"delete /api/v1/namespaces/{NS}"] << (lambda: self.namespace)
        for plural in ("configmaps", "services", "persistentvolumeclaims"):  # the server stamps every write
            kmock["post", R[plural]] << partial(self._stamp, plural)
        kmock["patch", R["configmaps"]] << partial(self._stamp, "configmaps")
        kmock["post", R["jobs"]] << self._job
        kmock["post", R["deployments"]] << self._deployment
        kmock["patch", R["deployments"], km.subresource("scale")] << self._scale
        kmock["patch", R["deployments"], km.name("modelapi")] << self._deployment
        kmock["delete", R["pods"]] << self._replace_pod
        kmock["get", re.compile(r".*/pods/[^/]+/log")] << (lambda req: self.logs.get(req.name, ""))
        kmock[f"get /api/v1/namespaces/{NS}/services/modelapi:http/proxy/readyz"] << {"ready": True}

    # --- object store helpers -------------------------------------------------------------------
    def get(self, plural: str, name: str) -> dict | None:
        key = (R[plural], NS, name)
        obj = self.k.objects[key] if key in self.k.objects else None
        return copy.deepcopy(obj.raw) if obj is not None and not obj.deleted else None

    def put(self, plural: str, obj: dict) -> dict:
        self.rv += 1
        obj["metadata"].update(namespace=NS, resourceVersion=str(self.rv))
        obj["metadata"].setdefault("uid", f"uid-{obj['metadata']['name']}")
        obj["metadata"].setdefault("creationTimestamp", f"2026-11-20T09:{self.rv // 60 % 60:02d}:{self.rv % 60:02d}Z")
        self.k.objects[R[plural], NS, obj["metadata"]["name"]] = obj
        return obj

    def all(self, plural: str) -> list[dict]:
        return [copy.deepcopy(o.raw) for (res, ns, _), o in self.k.objects.items()
                if res == R[plural] and ns == NS and not o.deleted]

    # --- controllers ------------------------------------------------------------------------------
    def _get_namespace(self) -> dict:
        if self.namespace is None:
            raise km.KubernetesError(status=404, reason="NotFound", message=f'namespaces "{NS}" not found')
        return self.namespace

    def _stamp(self, plural: str, req: Any) -> dict:
        if req.subresource:  # services/x/proxy: not a write of the object
            raise NotImplementedError
        return self.put(plural, self.get(plural, req.name or req.data["metadata"]["name"]))

    def _job(self, req: Any) -> dict:
        job = self.get("jobs", req.data["metadata"]["name"])
        cmd = job["spec"]["template"]["spec"]["containers"][0]["command"]
        sub = cmd[cmd.index("modelapi") + 1]
        failed = sub in self.job_fail
        pod_name = f"{job['metadata']['name']}-x1"
        pod_labels = {**job["spec"]["template"]["metadata"]["labels"], "job-name": job["metadata"]["name"]}
        status: dict[str, Any] = {"phase": "Failed" if failed else "Succeeded"}
        if self.image_missing:  # the kubelet cannot get the image: the Job never finishes
            image = job["spec"]["template"]["spec"]["containers"][0]["image"]
            status = {"phase": "Pending", "containerStatuses": [{
                "name": "job", "ready": False, "restartCount": 0, "image": image, "imageID": "",
                "state": {"waiting": {"reason": "ErrImageNeverPull", "message": f'Container image "{image}" is not'
                                      ' present with pull policy of Never'}}}]}
        else:
            job["status"] = {"conditions": [{"type": "Failed" if failed else "Complete", "status": "True"}]}
        self.put("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod_name, "labels": pod_labels},
                          "spec": job["spec"]["template"]["spec"], "status": status})
        self.logs[pod_name] = f"{self.job_fail[sub]}" if failed else self.job_out.get(sub, "{}")
        return self.put("jobs", job)

    def _replace_pod(self, req: Any) -> dict:
        """The ReplicaSet controller replaces a deleted pod of a Deployment."""
        pod = self.k.objects[R["pods"], NS, req.name].last.raw
        if "pod-template-hash" in pod["metadata"]["labels"]:
            self.put("pods", {**copy.deepcopy(pod), "metadata": {"name": req.name + "-new",
                                                                  "labels": pod["metadata"]["labels"]}})
        return pod

    def _scale(self, req: Any) -> dict:
        dep = self.get("deployments", req.name)
        n = req.data["spec"]["replicas"]
        dep["status"] = {"replicas": n, "availableReplicas": n, "readyReplicas": n, "updatedReplicas": n}
        self.put("deployments", dep)
        return {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": req.name, "namespace": NS},
                "spec": {"replicas": n}, "status": {"replicas": n}}

    def _deployment(self, req: Any) -> dict:
        dep = self.get("deployments", req.name or req.data["metadata"]["name"])
        if dep["metadata"]["name"] != "modelapi":
            n = 0 if self.provider_crashes else dep["spec"]["replicas"]
            dep["status"] = {"replicas": n, "availableReplicas": n, "readyReplicas": n, "updatedReplicas": n}
            if self.provider_crashes:
                self.put("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {
                    "name": "provider-1", "labels": dep["spec"]["template"]["metadata"]["labels"]},
                    "spec": {"containers": [{"name": "provider", "image": "i"}]},
                    "status": {"phase": "Running", "containerStatuses": [{
                        "name": "provider", "ready": False, "restartCount": 4, "image": "i", "imageID": "",
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                        "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}})
                self.logs["provider-1"] = "ValueError: PROVIDER_MODE='sloww' must be one of ok, slow, error\n"
            return self.put("deployments", dep)
        return self.put("deployments", self._roll(dep))

    def _roll(self, dep: dict) -> dict:
        template = copy.deepcopy(dep["spec"]["template"])
        pod_hash = hashlib.sha1(json.dumps(template, sort_keys=True).encode()).hexdigest()[:6]
        rss = self.all("replicasets")
        top = max([int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]) for rs in rss] or [0])
        rs = self.get("replicasets", f"modelapi-{pod_hash}")
        ann = dep["metadata"].setdefault("annotations", {})
        if rs is None or rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] != str(top):
            generation = (dep["metadata"].get("generation") or 0) + 1
            number, history = top + 1, []
            if rs is not None:  # re-used template: the ReplicaSet takes the next number, keeps its old ones
                old = rs["metadata"]["annotations"]
                history = [h for h in old.get("deployment.kubernetes.io/revision-history", "").split(",") if h]
                history.append(old["deployment.kubernetes.io/revision"])
            template["metadata"]["labels"]["pod-template-hash"] = pod_hash
            rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
                "name": f"modelapi-{pod_hash}", "labels": template["metadata"]["labels"],
                "annotations": {"deployment.kubernetes.io/revision": str(number),
                                "kubernetes.io/change-cause": ann.get("kubernetes.io/change-cause", ""),
                                "labkit.dev/rollback-of": ann.get("labkit.dev/rollback-of", "")},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "modelapi",
                                     "uid": dep["metadata"]["uid"] if "uid" in dep["metadata"] else "uid-modelapi",
                                     "controller": True}]},
                "spec": {"replicas": dep["spec"]["replicas"], "selector": dep["spec"]["selector"], "template": template}}
            if history:
                rs["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] = ",".join(history)
            dep["metadata"]["generation"] = generation
            ann["deployment.kubernetes.io/revision"] = str(number)
        self._status(dep, rs, pod_hash)
        return dep

    def _status(self, dep: dict, rs: dict, pod_hash: str) -> None:
        n, gen = dep["spec"]["replicas"], dep["metadata"]["generation"]
        if self.outcome == "complete":
            for old in self.all("replicasets"):
                if old["metadata"]["name"] != rs["metadata"]["name"]:
                    old["spec"]["replicas"] = 0
                    self.put("replicasets", old)
            rs["status"] = {"replicas": n, "readyReplicas": n, "availableReplicas": n}
            dep["status"] = {"observedGeneration": gen, "replicas": n, "updatedReplicas": n, "readyReplicas": n,
                             "availableReplicas": n, "conditions": [
                                 {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                                 {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                                  "message": f'ReplicaSet "modelapi-{pod_hash}" has successfully progressed.'}]}
            self.put("pods", ours({"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": f"modelapi-{pod_hash}-a", "labels": rs["metadata"]["labels"]},
                "spec": {"containers": [{"name": "modelapi", "image": "i"}]},
                "status": {"phase": "Running", "containerStatuses": [{"name": "modelapi", "ready": True,
                                                                      "image": "i", "imageID": "", "restartCount": 0}]}}))
        else:
            rs["spec"]["replicas"] = 1
            rs["status"] = {"replicas": 1, "readyReplicas": 0, "availableReplicas": 0}
            pod = f"modelapi-{pod_hash}-z"
            crash = {"restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                     "lastState": {"terminated": {"exitCode": 3, "reason": "Error"}}}
            unready = {"restartCount": 0, "state": {"running": {"startedAt": "2026-11-20T09:00:00Z"}}}
            noimage = {"restartCount": 0, "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "not present"}}}
            self.put("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "labels": rs["metadata"]["labels"]},
                              "spec": {"containers": [{"name": "modelapi", "image": "i"}]},
                              "status": {"phase": "Running", "containerStatuses": [{
                                  "name": "modelapi", "ready": False, "image": "i", "imageID": "",
                                  **{"deadline": crash, "unready": unready, "noimage": noimage}[self.outcome]}]}})
            self.logs[pod] = CRASH + "\n"
            self.put("events", {"apiVersion": "v1", "kind": "Event", "metadata": {"name": f"{pod}.1"},
                                "involvedObject": {"kind": "Pod", "name": pod}, "reason": "BackOff",
                                "message": "Back-off restarting failed container modelapi",
                                "lastTimestamp": "2026-11-20T09:01:00Z"})
            dep["status"] = {"observedGeneration": gen, "replicas": n + 1, "updatedReplicas": 1, "readyReplicas": n,
                             "availableReplicas": n, "unavailableReplicas": 1, "conditions": [
                                 {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                                 {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                  "message": f'ReplicaSet "modelapi-{pod_hash}" has timed out progressing.'}]}
            if self.outcome == "noimage":  # still within the deadline
                dep["status"]["conditions"][1].update(status="True", reason="ReplicaSetUpdated", message="progressing")
        self.put("replicasets", rs)


@pytest.fixture
def fake(kmock) -> FakeCluster:
    return FakeCluster(kmock)


@pytest.fixture
def make_sb(kmock, fake):
    def make(**kube: str) -> KubeSandbox:
        cfg = client.Configuration()
        cfg.host, cfg.retries = str(kmock.url).rstrip("/"), 0
        settings = Settings(backend="kube", sandbox_id="t1", rollout=RolloutSettings(progress_deadline_s=3.0))
        if kube:
            from dataclasses import replace

            settings = replace(settings, kube=replace(settings.kube, **kube))
        sb = KubeSandbox(settings, api_client=client.ApiClient(cfg))
        sb.api_poll_s = 0.01
        return sb

    return make


def requests(kmock, method: str, plural: str | None = None) -> list:
    return [r for r in kmock if r.method == method and (plural is None or r.resource == R[plural])]


async def deployed(make_sb, kmock) -> KubeSandbox:
    sb = make_sb()
    await run(sb.up)
    await run(sb.deploy, model="v1", change_cause="first deploy")
    return sb


# --- lifecycle ----------------------------------------------------------------------------------
async def test_up_creates_labelled_objects_in_its_namespace_then_is_idempotent(make_sb, kmock, fake):
    sb = make_sb()
    await run(sb.up)
    posts = requests(kmock, "POST")
    assert [(r.resource.plural, r.data["metadata"]["name"]) for r in posts] == [
        ("configmaps", "modelapi-config"), ("persistentvolumeclaims", "labkit-data"), ("configmaps", "labkit-state"),
        ("jobs", "labkit-seed"), ("deployments", "provider"), ("services", "provider"), ("services", "modelapi")]
    for r in posts:
        assert r.url.path.startswith(f"/api/v1/namespaces/{NS}/") or f"/namespaces/{NS}/" in r.url.path
        assert labels.is_ours(r.data["metadata"]["labels"], "t1") and r.data["metadata"]["namespace"] == NS
        template = r.data.get("spec", {}).get("template")
        if template:
            assert labels.is_ours(template["metadata"]["labels"], "t1")
    assert json.loads(posts[2].data["data"]["state.json"]) == {"faults": {}, "version": 1}
    assert [r.url.path for r in kmock if r.method == "GET"][:2] == ["/version/", f"/api/v1/namespaces/{NS}"]
    await run(sb.up)
    assert len(requests(kmock, "POST")) == len(posts) and not requests(kmock, "DELETE")
    provider = fake.get("deployments", "provider")
    provider["spec"]["replicas"] = 0  # stopped by an outage: up() starts it again, as on Docker
    fake.put("deployments", provider)
    await run(sb.up)
    [scale] = [r for r in requests(kmock, "PATCH", "deployments") if r.subresource == "scale"]
    assert (scale.name, scale.data) == ("provider", {"spec": {"replicas": 1}})


async def test_a_crashing_provider_fails_up_with_its_last_log_line(make_sb, kmock, fake):
    fake.provider_crashes = True
    with pytest.raises(InfrastructureError) as info:
        await asyncio.wait_for(run(make_sb().up), timeout=5)
    text = str(info.value)
    assert text.startswith("starting the provider: provider keeps crashing;")
    assert "CrashLoopBackOff, exited with code 1" in text and "PROVIDER_MODE='sloww'" in text
    assert f"kubectl logs -n {NS} deploy/provider --previous" in text


async def test_up_in_a_cohort_namespace_it_may_not_read(make_sb, kmock, fake):
    fake.namespace = None
    kmock[f"get /api/v1/namespaces/{NS}"] ** 5 << km.KubernetesError(status=403, reason="Forbidden", message="forbidden")
    await run(make_sb().up)
    assert requests(kmock, "POST", "deployments")


async def test_up_refuses_to_adopt_an_object_it_did_not_make(make_sb, kmock, fake):
    fake.put("configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "modelapi-config"}, "data": {}})
    with pytest.raises(InfrastructureError, match="ConfigMap modelapi-config .* was not made by sandbox t1"):
        await run(make_sb().up)
    assert not requests(kmock, "POST") and not requests(kmock, "PATCH") and not requests(kmock, "DELETE")


async def test_a_missing_image_fails_up_at_once_with_the_command_that_fixes_it(make_sb, kmock, fake):
    fake.image_missing = True
    with pytest.raises(InfrastructureError) as info:
        await asyncio.wait_for(run(make_sb().up), timeout=5)
    assert str(info.value).startswith("seeding the data volume: image labkit/modelapi:1.0.0 is not available in"
                                      " the cluster (ErrImageNeverPull) (fix: load it into kind with `labkit"
                                      " cluster load-image`")


async def test_no_system_namespace_and_no_other_namespace(make_sb, kmock):
    with pytest.raises(InvalidInput, match="not a sandbox namespace"):
        make_sb(namespace="kube-system")
    sb = make_sb()
    with pytest.raises(InvalidInput, match="refusing to act in namespace other"):
        await run(sb.api.create, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "other"}})
    assert not requests(kmock, "POST")


async def test_before_up_everything_says_sandbox_not_up(make_sb, kmock, fake):
    sb = make_sb()
    for call in (sb.deploy, sb.state, lambda: sb.endpoint):
        with pytest.raises(SandboxNotUp, match="labkit sandbox up"):
            await run(call)
    st = await run(sb.status)
    assert not st.up and "no Service modelapi" in st.reason
    assert await run(sb.history) == []


async def test_down_deletes_only_labelled_objects_of_this_sandbox(make_sb, kmock, fake):
    sb = make_sb()
    await run(sb.up)
    fake.put("configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "foreign"}})
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other-sandbox"}}
    other["metadata"]["labels"] = labels.for_sandbox("t2")
    fake.put("configmaps", other)
    removed = await run(sb.down)
    deleted = {(r.resource.plural if r.resource else "", r.name) for r in requests(kmock, "DELETE")}
    assert ("configmaps", "foreign") not in deleted and ("configmaps", "other-sandbox") not in deleted
    assert {"deployment/provider", "configmap/labkit-state", "persistentvolumeclaim/labkit-data",
            "service/modelapi", "job/labkit-seed", f"namespace/{NS}"} <= set(removed)
    assert all(r.params.get("propagationPolicy") == "Background" for r in requests(kmock, "DELETE") if r.resource
               and r.resource.plural)


# --- deploy, history, rollback ----------------------------------------------------------------------
async def test_first_deploy_creates_the_deployment_with_the_spec_in_the_pod_template(make_sb, kmock, fake):
    sb = await deployed(make_sb, kmock)
    [post] = [r for r in requests(kmock, "POST", "deployments") if r.data["metadata"]["name"] == "modelapi"]
    spec = post.data["spec"]
    env = {e["name"]: e.get("value") for e in spec["template"]["spec"]["containers"][0]["env"]}
    assert env["MODEL_VERSION"] == "v1" and env["INDEX_NAME"] == "2026-11-01-v1"
    assert json.loads(spec["template"]["metadata"]["annotations"]["labkit.dev/spec"])["index"] == "2026-11-01-v1"
    assert spec["progressDeadlineSeconds"] == 3 and spec["revisionHistoryLimit"] == 10
    assert spec["selector"]["matchLabels"] == {"app.kubernetes.io/component": "modelapi", "labkit.dev/sandbox": "t1"}
    assert post.data["metadata"]["annotations"]["kubernetes.io/change-cause"] == "first deploy"
    [rev] = await run(sb.history)
    assert (rev.number, rev.state, rev.spec.model, rev.change_cause) == (1, "serving", "v1", "first deploy")
    # indexes and snapshots were read by one-off Jobs (no ready pod to exec in), then deleted
    assert [r.data["spec"]["template"]["spec"]["containers"][0]["command"][-2:]
            for r in requests(kmock, "POST", "jobs")][1:] == [["list-indexes", "--json"], ["modelapi", "list-snapshots"]]


async def test_deploy_sends_a_json_patch_guarded_by_the_resource_version(make_sb, kmock, fake):
    sb = await deployed(make_sb, kmock)
    rv = fake.get("deployments", "modelapi")["metadata"]["resourceVersion"]
    rev = await run(sb.deploy, model="v2", replicas=2, top_k=3, change_cause="try v2")
    [patch] = requests(kmock, "PATCH", "deployments")
    assert patch.url.path == f"/apis/apps/v1/namespaces/{NS}/deployments/modelapi"
    assert patch.headers["Content-Type"] == "application/json-patch+json"
    ops = patch.data
    assert ops[0] == {"op": "replace", "path": "/metadata/resourceVersion", "value": rv}
    assert [(o["op"], o["path"]) for o in ops[1:]] == [
        ("replace", "/spec/template"), ("replace", "/spec/replicas"), ("replace", "/spec/progressDeadlineSeconds"),
        ("replace", "/spec/revisionHistoryLimit"), ("add", "/metadata/annotations")]
    env = {e["name"]: e["value"] for e in ops[1]["value"]["spec"]["containers"][0]["env"] if "value" in e}
    assert (env["MODEL_VERSION"], env["INDEX_NAME"], env["TOP_K"]) == ("v2", "2026-11-01-v2", "3")
    assert ops[2]["value"] == 2 and ops[5]["value"]["kubernetes.io/change-cause"] == "try v2"
    assert (rev.number, rev.state, rev.spec.replicas, rev.spec.config) == (2, "serving", 2, {"top_k": "3"})
    assert [(r.number, r.state) for r in await run(sb.history)] == [(1, "superseded"), (2, "serving")]


async def test_failed_rollout_raises_with_conditions_events_and_logs(make_sb, kmock, fake):
    sb = await deployed(make_sb, kmock)
    fake.outcome = "deadline"
    with pytest.raises(RolloutFailed) as info:
        await run(sb.deploy, image="labkit/modelapi:1.1.0-rc1", change_cause="release 1.1.0-rc1")
    e = info.value
    assert (e.revision, e.serving) == (2, 1)
    for words in ("ProgressDeadlineExceeded", "has timed out progressing", "CrashLoopBackOff",
                  "exited with code 3", "BackOff: Back-off restarting failed container"):
        assert words in e.reason
    assert CRASH in e.logs
    marks = [r for r in requests(kmock, "PATCH", "replicasets")]
    assert marks[-1].headers["Content-Type"] == "application/merge-patch+json"
    assert "ProgressDeadlineExceeded" in marks[-1].data["metadata"]["annotations"]["labkit.dev/failed-reason"]
    assert [(r.number, r.state) for r in await run(sb.history)] == [(1, "serving"), (2, "failed")]
    st = await run(sb.status)
    assert (st.rollout, st.serving_revision, st.latest_revision) == ("failed", 1, 2)
    assert "last rollout failed" in st.reason


async def test_a_revision_that_runs_but_never_gets_ready_is_failed_with_its_own_reason(make_sb, kmock, fake):
    sb = await deployed(make_sb, kmock)
    fake.outcome = "unready"
    readyz = re.compile(rf"/api/v1/namespaces/{NS}/pods/modelapi-[0-9a-f]+-z:8080/proxy/readyz")
    kmock["get", readyz] << 503 << {"ready": False, "reason": "model-mismatch",
                                     "detail": "model v2 (384 dims) over an index built by v1 (256 dims)"}
    with pytest.raises(RolloutFailed) as info:
        await run(sb.deploy, model="v2", index="2026-11-01-v1", change_cause="upgrade model to v2")
    assert info.value.reason.startswith("last: /readyz 503 model-mismatch: model v2 (384 dims)")
    assert [r.method for r in kmock if readyz.fullmatch(r.url.path)] == ["GET"]


async def test_an_image_the_node_can_never_get_fails_the_rollout_at_once(make_sb, kmock, fake):
    sb = await deployed(make_sb, kmock)
    fake.outcome = "noimage"
    with pytest.raises(RolloutFailed) as info:
        await asyncio.wait_for(run(sb.deploy, image="labkit/modelapi:9.9.9"), timeout=5)  # deadline is 3 + 15 s
    assert info.value.reason.startswith("image i is not available in the cluster (ErrImageNeverPull): load it into"
                                        " kind with `labkit cluster load-image`")
    assert (info.value.revision, info.value.serving) == (2, 1)


async def test_deploy_without_waiting_then_wait_for_rollout_as_kubectl_rollout_status(make_sb, kmock, fake):
    sb = await deployed(make_sb, kmock)
    started = await run(sb.deploy, model="v2", wait=False, change_cause="canary v2")
    assert started.number == 2
    done = await run(sb.wait_for_rollout)
    assert (done.number, done.state, done.spec.model) == (2, "serving", "v2")
    fake.outcome = "deadline"
    assert (await run(sb.deploy, image="labkit/modelapi:1.1.0-rc1", wait=False)).number == 3
    with pytest.raises(RolloutFailed) as info:
        await run(sb.wait_for_rollout)
    assert (info.value.revision, info.value.serving) == (3, 2) and "ProgressDeadlineExceeded" in info.value.reason
    with pytest.raises(RolloutFailed) as again:  # marked failed: said at once, nothing is patched
        await asyncio.wait_for(run(sb.wait_for_rollout), timeout=2)
    assert again.value.revision == 3
    assert len(requests(kmock, "PATCH", "deployments")) == 2


async def test_revision_endpoints_reach_each_pod_through_the_api_server_proxy(make_sb, kmock, fake):
    from sandbox.client import ServiceClient
    from sandbox.errors import UnknownChoice

    sb = await deployed(make_sb, kmock)
    [pod] = [p["metadata"]["name"] for p in fake.all("pods") if p["metadata"]["name"].startswith("modelapi-")]
    path = f"/api/v1/namespaces/{NS}/pods/{pod}:8080/proxy/version"
    kmock[f"get {path}"] << {"model": "v1", "index": "2026-11-01-v1"}
    [url] = await run(sb.revision_endpoints, 1)
    assert url.startswith("http://127.0.0.1:") and url != await run(lambda: sb.endpoint)
    assert (await run(ServiceClient(url).version))["model"] == "v1"
    assert [r.method for r in kmock if r.url.path == path] == ["GET"]
    assert await run(sb.revision_endpoints, 1) == [url]  # one proxy per pod, kept
    with pytest.raises(UnknownChoice, match="revision 9"):
        await run(sb.revision_endpoints, 9)
    await run(sb.down)


async def test_rollback_restores_the_previous_replicasets_template(make_sb, kmock, fake):
    sb = await deployed(make_sb, kmock)
    good = fake.all("replicasets")[0]
    fake.outcome = "deadline"
    with pytest.raises(RolloutFailed):
        await run(sb.deploy, image="labkit/modelapi:1.1.0-rc1")
    fake.outcome = "complete"
    rv = fake.get("deployments", "modelapi")["metadata"]["resourceVersion"]
    rev = await run(sb.rollback)
    undo = requests(kmock, "PATCH", "deployments")[-1]
    assert undo.headers["Content-Type"] == "application/json-patch+json"
    expected = copy.deepcopy(good["spec"]["template"])
    del expected["metadata"]["labels"]["pod-template-hash"]
    assert undo.data == [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "replace", "path": "/spec/template", "value": expected},
        {"op": "replace", "path": "/spec/replicas", "value": 1},
        {"op": "add", "path": "/metadata/annotations", "value": undo.data[3]["value"]}]
    assert undo.data[3]["value"]["kubernetes.io/change-cause"] == "rollback to revision 1"
    assert undo.data[3]["value"]["labkit.dev/rollback-of"] == "1"
    assert (rev.number, rev.state, rev.rollback_of, rev.spec.image) == (3, "serving", 1, "labkit/modelapi:1.0.0")
    assert [(r.number, r.state) for r in await run(sb.history)] == [(1, "superseded"), (2, "failed"), (3, "serving")]


async def test_a_conflict_is_retried_once_then_reported(make_sb, kmock, fake):
    sb = await deployed(make_sb, kmock)
    conflict = km.KubernetesError(status=409, reason="Conflict", message=(
        'Operation cannot be fulfilled on deployments.apps "modelapi": the object has been modified'))
    (kmock ** 5)["patch", R["deployments"]][:1] << conflict
    rev = await run(sb.deploy, top_k=4)
    assert rev.number == 2 and len(requests(kmock, "PATCH", "deployments")) == 2
    (kmock ** 6)["patch", R["deployments"]] << conflict
    with pytest.raises(KubeApiError, match="the object has been modified") as info:
        await run(sb.deploy, top_k=5)
    assert info.value.status == 409 and info.value.temporary and "run the command again" in str(info.value)
    assert len(requests(kmock, "PATCH", "deployments")) == 4


async def test_invalid_is_bad_input_naming_the_field(make_sb, kmock, fake):
    sb = await deployed(make_sb, kmock)
    (kmock ** 5)["patch", R["deployments"]] << km.KubernetesError(
        status=422, reason="Invalid", message='Deployment.apps "modelapi" is invalid',
        details={"causes": [{"field": "spec.template.spec.containers[0].resources.limits[cpu]",
                             "message": "must be greater than or equal to cpu request"}]})
    with pytest.raises(InvalidInput, match=r"is invalid \(must be greater than or equal to cpu request\)"):
        await run(sb.deploy, cpus="0.05")
    with pytest.raises(InvalidInput, match="cpus must be"):  # caught before any request
        await run(sb.deploy, cpus="lots")
    assert len(requests(kmock, "PATCH", "deployments")) == 1


# --- state, jobs, fault primitives -------------------------------------------------------------------
async def test_state_lives_in_a_labelled_configmap_guarded_by_its_resource_version(make_sb, kmock, fake):
    sb = await deployed(make_sb, kmock)
    state = await run(sb.state)
    assert [r["number"] for r in state["revisions"]] == [1] and state["faults"] == {}
    rv = fake.get("configmaps", "labkit-state")["metadata"]["resourceVersion"]
    state["faults"]["stale-index"] = {"state": "active"}
    await run(sb.save_state, state)
    [patch] = requests(kmock, "PATCH", "configmaps")
    assert patch.url.path == f"/api/v1/namespaces/{NS}/configmaps/labkit-state"
    assert patch.headers["Content-Type"] == "application/merge-patch+json"
    assert patch.data["metadata"] == {"resourceVersion": rv}
    assert json.loads(patch.data["data"]["state.json"]) == {"faults": {"stale-index": {"state": "active"}}, "version": 1}
    (kmock ** 5)["patch", R["configmaps"]] << km.KubernetesError(status=409, reason="Conflict", message="modified")
    with pytest.raises(KubeApiError, match="modified"):
        await run(sb.save_state, state)
    assert (await run(sb.status)).faults == ["stale-index"]


async def test_run_job_mounts_the_data_volume_and_returns_stdout(make_sb, kmock, fake):
    sb = await deployed(make_sb, kmock)
    fake.job_out["tamper-index"] = '{"tampered": true}'
    out = await run(sb.run_job, ["python", "-m", "modelapi", "tamper-index", "--name", "x"], "tamper-index")
    assert json.loads(out) == {"tampered": True}
    job = requests(kmock, "POST", "jobs")[-1].data
    pod = job["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["command"][:2] == ["sh", "-c"] and c["command"][4:] == ["python", "-m", "modelapi", "tamper-index",
                                                                     "--name", "x"]
    assert {"name": "data", "mountPath": "/data"} in c["volumeMounts"]
    assert pod["volumes"][0]["persistentVolumeClaim"] == {"claimName": "labkit-data"}
    assert c["securityContext"]["readOnlyRootFilesystem"] and pod["securityContext"]["runAsUser"] == 10001
    assert job["spec"]["backoffLimit"] == 0 and labels.is_ours(job["metadata"]["labels"], "t1")
    assert requests(kmock, "DELETE", "jobs")[-1].name == job["metadata"]["name"]
    fake.job_fail["lineage"] = "--- stderr ---\nTraceback ...\nValueError: no index named nope"
    with pytest.raises(InvalidInput, match="lineage failed: ValueError: no index named nope"):
        await run(sb.run_job, ["python", "-m", "modelapi", "lineage", "--index", "nope"], "lineage")


async def test_provider_primitives_go_through_the_api_server(make_sb, kmock, fake):
    sb = await deployed(make_sb, kmock)
    path = f"/api/v1/namespaces/{NS}/services/provider:http/proxy/admin/mode"
    kmock[f"post {path}"] << (lambda req: {"mode": req.data["mode"], "delay_s": req.data["delay_s"]})
    assert await run(sb.provider_call, "POST", "/admin/mode", {"mode": "slow", "delay_s": 2.0}) == {
        "mode": "slow", "delay_s": 2.0}
    [call] = [r for r in kmock if r.url.path == path]
    assert call.method == "POST" and call.data == {"mode": "slow", "delay_s": 2.0}
    await run(sb.set_provider_running, False)
    scale = [r for r in requests(kmock, "PATCH", "deployments") if r.subresource == "scale"][-1]
    assert scale.url.path == f"/apis/apps/v1/namespaces/{NS}/deployments/provider/scale"
    assert scale.headers["Content-Type"] == "application/merge-patch+json" and scale.data == {"spec": {"replicas": 0}}


async def test_restart_serving_deletes_only_the_serving_replicas(make_sb, kmock, fake):
    sb = await deployed(make_sb, kmock)
    fake.outcome = "deadline"
    with pytest.raises(RolloutFailed):
        await run(sb.deploy, image="labkit/modelapi:1.1.0-rc1")
    serving_pods = [p["metadata"]["name"] for p in fake.all("pods") if p["metadata"]["name"].endswith("-a")]
    await asyncio.wait_for(run(sb.restart_serving), timeout=2)  # returns once the replacement is ready
    assert [r.name for r in requests(kmock, "DELETE", "pods")] == serving_pods
    assert [p["metadata"]["name"] for p in fake.all("pods") if p["metadata"]["name"].endswith("-new")] == [
        f"{serving_pods[0]}-new"]


async def test_the_endpoint_is_the_service_through_the_api_server_proxy(make_sb, kmock, fake):
    sb = await deployed(make_sb, kmock)
    search = f"/api/v1/namespaces/{NS}/services/modelapi:http/proxy/v1/search"
    kmock[f"post {search}"] << {"results": [{"id": "rb-1"}], "model": "v1", "index": "2026-11-01-v1"}
    assert (await run(lambda: sb.endpoint)).startswith("http://127.0.0.1:")
    body = await run(sb.search, "disk full", 3)
    assert body["results"] == [{"id": "rb-1"}]
    [call] = [r for r in kmock if r.url.path == search]
    assert call.data == {"query": "disk full", "k": 3}
    (kmock ** 5)[f"get /api/v1/namespaces/{NS}/services/modelapi:http/proxy/readyz"] << km.KubernetesError(
        status=503, reason="ServiceUnavailable", message='no endpoints available for service "modelapi:http"')
    ready = await run(sb.readiness)
    assert (ready.ready, ready.reason, ready.status_code) == (False, "unreachable", 503)
    assert "no endpoints available" in ready.detail


async def test_catalog_faults_inject_and_heal_through_these_primitives(make_sb, kmock, fake):
    """The catalog is written against the Sandbox interface only; here two of its rollout
    faults run end to end on the kube tier's requests (the e2e suite runs all of them)."""
    sb = await deployed(make_sb, kmock)
    before = (await run(sb.status)).spec
    assert (await run(inject, sb, "config-drift"))["injected"]
    assert (await run(sb.status)).spec.config == {"top_k": "1"}
    assert (await run(heal, sb, "config-drift"))["healed"]
    fake.outcome = "deadline"
    assert "exited with code 3" in (await run(inject, sb, "bad-rollout"))["rollout_failed"]
    assert (await run(sb.history))[-1].state == "failed"
    fake.outcome = "complete"
    assert (await run(heal, sb, "bad-rollout"))["healed"]
    assert (await run(sb.status)).spec == before and await run(active_faults, sb) == {}
    assert [(r.number, r.state) for r in await run(sb.history)] == [
        (1, "superseded"), (2, "superseded"), (3, "superseded"), (4, "failed"), (5, "serving")]


# --- monitoring: Prometheus and Alertmanager through the API server's service proxy --------------
def _monitoring_services(fake: FakeCluster) -> None:
    for name in ("prometheus", "alertmanager"):
        fake.put("services", ours({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                                   "spec": {"ports": [{"name": "web", "port": 9090}]}}, name))


async def test_promql_and_alerts_go_through_the_service_proxy(make_sb, kmock, fake):
    sb = make_sb()
    _monitoring_services(fake)
    query = f"/api/v1/namespaces/{NS}/services/prometheus:web/proxy/api/v1/query"
    kmock[f"get {query}"] << {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"job": "modelapi", "revision": "7d9f"}, "value": [1.5, "1"]}]}}
    alerts = f"/api/v1/namespaces/{NS}/services/alertmanager:web/proxy/api/v2/alerts"
    kmock[f"get {alerts}"] << [{"labels": {"alertname": "SearchLatencyBudgetBurnFast", "severity": "page"},
                                "annotations": {}, "startsAt": "2026-11-20T09:00:00Z", "status": {"state": "active"}}]
    assert (await run(lambda: sb.prometheus_url)).startswith("http://127.0.0.1:")
    [sample] = await run(sb.query, 'up{job="modelapi"}')
    assert (sample.labels["revision"], sample.value) == ("7d9f", 1.0)
    [call] = [r for r in kmock if r.url.path == query]
    assert call.method == "GET" and call.params["query"] == 'up{job="modelapi"}'
    [alert] = await run(sb.alerts)
    assert alert.name == "SearchLatencyBudgetBurnFast" and alert.labels["severity"] == "page"


async def test_bad_promql_through_the_proxy_is_bad_input_and_no_service_is_monitoring_down(make_sb, kmock, fake):
    from sandbox.errors import BadQuery, PrometheusUnavailable

    sb = make_sb()
    with pytest.raises(PrometheusUnavailable, match="no Service prometheus"):
        await run(sb.query, "up")
    _monitoring_services(fake)
    query = f"/api/v1/namespaces/{NS}/services/prometheus:web/proxy/api/v1/query"
    kmock[f"get {query}"] << km.Response(status=400, payload={"status": "error", "errorType": "bad_data",
                                                               "error": "1:3: parse error: unexpected end of input"})
    with pytest.raises(BadQuery, match="parse error: unexpected end of input"):
        await run(sb.query, "up{")


async def test_a_trainee_rule_file_is_a_key_of_a_labelled_configmap(make_sb, kmock, fake, monkeypatch):
    from sandbox._kube import waits

    sb = make_sb()
    seen: list[str] = []
    monkeypatch.setattr(waits, "exec_read", lambda api, pods, container, cmd: seen.append(cmd[-1]) or
                        (sb._rule_file("query-drift") or ""))
    text = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n"
    await run(sb._install_rule_file, "query-drift", text)
    cm = fake.get("configmaps", "prometheus-rules-trainee")
    assert cm["data"] == {"query-drift.yml": text} and labels.is_ours(cm["metadata"]["labels"], "t1")
    assert await run(sb._rule_file, "query-drift") == text
    assert any("/etc/labkit/rules/trainee/query-drift.yml" in c for c in seen)
    await run(sb._install_rule_file, "other", text)
    [patch] = [r for r in requests(kmock, "PATCH", "configmaps") if r.data and "other.yml" in r.data.get("data", {})]
    assert patch.data == {"data": {"other.yml": text}}
