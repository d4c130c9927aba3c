"""The kube tier's pure functions on realistic API objects: ``kubectl rollout status``, the
revision facts read off Deployments and ReplicaSets (main and canary), pod templates and
patches, and pods as typed components.

The objects have the shape ``kubectl get deploy,rs,pod -o yaml`` prints for the modelapi
Deployment during the incidents the labs stage: a rollout in progress, one stuck on a
crashing release candidate, a canary beside the main Deployment, one being promoted.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest
import yaml

from sandbox._kube import pods as kpods
from sandbox._kube import rollout as ro
from sandbox._kube.history import Objects, revision_facts
from sandbox.api import DeploySpec
from sandbox.spec import revisions

UID, CANARY_UID = "5f0c1d2e-0000-4000-8000-00000000d001", "5f0c1d2e-0000-4000-8000-00000000c002"
V1 = DeploySpec("v1", "2026-11-01-v1", "labkit/modelapi:1.0.0", 1, {})
RC1 = DeploySpec("v1", "2026-11-01-v1", "labkit/modelapi:1.1.0-rc1", 1, {})
V2 = DeploySpec("v2", "2026-11-01-v2", "labkit/modelapi:1.0.0", 2, {"top_k": "3"})
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp()

STUCK_DEPLOYMENT = yaml.safe_load(f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: modelapi
  namespace: labkit-alice
  uid: {UID}
  generation: 2
  resourceVersion: "48213"
  annotations:
    deployment.kubernetes.io/revision: "2"
    kubernetes.io/change-cause: release 1.1.0-rc1
spec:
  replicas: 1
  progressDeadlineSeconds: 45
  revisionHistoryLimit: 10
  selector:
    matchLabels: {{app.kubernetes.io/component: modelapi, labkit.dev/sandbox: alice, labkit.dev/track: stable}}
  template: {{}}
status:
  observedGeneration: 2
  replicas: 2
  updatedReplicas: 1
  readyReplicas: 1
  availableReplicas: 1
  unavailableReplicas: 1
  conditions:
  - type: Available
    status: "True"
    reason: MinimumReplicasAvailable
    message: Deployment has minimum availability.
    lastUpdateTime: "2026-11-20T09:00:05Z"
  - type: Progressing
    status: "False"
    reason: ProgressDeadlineExceeded
    message: ReplicaSet "modelapi-6f7b9c" has timed out progressing.
    lastUpdateTime: "2026-11-20T09:01:50Z"
""")


def template(spec: DeploySpec, number: int, track: str = "stable", image: str | None = None, **ann: str) -> dict:
    return ro.template_for({
        "metadata": {"labels": {"app.kubernetes.io/component": "modelapi", "labkit.dev/sandbox": "alice"}},
        "spec": {"containers": [{
            "name": "modelapi", "image": "?", "command": ["python", "-m", "modelapi", "serve"],
            "env": [{"name": "PORT", "value": "8080"}],
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "768Mi"}},
        }]}}, spec, image or spec.image, number, ann.pop("cause", f"deploy {number}"),
        int(ann.pop("rollback_of")) if "rollback_of" in ann else None, track)


def replicaset(number: int, spec: DeploySpec, pod_hash: str, replicas: int, ready: int, *, k8s_revision: int,
               owner: str = UID, track: str = "stable", created: str | None = None, **ann: str) -> dict:
    t = template(spec, number, track)
    t["metadata"]["labels"]["pod-template-hash"] = pod_hash
    name = "modelapi" if owner == UID else ro.canary_name(number)
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": f"{name}-{pod_hash}", "namespace": "labkit-alice", "labels": t["metadata"]["labels"],
                     "annotations": {"deployment.kubernetes.io/revision": str(k8s_revision), **ann},
                     "creationTimestamp": created or f"2026-11-20T0{number}:00:00Z",
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                                          "uid": owner, "controller": True}]},
        "spec": {"replicas": replicas, "template": t},
        "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready},
    }


def deployment(k8s_revision: int, spec: DeploySpec, number: int, **status: object) -> dict:
    dep = copy.deepcopy(STUCK_DEPLOYMENT)
    dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = str(k8s_revision)
    dep["spec"]["replicas"] = spec.replicas
    dep["spec"]["template"] = template(spec, number)
    dep["status"] = {"observedGeneration": 2, "replicas": spec.replicas, "updatedReplicas": spec.replicas,
                     "readyReplicas": spec.replicas, "availableReplicas": spec.replicas,
                     "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                                     "message": "ReplicaSet has successfully progressed.",
                                     "lastUpdateTime": "2026-11-20T09:00:30Z"}]}
    dep["status"].update(status)
    return dep


