"""Contract of the kube tier's ``up`` for the monitoring stack, through the real ``kubernetes``
client against kmock's emulator and ``tests/kubefake.py``: every object of
``k8s/base/monitoring.yaml`` and ``monitoring-rules.yaml`` is sent as ``render_base`` renders
it (labelled, in the sandbox's namespace), once, without waiting for Prometheus, and none of
it with monitoring disabled. The requests ``up`` sends as a whole are
``test_kube_contract.py``'s; what Prometheus answers through the proxy is
``test_kube_monitoring.py``'s.
"""

from __future__ import annotations

from dataclasses import replace

import kmock as km
import yaml
from kubefake import NS, SID, run
from kubeworkload import MONITORING_IMAGE

from sandbox import labels
from sandbox._kube.manifests import BASE_DIR, render_base
from sandbox._kube.monitoring import TRAINEE_RULES_CM, monitoring_objects

FILES = ("monitoring.yaml", "monitoring-rules.yaml")
RBAC = ("serviceaccounts", "roles", "rolebindings")


def in_files() -> set[tuple[str, str]]:
    """``(kind, name)`` of every document of the monitoring manifests, read as written."""
    return {(d["kind"], d["metadata"]["name"]) for f in FILES for d in yaml.safe_load_all((BASE_DIR / f).read_text())
            if d}


def posts(kmock) -> list:
    return [r for r in kmock if r.method == "POST" and r.resource is not None and not r.subresource]


def sent(kmock) -> dict[tuple[str, str], dict]:
    """The objects ``up`` POSTed, by ``(kind, name)``."""
    return {(r.data["kind"], r.data["metadata"]["name"]): r for r in posts(kmock)}


def monitoring_sent(kmock) -> dict[tuple[str, str], dict]:
    keys = in_files() | {("ConfigMap", TRAINEE_RULES_CM)}
    return {k: r for k, r in sent(kmock).items() if k in keys}


async def test_up_posts_every_monitoring_object_labelled_into_its_namespace(kube_sb, kmock, fake):
    await run(kube_sb.up)
    made = monitoring_sent(kmock)
    assert set(made) == in_files() | {("ConfigMap", TRAINEE_RULES_CM)}
    for (kind, name), r in made.items():
        meta = r.data["metadata"]
        assert r.url.path.startswith(("/api/v1/namespaces/", "/apis/")) and f"/namespaces/{NS}/" in r.url.path
        assert meta["namespace"] == NS and labels.is_ours(meta["labels"], SID), (kind, name)
        assert meta["labels"][labels.COMPONENT] in ("prometheus", "alertmanager")
        if kind == "Deployment":
            assert r.data["spec"]["selector"]["matchLabels"][labels.SANDBOX] == SID
            assert labels.is_ours(r.data["spec"]["template"]["metadata"]["labels"], SID)
        if kind == "Service":
            assert r.data["spec"]["selector"][labels.SANDBOX] == SID
    assert made[("ConfigMap", TRAINEE_RULES_CM)].data["data"] == {}  # trainee rule files are added later
    order = [(r.data["kind"], r.data["metadata"]["name"]) for r in posts(kmock)]
    for what in (("ServiceAccount", "prometheus"), ("ConfigMap", "prometheus-config"), ("ConfigMap", "prometheus-rules")):
        assert order.index(what) < order.index(("Deployment", "prometheus"))  # what its pod needs comes first
    assert max(order.index(k) for k in made) < order.index(("Job", "labkit-seed"))  # in parallel with the seed
    assert {"prometheus", "alertmanager"} <= {d["metadata"]["name"] for d in fake.all("deployments")}


async def test_the_objects_sent_are_what_render_base_renders_from_k8s_base(kube_sb, kmock, fake):
    await run(kube_sb.up)
    base = render_base(SID, NS)
    assert {(o["kind"], o["metadata"]["name"]) for o in monitoring_objects(base)} == in_files()
    for key, r in monitoring_sent(kmock).items():
        if key != ("ConfigMap", TRAINEE_RULES_CM):
            assert r.data == base[key], key  # validated in test_k8s_manifests.py = what runs
    # every object of the base is applied by up(), but the model API (its first deploy) and the
    # build-index Job (for `kubectl apply -k` users; the kit runs its own Jobs)
    assert set(base) - set(sent(kmock)) == {("Deployment", "modelapi"), ("Job", "build-index")}


