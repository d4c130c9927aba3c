"""The kube tier's canaries, numbering, resize and typed components, on the fake cluster of
``tests/kubefake.py`` (real ``kubernetes`` client, kmock's emulator, controllers behind it).

The assertions are the ones the Docker tier meets for real (``tests/integration/docker``): a
canary (``deploy(wait=False)``) takes no user traffic until ``wait_for_rollout()`` promotes it;
failed revisions stay as failed history; revision numbers, rollbacks and the default index are
the same on both tiers; a bad ``cpus`` is refused before anything changes; the grader counts
replicas through typed components; a resize changes the CPU limit of the serving replicas in
place, without a new revision.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import kmock as km
import pytest
from kubefake import run, NS, R
from kubeworkload import CRASH, DEFECT_IMAGE

import graders
from sandbox._kube import rollout as ro
from sandbox._kube.rollout import parse_time
from sandbox.client import ServiceClient
from sandbox.errors import (
    ImageMissing,
    InfrastructureError,
    InvalidInput,
    KubeConflict,
    KubeForbidden,
    RolloutFailed,
    UnknownChoice,
)

TRACK = "labkit.dev/track"
REVISION = "labkit.dev/revision"


def writes(kmock) -> list:
    return [r for r in kmock if r.method in ("POST", "PATCH", "PUT", "DELETE") and r.resource is not None
            and not (r.subresource or "").startswith("proxy")]


def states(history) -> list[tuple[int, str]]:
    return [(r.number, r.state) for r in history]


def pods_of(fake, number: int, track: str | None = None) -> list[dict]:
    return [p for p in fake.all("pods") if p["metadata"]["labels"].get(REVISION) == str(number)
            and (track is None or p["metadata"]["labels"].get(TRACK) == track)]


async def deployed(sb, **kwargs):
    await run(sb.up)
    await run(sb.deploy, model="v1", index="2026-11-01", change_cause="first deploy", **kwargs)
    return sb


# --- canary semantics ---------------------------------------------------------------------------
async def test_a_canary_takes_no_user_traffic_until_promoted(make_kube_sb, kmock, fake):
    sb = await deployed(make_kube_sb(progress_deadline_s=60))  # it must stay progressing meanwhile
    canary = await run(sb.deploy, model="v2", index="2026-11-01", wait=False, change_cause="canary v2")
    assert (canary.number, canary.state) == (2, "progressing")
    dep = fake.get("deployments", "modelapi-canary-r2")
    assert dep["spec"]["selector"]["matchLabels"][TRACK] == "canary"
    assert dep["spec"]["template"]["metadata"]["labels"][TRACK] == "canary"
    assert fake.get("services", "modelapi")["spec"]["selector"][TRACK] == "stable"
    [pod] = pods_of(fake, 2)
    assert pod["metadata"]["labels"][TRACK] == "canary"
    for _ in range(10):
        assert (await run(sb.search, "disk full on node"))["model"] == "v1"  # the front door: revision 1 only
    assert fake.served(pod["metadata"]["name"]) == 0
    [url] = await run(sb.revision_endpoints, 2)
    assert (await run(ServiceClient(url).version))["model"] == "v2"
    assert (await run(ServiceClient(url).search, "disk full on node"))["model"] == "v2"
    via = [r.url.path for r in kmock if f"/pods/{pod['metadata']['name']}:8080/proxy/" in r.url.path]
    assert via == [f"/api/v1/namespaces/{NS}/pods/{pod['metadata']['name']}:8080/proxy/version",
                   f"/api/v1/namespaces/{NS}/pods/{pod['metadata']['name']}:8080/proxy/v1/search"]
    st = await run(sb.status)
    assert (st.serving_revision, st.latest_revision, st.rollout, st.ready) == (1, 2, "progressing", True)
    assert states(await run(sb.history)) == [(1, "serving"), (2, "progressing")]


async def test_wait_for_rollout_promotes_the_canary_onto_the_main_deployment(make_kube_sb, kmock, fake):
    sb = await deployed(make_kube_sb(progress_deadline_s=60))  # promoted well within its deadline
    await run(sb.deploy, model="v2", wait=False, change_cause="canary v2")
    canary_rs = [rs for rs in fake.all("replicasets") if rs["metadata"]["name"].startswith("modelapi-canary-r2")]
    done = await run(sb.wait_for_rollout)
    assert (done.number, done.state, done.spec.model, done.change_cause) == (2, "serving", "v2", "canary v2")
    promote = [r for r in kmock if r.method == "PATCH" and r.resource == R["deployments"] and r.name == "modelapi"
               and not r.subresource][-1]
    template = promote.data[1]["value"]
    assert template["metadata"]["labels"][TRACK] == "stable" and template["metadata"]["labels"][REVISION] == "2"
    assert parse_time(template["metadata"]["annotations"]["labkit.dev/canary-created"]) == parse_time(
        canary_rs[0]["metadata"]["creationTimestamp"])
    assert fake.get("deployments", "modelapi-canary-r2") is None  # deleted once promoted
    assert (await run(sb.search, "disk full on node"))["model"] == "v2"
    history = await run(sb.history)
    assert states(history) == [(1, "superseded"), (2, "serving")]
    assert history[1].created_at < history[1].ready_at  # created when the canary started
    assert await run(sb.wait_for_rollout) == history[1]  # nothing left to wait for


async def test_a_promotion_the_api_server_refuses_leaves_the_canary_waiting(make_kube_sb, fake):
    sb = await deployed(make_kube_sb(progress_deadline_s=60))
    await run(sb.deploy, model="v2", wait=False)
    fake.refuse("deployments", km.KubernetesError(status=409, reason="Conflict", message="modified"), times=2)
    with pytest.raises(KubeConflict):
        await run(sb.wait_for_rollout)
    assert states(await run(sb.history)) == [(1, "serving"), (2, "progressing")]  # a temporary error: it waits on
    assert (await run(sb.wait_for_rollout)).state == "serving"


async def test_an_interrupted_promotion_is_finished_by_the_next_wait(make_kube_sb, fake):
    sb = await deployed(make_kube_sb(progress_deadline_s=60))
    await run(sb.deploy, model="v2", wait=False)
    canary = fake.get("deployments", "modelapi-canary-r2")
    template = ro.on_track(canary["spec"]["template"], "stable",
                           **{ro.CANARY_CREATED: canary["metadata"]["creationTimestamp"]})
    await run(sb.rollouts._write_main, template, 1, "canary v2")  # the kernel died right after this write
    assert states(await run(sb.history)) == [(1, "superseded"), (2, "serving")]  # being promoted: it serves
    done = await run(sb.wait_for_rollout)
    assert (done.number, done.state) == (2, "serving") and fake.get("deployments", "modelapi-canary-r2") is None
    assert (await run(sb.search, "disk full"))["model"] == "v2"


async def test_a_canary_that_never_gets_ready_is_failed_history_numbered_as_on_docker(kube_sb, kmock, fake):
    sb = await deployed(kube_sb)
    await run(sb.deploy, model="v2", index="2026-11-01-v1", wait=False, change_cause="model flip")
    with pytest.raises(RolloutFailed) as info:
        await run(sb.wait_for_rollout)
    assert (info.value.revision, info.value.serving) == (2, 1) and "model-mismatch" in info.value.reason
    canary = fake.get("deployments", "modelapi-canary-r2")
    assert canary is not None and canary["spec"]["replicas"] == 0  # stopped, kept as history
    assert pods_of(fake, 2) == []
    assert states(await run(sb.history)) == [(1, "serving"), (2, "failed")]
    before = len(writes(kmock))
    with pytest.raises(RolloutFailed):  # said again; nothing changes
        await run(sb.wait_for_rollout)
    assert len(writes(kmock)) == before
    assert (await run(sb.deploy, model="v2", index="2026-11-01")).number == 3
    assert states(await run(sb.history)) == [(1, "superseded"), (2, "failed"), (3, "serving")]


async def test_a_new_rollout_retires_a_waiting_canary_first(make_kube_sb, fake):
    sb = await deployed(make_kube_sb(progress_deadline_s=60))
    assert (await run(sb.deploy, model="v2", wait=False)).number == 2
    assert (await run(sb.deploy, top_k=3)).number == 3
    history = await run(sb.history)
    assert states(history) == [(1, "superseded"), (2, "failed"), (3, "serving")]
    assert history[1].reason == "superseded before it became ready" and history[1].finished_at
    assert fake.get("deployments", "modelapi-canary-r2")["spec"]["replicas"] == 0 and pods_of(fake, 2) == []
    assert (await run(sb.deploy, model="v2", wait=False)).number == 4
    assert (await run(sb.rollback)).number == 5  # a rollback retires it too: back to what serves
    assert states(await run(sb.history))[-2:] == [(4, "failed"), (5, "serving")]


async def test_a_stuck_canary_is_reachable_and_reported_failed_after_its_deadline(kube_sb, fake):
    """Lab 2's stuck rollout: nobody waited for it; it runs, not ready, past its deadline."""
    sb = await deployed(kube_sb)
    await run(sb.deploy, data_dir="/data/volumes/2026-11", wait=False, change_cause="OPS-214")
    await asyncio.sleep(1.3)  # past the 1 s progress deadline
    stuck = (await run(sb.history))[-1]
    assert (stuck.number, stuck.state) == (2, "failed") and "ProgressDeadlineExceeded" in stuck.reason
    [url] = await run(sb.revision_endpoints, 2)
    client = ServiceClient(url, timeout_s=2)
    ready = await run(client.readiness)  # it answers (alive), and says why it is not ready
    assert (ready.ready, ready.reason) == (False, "index-missing")
    undo = await run(sb.rollback)
    assert (undo.number, undo.rollback_of, undo.state) == (3, 1, "serving")
    assert fake.get("deployments", "modelapi-canary-r2")["spec"]["replicas"] == 0