def canary(number: int, spec: DeploySpec, **status: object) -> dict:
    dep = deployment(1, spec, number, **status)
    dep["metadata"].update(name=ro.canary_name(number), uid=CANARY_UID)
    dep["spec"]["template"] = template(spec, number, "canary")
    return dep


def history(deployments: list[dict], rss: list[dict], now: float = NOW) -> list[tuple[int, str]]:
    return [(r.number, r.state) for r in revisions(revision_facts(Objects(deployments, rss)), now, 45)]


def stuck() -> tuple[dict, list[dict]]:
    dep = copy.deepcopy(STUCK_DEPLOYMENT)
    dep["spec"]["template"] = template(RC1, 2)
    return dep, [replicaset(1, V1, "7d9f8b", 1, 1, k8s_revision=1, **{"labkit.dev/promoted-at": "2026-11-20T01:00:30Z"}),
                 replicaset(2, RC1, "6f7b9c", 1, 0, k8s_revision=2)]


# --- rollout status ------------------------------------------------------------------------
def test_status_waits_for_the_controller_to_observe_the_new_generation():
    dep = deployment(1, V1, 1)
    dep["metadata"]["generation"] = 3
    assert ro.rollout_status(dep) == ro.RolloutStatus("progressing", "waiting for the deployment spec update to be observed")


@pytest.mark.parametrize("status, expected", [
    ({"updatedReplicas": 1, "replicas": 2, "availableReplicas": 2}, "1 out of 2 new replicas have been updated"),
    ({"updatedReplicas": 2, "replicas": 3, "availableReplicas": 2}, "1 old replicas are pending termination"),
    ({"updatedReplicas": 2, "replicas": 2, "readyReplicas": 0, "availableReplicas": 0}, "0 of 2 updated replicas are ready"),
    ({"updatedReplicas": 2, "replicas": 2, "availableReplicas": 1}, "1 of 2 updated replicas are available"),
])
def test_status_is_progressing_until_every_replica_is_updated_and_available(status, expected):
    dep = deployment(1, V2, 1, **status)
    dep["status"]["conditions"][1]["reason"] = "ReplicaSetUpdated"
    assert ro.rollout_status(dep) == ro.RolloutStatus("progressing", expected)


def test_status_complete_once_all_replicas_are_updated_and_available():
    assert ro.rollout_status(deployment(1, V2, 1)).state == "complete"


def test_status_failed_on_progress_deadline_names_the_condition():
    status = ro.rollout_status(STUCK_DEPLOYMENT)
    assert status.state == "failed"
    assert "exceeded its progress deadline" in status.message
    assert 'Progressing=False (ProgressDeadlineExceeded): ReplicaSet "modelapi-6f7b9c" has timed out' in status.message


# --- revision facts and states ----------------------------------------------------------------------
def test_one_promoted_revision_serves_with_its_own_facts():
    rs = replicaset(1, V1, "7d9f8b", 1, 1, k8s_revision=1, **{"labkit.dev/promoted-at": "2026-11-20T01:00:30.250Z"})
    [facts] = revision_facts(Objects([deployment(1, V1, 1)], [rs]))
    assert (facts.number, facts.spec, facts.change_cause, facts.rollback_of) == (1, V1, "deploy 1", None)
    assert facts.created_at == datetime(2026, 11, 20, 1, tzinfo=UTC).timestamp()
    assert facts.promoted_at == datetime(2026, 11, 20, 1, 0, 30, 250000, tzinfo=UTC).timestamp()
    assert history([deployment(1, V1, 1)], [rs]) == [(1, "serving")]


def test_a_stuck_main_rollout_is_failed_by_its_condition_while_the_old_revision_serves():
    dep, rss = stuck()
    assert history([dep], rss) == [(1, "serving"), (2, "failed")]
    [_, facts] = revision_facts(Objects([dep], rss))
    assert "ProgressDeadlineExceeded" in facts.failure and facts.spec.image == RC1.image


def test_a_main_rollout_in_progress_keeps_the_old_revision_serving():
    dep, rss = stuck()
    dep["status"]["conditions"][1].update(status="True", reason="ReplicaSetUpdated", message="progressing")
    assert history([dep], rss, now=datetime(2026, 11, 20, 2, 0, 10, tzinfo=UTC).timestamp()) == [
        (1, "serving"), (2, "progressing")]


