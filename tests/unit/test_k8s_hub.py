"""k8s/hub: the z2jh values and the hub's manifests are strictly schema-valid and keep their promises.

``k8s/hub`` is rendered with ``kubectl kustomize`` and every document validated with
``kubernetes-validate`` in strict mode at the Kubernetes version ``test_k8s_manifests`` pins;
so are the Secret template, the trainee Component inside a generated cohort namespace, the Pod
KubeSpawner would make from ``singleuser``, and the exchange claim the hub's pre-spawn hook
creates (run here against a fake API). The names the values rely on (the cohort's namespace of
a trainee, its Role, the formgrader's CSP, the kit's settings) are computed by the kit.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_k8s_manifests import (  # one renderer and validator for k8s/
    of,
    render,
    validate,
)
from traitlets.config import Config

from labkit.cluster import CohortOptions, cohort_files
from labkit.hub.config import FORMGRADER_CSP, HubConfig, formgrader_files
from sandbox._kube.manifests import BASE_DIR, K8S_DIR, PSA_LABELS
from sandbox.settings import Settings

HUB_DIR = K8S_DIR / "hub"
VALUES = yaml.safe_load((HUB_DIR / "values.yaml").read_text())
SINGLEUSER = VALUES["singleuser"]
SPAWNER = VALUES["hub"]["config"]["KubeSpawner"]
HUB_NAMESPACE = "jupyterhub"
ROSTER = ("alice", "bob", "trainee-07")


def expand(value: Any, username: str) -> Any:
    """KubeSpawner's expansion of ``{username}`` in strings, lists and dicts."""
    if isinstance(value, str):
        return value.replace("{username}", username)
    if isinstance(value, list):
        return [expand(v, username) for v in value]
    if isinstance(value, dict):
        return {k: expand(v, username) for k, v in value.items()}
    return value


def cohort_namespace(trainee: str) -> str:
    """The namespace ``labkit cluster cohort`` gives ``trainee`` (read off the generated overlay)."""
    files = cohort_files([trainee], Path("/cohort"))
    return yaml.safe_load(files[Path("/cohort") / trainee / "namespace.yaml"])["metadata"]["name"]


@pytest.fixture(scope="module")
def hub_docs() -> list[dict]:
    return render(HUB_DIR)


@pytest.fixture(scope="module")
def trainee_docs(tmp_path_factory) -> list[dict]:
    """A generated cohort namespace for alice (the generator adds the hub's trainee Component), rendered."""
    out = tmp_path_factory.mktemp("cohort")
    for path, text in cohort_files(["alice"], out, CohortOptions(registry="registry.example.edu/labkit"),
                                   BASE_DIR).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    kust = yaml.safe_load((out / "alice" / "kustomization.yaml").read_text())
    assert os.path.relpath(HUB_DIR / "trainee", out / "alice") in kust["components"]
    return render(out / "alice")


# --- strict schema validation --------------------------------------------------------------
def test_every_rendered_document_is_valid_in_strict_mode(hub_docs):
    assert {(d["kind"], d["metadata"]["name"]) for d in hub_docs} == {
        ("Namespace", HUB_NAMESPACE), ("ClusterRole", "labkit-hub-user-namespaces"),
        ("ClusterRoleBinding", "labkit-hub-user-namespaces"), ("StorageClass", "labkit-exchange"),
        ("PersistentVolumeClaim", "labkit-exchange"), ("PersistentVolumeClaim", "labkit-course"),
        ("ConfigMap", "labkit-formgrader-config"), ("Deployment", "labkit-formgrader"),
        ("Service", "labkit-formgrader")}
    for doc in hub_docs:
        validate(doc)
        if doc["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding", "StorageClass"):
            assert doc["metadata"]["namespace"] == HUB_NAMESPACE