async def test_rollback_numbering_is_the_docker_tiers(kube_sb, fake):
    sb = await deployed(kube_sb)
    await run(sb.deploy, model="v2")
    back = await run(sb.rollback)
    assert (back.number, back.rollback_of, back.spec.model) == (3, 1, "v1")
    named = await run(sb.rollback, to_revision=2)
    assert (named.number, named.rollback_of, named.spec.model) == (4, 2, "v2")
    assert states(await run(sb.history)) == [(1, "superseded"), (2, "superseded"), (3, "superseded"), (4, "serving")]
    assert (await run(sb.version))["model"] == "v2"
    with pytest.raises(UnknownChoice, match="valid: 1, 2, 3, 4"):
        await run(sb.rollback, to_revision=42)


async def test_history_keeps_the_newest_finished_revisions_up_to_the_limit(make_kube_sb, fake):
    sb = make_kube_sb()
    sb.settings = replace(sb.settings, rollout=replace(sb.settings.rollout, revision_history_limit=2))
    await deployed(sb)
    for k in (2, 3, 4):
        await run(sb.deploy, top_k=k)
    assert [r.number for r in await run(sb.history)] == [2, 3, 4]
    await run(sb.deploy, model="v2", index="2026-11-01-v1", wait=False)
    with pytest.raises(RolloutFailed):
        await run(sb.wait_for_rollout)
    assert states(await run(sb.history)) == [(3, "superseded"), (4, "serving"), (5, "failed")]


