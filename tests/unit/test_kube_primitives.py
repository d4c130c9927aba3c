"""Contract tests of the kube tier's data and fault primitives (fault records, Jobs, the
provider, restarts, the front door, quota refusals, the catalog's rollout faults) through the
real ``kubernetes`` client against the fake cluster of ``tests/kubefake.py``. The rollout
contract is ``test_kube_contract.py``'s.
"""

from __future__ import annotations

import json

import kmock as km
import pytest
from faultcheck import assert_round_trip
from kubefake import run, NS, R

from sandbox import labels
from sandbox.errors import (
    InfrastructureError,
    InvalidInput,
    KubeConflict,
    KubeForbidden,
    StateError,
    UnknownChoice,
)
from sandbox.faults import active_faults, heal, inject

TRACK = "labkit.dev/track"


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


# --- fault records, jobs, fault primitives -------------------------------------------------------------
async def test_fault_records_live_in_a_labelled_configmap_guarded_by_its_resource_version(kube_sb, kmock, fake):
    await deployed(kube_sb)
    rv = fake.get("configmaps", "labkit-state")["metadata"]["resourceVersion"]
    await run(kube_sb._save_fault, "stale-index", {"state": "active"})
    [patch] = requests(kmock, "PATCH", "configmaps")
    assert patch.url.path == f"/api/v1/namespaces/{NS}/configmaps/labkit-state"
    assert patch.headers["Content-Type"] == "application/merge-patch+json"
    assert patch.data["metadata"] == {"resourceVersion": rv}
    assert json.loads(patch.data["data"]["state.json"]) == {"faults": {"stale-index": {"state": "active"}}, "version": 2}
    conflict = km.KubernetesError(status=409, reason="Conflict", message="the object has been modified")
    fake.refuse("configmaps", conflict)  # a concurrent writer: read again, write again
    await run(kube_sb._save_fault, "config-drift", {"state": "active"})
    assert sorted(await run(kube_sb._fault_records)) == ["config-drift", "stale-index"]
    fake.refuse("configmaps", conflict, times=3)
    with pytest.raises(KubeConflict):
        await run(kube_sb._save_fault, "config-drift", None)
    assert (await run(kube_sb.status)).faults == ["config-drift", "stale-index"]


async def test_run_job_mounts_the_data_volume_and_returns_stdout(kube_sb, kmock, fake):
    await deployed(kube_sb)
    fake.job_out["tamper-index"] = '{"tampered": true}'
    out = await run(kube_sb.run_job, ["python", "-m", "modelapi", "tamper-index", "--name", "x"], "tamper-index")
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
        await run(kube_sb.run_job, ["python", "-m", "modelapi", "lineage", "--index", "nope"], "lineage")


async def test_build_index_then_deploy_it(kube_sb, fake):
    await deployed(kube_sb)
    manifest = await run(kube_sb.build_index, "v2", "2026-10-01", name="old-v2")
    assert (manifest["model_version"], manifest["corpus_snapshot"]) == ("v2", "2026-10-01")
    assert "old-v2" in [m["index_version"] for m in await run(kube_sb.indexes)]
    assert (await run(kube_sb.deploy, model="v2", index="old-v2")).spec.index == "old-v2"
    assert (await run(kube_sb.version))["index"] == "old-v2"
    with pytest.raises(UnknownChoice, match="corpus snapshot"):
        await run(kube_sb.build_index, "v1", "1999-01-01")


async def test_provider_primitives_go_through_the_api_server(kube_sb, kmock, fake):
    await deployed(kube_sb)
    assert await run(kube_sb.provider_call, "POST", "/admin/mode", {"mode": "slow", "delay_s": 2.0}) == {
        "mode": "slow", "delay_s": 2.0}
    path = f"/api/v1/namespaces/{NS}/services/provider:http/proxy/admin/mode"
    [call] = [r for r in kmock if r.url.path == path]
    assert call.method == "POST" and call.data == {"mode": "slow", "delay_s": 2.0}
    assert (await run(kube_sb.search, "disk full"))["provider"] == "timeout"
    await run(kube_sb.set_provider_running, False)
    scale = requests(kmock, "PATCH", "deployments", "scale")[-1]
    assert scale.url.path == f"/apis/apps/v1/namespaces/{NS}/deployments/provider/scale"
    assert scale.headers["Content-Type"] == "application/merge-patch+json" and scale.data == {"spec": {"replicas": 0}}
    assert (await run(kube_sb.search, "disk full"))["results"]  # degraded to vector order, never failing


async def test_the_accelerator_pool_is_read_and_resized_through_the_api_server(kube_sb, kmock, fake):
    """Parity with the Docker tier: the same public call, the provider's own /admin/pool, reached
    through the API server's service proxy; out-of-range sizes are refused before any request."""
    await deployed(kube_sb)
    path = f"/api/v1/namespaces/{NS}/services/provider:http/proxy/admin/pool"
    assert (await run(kube_sb.provider_pool))["slots"] == 0
    assert (await run(kube_sb.provider_pool, slots=4))["slots"] == 4
    calls = [(r.method, r.data) for r in kmock if r.url.path == path]
    assert calls[-1] == ("POST", {"slots": 4}) and calls[0][0] == "GET"
    with pytest.raises(InvalidInput, match="1 to 8 slots"):
        await run(kube_sb.provider_pool, slots=9)
    assert len([r for r in kmock if r.url.path == path]) == len(calls)


