"""The cohort Role ``labkit-trainee`` against what the kube tier really sends.

Every trainee operation the labs use runs on the fake cluster (``tests/kubefake.py``, the real
``kubernetes`` client) behind an RBAC gate: each request is mapped to its RBAC attributes
(``labkit.rbac.request_attributes``) and refused with a 403, as the API server would, unless
the Role the generator writes (``labkit.cluster.cohort_files``) allows it in the trainee's
namespace. So each operation is shown to *work* under the Role, and the Role is shown to give
nothing the operations do not use (beyond ``EXTRAS``, each with its reason).

Exec goes around kmock (it serves no websockets; ``FakeCluster.exec_read`` answers at the
client): the gate records it as the Python client sends it, a websocket GET on ``pods/exec``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import kmock as km
import pytest
import yaml
from kubefake import NS, R, run
from kubeworkload import DEFECT_IMAGE

from labkit import cluster
from labkit.rbac import Attributes, Grant, Role, request_attributes
from sandbox.client import ServiceClient
from sandbox.errors import RolloutFailed
from sandbox.faults import heal, inject

ROLE = "labkit-trainee"
USER = 'User "t1"'
RULES_CM = "prometheus-rules-trainee"
#: What the kit asks and is refused, by design, with how it carries on (signature: verb, group, resource).
TOLERATED = {
    ("get", "", "namespaces"): "the cohort namespace is the instructor's: up()/down() read {} and never create or delete it",
    ("list", "", "nodes"): "the image check before a deploy is skipped; an image no node holds fails the rollout at once",
    ("get", "", "serviceaccounts"): "Prometheus's ServiceAccount comes with the overlay; up() leaves RBAC kinds alone",
    ("get", "rbac.authorization.k8s.io", "roles"): "prometheus-discovery comes with the overlay (see above)",
    ("get", "rbac.authorization.k8s.io", "rolebindings"): "prometheus-discovery comes with the overlay (see above)",
    ("list", "", "serviceaccounts"): "down() removes RBAC kinds only where it may list them (kind, not a cohort)",
    ("list", "rbac.authorization.k8s.io", "roles"): "as above",
    ("list", "rbac.authorization.k8s.io", "rolebindings"): "as above",
}
#: Non-resource URLs: no Role can grant them; Kubernetes' default ClusterRoles do, to everyone.
DEFAULT_NON_RESOURCE = {"/version": "system:public-info-viewer"}
#: Grants no kit operation exercises here, kept on purpose.
EXTRAS = {
    Grant("", "pods/exec", "create"): "Kubernetes 1.35+ also checks `create` on a websocket exec (the client's GET);"
                                      " `kubectl exec` is a POST",
    Grant("", "pods", "get"): "throttle_serving reads the Pod after a 404 on `resize` (no in-place resize on this"
                              " cluster, or the pod went away); `kubectl describe pod` (week 2) and `kubectl logs`",
}


# --- the Role, as the generator writes it ---------------------------------------------------------
def generated(tmp_path: Path) -> tuple[Role, dict[Path, str]]:
    files = cluster.cohort_files(["t1"], tmp_path)
    namespace = yaml.safe_load(files[tmp_path / "t1" / "kustomization.yaml"].split("\n", 1)[1])["namespace"]
    return Role.from_yaml(files[tmp_path / cluster.TENANT / "role.yaml"], namespace, ROLE), files


@pytest.fixture
def role(tmp_path) -> Role:
    role, _ = generated(tmp_path)
    assert role.namespace == NS  # kustomize puts trainee t1's objects in labkit-t1, the sandbox's namespace
    return role


def signature(a: Attributes) -> tuple[str, str, str]:
    return a.verb, a.api_group, a.combined


class Gate:
    """A kmock reaction in front of the fake: records every request's attributes under the
    current operation and refuses (403) what the Role does not allow."""

    def __init__(self, role: Role, fake) -> None:
        self.role, self.fake = role, fake
        self.op = "setup"
        self.seen: list[tuple[str, Attributes, bool]] = []

    def __call__(self, req) -> None:
        attrs = request_attributes(req.method, req.url.path, dict(req.params or {}))
        allowed = self.role.allows(attrs) or attrs.path in DEFAULT_NON_RESOURCE and not attrs.is_resource_request
        self.seen.append((self.op, attrs, allowed))
        if allowed:
            raise NotImplementedError  # the fake answers
        plural = req.resource.plural if req.resource else None
        body = req.data if isinstance(req.data, dict) else {}
        name = req.name or (body.get("metadata") or {}).get("name")
        if plural in R and name and req.namespace == NS and (R[plural], NS, name) in self.fake.k.objects \
                and req.action in (km.action.CREATE, km.action.UPDATE, km.action.DELETE):
            self.fake._undo(plural, name, req)  # the emulator stores writes before any reaction
        raise km.KubernetesError(status=403, reason="Forbidden", message=self.role.why_denied(attrs, USER))

    def exec_read(self, api, pods, container, cmd):
        ready = [p for p in pods if any(cs.get("ready") for cs in (p.get("status") or {}).get("containerStatuses") or [])]
        if ready:
            attrs = Attributes("get", "pods", "", api.namespace, ready[0]["metadata"]["name"], "exec")
            self.seen.append((self.op, attrs, self.role.allows(attrs)))
            if not self.role.allows(attrs):
                return None
        if cmd[:2] == ["sh", "-c"]:  # Prometheus's view of a trainee rule file (cat)
            data = (self.fake.get("configmaps", RULES_CM) or {}).get("data") or {}
            return data.get(cmd[-1].split('"')[1].rsplit("/", 1)[-1], "") if ready else None
        return self.fake.exec_read(api, pods, container, cmd)

    def requests(self, op: str | None = None) -> list[Attributes]:
        return [a for o, a, _ in self.seen if op is None or o == op]


@pytest.fixture
def gate(role, kmock, fake, monkeypatch) -> Gate:
    g = Gate(role, fake)
    kmock.override << g  # before the fake's own reactions
    monkeypatch.setattr("sandbox._kube.waits.exec_read", g.exec_read)
    vector = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"job": "modelapi"}, "value": [1.5, "1"]}]}}
    rules = {"status": "success", "data": {"groups": []}}
    fake.answers.update({
        "prometheus": lambda req: (200, rules if req.subresource.endswith("/rules") else vector),
        "alertmanager": lambda req: (200, [{"labels": {"alertname": "SearchErrors"}, "annotations": {},
                                            "startsAt": "2026-11-20T09:00:00Z", "status": {"state": "active"}}])})
    return g


def deadline(sb, seconds: float) -> None:
    sb.settings = replace(sb.settings, rollout=replace(sb.settings.rollout, progress_deadline_s=seconds))


async def lab(sb, gate: Gate) -> None:
    """Every trainee operation of the labs on the kube tier, one after the other."""
    async def step(op: str, fn, *args, **kwargs):
        gate.op = op
        return await run(fn, *args, **kwargs)

    await step("up", sb.up)
    service = gate.fake.get("services", "modelapi")
    del service["spec"]["selector"]["labkit.dev/track"]  # a front door from before canaries had a track
    gate.fake.put("services", service)
    await step("up", sb.up)  # idempotent; repairs the front door's selector
    await step("deploy", sb.deploy, model="v1", change_cause="first deploy")
    await step("deploy", sb.deploy, model="v1", top_k=3)
    deadline(sb, 60)  # a canary waits well within its deadline
    canary = await step("deploy(wait=False)", sb.deploy, model="v2", wait=False)
    [url] = await step("revision_endpoints", sb.revision_endpoints, canary.number)
    await step("canary search", ServiceClient(url).search, "disk full")
    await step("wait_for_rollout", sb.wait_for_rollout)
    deadline(sb, 1)
    with pytest.raises(RolloutFailed):
        await step("deploy (fails)", sb.deploy, image=DEFECT_IMAGE)
    await step("rollback", sb.rollback)
    await step("deploy(wait=False)", sb.deploy, model="v2", index="2026-11-01-v1", wait=False)
    with pytest.raises(RolloutFailed):
        await step("wait_for_rollout (fails)", sb.wait_for_rollout)
    for op, fn in (("status", sb.status), ("history", sb.history), ("logs", sb.logs), ("search", sb.search),
                   ("evaluate", sb.evaluate), ("version", sb.version), ("metrics", sb.metrics),
                   ("indexes", sb.indexes), ("snapshots", sb.snapshots)):
        await step(op, fn, *(["disk full"] if op == "search" else []))
    await step("logs", sb.logs, 3)  # a failed revision: its kept lines on its ReplicaSet
    await step("build_index", sb.build_index, "v2", "2026-10-01", name="old-v2")
    await step("run_job (eval-index)", sb.run_job, ["python", "-m", "modelapi", "eval-index", "--k", "5"], "eval")
    await step("restart_serving", sb.restart_serving)
    await step("throttle_serving", sb.throttle_serving, 0.02)
    await step("throttle_serving", sb.throttle_serving, None)
    await step("fault inject/heal", inject, sb, "config-drift")
    await step("fault inject/heal", heal, sb, "config-drift")
    await step("provider", sb.provider_call, "POST", "/admin/mode", {"mode": "slow", "delay_s": 1.0})
    await step("provider", sb.set_provider_running, False)
    await step("provider", sb.set_provider_running, True)
    await step("query", sb.query, "up")
    await step("alerts", sb.alerts)
    await step("rules", lambda: sb.rules.loaded())
    await step("rule files", sb._install_rule_file, "drift", "groups: []\n")
    await step("rule files", sb._rule_file, "drift")
    await step("rule files", sb._install_rule_file, "drift", None)
    for k in (1, 2, 3):  # past revision_history_limit: the kit prunes ReplicaSets
        await step("deploy (prunes)", sb.deploy, top_k=k)
    await step("down", sb.down)


# --- the contract -----------------------------------------------------------------------------------
async def test_every_lab_operation_works_under_the_role_and_the_role_gives_nothing_else(
        make_kube_sb, kmock, fake, gate, role):
    sb = make_kube_sb()
    sb.settings = replace(sb.settings, rollout=replace(sb.settings.rollout, revision_history_limit=3))
    await lab(sb, gate)

    refused = {(op, str(a)) for op, a, ok in gate.seen if not ok}
    assert {signature(a) for op, a, ok in gate.seen if not ok} == set(TOLERATED), sorted(refused)
    resource = [a for a in gate.requests() if a.is_resource_request]
    assert {a.path for a in gate.requests() if not a.is_resource_request} <= set(DEFAULT_NON_RESOURCE)
    assert all(a.namespace == NS for a in resource if signature(a) not in TOLERATED), \
        [str(a) for a in resource if a.namespace != NS]
    needed = [a for a in resource if role.allows(a)]
    for op in dict.fromkeys(o for o, _, _ in gate.seen):  # every operation sent requests the Role allows
        assert any(role.allows(a) for a in gate.requests(op)), op
    assert {str(g) for g in role.unused(needed)} == {str(g) for g in EXTRAS}, sorted(map(str, role.unused(needed)))
    # a forged history needs a write the kit itself makes: what it writes of ReplicaSets is annotations
    rs_writes = [a for a in needed if a.resource == "replicasets" and a.verb not in ("get", "list", "watch")]
    assert {a.verb for a in rs_writes} == {"patch", "delete"}
    assert not [r for r in kmock if r.resource == R["replicasets"] and r.method in ("POST", "PUT")]
    table = {}
    for op, a, ok in gate.seen:
        if ok and a.is_resource_request:
            table.setdefault(op, set()).add(f"{a.verb} {a.combined}")
    for op in ("up", "deploy", "wait_for_rollout", "logs", "search", "restart_serving", "throttle_serving", "down"):
        assert table.get(op), op
    assert "create services/proxy" in table["search"] and "patch pods/resize" in table["throttle_serving"]
    assert "get pods/exec" in table["indexes"] and "create jobs" in table["build_index"]
    assert "create pods/proxy" in table["canary search"] and "patch deployments/scale" in table["provider"]


# --- the Role on its own ------------------------------------------------------------------------------
DANGEROUS = [("", "secrets"), ("", "serviceaccounts"), ("", "serviceaccounts/token"), ("", "namespaces"),
             ("", "nodes"), ("", "persistentvolumes"), ("", "pods/attach"), ("", "pods/ephemeralcontainers"),
             ("", "pods/portforward"), ("", "pods/eviction"), ("", "pods/binding"), ("", "resourcequotas"),
             ("rbac.authorization.k8s.io", "roles"), ("rbac.authorization.k8s.io", "rolebindings"),
             ("rbac.authorization.k8s.io", "clusterroles"), ("rbac.authorization.k8s.io", "clusterrolebindings"),
             ("networking.k8s.io", "networkpolicies"), ("authentication.k8s.io", "tokenreviews"),
             ("admissionregistration.k8s.io", "validatingadmissionpolicies"), ("apps", "daemonsets"),
             ("apps", "statefulsets"), ("apps", "replicasets/scale"), ("batch", "cronjobs")]
ALL_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "escalate", "bind",
             "impersonate", "approve", "sign", "use", "proxy")


def test_the_role_has_no_wildcards_no_secrets_no_rbac_no_cluster_scope(role):
    for rule in role.rules:
        assert "*" not in (*rule["apiGroups"], *rule["resources"], *rule["verbs"]), rule
        assert not any(r.startswith("*/") for r in rule["resources"]) and not rule.get("nonResourceURLs"), rule
    for group, resource in DANGEROUS:
        res, _, sub = resource.partition("/")
        for verb in ALL_VERBS:
            assert not role.allows(Attributes(verb, res, group, NS, "x", sub)), (verb, group, resource)
    for verb in ("impersonate", "escalate", "bind"):
        for group, res in (("", "users"), ("", "groups"), ("", "serviceaccounts"),
                           ("rbac.authorization.k8s.io", "roles"), ("rbac.authorization.k8s.io", "clusterroles")):
            assert not role.allows(Attributes(verb, res, group, NS, "x"))
    assert {g.verb for g in role.grants()} <= {"get", "list", "create", "patch", "delete"}  # no update, no watch


def test_the_role_is_denied_in_another_namespace_and_cluster_wide(role):
    mine = [Attributes("list", "pods", "", NS), Attributes("patch", "deployments", "apps", NS, "modelapi"),
            Attributes("create", "services", "", NS, "modelapi:http", "proxy"),
            Attributes("get", "pods", "", NS, "p", "exec")]
    for a in mine:
        assert role.allows(a), a
        for ns in ("labkit-bob", "default", "kube-system", ""):
            other = replace(a, namespace=ns)
            assert not role.allows(other) and "forbidden" in role.why_denied(other, USER), other
    assert not role.allows(request_attributes("GET", "/api/v1/pods"))  # every namespace's pods: cluster scope
    assert not role.allows(request_attributes("GET", f"/api/v1/namespaces/{NS}"))  # the namespace object itself
    assert not role.allows(request_attributes("GET", "/version"))


def test_the_checked_in_overlay_and_the_hub_binding_carry_this_role(tmp_path, role):
    _, files = generated(tmp_path)
    checked_in = cluster.COHORT_DIR / cluster.TENANT / "role.yaml"
    assert checked_in.read_text() == files[tmp_path / cluster.TENANT / "role.yaml"], \
        "regenerate: labkit cluster cohort --trainee alice --trainee bob"
    hub = yaml.safe_load((cluster.HUB_TRAINEE_DIR / "rolebinding.yaml").read_text())
    assert hub["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE}
    assert hub["subjects"] == [{"kind": "ServiceAccount", "name": "labkit-jupyter"}]
    binding = yaml.safe_load(files[tmp_path / "t1" / "rolebinding.yaml"].split("\n", 1)[1])
    assert binding["roleRef"]["name"] == ROLE and binding["subjects"][0]["name"] == "t1"


# --- the evaluator: Kubernetes' semantics ----------------------------------------------------------
@pytest.mark.parametrize("method, path, query, expected", [
    ("GET", f"/api/v1/namespaces/{NS}/pods", None, ("list", "pods", "", NS, "", "")),
    ("GET", f"/api/v1/namespaces/{NS}/pods", {"watch": "true"}, ("watch", "pods", "", NS, "", "")),
    ("GET", f"/api/v1/namespaces/{NS}/pods", {"watch": "1"}, ("watch", "pods", "", NS, "", "")),
    ("GET", f"/api/v1/watch/namespaces/{NS}/pods", None, ("watch", "pods", "", NS, "", "")),
    ("GET", f"/api/v1/namespaces/{NS}/pods", {"fieldSelector": "metadata.name=p1"}, ("list", "pods", "", NS, "p1", "")),
    ("GET", f"/api/v1/namespaces/{NS}/pods/p1", {"watch": "true"}, ("get", "pods", "", NS, "p1", "")),
    ("GET", f"/api/v1/namespaces/{NS}/pods/p1/log", {"tailLines": "5"}, ("get", "pods", "", NS, "p1", "log")),
    ("POST", f"/api/v1/namespaces/{NS}/services/modelapi:http/proxy/v1/search", None,
     ("create", "services", "", NS, "modelapi:http", "proxy")),
    ("GET", f"/api/v1/namespaces/{NS}/pods/p1:8080/proxy/readyz", None, ("get", "pods", "", NS, "p1:8080", "proxy")),
    ("PUT", f"/apis/apps/v1/namespaces/{NS}/deployments/modelapi", None, ("update", "deployments", "apps", NS, "modelapi", "")),
    ("PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/modelapi/scale", None,
     ("patch", "deployments", "apps", NS, "modelapi", "scale")),
    ("DELETE", f"/apis/batch/v1/namespaces/{NS}/jobs/j", None, ("delete", "jobs", "batch", NS, "j", "")),
    ("DELETE", f"/apis/batch/v1/namespaces/{NS}/jobs", None, ("deletecollection", "jobs", "batch", NS, "", "")),
    ("POST", f"/api/v1/namespaces/{NS}/configmaps", None, ("create", "configmaps", "", NS, "", "")),
    ("GET", f"/api/v1/namespaces/{NS}", None, ("get", "namespaces", "", NS, NS, "")),
    ("PUT", f"/api/v1/namespaces/{NS}/finalize", None, ("update", "namespaces", "", NS, NS, "finalize")),
    ("GET", "/api/v1/namespaces", None, ("list", "namespaces", "", "", "", "")),
    ("GET", "/api/v1/nodes", None, ("list", "nodes", "", "", "", "")),
    ("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin", None,
     ("get", "clusterroles", "rbac.authorization.k8s.io", "", "admin", "")),
])
def test_request_attributes_are_the_api_servers(method, path, query, expected):
    a = request_attributes(method, path, query)
    assert (a.verb, a.resource, a.api_group, a.namespace, a.name, a.subresource) == expected


@pytest.mark.parametrize("path", ["/version", "/healthz", "/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1"])
def test_non_resource_urls_are_never_a_roles(path):
    a = request_attributes("GET", path)
    assert not a.is_resource_request and a.path == path
    assert not Role(NS, ({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},)).allows(a)


def test_rule_matching_wildcards_subresources_and_names():
    def allows(rule: dict, a: Attributes) -> bool:
        return Role(NS, (rule,)).allows(a)

    log = Attributes("get", "pods", "", NS, "p", "log")
    assert allows({"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}, log)  # * covers subresources
    assert allows({"apiGroups": [""], "resources": ["*/log"], "verbs": ["get"]}, log)
    assert not allows({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}, log)  # pods is not pods/log
    assert not allows({"apiGroups": [""], "resources": ["pods/*"], "verbs": ["get"]}, log)  # no such form
    assert not allows({"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}, replace(log, subresource=""))
    assert not allows({"apiGroups": ["apps"], "resources": ["pods/log"], "verbs": ["get"]}, log)
    assert allows({"apiGroups": ["*"], "resources": ["pods/log"], "verbs": ["*"]}, log)
    named = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"], "resourceNames": ["labkit-state"]}
    assert allows(named, Attributes("get", "configmaps", "", NS, "labkit-state"))
    assert not allows(named, Attributes("get", "configmaps", "", NS, "other"))
    assert not allows(named, Attributes("list", "configmaps", "", NS))  # a collection has no name
    assert allows(named, request_attributes("GET", f"/api/v1/namespaces/{NS}/configmaps",
                                            {"fieldSelector": "metadata.name=labkit-state"}))
    assert not allows({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}, Attributes("get", "pods", "", ""))


def test_grants_and_unused():
    role = Role(NS, ({"apiGroups": ["", "apps"], "resources": ["pods", "deployments"], "verbs": ["get", "delete"]},))
    assert len(role.grants()) == 8
    used = [Attributes("get", "pods", "", NS, "p"), Attributes("delete", "deployments", "apps", NS, "d"),
            Attributes("delete", "pods", "", "elsewhere", "p")]  # another namespace exercises nothing here
    assert {str(g) for g in role.unused(used)} == {"delete pods", "get deployments", "delete deployments",
                                                  "get pods.apps", "delete pods.apps", "get deployments.apps"}
    with pytest.raises(ValueError, match="no namespace"):
        Role.from_manifest({"kind": "Role", "metadata": {"name": "r"}, "rules": []})