# --- the shared rules, on this tier ---------------------------------------------------------------
async def test_the_default_index_is_the_newest_dated_snapshots_never_the_poisoned_one(kube_sb, fake):
    fake.data.snapshots.append("2026-11-15-poisoned")
    fake.data.indexes.append({"index_version": "2026-11-15-poisoned-v1", "model_version": "v1",
                              "corpus_snapshot": "2026-11-15-poisoned", "dims": 256})
    await run(kube_sb.up)
    assert (await run(kube_sb.snapshots))[-1] == "2026-11-15-poisoned"
    rev = await run(kube_sb.deploy, model="v1")
    assert rev.spec.index == "2026-11-01-v1"


async def test_a_bad_cpus_is_refused_before_any_request_that_changes_anything(kube_sb, kmock, fake):
    sb = await deployed(kube_sb)
    before = len(writes(kmock))
    for bad in ("lots", "0", "100", "-1"):
        with pytest.raises(InvalidInput, match="cpus must be"):
            await run(sb.deploy, cpus=bad)
    with pytest.raises(InvalidInput, match="cpus must be"):
        await run(sb.throttle_serving, 0)
    assert len(writes(kmock)) == before and [r.number for r in await run(sb.history)] == [1]


async def test_replicas_are_counted_through_typed_components(kube_sb, fake):
    sb = await deployed(kube_sb, replicas=2)
    st = await run(sb.status)
    running = st.replicas()
    assert len(running) == 2 and {(c.state, c.detail, c.revision) for c in running} == {("running", "Running", 1)}
    result = await run(graders.check, "serving", sb, replicas=2)
    assert result.passed, result
    assert not (await run(graders.check, "serving", sb, replicas=3)).passed