def test_an_older_replicaset_of_the_main_deployment_that_did_not_fail_served_once():
    dep = deployment(3, V2, 3)
    rss = [replicaset(1, V1, "7d9f8b", 0, 0, k8s_revision=1),  # no stamp: the kit never saw it complete
           replicaset(2, RC1, "6f7b9c", 0, 0, k8s_revision=2, **{"labkit.dev/failed-reason": "exited with code 3"}),
           replicaset(3, V2, "5c4d3b", 2, 2, k8s_revision=3)]
    assert history([dep], rss) == [(1, "superseded"), (2, "failed"), (3, "serving")]
    assert revision_facts(Objects([dep], rss))[2].spec.replicas == 2


def test_a_canary_is_a_revision_of_its_own_deployment_until_its_deadline():
    main = deployment(1, V1, 1)
    rss = [replicaset(1, V1, "7d9f8b", 1, 1, k8s_revision=1, **{"labkit.dev/promoted-at": "2026-11-20T01:00:30Z"}),
           replicaset(2, V2, "c4n4ry", 2, 0, k8s_revision=1, owner=CANARY_UID, track="canary")]
    progressing = canary(2, V2, readyReplicas=0, availableReplicas=0)
    progressing["status"]["conditions"][1].update(reason="ReplicaSetUpdated")
    early = datetime(2026, 11, 20, 2, 0, 10, tzinfo=UTC).timestamp()
    assert history([main, progressing], rss, now=early) == [(1, "serving"), (2, "progressing")]
    assert history([main, progressing], rss, now=early + 60) == [(1, "serving"), (2, "failed")]
    timed_out = canary(2, V2, readyReplicas=0, availableReplicas=0)
    timed_out["status"]["conditions"][1].update(status="False", reason="ProgressDeadlineExceeded")
    [_, facts] = revision_facts(Objects([main, timed_out], rss))
    assert "deployment modelapi-canary-r2 exceeded its progress deadline" in facts.failure


def test_a_canary_being_promoted_serves_and_keeps_its_creation_time():
    promoted = ro.on_track(template(V2, 2, "canary"), "stable", **{"labkit.dev/canary-created": "2026-11-20T02:00:00Z"})
    main = deployment(2, V2, 2, updatedReplicas=1, replicas=3, readyReplicas=2)
    main["spec"]["template"] = promoted
    main["status"]["conditions"][1].update(reason="ReplicaSetUpdated")
    new = replicaset(2, V2, "5c4d3b", 2, 1, k8s_revision=2, created="2026-11-20T02:05:00Z")
    new["spec"]["template"] = promoted | {"metadata": {**promoted["metadata"], "labels": new["metadata"]["labels"]}}
    rss = [replicaset(1, V1, "7d9f8b", 1, 1, k8s_revision=1, **{"labkit.dev/promoted-at": "2026-11-20T01:00:30Z"}),
           new, replicaset(2, V2, "c4n4ry", 2, 2, k8s_revision=1, owner=CANARY_UID, track="canary")]
    cdep = canary(2, V2)
    assert history([main, cdep], rss, now=NOW + 3600) == [(1, "superseded"), (2, "serving")]
    facts = revision_facts(Objects([main, cdep], rss))[1]
    assert facts.created_at == datetime(2026, 11, 20, 2, tzinfo=UTC).timestamp()
    assert facts.promoted_at == datetime(2026, 11, 20, 2, 5, tzinfo=UTC).timestamp()


def test_foreign_and_unnumbered_replicasets_are_not_history_and_numbers_come_from_everything():
    dep = deployment(2, V2, 2)
    foreign = replicaset(1, V1, "aaaaaa", 1, 1, k8s_revision=1, owner="someone-else")
    unnumbered = replicaset(1, V1, "bbbbbb", 0, 0, k8s_revision=1)
    unnumbered["metadata"]["labels"] = dict(unnumbered["metadata"]["labels"])
    for labels in (unnumbered["metadata"]["labels"], unnumbered["spec"]["template"]["metadata"]["labels"]):
        labels.pop("labkit.dev/revision")
    objs = Objects([dep], [foreign, unnumbered, replicaset(2, V2, "5c4d3b", 2, 2, k8s_revision=2)])
    assert [f.number for f in revision_facts(objs)] == [2]
    waiting = canary(7, V1)
    assert Objects([dep, waiting], objs.replicasets).next_number() == 8  # a canary with no ReplicaSet yet counts


