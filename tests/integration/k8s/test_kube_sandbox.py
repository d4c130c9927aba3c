"""Every sandbox operation and every fault of the catalog on a real Kubernetes cluster.

Needs a cluster (kind: ``labkit cluster create && labkit cluster load-image``; Kubernetes
1.33+ for the in-place resize the saturation fault uses) and runs with ``make test-k8s``;
``conftest.py`` skips it, with the reason, where there is none. One sandbox (its own
namespace, ``labkit-e2e-<hex>``) serves the whole module, so the tests run in file order and
each leaves the sandbox serving; it is removed by label at the end. The assertions are the
Docker tier's (``tests/integration/docker``); the same ones run on every commit against the
fake cluster (``tests/unit/test_kube_*``).
"""

from __future__ import annotations

import pytest
from faultcheck import assert_round_trip

import graders
from sandbox import labels
from sandbox.api import Sandbox
from sandbox.client import ServiceClient
from sandbox.errors import InvalidInput, InvalidReplicas, NoRevisionDeployed, RolloutFailed, UnknownChoice
from sandbox.faults import active_faults, heal, load_catalog
from sandbox.faults.remediations import REMEDIATIONS
from sandbox.waiting import until
from sandbox._kube.backend import OWNED_KINDS

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def states(sb: Sandbox) -> list[tuple[int, str]]:
    return [(r.number, r.state) for r in sb.history()]


def searches_served(url: str) -> float:
    return sum(v for lbl, v in ServiceClient(url).metrics().get("modelapi_requests_total", [])
               if lbl.get("route") == "/v1/search")


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
    kube_sb.preflight()


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
    rev = kube_sb.deploy(model="v1", change_cause="first deploy")  # the newest dated snapshot's index
    assert (rev.number, rev.state, rev.spec.index) == (1, "serving", "2026-11-01-v1")
    st = kube_sb.status()
    assert st.ready and st.serving_revision == 1 and st.rollout == "complete" and st.spec == rev.spec
    assert {c.component for c in st.components} >= {"modelapi", "provider"}
    assert [(c.state, c.revision) for c in st.replicas()] == [("running", 1)]
    body = kube_sb.search("vector index checksum mismatch on load", k=3)
    assert len(body["results"]) == 3 and body["model"] == "v1"
    assert kube_sb.version()["index"] == "2026-11-01-v1"
    samples = kube_sb.metrics()
    assert samples["modelapi_ready"][0][1] == 1.0
    assert any(lbl.get("route") == "/v1/search" for lbl, _ in samples["modelapi_requests_total"])
    assert "2026-11-01-v1" in kube_sb.logs()
    assert kube_sb.evaluate(5).recall > 0.5


@pytest.mark.parametrize(("kwargs", "error", "names"), [
    ({"model": "v9"}, UnknownChoice, "v1, v2"),
    ({"index": "1999-01-01"}, UnknownChoice, "2026-11-01-v1"),
    ({"replicas": 0}, InvalidReplicas, "1 to 4"),
    ({"replicas": 99}, InvalidReplicas, "1 to 4"),
    ({"colour": "blue"}, UnknownChoice, "top_k"),
    ({"cpus": "lots"}, InvalidInput, "cpus must be"),
])
def test_bad_input_names_the_valid_choices(kube_sb, kwargs, error, names):
    with pytest.raises(error, match=names):
        kube_sb.deploy(**kwargs)
    assert [r.number for r in kube_sb.history()] == [1]  # nothing was rolled out


def test_rollout_history_and_rollback(kube_sb):
    kube_sb.deploy(model="v2")
    assert kube_sb.version()["model"] == "v2"
    assert states(kube_sb) == [(1, "superseded"), (2, "serving")]
    back = kube_sb.rollback()
    assert (back.number, back.rollback_of, back.state) == (3, 1, "serving")
    assert kube_sb.version()["model"] == "v1"
    assert states(kube_sb) == [(1, "superseded"), (2, "superseded"), (3, "serving")]
    named = kube_sb.rollback(to_revision=2)
    assert named.rollback_of == 2 and kube_sb.version()["model"] == "v2"
    kube_sb.rollback(to_revision=3)
    assert kube_sb.version()["model"] == "v1"
    with pytest.raises(UnknownChoice, match="valid: 1"):
        kube_sb.rollback(to_revision=42)