async def test_components_keep_the_kubelets_words(kube_sb, fake):
    sb = await deployed(kube_sb)
    await run(sb.deploy, image=DEFECT_IMAGE, wait=False)
    st = await run(sb.status)
    by_component = {(c.component, c.revision): c for c in st.components}
    crashing = by_component[("modelapi", 2)]
    assert (crashing.state, crashing.detail) == ("failed", "CrashLoopBackOff, exited with code 3")
    assert (by_component[("job", None)].state, by_component[("job", None)].detail) == ("stopped", "Completed")
    assert (by_component[("provider", None)].state, by_component[("provider", None)].cpus) == ("running", 0.5)
    await run(sb.deploy, model="v2", index="2026-11-01-v1", wait=False)
    unready = [c for c in (await run(sb.status)).components if c.revision == 3]
    assert [(c.state, c.detail) for c in unready] == [("running", "Running (not ready)")]
    assert CRASH in await run(sb.logs, 2)


# --- in-place resize ------------------------------------------------------------------------------------
async def test_throttle_resizes_the_serving_pods_in_place_without_a_new_revision(kube_sb, kmock, fake):
    sb = await deployed(kube_sb)
    [pod] = pods_of(fake, 1)
    await run(sb.throttle_serving, 0.02)
    [resize] = [r for r in kmock if r.subresource == "resize"]
    assert resize.url.path == f"/api/v1/namespaces/{NS}/pods/{pod['metadata']['name']}/resize"
    assert resize.method == "PATCH" and resize.headers["Content-Type"] == "application/json-patch+json"
    assert resize.data == [{"op": "test", "path": "/spec/containers/0/name", "value": "modelapi"},
                           {"op": "replace", "path": "/spec/containers/0/resources", "value": {
                               "requests": {"cpu": "20m", "memory": "256Mi"},
                               "limits": {"cpu": "20m", "memory": "768Mi"}}}]
    assert [(c.cpus, c.name) for c in (await run(sb.status)).replicas()] == [(0.02, pod["metadata"]["name"])]
    assert [r.number for r in await run(sb.history)] == [1]
    assert not [r for r in kmock if r.method == "PATCH" and r.resource == R["deployments"]]
    await run(sb.throttle_serving, None)  # back to what the revision's template says
    assert [r for r in kmock if r.subresource == "resize"][-1].data[1]["value"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "768Mi"}}
    assert [c.cpus for c in (await run(sb.status)).replicas()] == [1.0]


async def test_a_resize_the_kubelet_refuses_says_why(kube_sb, fake):
    sb = await deployed(kube_sb)
    fake.resize_refused = True
    with pytest.raises(InfrastructureError, match="refused the in-place resize: infeasible: Node didn't have"):
        await run(sb.throttle_serving, 0.5)


async def test_a_template_changed_behind_the_kits_back_keeps_its_number_and_shows_what_runs(kube_sb, fake):
    sb = await deployed(kube_sb)
    main = fake.get("deployments", "modelapi")
    main["spec"]["template"]["spec"]["containers"][0]["image"] = "labkit/modelapi:9.9.9"  # kubectl set image
    fake.put("deployments", main)
    fake.reconcile()
    [rev] = await run(sb.history)
    assert (rev.number, rev.state, rev.spec.image) == (1, "serving", "labkit/modelapi:9.9.9")