def test_spec_follows_what_the_container_really_runs():
    t = template(V1, 1, image="labkit/modelapi:9.9.9")  # `kubectl set image` behind the kit's back
    t["spec"]["containers"][0]["env"].append({"name": "TOP_K", "value": "1"})
    spec = ro.spec_from_template(t)
    assert spec.image == "labkit/modelapi:9.9.9" and spec.config == {"top_k": "1"}


def test_spec_keeps_the_logical_image_when_the_registry_supplies_it():
    t = template(V1, 1, image="registry.example.edu/labkit/modelapi:1.0.0")
    spec = ro.spec_from_template(t, resolve=lambda i: "registry.example.edu/labkit/" + i.split("/")[-1])
    assert spec.image == "labkit/modelapi:1.0.0"


def test_no_objects_no_history():
    assert revision_facts(Objects()) == [] and Objects().next_number() == 1


# --- templates and patches ------------------------------------------------------------------------
def test_template_for_carries_the_revision_its_spec_env_and_cpu_limit():
    spec = DeploySpec("v2", "2026-11-01-v2", "labkit/modelapi:1.0.0", 1, {"cpus": "0.05", "provider_timeout_s": "0.05"})
    t = template(spec, 4, "canary", image="registry.example.edu/labkit/modelapi:1.0.0", cause="canary", rollback_of="2")
    c = t["spec"]["containers"][0]
    assert c["image"] == "registry.example.edu/labkit/modelapi:1.0.0"
    assert c["env"] == [{"name": "PORT", "value": "8080"}, {"name": "INDEX_NAME", "value": "2026-11-01-v2"},
                        {"name": "MODEL_VERSION", "value": "v2"}, {"name": "PROVIDER_TIMEOUT_S", "value": "0.05"}]
    assert c["resources"]["limits"]["cpu"] == "50m" and c["resources"]["requests"]["cpu"] == "50m"
    assert t["metadata"]["labels"] == {"app.kubernetes.io/component": "modelapi", "labkit.dev/sandbox": "alice",
                                       "labkit.dev/revision": "4", "labkit.dev/track": "canary"}
    ann = t["metadata"]["annotations"]
    assert (ann["labkit.dev/revision"], ann["labkit.dev/change-cause"], ann["labkit.dev/rollback-of"]) == (
        "4", "canary", "2")
    assert json.loads(ann["labkit.dev/spec"]) == json.loads(spec.to_json())
    assert ro.spec_from_template(t, resolve=lambda i: "registry.example.edu/labkit/" + i.split("/")[-1]) == spec


def test_a_canary_template_promoted_is_the_same_revision_on_the_stable_track():
    t = template(V2, 3, "canary")
    t["metadata"]["labels"]["pod-template-hash"] = "c4n4ry"
    stable = ro.on_track(t, "stable", **{"labkit.dev/canary-created": "2026-11-20T03:00:00Z"})
    assert stable["metadata"]["labels"]["labkit.dev/track"] == "stable"
    assert "pod-template-hash" not in stable["metadata"]["labels"] and ro.revision_of({"spec": {"template": stable}}) == 3
    assert stable["spec"] == t["spec"] and t["metadata"]["labels"]["labkit.dev/track"] == "canary"  # not mutated


def test_rollout_patch_is_guarded_by_the_resource_version():
    dep = deployment(1, V1, 1)
    patch = ro.rollout_patch(dep, template(V2, 2), 2, "upgrade", 45, 10)
    assert [op["path"] for op in patch] == ["/metadata/resourceVersion", "/spec/template", "/spec/replicas",
                                           "/spec/progressDeadlineSeconds", "/spec/revisionHistoryLimit",
                                           "/metadata/annotations"]
    assert patch[0]["value"] == "48213" and patch[-1]["value"]["kubernetes.io/change-cause"] == "upgrade"


def test_restore_patch_puts_the_deployment_back_on_a_replicasets_template():
    dep, rss = stuck()
    patch = ro.restore_patch(dep, rss[0])
    assert patch[0] == {"op": "replace", "path": "/metadata/resourceVersion", "value": "48213"}
    assert "pod-template-hash" not in patch[1]["value"]["metadata"]["labels"]
    assert patch[1]["value"]["spec"] == rss[0]["spec"]["template"]["spec"]
    assert patch[2] == {"op": "replace", "path": "/spec/replicas", "value": 1}
    assert patch[3]["value"]["kubernetes.io/change-cause"] == "deploy 1"
    assert rss[0]["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == "7d9f8b"  # not mutated


@pytest.mark.parametrize("cores, limit, request_", [(0.05, "50m", "50m"), (2.0, "2", "100m"), (1.5, "1500m", "100m")])
def test_cpu_resources_lower_the_request_only_when_it_is_above_the_limit(cores, limit, request_):
    res = ro.cpu_resources({"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1"}}, cores)
    assert res == {"requests": {"cpu": request_, "memory": "256Mi"}, "limits": {"cpu": limit}}


