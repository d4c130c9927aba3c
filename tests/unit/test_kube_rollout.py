"""Rollout status, history and undo logic of the kube tier on realistic API objects.

The objects below have the shape ``kubectl get deploy,rs -o yaml`` prints for the modelapi
Deployment during the incidents the labs stage: a rollout in progress, one stuck on a
crashing release candidate, and a rollback that re-used an old ReplicaSet.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest
import yaml

from sandbox._kube import rollout as ro
from sandbox.api import DeploySpec
from sandbox.errors import InvalidInput, UnknownChoice

UID = "5f0c1d2e-0000-4000-8000-00000000d001"
V1 = DeploySpec("v1", "2026-11-01-v1", "labkit/modelapi:1.0.0", 1, {})
RC1 = DeploySpec("v1", "2026-11-01-v1", "labkit/modelapi:1.1.0-rc1", 1, {})
V2 = DeploySpec("v2", "2026-11-01-v2", "labkit/modelapi:1.0.0", 2, {"top_k": "3"})

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
    labkit.dev/rollback-of: ""
spec:
  replicas: 1
  progressDeadlineSeconds: 45
  revisionHistoryLimit: 10
  selector:
    matchLabels: {{app.kubernetes.io/component: modelapi, labkit.dev/sandbox: alice}}
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


def template(spec: DeploySpec, pod_hash: str | None = None, image: str | None = None) -> dict:
    labels = {"app.kubernetes.io/component": "modelapi", "labkit.dev/sandbox": "alice"}
    if pod_hash:
        labels["pod-template-hash"] = pod_hash
    return {
        "metadata": {"labels": labels, "annotations": {"labkit.dev/spec": spec.to_json()}},
        "spec": {"containers": [{
            "name": "modelapi", "image": image or spec.image, "command": ["python", "-m", "modelapi", "serve"],
            "env": [{"name": "PORT", "value": "8080"}] + [{"name": k, "value": v} for k, v in sorted(spec.env().items())],
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "768Mi"}},
        }]},
    }


def replicaset(number: int, spec: DeploySpec, pod_hash: str, replicas: int, ready: int, **ann: str) -> dict:
    annotations = {"deployment.kubernetes.io/revision": str(number), "deployment.kubernetes.io/desired-replicas": "1",
                   "deployment.kubernetes.io/max-replicas": "2", **ann}
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": f"modelapi-{pod_hash}", "namespace": "labkit-alice", "annotations": annotations,
                     "labels": template(spec, pod_hash)["metadata"]["labels"],
                     "creationTimestamp": f"2026-11-20T0{number}:00:00Z",
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "modelapi",
                                          "uid": UID, "controller": True}]},
        "spec": {"replicas": replicas, "template": template(spec, pod_hash)},
        "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready},
    }


def deployment(number: int, spec: DeploySpec, **status: object) -> dict:
    dep = copy.deepcopy(STUCK_DEPLOYMENT)
    dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = str(number)
    dep["spec"]["replicas"] = spec.replicas
    dep["spec"]["template"] = template(spec)
    dep["status"] = {"observedGeneration": 2, "replicas": spec.replicas, "updatedReplicas": spec.replicas,
                     "readyReplicas": spec.replicas, "availableReplicas": spec.replicas,
                     "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                                     "message": "ReplicaSet has successfully progressed.",
                                     "lastUpdateTime": "2026-11-20T09:00:30Z"}]}
    dep["status"].update(status)
    return dep


def stuck() -> tuple[dict, list[dict]]:
    dep = copy.deepcopy(STUCK_DEPLOYMENT)
    dep["spec"]["template"] = template(RC1)
    return dep, [replicaset(1, V1, "7d9f8b", 1, 1, **{"kubernetes.io/change-cause": "first deploy"}),
                 replicaset(2, RC1, "6f7b9c", 1, 0, **{"kubernetes.io/change-cause": "release 1.1.0-rc1"})]


# --- rollout status ------------------------------------------------------------------------
def test_status_waits_for_the_controller_to_observe_the_new_generation():
    dep = deployment(1, V1)
    dep["metadata"]["generation"] = 3
    assert ro.rollout_status(dep) == ro.RolloutStatus("progressing", "waiting for the deployment spec update to be observed")


@pytest.mark.parametrize("status, expected", [
    ({"updatedReplicas": 1, "replicas": 2, "availableReplicas": 2}, "1 out of 2 new replicas have been updated"),
    ({"updatedReplicas": 2, "replicas": 3, "availableReplicas": 2}, "1 old replicas are pending termination"),
    ({"updatedReplicas": 2, "replicas": 2, "readyReplicas": 0, "availableReplicas": 0}, "0 of 2 updated replicas are ready"),
    ({"updatedReplicas": 2, "replicas": 2, "availableReplicas": 1}, "1 of 2 updated replicas are available"),
])
def test_status_is_progressing_until_every_replica_is_updated_and_available(status, expected):
    dep = deployment(1, V2, **status)
    dep["status"]["conditions"][1]["reason"] = "ReplicaSetUpdated"
    assert ro.rollout_status(dep) == ro.RolloutStatus("progressing", expected)


def test_status_complete_once_all_replicas_are_updated_and_available():
    assert ro.rollout_status(deployment(1, V2)).state == "complete"


def test_status_failed_on_progress_deadline_names_the_condition():
    status = ro.rollout_status(STUCK_DEPLOYMENT)
    assert status.state == "failed"
    assert "exceeded its progress deadline" in status.message
    assert 'Progressing=False (ProgressDeadlineExceeded): ReplicaSet "modelapi-6f7b9c" has timed out' in status.message


# --- history --------------------------------------------------------------------------------
def test_history_of_one_serving_revision():
    [rev] = ro.history(deployment(1, V1), [replicaset(1, V1, "7d9f8b", 1, 1, **{
        "kubernetes.io/change-cause": "first deploy"})])
    assert (rev.number, rev.state, rev.spec, rev.change_cause) == (1, "serving", V1, "first deploy")
    assert rev.created_at == datetime(2026, 11, 20, 1, tzinfo=UTC).timestamp()
    assert rev.ready_at is not None and rev.rollback_of is None


def test_stuck_rollout_is_failed_while_the_old_revision_keeps_serving():
    dep, rss = stuck()
    revs = ro.history(dep, rss)
    assert [(r.number, r.state) for r in revs] == [(1, "serving"), (2, "failed")]
    assert revs[1].spec.image == "labkit/modelapi:1.1.0-rc1"
    assert "ProgressDeadlineExceeded" in revs[1].reason


def test_rollout_in_progress_keeps_the_old_revision_serving():
    dep, rss = stuck()
    dep["status"]["conditions"][1].update(status="True", reason="ReplicaSetUpdated", message="progressing")
    assert [(r.number, r.state) for r in ro.history(dep, rss)] == [(1, "serving"), (2, "progressing")]


def test_before_the_controller_observes_a_patch_the_current_revision_still_serves():
    dep = deployment(1, V1)
    dep["metadata"]["generation"] = 3  # just patched; status is of generation 2
    rss = [replicaset(1, V1, "7d9f8b", 1, 1)]
    assert [(r.number, r.state) for r in ro.history(dep, rss)] == [(1, "serving")]


def test_undone_revision_reuses_its_replicaset_and_keeps_the_old_numbers():
    dep = deployment(3, V1)
    rss = [replicaset(2, RC1, "6f7b9c", 0, 0, **{"labkit.dev/failed-reason": "exceeded its progress deadline"}),
           replicaset(3, V1, "7d9f8b", 1, 1, **{"deployment.kubernetes.io/revision-history": "1",
                                                 "kubernetes.io/change-cause": "rollback to revision 1",
                                                 "labkit.dev/rollback-of": "1"})]
    revs = ro.history(dep, rss)
    assert [(r.number, r.state) for r in revs] == [(1, "superseded"), (2, "failed"), (3, "serving")]
    assert revs[2].rollback_of == 1 and revs[2].change_cause == "rollback to revision 1"
    assert revs[0].spec == revs[2].spec == V1
    assert revs[1].reason == "exceeded its progress deadline"


def test_superseded_revisions_and_foreign_replicasets():
    dep = deployment(2, V2)
    foreign = replicaset(1, V1, "aaaaaa", 1, 1)
    foreign["metadata"]["ownerReferences"][0]["uid"] = "someone-else"
    rss = [replicaset(1, V1, "7d9f8b", 0, 0), replicaset(2, V2, "5c4d3b", 2, 2), foreign]
    revs = ro.history(dep, rss)
    assert [(r.number, r.state, r.spec.model) for r in revs] == [(1, "superseded", "v1"), (2, "serving", "v2")]
    assert revs[1].spec.config == {"top_k": "3"} and revs[1].spec.replicas == 2


def test_spec_follows_what_the_container_really_runs():
    t = template(V1, image="labkit/modelapi:9.9.9")  # `kubectl set image` behind the kit's back
    t["spec"]["containers"][0]["env"].append({"name": "TOP_K", "value": "1"})
    spec = ro.spec_from_template(t)
    assert spec.image == "labkit/modelapi:9.9.9" and spec.config == {"top_k": "1"}


def test_spec_keeps_the_logical_image_when_the_registry_supplies_it():
    t = template(V1, image="registry.example.edu/labkit/modelapi:1.0.0")
    spec = ro.spec_from_template(t, resolve=lambda i: "registry.example.edu/labkit/" + i.split("/")[-1])
    assert spec.image == "labkit/modelapi:1.0.0"


def test_history_is_empty_before_the_first_deploy():
    assert ro.history(None, []) == []


# --- undo ---------------------------------------------------------------------------------------
def test_undo_of_a_stuck_rollout_returns_to_what_serves():
    dep, rss = stuck()
    rs, number = ro.undo_target(dep, rss)
    assert (rs["metadata"]["name"], number) == ("modelapi-7d9f8b", 1)


def test_undo_after_a_good_rollout_returns_to_the_previous_template():
    dep = deployment(2, V2)
    rss = [replicaset(1, V1, "7d9f8b", 0, 0), replicaset(2, V2, "5c4d3b", 2, 2)]
    rs, number = ro.undo_target(dep, rss)
    assert (rs["metadata"]["name"], number) == ("modelapi-7d9f8b", 1)


def test_undo_never_targets_failed_revisions_and_names_the_valid_ones():
    dep, rss = stuck()
    with pytest.raises(UnknownChoice, match=r"unknown revision 2; valid: 1"):
        ro.undo_target(dep, rss, to_revision=2)
    with pytest.raises(InvalidInput, match="no previous revision"):
        ro.undo_target(deployment(1, V1), [replicaset(1, V1, "7d9f8b", 1, 1)])


def test_undo_to_an_old_number_finds_the_replicaset_that_reused_it():
    dep = deployment(3, V1)
    rss = [replicaset(2, V2, "5c4d3b", 0, 0),
           replicaset(3, V1, "7d9f8b", 1, 1, **{"deployment.kubernetes.io/revision-history": "1"})]
    rs, number = ro.undo_target(dep, rss, to_revision=1)
    assert (rs["metadata"]["name"], number) == ("modelapi-7d9f8b", 1)


def test_undo_patch_is_kubectl_rollout_undo():
    dep, rss = stuck()
    patch = ro.undo_patch(dep, rss[0], "rollback to revision 1", 1)
    assert patch[0] == {"op": "replace", "path": "/metadata/resourceVersion", "value": "48213"}
    assert patch[1]["op"] == "replace" and patch[1]["path"] == "/spec/template"
    assert "pod-template-hash" not in patch[1]["value"]["metadata"]["labels"]
    assert patch[1]["value"]["spec"] == rss[0]["spec"]["template"]["spec"]
    assert patch[2] == {"op": "replace", "path": "/spec/replicas", "value": 1}
    assert patch[3]["path"] == "/metadata/annotations"
    assert patch[3]["value"]["kubernetes.io/change-cause"] == "rollback to revision 1"
    assert patch[3]["value"]["labkit.dev/rollback-of"] == "1"
    assert rss[0]["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == "7d9f8b"  # not mutated


# --- deploy -------------------------------------------------------------------------------------
def test_template_for_sets_image_env_annotation_and_cpu_limit():
    base = template(V1)
    base["spec"]["containers"][0]["env"].append({"name": "TOP_K", "value": "7"})
    spec = DeploySpec("v2", "2026-11-01-v2", "labkit/modelapi:1.0.0", 1, {"cpus": "0.05", "provider_timeout_s": "0.05"})
    t = ro.template_for(base, spec, "registry.example.edu/labkit/modelapi:1.0.0")
    c = t["spec"]["containers"][0]
    assert c["image"] == "registry.example.edu/labkit/modelapi:1.0.0"
    assert c["env"] == [{"name": "PORT", "value": "8080"}, {"name": "INDEX_NAME", "value": "2026-11-01-v2"},
                        {"name": "MODEL_VERSION", "value": "v2"}, {"name": "PROVIDER_TIMEOUT_S", "value": "0.05"}]
    assert c["resources"]["limits"]["cpu"] == "50m" and c["resources"]["requests"]["cpu"] == "50m"
    assert json.loads(t["metadata"]["annotations"]["labkit.dev/spec"]) == json.loads(spec.to_json())
    assert ro.spec_from_template(t, resolve=lambda i: "registry.example.edu/labkit/" + i.split("/")[-1]) == spec
    assert ro.template_for(t, spec, c["image"]) == t  # same spec, same template: no new revision


def test_deploy_patch_is_guarded_by_the_resource_version():
    dep = deployment(1, V1)
    patch = ro.deploy_patch(dep, template(V2), 2, "upgrade", 45, 10)
    assert [op["path"] for op in patch] == ["/metadata/resourceVersion", "/spec/template", "/spec/replicas",
                                           "/spec/progressDeadlineSeconds", "/spec/revisionHistoryLimit",
                                           "/metadata/annotations"]
    assert patch[-1]["value"]["kubernetes.io/change-cause"] == "upgrade"
    assert patch[-1]["value"]["labkit.dev/rollback-of"] == ""


@pytest.mark.parametrize("cpus, quantity", [("0.05", "50m"), ("2", "2"), ("1.5", "1500m")])
def test_cpu_quantity(cpus, quantity):
    assert ro.cpu_quantity(cpus) == quantity


def test_cpu_quantity_rejects_nonsense():
    with pytest.raises(InvalidInput, match="cpus must be"):
        ro.cpu_quantity("lots")
    with pytest.raises(InvalidInput, match="between"):
        ro.cpu_quantity("0")


# --- diagnostics ----------------------------------------------------------------------------------
def test_describe_pods_names_the_crash_and_its_exit_code():
    pod = {"metadata": {"name": "modelapi-6f7b9c-x2x4z"}, "status": {"containerStatuses": [{
        "name": "modelapi", "ready": False, "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
        "lastState": {"terminated": {"exitCode": 3, "reason": "Error"}}}]}}
    assert ro.describe_pods([pod]) == "modelapi-6f7b9c-x2x4z: CrashLoopBackOff, exited with code 3 (Error), 3 restarts"


def test_describe_events_keeps_the_newest_about_the_named_objects():
    def event(name: str, reason: str, ts: str) -> dict:
        return {"involvedObject": {"kind": "Pod", "name": name}, "reason": reason, "message": reason.lower(),
                "lastTimestamp": ts}

    events = [event("p1", "BackOff", "2026-11-20T09:01:00Z"), event("other", "Pulled", "2026-11-20T09:02:00Z"),
              event("p1", "Started", "2026-11-20T09:00:00Z")]
    assert ro.describe_events(events, {"p1"}) == "Pod/p1 Started: started; Pod/p1 BackOff: backoff"
    assert ro.describe_events(events, {"p1"}, limit=1) == "Pod/p1 BackOff: backoff"