def test_the_secret_template_is_valid_and_holds_only_placeholders():
    secrets = [d for d in yaml.safe_load_all((HUB_DIR / "secrets.example.yaml").read_text()) if d]
    for doc in secrets:
        validate(doc)
        assert doc["metadata"]["namespace"] == HUB_NAMESPACE
        assert all("REPLACE-ME" in v for v in doc["stringData"].values()), doc["metadata"]["name"]
    assert {d["metadata"]["name"] for d in secrets} == {"labkit-hub-db", "labkit-gradebook", "labkit-hub-passwords"}
    kust = yaml.safe_load((HUB_DIR / "kustomization.yaml").read_text())
    assert "secrets.example.yaml" not in kust["resources"]  # a re-apply must never overwrite the real ones


def test_the_trainee_component_is_valid_inside_a_generated_cohort_namespace(trainee_docs):
    for doc in trainee_docs:
        validate(doc)
    ns = cohort_namespace("alice")
    role = of(trainee_docs, "Role")[0]["metadata"]["name"]
    binding = of(trainee_docs, "RoleBinding", "labkit-jupyter")[0]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": SINGLEUSER["serviceAccountName"],
                                    "namespace": ns}]
    sa = of(trainee_docs, "ServiceAccount", SINGLEUSER["serviceAccountName"])[0]
    assert sa["metadata"]["namespace"] == ns
    policy = of(trainee_docs, "NetworkPolicy", "jupyter-singleuser")[0]["spec"]
    opts = CohortOptions()
    assert {"ipBlock": {"cidr": opts.api_server_cidr, "except": [opts.pod_cidr]}} in policy["egress"][1]["to"]
    assert policy["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8888}]


# --- what values.yaml promises --------------------------------------------------------------
@pytest.mark.parametrize("name", ROSTER)
def test_each_trainee_spawns_in_the_cohort_namespace_of_that_name(name):
    assert SPAWNER["enable_user_namespaces"] is True
    assert expand(SPAWNER["user_namespace_template"], name) == cohort_namespace(name)


def test_the_roster_is_allowed_and_the_instructors_are_formgraders():
    hub = VALUES["hub"]["config"]
    assert hub["JupyterHub"]["authenticator_class"] == "labkit.hub.auth.RosterAuthenticator"
    users = set(hub["Authenticator"]["allowed_users"])
    groups = hub["JupyterHub"]["load_groups"]
    assert set(hub["Authenticator"]["admin_users"]) == set(groups["formgrade-labkit"]["users"]) < users
    assert set(groups["nbgrader-labkit"]["users"]) | set(groups["formgrade-labkit"]["users"]) == users
    mount = VALUES["hub"]["extraVolumeMounts"][0]["mountPath"]
    assert hub["RosterAuthenticator"]["password_file"] == f"{mount}/passwords.json"


def test_singleuser_security_context_meets_pod_security_restricted():
    pod, container = SPAWNER["pod_security_context"], SPAWNER["container_security_context"]
    assert pod["runAsNonRoot"] and container["runAsNonRoot"] and SINGLEUSER["uid"] > 0
    assert container["allowPrivilegeEscalation"] is False is SINGLEUSER["allowPrivilegeEscalation"]
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"} == container["seccompProfile"]
    assert SINGLEUSER["cloudMetadata"]["blockWithIptables"] is False  # a privileged init container otherwise
    assert PSA_LABELS["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("name", ROSTER)
def test_the_trainee_server_drives_the_trainee_own_sandbox(name):
    env = expand(SINGLEUSER["extraEnv"], name)
    assert env["LABKIT_SANDBOX_ID"] == name
    settings = Settings.from_env(env)
    assert settings.backend == "kube" and settings.sandbox_id == name
    assert settings.kube.namespace == cohort_namespace(name) == expand(SPAWNER["user_namespace_template"], name)
    assert settings.images.registry == CohortOptions(registry="registry.example.edu/labkit").registry
    assert SINGLEUSER["image"]["name"] == f"{settings.images.registry}/lab"
    assert "LABKIT_GRADEBOOK_URL" not in env  # the gradebook is the formgrader's only


def test_the_exchange_is_one_shared_volume_at_nbgrader_default_path(hub_docs):
    storage = SINGLEUSER["storage"]
    mounts = {m["name"]: m["mountPath"] for m in storage["extraVolumeMounts"]}
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in storage["extraVolumes"]}
    assert mounts == {"exchange": "/srv/nbgrader/exchange"} and claims == {"exchange": "labkit-exchange"}
    assert SINGLEUSER["extraEnv"]["LABKIT_EXCHANGE_ROOT"] == "/srv/nbgrader/exchange"
    pvc = of(hub_docs, "PersistentVolumeClaim", "labkit-exchange")[0]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    sc = of(hub_docs, "StorageClass", pvc["spec"]["storageClassName"])[0]
    assert sc["reclaimPolicy"] == "Retain" and sc["parameters"]["onDelete"] == "retain"
    pod = of(hub_docs, "Deployment", "labkit-formgrader")[0]["spec"]["template"]["spec"]
    assert {"name": "exchange", "persistentVolumeClaim": {"claimName": "labkit-exchange"}} in pod["volumes"]
    assert {"name": "exchange", "mountPath": "/srv/nbgrader/exchange"} in pod["containers"][0]["volumeMounts"]


def test_the_formgrader_is_a_hub_service_for_its_group_with_the_csp_that_lets_lab_frame_it(hub_docs):
    course = HubConfig().course_id
    service = VALUES["hub"]["services"][course]
    svc = of(hub_docs, "Service", "labkit-formgrader")[0]
    assert service["url"] == f"http://{svc['metadata']['name']}:{svc['spec']['ports'][0]['port']}"
    roles = VALUES["hub"]["loadRoles"]
    assert roles["formgraders"] == {"groups": [f"formgrade-{course}"], "scopes": [f"access:services!service={course}"]}
    assert roles["formgrader-service"]["services"] == [course]
    shipped = json.loads(of(hub_docs, "ConfigMap", "labkit-formgrader-config")[0]["data"]["jupyter_server_config.json"])
    assert shipped["ServerApp"]["tornado_settings"]["headers"]["Content-Security-Policy"] == FORMGRADER_CSP
    assert shipped == json.loads(formgrader_files(HubConfig())["jupyter_server_config.json"])
    container = of(hub_docs, "Deployment", "labkit-formgrader")[0]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["JUPYTERHUB_SERVICE_PREFIX"]["value"] == f"/services/{course}/"
    assert env["JUPYTERHUB_API_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == f"hub.services.{course}.apiToken"


CREDENTIAL_IN_URL = re.compile(r"://[^/@\s:]+:[^/@\s]+@")


def test_the_gradebook_and_the_hub_db_are_postgresql_with_credentials_from_secrets(hub_docs):
    container = of(hub_docs, "Deployment", "labkit-formgrader")[0]["spec"]["template"]["spec"]["containers"][0]
    gradebook = {e["name"]: e for e in container["env"]}["LABKIT_GRADEBOOK_URL"]
    assert gradebook == {"name": "LABKIT_GRADEBOOK_URL",
                         "valueFrom": {"secretKeyRef": {"name": "labkit-gradebook", "key": "url"}}}
    db = VALUES["hub"]["db"]
    assert db["type"] == "postgres" and db["url"].startswith("postgresql://") and "password" not in db
    assert VALUES["hub"]["extraEnv"]["PGPASSWORD"] == {
        "valueFrom": {"secretKeyRef": {"name": "labkit-hub-db", "key": "password"}}}
    for path in HUB_DIR.rglob("*.yaml"):
        if path.name != "secrets.example.yaml":
            assert not CREDENTIAL_IN_URL.search(path.read_text()), f"{path}: a URL with a password"
    template = "\n".join(f"{d['metadata']['name']}" for d in yaml.safe_load_all((HUB_DIR / "secrets.example.yaml")
                                                                              .read_text()) if d)
    assert "labkit-gradebook" in template and "labkit-hub-db" in template


def test_the_hub_may_work_in_the_trainee_namespaces(hub_docs):
    binding = of(hub_docs, "ClusterRoleBinding")[0]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "hub", "namespace": HUB_NAMESPACE}]
    rules = of(hub_docs, "ClusterRole")[0]["rules"]
    allowed = {(r, v) for rule in rules for r in rule["resources"] for v in rule["verbs"]}
    needed = {("namespaces", "get"), ("namespaces", "create"), ("pods", "create"), ("pods", "watch"),
              ("persistentvolumeclaims", "create"), ("events", "watch")}
    assert needed <= allowed
    assert not any(r in ("secrets", "roles", "rolebindings", "*") for rule in rules for r in rule["resources"])


