"""Contract tests of the kube tier through the real ``kubernetes`` client, against kmock's API
emulator and the controllers of ``tests/kubefake.py`` (a ReplicaSet per template, pods that
behave as the kit's images do, progress deadlines on a 1 s clock).

They assert the requests each operation sends (paths, verbs, patch content types and bodies)
and what it makes of the server's answers (404, 409, 422, 403). Canaries, promotion, resize
and typed components are ``test_kube_canary.py``'s. Sandbox calls are synchronous and the
fake answers in the test's event loop, so every call runs in a worker thread (``run``).
"""

from __future__ import annotations

import json

import kmock as km
import pytest
from kubefake import run, NS, R
from kubeworkload import CRASH, DEFECT_IMAGE

from sandbox import labels
from sandbox.errors import (
    InfrastructureError,
    InvalidInput,
    KubeConflict,
    RolloutFailed,
    SandboxNotUp,
    UnknownChoice,
)

TRACK = "labkit.dev/track"
#: What ``up`` creates of the monitoring stack, in order (k8s/base/monitoring*.yaml, then the trainee rules).
MONITORING = [("serviceaccounts", "prometheus"), ("roles", "prometheus-discovery"),
              ("rolebindings", "prometheus-discovery"), ("configmaps", "prometheus-config"),
              ("configmaps", "alertmanager-config"), ("configmaps", "prometheus-rules"), ("services", "prometheus"),
              ("services", "alertmanager"), ("deployments", "prometheus"), ("deployments", "alertmanager"),
              ("configmaps", "prometheus-rules-trainee")]


def requests(kmock, method: str, plural: str | None = None, subresource: str | None = "") -> list:
    """Requests of ``method`` (on ``plural``; ``subresource=None``: any, ``""``: none)."""
    return [r for r in kmock if r.method == method and (plural is None or r.resource == R[plural])
            and (subresource is None or (r.subresource or "") == subresource)]


def writes(kmock) -> list:
    return [r for r in kmock if r.method in ("POST", "PATCH", "PUT", "DELETE") and r.resource is not None
            and not (r.subresource or "").startswith("proxy")]


async def deployed(sb, **kwargs):
    await run(sb.up)
    await run(sb.deploy, model="v1", change_cause="first deploy", **kwargs)
    return sb


# --- lifecycle ----------------------------------------------------------------------------------
async def test_up_creates_labelled_objects_in_its_namespace_then_is_idempotent(kube_sb, kmock, fake):
    await run(kube_sb.up)
    posts = requests(kmock, "POST")
    assert [(r.resource.plural, r.data["metadata"]["name"]) for r in posts] == [
        ("configmaps", "modelapi-config"), ("persistentvolumeclaims", "labkit-data"),
        *MONITORING,  # before the seed Job is waited for: the stack starts meanwhile (test_kube_monitoring_up.py)
        ("configmaps", "labkit-state"), ("jobs", "labkit-seed"), ("deployments", "provider"), ("services", "provider"),
        ("services", "modelapi")]
    for r in posts:
        assert f"/namespaces/{NS}/" in r.url.path and r.data["metadata"]["namespace"] == NS
        assert labels.is_ours(r.data["metadata"]["labels"], "t1")
        template = r.data.get("spec", {}).get("template")
        if template:
            assert labels.is_ours(template["metadata"]["labels"], "t1")
    [state] = [r for r in posts if r.data["metadata"]["name"] == "labkit-state"]
    assert json.loads(state.data["data"]["state.json"]) == {"faults": {}, "version": 2}
    assert posts[-1].data["spec"]["selector"][TRACK] == "stable"  # the front door: the stable track only
    assert [r.url.path for r in kmock if r.method == "GET"][:2] == ["/version/", f"/api/v1/namespaces/{NS}"]
    await run(kube_sb.up)
    assert len(requests(kmock, "POST")) == len(posts) and not requests(kmock, "DELETE")
    provider = fake.get("deployments", "provider")
    provider["spec"]["replicas"] = 0  # stopped by an outage: up() starts it again, as on Docker
    fake.put("deployments", provider)
    await run(kube_sb.up)
    [scale] = requests(kmock, "PATCH", "deployments", "scale")
    assert (scale.name, scale.data) == ("provider", {"spec": {"replicas": 1}})