async def test_the_spec_cpus_sets_limit_and_request(kube_sb, fake):
    sb = await deployed(kube_sb)
    await run(sb.deploy, cpus="250m")
    [pod] = pods_of(fake, 2)
    assert pod["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "250m"
    assert pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "100m"
    assert [c.cpus for c in (await run(sb.status)).replicas()] == [0.25]
    assert (await run(sb.current)).spec.config == {"cpus": "250m"}


# --- images, preflight, foreign objects ------------------------------------------------------------------
async def test_an_image_no_node_holds_is_refused_before_anything_changes(kube_sb, kmock, fake):
    sb = await deployed(kube_sb)
    fake.images.discard(DEFECT_IMAGE)
    before = len(writes(kmock))
    with pytest.raises(ImageMissing, match="labkit/modelapi:1.1.0-rc1 is not available in the cluster") as info:
        await run(sb.deploy, image=DEFECT_IMAGE)
    assert "labkit cluster load-image" in str(info.value) and isinstance(info.value, InfrastructureError)
    assert len(writes(kmock)) == before


async def test_an_image_that_cannot_be_pulled_is_found_at_once_and_leaves_no_revision(kube_sb, kmock, fake):
    sb = await deployed(kube_sb)
    fake.images.discard(DEFECT_IMAGE)
    fake.nodes_readable = False  # a trainee may not list nodes: the kubelet says it
    with pytest.raises(ImageMissing, match="ErrImageNeverPull"):
        await run(sb.deploy, image=DEFECT_IMAGE)  # from the pod's state: the deadline would say RolloutFailed
    assert states(await run(sb.history)) == [(1, "serving")]
    assert (await run(sb.status)).rollout == "complete"


async def test_a_first_deploy_whose_image_never_arrives_leaves_nothing_behind(kube_sb, fake):
    await run(kube_sb.up)
    fake.images.discard("labkit/modelapi:1.0.0")
    fake.nodes_readable = False
    with pytest.raises(ImageMissing):
        await run(kube_sb.deploy, model="v1")
    assert await run(kube_sb.history) == [] and fake.get("deployments", "modelapi") is None
    fake.images.add("labkit/modelapi:1.0.0")
    assert (await run(kube_sb.deploy, model="v1")).number == 1  # numbered as if it never happened (Docker's rule)


async def test_a_promotion_the_quota_refuses_is_infrastructure_and_the_old_revision_keeps_serving(
        make_kube_sb, fake):
    sb = await deployed(make_kube_sb(progress_deadline_s=60))
    await run(sb.deploy, model="v2", wait=False)
    fake.quota_pods = len(fake.all("pods"))  # the canary got its pod; the promotion gets none
    with pytest.raises(KubeForbidden, match="exceeded quota"):
        await run(sb.wait_for_rollout)
    history = await run(sb.history)
    assert states(history) == [(1, "serving"), (2, "failed")] and history[1].reason.startswith("promotion failed")
    assert (await run(sb.search, "disk full"))["model"] == "v1"


async def test_preflight_and_foreign_objects(kube_sb, fake):
    fake.images.clear()
    with pytest.raises(InfrastructureError, match="labkit/modelapi:1.0.0 is not available"):
        await run(kube_sb.preflight)
    fake.images.add("labkit/modelapi:1.0.0")
    await run(kube_sb.preflight)
    await deployed(kube_sb)
    fake.put("configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "instructor-notes"}})
    foreign = await run(kube_sb.foreign_objects)
    assert [v["name"] for v in foreign["configmaps"].values()] == ["instructor-notes"]
    assert set(foreign) == {"configmaps"}  # everything else is the kit's, labelled
    json.dumps(foreign)


# --- the same, synchronously (the flavour a cross-tier test uses) ------------------------------------
def test_the_threaded_cluster_serves_a_plain_synchronous_test(kube_cluster):
    sb = kube_cluster.sandbox(progress_deadline_s=60)
    sb.up()
    sb.deploy(model="v1")
    canary = sb.deploy(model="v2", wait=False)
    assert sb.search("disk full")["model"] == "v1" and sb.status().rollout == "progressing"
    assert [ServiceClient(u).version()["model"] for u in sb.revision_endpoints(canary.number)] == ["v2"]
    assert sb.wait_for_rollout().number == canary.number and sb.search("disk full")["model"] == "v2"
    assert kube_cluster.sync(lambda c: c.get("deployments", "modelapi-canary-r2")) is None
    assert [r.number for r in sb.history()] == [1, 2]


def test_a_first_deploy_as_a_canary_serves_nothing_until_promoted(kube_cluster):
    sb = kube_cluster.sandbox(progress_deadline_s=60)
    sb.up()
    first = sb.deploy(model="v1", wait=False)
    st = sb.status()
    assert (first.number, st.serving_revision, st.rollout, st.ready) == (1, None, "progressing", False)
    assert "no endpoints available" in st.reason
    assert kube_cluster.sync(lambda c: c.get("deployments", "modelapi")) is None
    assert sb.wait_for_rollout().state == "serving"
    assert sb.status().ready and sb.search("disk full")["model"] == "v1"