# --- the pod the chart would spawn ------------------------------------------------------------
def quantity(value: Any) -> str:
    return str(value)


def spawned_pod(name: str) -> dict:
    """The Pod KubeSpawner makes for ``name`` from these values (z2jh maps singleuser.* onto it)."""
    home = {"name": "volume-{username}", "persistentVolumeClaim": {"claimName": "claim-{username}"}}
    env = [{"name": k, "value": v} for k, v in expand(SINGLEUSER["extraEnv"], name).items()]
    container_sc = {"runAsUser": SINGLEUSER["uid"], "allowPrivilegeEscalation": SINGLEUSER["allowPrivilegeEscalation"],
                    **SPAWNER["container_security_context"]}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"jupyter-{name}", "namespace": expand(SPAWNER["user_namespace_template"], name),
                     "labels": {"component": "singleuser-server", "app": "jupyterhub", "heritage": "jupyterhub"}},
        "spec": {
            "serviceAccountName": SINGLEUSER["serviceAccountName"],
            "securityContext": {"fsGroup": SINGLEUSER["fsGid"], **SPAWNER["pod_security_context"]},
            "containers": [{
                "name": "notebook", "image": f"{SINGLEUSER['image']['name']}:{SINGLEUSER['image']['tag']}",
                "imagePullPolicy": SINGLEUSER["image"]["pullPolicy"], "env": env,
                "ports": [{"name": "notebook-port", "containerPort": 8888}],
                "resources": {"limits": {"cpu": quantity(SINGLEUSER["cpu"]["limit"]),
                                         "memory": quantity(SINGLEUSER["memory"]["limit"])},
                              "requests": {"cpu": quantity(SINGLEUSER["cpu"]["guarantee"]),
                                           "memory": quantity(SINGLEUSER["memory"]["guarantee"])}},
                "securityContext": container_sc,
                "volumeMounts": expand([{"name": home["name"], "mountPath": SINGLEUSER["storage"]["homeMountPath"]},
                                        *SINGLEUSER["storage"]["extraVolumeMounts"]], name)}],
            "volumes": expand([home, *SINGLEUSER["storage"]["extraVolumes"]], name),
        },
    }