async def test_up_makes_a_front_door_from_before_canaries_select_the_stable_track(kube_sb, kmock, fake):
    await run(kube_sb.up)
    service = fake.get("services", "modelapi")
    del service["spec"]["selector"][TRACK]  # as the kit made it before canaries had a track
    fake.put("services", service)
    await run(kube_sb.up)
    [patch] = requests(kmock, "PATCH", "services")
    assert patch.data == {"spec": {"selector": {"app.kubernetes.io/component": "modelapi", TRACK: "stable",
                                                "labkit.dev/sandbox": "t1"}}}
    assert fake.get("services", "modelapi")["spec"]["selector"][TRACK] == "stable"


async def test_a_crashing_provider_fails_up_with_its_last_log_line(kube_sb, fake):
    fake.provider_crashes = True
    kube_sb.setup_timeout_s = 30  # the crash is seen at once; this only bounds a regression
    with pytest.raises(InfrastructureError) as info:
        await run(kube_sb.up)
    text = str(info.value)
    assert text.startswith("starting the provider: provider keeps crashing;")
    assert "CrashLoopBackOff, exited with code 1" in text and "PROVIDER_MODE='sloww'" in text
    assert f"kubectl logs -n {NS} deploy/provider --previous" in text


async def test_up_in_a_cohort_namespace_it_may_not_read(kube_sb, kmock, fake):
    fake.namespace = None
    (kmock ** 5)[f"get /api/v1/namespaces/{NS}"] << km.KubernetesError(status=403, reason="Forbidden",
                                                                       message="forbidden")
    await run(kube_sb.up)
    assert requests(kmock, "POST", "services")


async def test_up_refuses_to_adopt_an_object_it_did_not_make(kube_sb, kmock, fake):
    fake.put("configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "modelapi-config"}, "data": {}})
    with pytest.raises(InfrastructureError, match="ConfigMap modelapi-config .* was not made by sandbox t1"):
        await run(kube_sb.up)
    assert not writes(kmock)


async def test_a_missing_image_fails_up_at_once_with_the_command_that_fixes_it(kube_sb, fake):
    fake.image_missing = True
    kube_sb.setup_timeout_s = 30  # the pull error is seen at once; this only bounds a regression
    with pytest.raises(InfrastructureError) as info:
        await run(kube_sb.up)
    assert str(info.value).startswith("seeding the data volume: image labkit/modelapi:1.0.0 is not available in"
                                      " the cluster (ErrImageNeverPull) (fix: load it into kind with `labkit"
                                      " cluster load-image`")


async def test_no_system_namespace_and_no_other_namespace(make_kube_sb, kmock, fake):
    with pytest.raises(InvalidInput, match="not a sandbox namespace"):
        make_kube_sb(namespace="kube-system")
    sb = make_kube_sb()
    with pytest.raises(InvalidInput, match="refusing to act in namespace other"):
        await run(sb.api.create, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "other"}})
    assert not requests(kmock, "POST")


async def test_before_up_everything_says_sandbox_not_up(kube_sb, kmock, fake):
    for call in (kube_sb.deploy, kube_sb._fault_records, lambda: kube_sb.endpoint):
        with pytest.raises(SandboxNotUp, match="labkit sandbox up"):
            await run(call)
    st = await run(kube_sb.status)
    assert not st.up and st.reason == "sandbox is not up"
    assert await run(kube_sb.history) == [] and not writes(kmock)


