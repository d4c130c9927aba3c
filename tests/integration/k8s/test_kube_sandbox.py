"""Every sandbox operation and every fault of the catalog on a real Kubernetes cluster.

Needs a cluster (kind: ``labkit cluster create && labkit cluster load-image``) and runs
with ``make test-k8s``; ``conftest.py`` skips it, with the reason, where there is none.
One sandbox (its own namespace, ``labkit-e2e-<hex>``) serves the whole module, so the tests
run in file order and each leaves the sandbox serving; it is removed by label at the end.
"""

from __future__ import annotations

import json

import pytest
from faultcheck import assert_round_trip

from sandbox import labels
from sandbox.api import Sandbox
from sandbox.client import ServiceClient
from sandbox.errors import InvalidInput, InvalidReplicas, NoRevisionDeployed, RolloutFailed, UnknownChoice
from sandbox.faults import active_faults, heal, load_catalog
from sandbox.faults.remediations import REMEDIATIONS
from sandbox._kube.backend import OWNED_KINDS

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


# --- operations -------------------------------------------------------------------------------
def test_up_is_idempotent_labelled_and_stays_in_its_namespace(kube_sb):
    kube_sb.up()
    assert kube_sb.namespace == f"labkit-{kube_sb.id}"
    for kind in (*OWNED_KINDS, "ReplicaSet"):
        for obj in kube_sb.api.list(kind):
            meta = obj["metadata"]
            owned_by_job = any(o.get("kind") == "Job" for o in meta.get("ownerReferences") or [])
            assert labels.is_ours(meta.get("labels"), kube_sb.id) or owned_by_job, f"{kind}/{meta['name']}"
    with pytest.raises(InvalidInput, match="refusing to act in namespace kube-system"):
        kube_sb.api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "kube-system"}})
    assert kube_sb.endpoint.startswith("http://127.0.0.1:")


def test_nothing_deployed_is_a_clear_error(kube_sb):
    st = kube_sb.status()
    assert st.up and st.serving_revision is None and st.rollout == "none"
    assert kube_sb.history() == []
    with pytest.raises(NoRevisionDeployed, match="no revision deployed"):
        kube_sb.current()


def test_indexes_snapshots_and_build_index(kube_sb):
    names = {m["index_version"] for m in kube_sb.indexes()}
    assert {"2026-10-01-v1", "2026-10-01-v2", "2026-11-01-v1", "2026-11-01-v2"} <= names
    assert {"2026-10-01", "2026-11-01"} <= set(kube_sb.snapshots())
    manifest = kube_sb.build_index("v1", "2026-11-01", name="2026-11-01-v1-e2e")
    assert manifest["index_version"] == "2026-11-01-v1-e2e" and manifest["model_version"] == "v1"
    assert "2026-11-01-v1-e2e" in {m["index_version"] for m in kube_sb.indexes()}
    with pytest.raises(UnknownChoice, match="corpus snapshot"):
        kube_sb.build_index("v1", "1999-01-01")


def test_deploy_search_version_metrics_logs(kube_sb):
    rev = kube_sb.deploy(model="v1", index="2026-11-01", change_cause="first deploy")
    assert (rev.number, rev.state, rev.spec.index) == (1, "serving", "2026-11-01-v1")
    st = kube_sb.status()
    assert st.ready and st.serving_revision == 1 and st.rollout == "complete" and st.spec == rev.spec
    assert {c["component"] for c in st.components} >= {"modelapi", "provider"}
    body = kube_sb.search("vector index checksum mismatch on load", k=3)
    assert len(body["results"]) == 3 and body["model"] == "v1"
    assert kube_sb.version()["index"] == "2026-11-01-v1"
    samples = kube_sb.metrics()
    assert samples["modelapi_ready"][0][1] == 1.0
    assert "2026-11-01-v1" in kube_sb.logs()
    assert kube_sb.evaluate(5).recall > 0.5


def test_bad_input_names_the_valid_choices(kube_sb):
    with pytest.raises(UnknownChoice, match="valid: v1, v2"):
        kube_sb.deploy(model="v9")
    with pytest.raises(UnknownChoice, match="unknown index"):
        kube_sb.deploy(index="1999-01-01")
    with pytest.raises(InvalidReplicas):
        kube_sb.deploy(replicas=99)
    assert [r.number for r in kube_sb.history()] == [1]


def test_rollout_history_and_rollback(kube_sb):
    kube_sb.deploy(model="v2")
    assert kube_sb.version()["model"] == "v2"
    assert [(r.number, r.state) for r in kube_sb.history()] == [(1, "superseded"), (2, "serving")]
    back = kube_sb.rollback()
    assert (back.number, back.rollback_of, back.state) == (3, 1, "serving")
    assert kube_sb.version()["model"] == "v1"
    assert [(r.number, r.state) for r in kube_sb.history()] == [(1, "superseded"), (2, "superseded"), (3, "serving")]
    named = kube_sb.rollback(to_revision=2)
    assert named.rollback_of == 2 and kube_sb.version()["model"] == "v2"
    kube_sb.rollback(to_revision=3)
    assert kube_sb.version()["model"] == "v1"