async def test_restart_serving_deletes_only_the_serving_replicas(kube_sb, kmock, fake):
    await deployed(kube_sb, replicas=2)
    await run(kube_sb.deploy, model="v2", wait=False)  # a canary waits beside them
    serving = sorted(p["metadata"]["name"] for p in fake.all("pods")
                     if p["metadata"]["labels"].get("labkit.dev/revision") == "1")
    await run(kube_sb.restart_serving)  # returns once the replacements are ready
    assert sorted(r.name for r in requests(kmock, "DELETE", "pods")) == serving
    st = await run(kube_sb.status)
    assert len(st.replicas(1)) == 2 and not {c.name for c in st.replicas(1)} & set(serving)
    assert len(st.replicas(2)) == 2  # the canary (of the same spec: 2 replicas) was not touched


async def test_the_endpoint_is_the_service_through_the_api_server_proxy(kube_sb, kmock, fake):
    await deployed(kube_sb)
    assert (await run(lambda: kube_sb.endpoint)).startswith("http://127.0.0.1:")
    body = await run(kube_sb.search, "disk full", 3)
    assert len(body["results"]) == 3 and body["model"] == "v1"
    search = f"/api/v1/namespaces/{NS}/services/modelapi:http/proxy/v1/search"
    [call] = [r for r in kmock if r.url.path == search]
    assert call.data == {"query": "disk full", "k": 3}
    main = fake.get("deployments", "modelapi")
    main["spec"]["replicas"] = 0  # `kubectl scale --replicas 0` behind the kit's back
    fake.put("deployments", main)
    fake.reconcile()
    ready = await run(kube_sb.readiness)
    assert (ready.ready, ready.reason, ready.status_code) == (False, "unreachable", 503)
    assert "no endpoints available" in ready.detail


async def test_a_quota_refusal_is_infrastructure_never_a_trainee_result(kube_sb, kmock, fake):
    await deployed(kube_sb)
    fake.refuse("jobs", km.KubernetesError(status=403, reason="Forbidden", message=(
        'jobs.batch "labkit-job-1" is forbidden: exceeded quota: labkit-quota, requested: count/jobs.batch=1,'
        " used: count/jobs.batch=20, limited: count/jobs.batch=20")))
    with pytest.raises(KubeForbidden) as info:
        await run(kube_sb.build_index, "v1", "2026-11-01", name="again")
    e = info.value
    assert isinstance(e, InfrastructureError) and not isinstance(e, StateError) and not e.temporary
    assert e.code == 403 and e.reason == "Forbidden" and "exceeded quota" in e.status["message"]
    assert "ask your instructor" in str(e)
    fake.quota_pods = len(fake.all("pods"))  # the ReplicaSet controller may create no pod more
    with pytest.raises(KubeForbidden, match="the cluster refused the pods of revision 2: .*exceeded quota"):
        await run(kube_sb.deploy, model="v2")  # from the Deployment's condition, not its deadline
    assert [(r.number, r.state) for r in await run(kube_sb.history)] == [(1, "serving")]  # it never started


async def test_catalog_faults_inject_and_heal_through_these_primitives(kube_sb, fake):
    """The catalog is written against the Sandbox interface only; two of its rollout faults
    run end to end here (the e2e suite runs all of them on a cluster)."""
    await deployed(kube_sb)
    before = (await run(kube_sb.status)).spec
    assert (await run(inject, kube_sb, "config-drift"))["injected"]
    assert (await run(kube_sb.status)).spec.config == {"top_k": "1"}
    assert (await run(heal, kube_sb, "config-drift"))["healed"]
    assert "exited with code 3" in (await run(inject, kube_sb, "bad-rollout"))["rollout_failed"]
    assert (await run(kube_sb.history))[-1].state == "failed"
    assert (await run(heal, kube_sb, "bad-rollout"))["healed"]
    assert (await run(kube_sb.status)).spec == before and await run(active_faults, kube_sb) == {}
    assert [(r.number, r.state) for r in await run(kube_sb.history)] == [
        (1, "superseded"), (2, "superseded"), (3, "superseded"), (4, "failed"), (5, "serving")]


async def test_the_accelerator_shortfall_sets_and_restores_the_pool_on_kube(kube_sb, fake):
    await deployed(kube_sb)
    assert (await run(inject, kube_sb, "accelerator-shortfall"))["injected"]
    assert (await run(kube_sb.provider_pool))["slots"] == 2
    assert (await run(heal, kube_sb, "accelerator-shortfall"))["healed"]
    assert (await run(kube_sb.provider_pool))["slots"] == 0 and await run(active_faults, kube_sb) == {}


@pytest.mark.parametrize("fault_id", ["bad-rollout", "model-index-mismatch", "config-drift"])
def test_the_fault_round_trip_both_tiers_share(kube_cluster, fault_id):
    """``tests/faultcheck.py``'s round trip (inject, detected with hints, remediated, healed,
    healed alone), synchronously, for the faults whose probes the fake's pods can answer
    (the others measure recall, latency or drift of the real model API: the e2e suite's)."""
    sb = kube_cluster.sandbox(progress_deadline_s=2)
    sb.up()
    sb.deploy(model="v1")
    assert_round_trip(sb, fault_id)