async def test_down_deletes_only_labelled_objects_of_this_sandbox(kube_sb, kmock, fake):
    await deployed(kube_sb)
    await run(kube_sb.deploy, model="v2", wait=False)  # a canary Deployment too
    fake.put("configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "foreign"}})
    fake.put("configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "other-sandbox", "labels": labels.for_sandbox("t2")}})
    removed = await run(kube_sb.down)
    deleted = {(r.resource.plural, r.name) for r in requests(kmock, "DELETE") if r.resource and r.resource.plural}
    assert ("configmaps", "foreign") not in deleted and ("configmaps", "other-sandbox") not in deleted
    assert {"deployment/provider", "deployment/modelapi", "deployment/modelapi-canary-r2", "configmap/labkit-state",
            "persistentvolumeclaim/labkit-data", "service/modelapi", "job/labkit-seed", f"namespace/{NS}"} <= set(removed)
    assert all(r.params.get("propagationPolicy") == "Background" for r in requests(kmock, "DELETE")
               if r.resource and r.resource.plural)


# --- deploy, history, rollback ----------------------------------------------------------------------
async def test_first_deploy_creates_the_deployment_with_the_revision_in_the_pod_template(kube_sb, kmock, fake):
    await deployed(kube_sb)
    [post] = [r for r in requests(kmock, "POST", "deployments") if r.data["metadata"]["name"] == "modelapi"]
    spec = post.data["spec"]
    template = spec["template"]
    env = {e["name"]: e.get("value") for e in template["spec"]["containers"][0]["env"]}
    assert env["MODEL_VERSION"] == "v1" and env["INDEX_NAME"] == "2026-11-01-v1"
    ann = template["metadata"]["annotations"]
    assert json.loads(ann["labkit.dev/spec"])["index"] == "2026-11-01-v1"
    assert (ann["labkit.dev/revision"], ann["labkit.dev/change-cause"], ann["labkit.dev/rollback-of"]) == (
        "1", "first deploy", "")
    assert template["metadata"]["labels"]["labkit.dev/revision"] == "1"
    assert template["metadata"]["labels"][TRACK] == "stable"
    assert spec["selector"]["matchLabels"] == {"app.kubernetes.io/component": "modelapi", TRACK: "stable",
                                               "labkit.dev/sandbox": "t1"}
    assert spec["progressDeadlineSeconds"] == 1 and spec["revisionHistoryLimit"] == 10
    assert post.data["metadata"]["annotations"]["kubernetes.io/change-cause"] == "first deploy"
    [rev] = await run(kube_sb.history)
    assert (rev.number, rev.state, rev.spec.model, rev.change_cause) == (1, "serving", "v1", "first deploy")
    [rs] = fake.all("replicasets") and [r for r in fake.all("replicasets") if r["metadata"]["name"].startswith("modelapi-")]
    assert rs["metadata"]["annotations"]["labkit.dev/promoted-at"]  # stamped when the kit saw it complete
    # index names and snapshots were read by exec in the ready provider pod: no Job, nothing written
    assert fake.execs == [["ls", "-1", "/data/indexes"], ["ls", "-1", "/data/corpus"]]
    jobs = requests(kmock, "POST", "jobs")  # the seed, and the Job appending the release record
    assert jobs[0].data["metadata"]["name"] == "labkit-seed" and len(jobs) == 2
    assert "record-release" in json.dumps(jobs[1].data)


async def test_without_exec_the_data_volume_is_read_by_one_off_jobs(kube_sb, kmock, fake):
    fake.exec_allowed = False  # an account without pods/exec
    await run(kube_sb.up)
    assert await run(kube_sb.snapshots) == ["2026-10-01", "2026-11-01"]
    [job] = requests(kmock, "POST", "jobs")[1:]
    assert job.data["spec"]["template"]["spec"]["containers"][0]["command"][4:] == ["ls", "-1", "/data/corpus"]
    assert requests(kmock, "DELETE", "jobs")[-1].name == job.data["metadata"]["name"]


async def test_deploy_sends_a_json_patch_guarded_by_the_resource_version(kube_sb, kmock, fake):
    await deployed(kube_sb)
    rv = fake.get("deployments", "modelapi")["metadata"]["resourceVersion"]
    rev = await run(kube_sb.deploy, model="v2", replicas=2, top_k=3, change_cause="try v2")
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
    assert ops[1]["value"]["metadata"]["labels"]["labkit.dev/revision"] == "2"
    assert ops[2]["value"] == 2 and ops[5]["value"]["kubernetes.io/change-cause"] == "try v2"
    assert (rev.number, rev.state, rev.spec.replicas, rev.spec.config) == (2, "serving", 2, {"top_k": "3"})
    assert [(r.number, r.state) for r in await run(kube_sb.history)] == [(1, "superseded"), (2, "serving")]
    old = [r for r in fake.all("replicasets") if r["spec"]["template"]["metadata"]["labels"].get(
        "labkit.dev/revision") == "1"]
    assert old and old[0]["metadata"]["annotations"]["labkit.dev/finished-at"]


async def test_a_failed_rollout_is_recorded_stopped_and_explained(kube_sb, kmock, fake):
    await deployed(kube_sb)
    with pytest.raises(RolloutFailed) as info:
        await run(kube_sb.deploy, image=DEFECT_IMAGE, change_cause="release 1.1.0-rc1")
    e = info.value
    assert (e.revision, e.serving) == (2, 1)
    for words in ("ProgressDeadlineExceeded", "has timed out progressing", "CrashLoopBackOff",
                  "exited with code 3", "BackOff: Back-off restarting failed container"):
        assert words in e.reason
    assert CRASH in e.logs
    [mark] = [r for r in requests(kmock, "PATCH", "replicasets") if "labkit.dev/failed-reason" in
              r.data["metadata"]["annotations"]]
    assert mark.headers["Content-Type"] == "application/merge-patch+json"
    assert "ProgressDeadlineExceeded" in mark.data["metadata"]["annotations"]["labkit.dev/failed-reason"]
    assert CRASH in mark.data["metadata"]["annotations"]["labkit.dev/last-logs"]
    restore = requests(kmock, "PATCH", "deployments")[-1]  # back on the template that serves: the pods stop
    assert restore.data[1]["value"]["metadata"]["labels"]["labkit.dev/revision"] == "1"
    assert [(r.number, r.state) for r in await run(kube_sb.history)] == [(1, "serving"), (2, "failed")]
    st = await run(kube_sb.status)
    assert (st.rollout, st.serving_revision, st.latest_revision, st.ready) == ("failed", 1, 2, True)
    assert "last rollout failed" in st.reason and st.replicas(2) == []
    assert CRASH in await run(kube_sb.logs, 2)  # the pods are gone; their last lines were kept


async def test_a_revision_that_runs_but_never_gets_ready_is_failed_with_its_own_reason(kube_sb, kmock, fake):
    await deployed(kube_sb)
    with pytest.raises(RolloutFailed) as info:
        await run(kube_sb.deploy, model="v2", index="2026-11-01-v1", change_cause="upgrade model to v2")
    assert info.value.reason.startswith("last: /readyz 503 model-mismatch: model v2 (384 dims) over an index"
                                        " built by v1 (256 dims)")
    assert [r.url.path for r in kmock if r.url.path.endswith("/proxy/readyz") and "/pods/" in r.url.path]


async def test_rollback_is_a_new_revision_running_the_targets_spec(kube_sb, kmock, fake):
    await deployed(kube_sb)
    with pytest.raises(RolloutFailed):
        await run(kube_sb.deploy, image=DEFECT_IMAGE)
    rv = fake.get("deployments", "modelapi")["metadata"]["resourceVersion"]
    rev = await run(kube_sb.rollback)
    undo = requests(kmock, "PATCH", "deployments")[-1]
    assert undo.data[0] == {"op": "replace", "path": "/metadata/resourceVersion", "value": rv}
    template = undo.data[1]["value"]
    assert template["metadata"]["labels"]["labkit.dev/revision"] == "3"
    assert template["metadata"]["annotations"]["labkit.dev/rollback-of"] == "1"
    assert template["metadata"]["annotations"]["labkit.dev/change-cause"] == "rollback to revision 1"
    assert (rev.number, rev.state, rev.rollback_of, rev.spec.image) == (3, "serving", 1, "labkit/modelapi:1.0.0")
    assert [(r.number, r.state) for r in await run(kube_sb.history)] == [(1, "superseded"), (2, "failed"), (3, "serving")]
    numbers = sorted(int(rs["spec"]["template"]["metadata"]["labels"]["labkit.dev/revision"])
                     for rs in fake.all("replicasets") if rs["metadata"]["name"].startswith("modelapi-"))
    assert numbers == [1, 2, 3]  # an undo is a ReplicaSet of its own
    with pytest.raises(UnknownChoice, match=r"unknown revision 2; valid: 1, 3"):
        await run(kube_sb.rollback, to_revision=2)


async def test_a_conflict_is_retried_once_then_reported(kube_sb, kmock, fake):
    await deployed(kube_sb)
    conflict = km.KubernetesError(status=409, reason="Conflict", message=(
        'Operation cannot be fulfilled on deployments.apps "modelapi": the object has been modified'))
    fake.refuse("deployments", conflict)
    rev = await run(kube_sb.deploy, top_k=4)
    assert rev.number == 2 and len(requests(kmock, "PATCH", "deployments")) == 2
    fake.refuse("deployments", conflict, times=2)
    with pytest.raises(KubeConflict, match="the object has been modified") as info:
        await run(kube_sb.deploy, top_k=5)
    assert info.value.code == 409 and info.value.temporary and "run the command again" in str(info.value)
    assert [r.number for r in await run(kube_sb.history)] == [1, 2]


async def test_invalid_is_bad_input_naming_the_field(kube_sb, kmock, fake):
    await deployed(kube_sb)
    fake.refuse("deployments", km.KubernetesError(
        status=422, reason="Invalid", message='Deployment.apps "modelapi" is invalid',
        details={"causes": [{"field": "spec.template.spec.containers[0].resources.limits[cpu]",
                             "message": "must be greater than or equal to cpu request"}]}))
    with pytest.raises(InvalidInput, match=r"is invalid \(must be greater than or equal to cpu request\)"):
        await run(kube_sb.deploy, cpus="0.05")
    assert [r.number for r in await run(kube_sb.history)] == [1]