# --- pods as typed components ---------------------------------------------------------------------------
def pod(phase: str, *statuses: dict, **meta: object) -> dict:
    return {"metadata": {"name": "modelapi-5c4d3b-x2x4z", "labels": {"app.kubernetes.io/component": "modelapi",
                                                                   "labkit.dev/revision": "3"}, **meta},
            "spec": {"containers": [{"name": "modelapi", "image": "labkit/modelapi:1.0.0",
                                     "resources": {"limits": {"cpu": "1"}}}]},
            "status": {"phase": phase, "containerStatuses": list(statuses)}}


RUNNING = {"name": "modelapi", "ready": True, "state": {"running": {"startedAt": "2026-11-20T09:00:00Z"}}}


@pytest.mark.parametrize("p, state, detail", [
    (pod("Running", RUNNING), "running", "Running"),
    (pod("Running", {**RUNNING, "ready": False}), "running", "Running (not ready)"),
    (pod("Running", {"name": "modelapi", "ready": False, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                     "lastState": {"terminated": {"exitCode": 3}}}), "failed", "CrashLoopBackOff, exited with code 3"),
    (pod("Pending", {"name": "modelapi", "ready": False, "state": {"waiting": {"reason": "ErrImageNeverPull"}}}),
     "failed", "ErrImageNeverPull"),
    (pod("Pending", {"name": "modelapi", "ready": False, "state": {"waiting": {"reason": "ContainerCreating"}}}),
     "pending", "ContainerCreating"),
    (pod("Pending"), "pending", "Pending"),
    (pod("Succeeded"), "stopped", "Completed"),
    (pod("Running", {"name": "modelapi", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}),
     "failed", "OOMKilled (exit code 137)"),
    (pod("Running", RUNNING, deletionTimestamp="2026-11-20T09:05:00Z"), "stopped", "Terminating"),
])
def test_a_pods_state_is_typed_and_keeps_the_kubelets_words(p, state, detail):
    c = kpods.component(p)
    assert (c.state, c.detail, c.revision, c.component, c.cpus) == (state, detail, 3, "modelapi", 1.0)


def test_the_live_cpu_limit_is_what_the_kubelet_enforces_after_a_resize():
    p = pod("Running", {**RUNNING, "resources": {"limits": {"cpu": "20m"}}})
    assert kpods.live_cpus(p) == 0.02 and kpods.resized(p, 0.02) == "done" and kpods.resized(p, 1.0) is None
    p["status"]["conditions"] = [{"type": "PodResizePending", "status": "True", "reason": "Infeasible",
                                  "message": "Node didn't have enough capacity"}]
    assert kpods.resized(p, 1.0) == "infeasible: Node didn't have enough capacity"
    assert kpods.resize_patch(p, {"limits": {"cpu": "1"}}) == [
        {"op": "test", "path": "/spec/containers/0/name", "value": "modelapi"},
        {"op": "replace", "path": "/spec/containers/0/resources", "value": {"limits": {"cpu": "1"}}}]


# --- diagnostics ----------------------------------------------------------------------------------
def test_describe_pods_names_the_crash_and_its_exit_code():
    p = {"metadata": {"name": "modelapi-6f7b9c-x2x4z"}, "status": {"containerStatuses": [{
        "name": "modelapi", "ready": False, "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
        "lastState": {"terminated": {"exitCode": 3, "reason": "Error"}}}]}}
    assert ro.describe_pods([p]) == "modelapi-6f7b9c-x2x4z: CrashLoopBackOff, exited with code 3 (Error), 3 restarts"


def test_describe_events_keeps_the_newest_about_the_named_objects():
    def event(name: str, reason: str, ts: str) -> dict:
        return {"involvedObject": {"kind": "Pod", "name": name}, "reason": reason, "message": reason.lower(),
                "lastTimestamp": ts}

    events = [event("p1", "BackOff", "2026-11-20T09:01:00Z"), event("other", "Pulled", "2026-11-20T09:02:00Z"),
              event("p1", "Started", "2026-11-20T09:00:00Z")]
    assert ro.describe_events(events, {"p1"}) == "Pod/p1 Started: started; Pod/p1 BackOff: backoff"
    assert ro.describe_events(events, {"p1"}, limit=1) == "Pod/p1 BackOff: backoff"