def restricted_violations(pod: dict) -> list[str]:
    """The checks of Pod Security `restricted` this pod could fail (volumes, root, escalation, caps, seccomp)."""
    allowed_volumes = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                       "projected", "secret"}
    spec, problems = pod["spec"], []
    problems += [f"volume {v['name']}" for v in spec["volumes"] if not set(v) - {"name"} <= allowed_volumes]
    for c in spec.get("initContainers", []) + spec["containers"]:
        sc = c.get("securityContext", {})
        if not (sc.get("runAsNonRoot") or spec["securityContext"].get("runAsNonRoot")) or sc.get("runAsUser") == 0:
            problems.append(f"{c['name']}: may run as root")
        if sc.get("allowPrivilegeEscalation") is not False or sc.get("privileged"):
            problems.append(f"{c['name']}: privilege escalation")
        if sc.get("capabilities", {}).get("drop") != ["ALL"] or set(sc.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{c['name']}: capabilities")
        profile = sc.get("seccompProfile") or spec["securityContext"].get("seccompProfile") or {}
        if profile.get("type") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{c['name']}: seccomp")
    return problems


@pytest.mark.parametrize("name", ROSTER)
def test_the_pod_the_chart_would_spawn_is_valid_and_restricted(name):
    pod = spawned_pod(name)
    validate(pod)
    assert restricted_violations(pod) == []
    assert pod["spec"]["containers"][0]["image"] == "registry.example.edu/labkit/lab:1.0.0"
    assert pod["metadata"]["namespace"] == cohort_namespace(name)


def test_the_formgrader_pod_is_restricted_too(hub_docs):
    assert restricted_violations(of(hub_docs, "Deployment", "labkit-formgrader")[0]["spec"]["template"]) == []


# --- the hub's pre-spawn hook, against a fake API --------------------------------------------
class ApiException(Exception):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class FakeCore:
    def __init__(self, namespaces: dict[str, dict], existing: set[str] = frozenset()):
        self.namespaces, self.existing, self.created = namespaces, set(existing), []

    async def read_namespace(self, name):
        if name not in self.namespaces:
            raise ApiException(404)
        return types.SimpleNamespace(metadata=types.SimpleNamespace(labels=self.namespaces[name]))

    async def create_namespaced_persistent_volume_claim(self, namespace, body):
        self.created.append((namespace, body))
        if (namespace, body["metadata"]["name"]) in self.existing:
            raise ApiException(409)
        self.existing.add((namespace, body["metadata"]["name"]))


@pytest.fixture
def hook(monkeypatch):
    rest = types.ModuleType("kubernetes_asyncio.client.rest")
    rest.ApiException = ApiException
    for mod in ("kubernetes_asyncio", "kubernetes_asyncio.client"):
        monkeypatch.setitem(sys.modules, mod, types.ModuleType(mod))
    monkeypatch.setitem(sys.modules, "kubernetes_asyncio.client.rest", rest)
    c = Config()
    for snippet in VALUES["hub"]["extraConfig"].values():
        exec(compile(snippet, "hub.extraConfig", "exec"), {"c": c})  # noqa: S102 - the chart does the same
    return c.KubeSpawner.pre_spawn_hook


def spawner(api: FakeCore, name: str) -> Any:
    return types.SimpleNamespace(api=api, namespace=expand(SPAWNER["user_namespace_template"], name),
                                 user=types.SimpleNamespace(name=name))


def test_the_hook_gives_a_cohort_namespace_its_exchange_claim_once(hook, hub_docs):
    ns = cohort_namespace("alice")
    labels = yaml.safe_load(cohort_files(["alice"], Path("/c"))[Path("/c/alice/namespace.yaml")])["metadata"]["labels"]
    api = FakeCore({ns: labels})
    asyncio.run(hook(spawner(api, "alice")))
    asyncio.run(hook(spawner(api, "alice")))  # the second start finds it (409) and goes on
    assert [n for n, _ in api.created] == [ns, ns]
    pvc = {**api.created[0][1], "metadata": {**api.created[0][1]["metadata"], "namespace": ns}}
    validate(pvc)
    assert pvc["spec"] == of(hub_docs, "PersistentVolumeClaim", "labkit-exchange")[0]["spec"]
    assert pvc["metadata"]["labels"]["app.kubernetes.io/managed-by"] != "labkit"  # never a sandbox's to delete


@pytest.mark.parametrize("namespaces", [{}, {"labkit-alice": {"kubernetes.io/metadata.name": "labkit-alice"}}],
                         ids=["missing", "not-a-cohort-namespace"])
def test_the_hook_refuses_a_namespace_the_cohort_overlay_did_not_make(hook, namespaces):
    api = FakeCore(namespaces)
    with pytest.raises(RuntimeError, match=r"labkit cluster cohort --trainee alice"):
        asyncio.run(hook(spawner(api, "alice")))
    assert api.created == []


def test_the_cohort_quota_admits_a_hub_trainee_claims(trainee_docs):
    quota = of(trainee_docs, "ResourceQuota")[0]["spec"]["hard"]
    claims = len(of(trainee_docs, "PersistentVolumeClaim")) + 2  # + home (KubeSpawner) + exchange (the hook)
    assert claims <= int(quota["persistentvolumeclaims"])