def test_crashing_revision_is_held_back_by_readiness(kube_sb):
    serving = kube_sb.status().serving_revision
    defect = kube_sb.settings.images.defect
    assert not graders.check("failed_rollout_held", kube_sb, image=defect).passed
    with pytest.raises(RolloutFailed) as info:
        kube_sb.deploy(image=defect, change_cause="release 1.1.0-rc1")
    assert info.value.serving == serving and "exited with code" in info.value.reason
    assert info.value.logs
    st = kube_sb.status()
    assert st.serving_revision == serving and st.rollout == "failed" and st.ready
    assert kube_sb.version()["image_revision"] == kube_sb.settings.images.tag
    failed = kube_sb.history()[-1]
    assert failed.state == "failed" and st.replicas(failed.number) == []  # stopped, kept as history
    assert kube_sb.logs(revision=failed.number, tail=3).strip()  # its last lines were kept
    assert graders.check("failed_rollout_held", kube_sb, image=defect).passed
    undo = kube_sb.rollback()
    assert undo.rollback_of == serving and kube_sb.status().rollout == "complete"


def test_mismatched_index_is_held_back_with_its_reason(kube_sb):
    with pytest.raises(RolloutFailed, match="model-mismatch"):
        kube_sb.deploy(model="v2", index="2026-11-01-v1")
    assert kube_sb.version()["model"] == "v1"
    kube_sb.rollback()
    assert kube_sb.history()[-1].state == "serving"


def test_a_canary_takes_no_user_traffic_until_promoted(kube_sb):
    serving = kube_sb.status().serving_revision
    started = kube_sb.deploy(model="v2", wait=False, change_cause="canary v2")
    assert (started.number, started.state) == (serving + 1, "progressing")

    def ready_urls() -> list[str] | None:
        ready = [u for u in kube_sb.revision_endpoints(started.number) if ServiceClient(u, timeout_s=2).readiness().ready]
        return ready or None

    urls = until(ready_urls, timeout_s=kube_sb.settings.rollout.progress_deadline_s, interval_s=1.0,
                 what=f"the pods of canary revision {started.number}")
    for _ in range(10):
        assert kube_sb.search("disk full on node")["model"] == "v1"
    assert all(ServiceClient(u).version()["model"] == "v2" for u in urls)
    assert sum(searches_served(u) for u in urls) == 0
    done = kube_sb.wait_for_rollout()
    assert (done.number, done.state) == (started.number, "serving")
    assert kube_sb.search("disk full on node")["model"] == "v2"
    assert kube_sb.api.read("Deployment", f"modelapi-canary-r{done.number}") is None
    kube_sb.rollback(to_revision=serving)
    assert kube_sb.version()["model"] == "v1"


def test_replicas_are_counted_as_the_grader_counts_them(kube_sb):
    kube_sb.deploy(replicas=2)
    assert len(kube_sb.status().replicas()) == 2
    assert graders.check("serving", kube_sb, model="v1", replicas=2).passed
    kube_sb.deploy(replicas=1)


def test_throttle_resizes_the_serving_replicas_in_place(kube_sb):
    number = kube_sb.status().serving_revision
    kube_sb.throttle_serving(0.05)
    assert [c.cpus for c in kube_sb.status().replicas()] == [0.05]
    assert kube_sb.status().serving_revision == number and kube_sb.history()[-1].number == number
    kube_sb.throttle_serving(None)
    assert [c.cpus for c in kube_sb.status().replicas()] == [1.0]


def test_fault_records_are_a_labelled_configmap(kube_sb):
    kube_sb._save_fault("e2e-probe", {"state": "active"})
    assert kube_sb._fault_records()["e2e-probe"] == {"state": "active"}
    kube_sb._save_fault("e2e-probe", None)
    assert "e2e-probe" not in kube_sb._fault_records()
    cm = kube_sb.api.read("ConfigMap", "labkit-state")
    assert labels.is_ours(cm["metadata"]["labels"], kube_sb.id)


def test_run_job_and_its_errors(kube_sb):
    out = kube_sb.run_job(["python", "-m", "modelapi", "list-indexes", "--json"], "list-indexes")
    assert "2026-11-01-v1" in out
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
        return {c.name for c in kube_sb.status().replicas() if c.detail != "Terminating"}

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