async def test_up_does_not_wait_for_prometheus(kube_sb, kmock, fake):
    fake.images.discard(MONITORING_IMAGE)  # its pods never start (ErrImageNeverPull)
    kube_sb.setup_timeout_s = 30  # bounds a regression only
    await run(kube_sb.up)
    pods = [p for p in fake.all("pods") if p["metadata"]["labels"].get(labels.COMPONENT) == "prometheus"]
    assert pods and all(p["status"]["phase"] == "Pending" for p in pods)


async def test_a_second_up_creates_nothing_new(kube_sb, kmock, fake):
    await run(kube_sb.up)
    before = len(posts(kmock))
    await run(kube_sb.up)
    assert len(posts(kmock)) == before
    assert not [r for r in kmock if r.method in ("PATCH", "PUT", "DELETE") and r.resource is not None]


async def test_with_monitoring_disabled_up_creates_none_of_it(kube_sb, kmock, fake):
    kube_sb.settings = replace(kube_sb.settings, monitoring=replace(kube_sb.settings.monitoring, enabled=False))
    await run(kube_sb.up)
    assert not monitoring_sent(kmock)
    assert not [r for r in kmock if r.resource is not None and r.resource.plural in RBAC]
    assert ("Service", "modelapi") in sent(kmock)  # the rest of the sandbox is there


async def test_a_cohort_trainee_without_rbac_rights_gets_the_rest_of_the_stack(kube_sb, kmock, fake):
    fake.namespace["metadata"]["labels"]["labkit.dev/cohort"] = "cohort"
    forbidden = km.KubernetesError(status=403, reason="Forbidden", message="forbidden: no RBAC for trainees")
    for path in (f"/api/v1/namespaces/{NS}/serviceaccounts*",
                 f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/roles*",
                 f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/rolebindings*"):
        (kmock ** 5)[f"get {path}"] << forbidden
    await run(kube_sb.up)  # the instructor's overlay applied them
    made = monitoring_sent(kmock)
    assert not {k for k in made if k[0] in ("ServiceAccount", "Role", "RoleBinding")}
    assert {("Deployment", "prometheus"), ("Deployment", "alertmanager"), ("Service", "prometheus")} <= set(made)
    removed = await run(kube_sb.down)  # lists of RBAC are refused too: left to the instructor
    assert "deployment/prometheus" in removed and not any(r.startswith(("role", "serviceaccount")) for r in removed)
    assert f"namespace/{NS}" not in removed


async def test_down_in_a_namespace_it_did_not_make_removes_the_monitoring_rbac(kube_sb, kmock, fake):
    fake.namespace["metadata"]["labels"] = {}  # LABKIT_KUBE_NAMESPACE: someone else's namespace
    await run(kube_sb.up)
    removed = await run(kube_sb.down)
    assert {"serviceaccount/prometheus", "role/prometheus-discovery", "rolebinding/prometheus-discovery",
            "deployment/prometheus", "deployment/alertmanager", "service/prometheus", "service/alertmanager",
            "configmap/prometheus-config", "configmap/prometheus-rules", f"configmap/{TRAINEE_RULES_CM}"} <= set(removed)
    assert f"namespace/{NS}" not in removed
    assert not fake.all("serviceaccounts") and not fake.all("roles") and not fake.all("rolebindings")


def test_monitoring_objects_come_in_the_order_a_pod_needs_them():
    base = render_base(SID, NS)
    objs = monitoring_objects(base)
    kinds = [o["kind"] for o in objs]
    assert kinds == sorted(kinds, key=["ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Service",
                                       "Deployment"].index)
    assert all(o is base[(o["kind"], o["metadata"]["name"])] for o in objs)