def test_crashing_revision_is_held_back_by_readiness(kube_sb):
    serving = kube_sb.status().serving_revision
    with pytest.raises(RolloutFailed) as info:
        kube_sb.deploy(image=kube_sb.settings.images.defect, change_cause="release 1.1.0-rc1")
    assert info.value.serving == serving and "exited with code" in info.value.reason
    assert info.value.logs
    st = kube_sb.status()
    assert st.serving_revision == serving and st.rollout == "failed" and st.ready
    assert kube_sb.version()["image_revision"] == kube_sb.settings.images.tag
    assert kube_sb.history()[-1].state == "failed"
    undo = kube_sb.rollback()
    assert undo.rollback_of == serving and kube_sb.status().rollout == "complete"


def test_mismatched_index_is_held_back_with_its_reason(kube_sb):
    with pytest.raises(RolloutFailed, match="model-mismatch"):
        kube_sb.deploy(model="v2", index="2026-11-01-v1")
    assert kube_sb.version()["model"] == "v1"
    kube_sb.rollback()
    assert kube_sb.history()[-1].state == "serving"


def test_canary_without_waiting_and_each_replica_reached_directly(kube_sb):
    serving = kube_sb.status().serving_revision
    started = kube_sb.deploy(model="v2", index="2026-11-01", wait=False, change_cause="canary v2")
    assert started.number > serving
    done = kube_sb.wait_for_rollout()
    assert (done.number, done.state) == (started.number, "serving")
    urls = kube_sb.revision_endpoints(done.number)
    assert len(urls) == done.spec.replicas
    assert all(ServiceClient(u).version()["model"] == "v2" for u in urls)
    kube_sb.rollback(to_revision=serving)
    assert kube_sb.version()["model"] == "v1"


def test_state_is_a_labelled_configmap(kube_sb):
    state = kube_sb.state()
    assert state["revisions"] and state["faults"] == {}
    state["alerts"] = {"drift": {"threshold": 0.8}}
    kube_sb.save_state(state)
    assert kube_sb.state()["alerts"] == {"drift": {"threshold": 0.8}}
    cm = kube_sb.api.read("ConfigMap", "labkit-state")
    assert labels.is_ours(cm["metadata"]["labels"], kube_sb.id)


def test_run_job_and_its_errors(kube_sb):
    out = kube_sb.run_job(["python", "-m", "modelapi", "list-indexes", "--json"], "list-indexes")
    assert any(m["index_version"] == "2026-11-01-v1" for m in json.loads(out))
    with pytest.raises(InvalidInput, match="build-index failed"):
        kube_sb.run_job(["python", "-m", "modelapi", "build-index", "--model", "v9", "--corpus", "x"], "build-index")
    leftovers = [j for j in kube_sb.api.list("Job") if j["metadata"]["name"].startswith("labkit-job-")
                 and not j["metadata"].get("deletionTimestamp")]
    assert not leftovers  # every one-off Job is deleted once its output is read


def test_provider_primitives(kube_sb):
    assert kube_sb.provider_call("GET", "/admin/mode")["mode"] == "ok"
    kube_sb.provider_call("POST", "/admin/mode", {"mode": "error"})
    assert kube_sb.search("disk full on node")["provider"] != "ok"
    kube_sb.provider_call("POST", "/admin/mode", {"mode": "ok", "delay_s": 0.0})
    kube_sb.set_provider_running(False)
    assert not kube_sb.api.list("Pod", labels.kube_selector(kube_sb.id, "provider"))
    assert kube_sb.search("disk full on node")["results"]  # degraded to vector order, never failing
    kube_sb.set_provider_running(True)
    assert kube_sb.provider_call("GET", "/admin/mode")["mode"] == "ok"


def test_restart_serving_replaces_the_pods_and_serves_again(kube_sb):
    def live() -> set[str]:
        return {p["metadata"]["name"] for p in kube_sb.api.list("Pod", labels.kube_selector(kube_sb.id, "modelapi"))
                if not p["metadata"].get("deletionTimestamp")}

    before = live()
    kube_sb.restart_serving()
    assert before and not before & live()
    assert kube_sb.client.wait_ready(30).ready


# --- every fault of the catalog -------------------------------------------------------------------
def test_every_catalog_fault_has_a_remediation_here():
    assert set(load_catalog().ids()) == set(REMEDIATIONS)


def _baseline(sb: Sandbox) -> None:
    """No active fault, nothing stuck, v1 over the newest index serving."""
    for fault_id in list(active_faults(sb)):
        heal(sb, fault_id)
    if sb.history()[-1].state != "serving":
        sb.rollback()
    spec = sb.status().spec
    if spec is None or (spec.model, spec.index, spec.image) != ("v1", "2026-11-01-v1", sb.settings.images.default):
        sb.deploy(model="v1", index="2026-11-01", image=sb.settings.images.default, change_cause="baseline")


@pytest.mark.parametrize("fault_id", sorted(REMEDIATIONS))
def test_fault_detect_remediate_heal(kube_sb, fault_id):
    _baseline(kube_sb)
    assert_round_trip(kube_sb, fault_id)


# --- last: a clean slate ----------------------------------------------------------------------------
def test_reset_gives_a_clean_sandbox(kube_sb):
    kube_sb.reset()
    st = kube_sb.status()
    assert st.up and st.serving_revision is None and st.faults == []
    assert kube_sb.history() == []
