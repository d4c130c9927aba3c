"""Every manifest under k8s/ passes strict offline schema validation, and says what we promise.

Overlays are rendered with ``kubectl kustomize`` (kustomize v5 is built in) and every
document is validated with ``kubernetes-validate`` in strict mode (unknown fields are
errors) against a pinned Kubernetes version. The objects the kube backend applies
(``sandbox._kube.manifests.render_base``) are validated the same way. The cohort overlay checked in
is exactly what the generator writes, and the kind wrapper fails in one line without kind.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from sandbox import labels
from labkit.cli.cluster import cluster_app
from labkit.cluster import COHORT_DIR, KIND_CONFIG, CohortOptions, cohort_files, write_cohort_overlay
from sandbox._kube import rollout as ro
from sandbox._kube.manifests import BASE_DIR, K8S_DIR, render_base
from sandbox.api import DeploySpec
from sandbox.errors import InvalidInput, ToolMissing
from sandbox.settings import KubeSettings

K8S_VERSION = "1.31"
EXAMPLE = (["alice", "bob"], CohortOptions(registry="registry.example.edu/labkit"))
OVERLAYS = {"base": BASE_DIR, "kind": K8S_DIR / "overlays" / "kind", "cohort": COHORT_DIR}


def kubectl() -> str:
    path = shutil.which("kubectl")
    if not path:
        pytest.fail("kubectl is not installed: the manifests are rendered with `kubectl kustomize` "
                    "(install it: https://kubernetes.io/docs/tasks/tools/)", pytrace=False)
    return path


def render(directory: Path) -> list[dict]:
    done = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"kubectl kustomize {directory} failed: {done.stderr}"
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {name: render(path) for name, path in OVERLAYS.items()}


def validate(doc: dict) -> None:
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        where = "/".join(str(p) for p in e.path)
        pytest.fail(f"{doc['kind']}/{doc['metadata'].get('name')}: {e.message} at {where}", pytrace=False)


def of(docs: list[dict], kind: str, name: str | None = None, namespace: str | None = None) -> list[dict]:
    return [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])
            and namespace in (None, d["metadata"].get("namespace"))]


# --- strict schema validation --------------------------------------------------------------
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_rendered_document_is_valid_in_strict_mode(rendered, overlay):
    docs = rendered[overlay]
    assert len(docs) >= 8
    for doc in docs:
        validate(doc)


def test_objects_the_backend_applies_are_valid_labelled_and_namespaced():
    objs = render_base("alice", "labkit-alice", lambda i: "registry.example.edu/labkit/" + i.split("/")[-1])
    assert {k for k, _ in objs} == {"ConfigMap", "PersistentVolumeClaim", "Job", "Deployment", "Service",
                                    "ServiceAccount", "Role", "RoleBinding"}
    for obj in objs.values():
        validate(obj)
        assert obj["metadata"]["namespace"] == "labkit-alice"
        assert labels.is_ours(obj["metadata"]["labels"], "alice")
        template = obj.get("spec", {}).get("template")
        if template:
            assert labels.is_ours(template["metadata"]["labels"], "alice")
            images = [c["image"] for c in template["spec"].get("initContainers", []) + template["spec"]["containers"]]
            assert images and all(i in ("registry.example.edu/labkit/modelapi:1.0.0",
                                        "registry.example.edu/labkit/monitoring:2.42.0-1") for i in images)
    assert objs[("Deployment", "modelapi")]["spec"]["selector"]["matchLabels"][labels.SANDBOX] == "alice"
    assert objs[("Service", "modelapi")]["spec"]["selector"][labels.SANDBOX] == "alice"


def _selects(selector: dict, pod_labels: dict) -> bool:
    """Whether a label selector (``matchLabels``/``matchExpressions`` or a Service's map) picks the labels."""
    match = selector.get("matchLabels", {} if "matchExpressions" in selector else selector)
    if any(pod_labels.get(k) != v for k, v in match.items()):
        return False
    return all(pod_labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions", [])
               if e["operator"] == "In")


def test_a_canary_is_valid_admitted_by_the_network_policies_and_never_behind_the_service(rendered):
    objs = render_base("alice", "labkit-alice")
    base, service = objs[("Deployment", "modelapi")], objs[("Service", "modelapi")]
    assert base["spec"]["selector"]["matchLabels"][ro.TRACK] == "stable" == service["spec"]["selector"][ro.TRACK]
    assert base["spec"]["template"]["metadata"]["labels"][ro.TRACK] == "stable"
    spec = DeploySpec("v2", "2026-11-01-v2", "labkit/modelapi:1.0.0", 2, {"cpus": "0.5"})
    pin = {ro.TRACK: ro.CANARY, labels.REVISION: "3"}
    template = ro.template_for(ro.template_of(base), spec, spec.image, 3, "canary v2", None, ro.CANARY)
    canary = ro.deployment(base, ro.canary_name(3), template, 2, {**base["spec"]["selector"]["matchLabels"], **pin},
                           45, 1, "canary v2", pin)
    main = ro.deployment(base, ro.MAIN, ro.on_track(template, ro.STABLE), 2,
                         dict(base["spec"]["selector"]["matchLabels"]), 45, 10, "promote", {})
    for dep in (canary, main):  # what the kit creates is strictly valid too
        validate(dep)
        assert _selects(dep["spec"]["selector"], dep["spec"]["template"]["metadata"]["labels"])
    pod = canary["spec"]["template"]["metadata"]["labels"]
    assert not _selects(service["spec"]["selector"], pod) and not _selects(base["spec"]["selector"], pod)
    assert _selects(service["spec"]["selector"], main["spec"]["template"]["metadata"]["labels"])
    policies = {p["metadata"]["name"]: p for p in of(rendered["cohort"], "NetworkPolicy", namespace="labkit-alice")}
    for name in ("service-proxy-and-probes", "modelapi-to-provider", "allow-dns"):  # pod proxy, provider, DNS
        assert _selects(policies[name]["spec"]["podSelector"], pod), name
    c = base["spec"]["template"]["spec"]["containers"][0]
    assert c["resizePolicy"] == [{"resourceName": "cpu", "restartPolicy": "NotRequired"}]


def test_the_validator_rejects_what_it_should(rendered):
    """Guards the guard: a typo'd field and a wrong type both fail strict validation."""
    dep = copy.deepcopy(of(rendered["kind"], "Deployment", "modelapi")[0])
    dep["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(dep, K8S_VERSION, strict=True)
    dep = copy.deepcopy(of(rendered["kind"], "Deployment", "modelapi")[0])
    dep["spec"]["replicas"] = "2"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, K8S_VERSION, strict=True)


@pytest.mark.parametrize("overlay, sandboxes", [("kind", {"local"}), ("cohort", {"alice", "bob"})])
def test_every_object_and_pod_template_carries_the_kits_labels(rendered, overlay, sandboxes):
    for doc in rendered[overlay]:
        meta = doc["metadata"]
        assert labels.is_ours(meta.get("labels")), f"{doc['kind']}/{meta['name']} is not labelled"
        assert meta["labels"][labels.SANDBOX] in sandboxes
        if doc["kind"] != "Namespace":
            assert meta["namespace"] == f"labkit-{meta['labels'][labels.SANDBOX]}"
        template = doc.get("spec", {}).get("template")
        if template:
            assert labels.is_ours(template["metadata"]["labels"], meta["labels"][labels.SANDBOX])


# --- what the base promises ---------------------------------------------------------------
def test_model_api_deployment_is_hardened_and_gated_by_readiness(rendered):
    dep = of(rendered["base"], "Deployment", "modelapi")[0]
    spec, pod = dep["spec"], dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 45
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert c["image"] == "labkit/modelapi:1.0.0" and c["command"] == ["python", "-m", "modelapi", "serve"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz" and c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["ports"] == [{"name": "http", "containerPort": 8080}]
    assert set(c["resources"]["requests"]) == set(c["resources"]["limits"]) == {"cpu", "memory"}
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    assert c["securityContext"]["readOnlyRootFilesystem"] and not c["securityContext"]["allowPrivilegeEscalation"]
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts["/data"]["readOnly"] and "/tmp" in mounts
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tmp"]["emptyDir"] and volumes["data"]["persistentVolumeClaim"]["claimName"] == "labkit-data"
    assert c["envFrom"] == [{"configMapRef": {"name": "modelapi-config"}}]


def test_config_provider_data_and_jobs(rendered):
    docs = rendered["base"]
    config = of(docs, "ConfigMap", "modelapi-config")[0]["data"]
    assert config["PROVIDER_URL"] == "http://provider:8081" and config["DATA_DIR"] == "/data"
    assert {"MODEL_VERSION", "INDEX_NAME", "TOP_K", "PROVIDER_TIMEOUT_S"} <= set(config)
    provider = of(docs, "Service", "provider")[0]
    assert provider["spec"]["ports"][0]["port"] == 8081
    assert of(docs, "Deployment", "provider")[0]["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "provider"
    assert of(docs, "PersistentVolumeClaim", "labkit-data")[0]["spec"]["accessModes"] == ["ReadWriteOnce"]
    seed = of(docs, "Job", "labkit-seed")[0]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert seed == ["python", "-m", "modelapi", "seed", "--data-dir", "/data"]
    build = of(docs, "Job", "build-index")[0]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert build[:4] == ["python", "-m", "modelapi", "build-index"]


def test_kind_overlay_never_pulls_the_locally_loaded_images(rendered):
    for doc in rendered["kind"]:
        pod = doc.get("spec", {}).get("template", {}).get("spec")
        for c in (pod or {}).get("initContainers", []) + (pod or {}).get("containers", []):
            assert c["imagePullPolicy"] == "Never", doc["metadata"]["name"]


# --- cohort overlay -----------------------------------------------------------------------------
def test_cohort_gives_each_trainee_a_guarded_namespace(rendered):
    docs = rendered["cohort"]
    for trainee in ("alice", "bob"):
        ns = f"labkit-{trainee}"
        namespace = of(docs, "Namespace", ns)[0]["metadata"]["labels"]
        assert namespace["pod-security.kubernetes.io/enforce"] == "restricted"
        assert namespace["labkit.dev/cohort"] == "cohort"
        role = of(docs, "Role", "labkit-trainee", ns)[0]
        verbs = {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
        assert "patch" in verbs[("apps", "deployments")] and "create" in verbs[("", "services/proxy")]
        assert ("", "secrets") not in verbs and ("rbac.authorization.k8s.io", "roles") not in verbs
        assert "patch" in verbs[("", "pods/resize")] and "create" in verbs[("", "pods/proxy")]
        binding = of(docs, "RoleBinding", "labkit-trainee", ns)[0]
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "labkit-trainee"}
        assert binding["subjects"][0]["name"] == trainee
        assert of(docs, "ResourceQuota", "labkit-quota", ns)[0]["spec"]["hard"]["pods"] == "20"
        assert of(docs, "LimitRange", "labkit-limits", ns)
        deny = of(docs, "NetworkPolicy", "default-deny", ns)[0]["spec"]
        assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        allowed = {p["metadata"]["name"] for p in of(docs, "NetworkPolicy", namespace=ns)}
        assert allowed == {"default-deny", "allow-dns", "modelapi-to-provider", "provider-from-modelapi",
                           "service-proxy-and-probes", "prometheus-egress", "monitoring-ingress",
                           "jupyter-singleuser"}  # the hub's proxy reaching the trainee's JupyterLab
    assert not of(docs, "ClusterRole") and not of(docs, "ClusterRoleBinding")
    images = {c["image"] for d in of(docs, "Deployment") for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {"registry.example.edu/labkit/modelapi:1.0.0", "registry.example.edu/labkit/monitoring:2.42.0-1"}


def test_checked_in_cohort_overlay_is_what_the_generator_writes():
    files = cohort_files(EXAMPLE[0], COHORT_DIR, EXAMPLE[1])
    for path, text in files.items():
        assert path.read_text() == text, f"{path} is stale: run `labkit cluster cohort --trainee alice --trainee bob" \
                                         " --registry registry.example.edu/labkit`"
    on_disk = {p for p in COHORT_DIR.rglob("*.yaml")}
    assert on_disk == set(files)


def test_generator_renders_valid_overlays_and_removes_only_its_own_stale_trainees(tmp_path):
    out = tmp_path / "cohort"
    write_cohort_overlay(["Ann Lee", "raj", "zoe"], out)
    (out / "notes").mkdir()
    (out / "notes" / "kustomization.yaml").write_text("# mine\n")
    write_cohort_overlay(["ann-lee", "raj"], out)
    assert sorted(p.name for p in out.iterdir()) == ["ann-lee", "kustomization.yaml", "notes", "raj", "tenant"]
    docs = render(out)
    assert {d["metadata"]["name"] for d in of(docs, "Namespace")} == {"labkit-ann-lee", "labkit-raj"}
    for doc in docs:
        validate(doc)


def test_generator_rejects_clashing_or_missing_trainees(tmp_path):
    with pytest.raises(InvalidInput, match="clash"):
        cohort_files(["Ann", "ann"], tmp_path)
    with pytest.raises(InvalidInput, match="no trainees"):
        cohort_files([], tmp_path)


def test_cli_cohort_reads_a_file(tmp_path):
    names = tmp_path / "trainees.txt"
    names.write_text("# cohort 7\nmia\nnoah  # late joiner\n")
    result = CliRunner().invoke(cluster_app, ["cohort", "--file", str(names), "--out", str(tmp_path / "o"),
                                              "--registry", ""])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["kustomization.yaml", "mia", "noah", "tenant"]


# --- monitoring -----------------------------------------------------------------------------------
def test_monitoring_stack_is_namespaced_hardened_and_carries_the_kits_rules(rendered):
    from sandbox._kube.monitoring import render_rules_manifest, rules_configmap

    docs = rendered["base"]
    role = of(docs, "Role", "prometheus-discovery")[0]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods", "services", "endpoints"],
                              "verbs": ["get", "list", "watch"]}]
    assert not of(docs, "ClusterRole") and not of(docs, "ClusterRoleBinding")
    binding = of(docs, "RoleBinding", "prometheus-discovery")[0]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "prometheus"}]
    config = yaml.safe_load(of(docs, "ConfigMap", "prometheus-config")[0]["data"]["prometheus.yml"])
    sd = [c["kubernetes_sd_configs"][0] for c in config["scrape_configs"] if "kubernetes_sd_configs" in c]
    assert sd and all(s == {"role": "pod", "namespaces": {"own_namespace": True}} for s in sd)
    for name, port in (("prometheus", 9090), ("alertmanager", 9093)):
        pod = of(docs, "Deployment", name)[0]["spec"]["template"]["spec"]
        c = pod["containers"][0]
        assert c["image"] == "labkit/monitoring:2.42.0-1" and c["ports"] == [{"name": "web", "containerPort": port}]
        assert c["securityContext"]["readOnlyRootFilesystem"] and pod["securityContext"]["runAsUser"] == 10001
        assert of(docs, "Service", name)[0]["spec"]["ports"][0]["name"] == "web"
    assert "--web.enable-lifecycle" in of(docs, "Deployment", "prometheus")[0]["spec"]["template"]["spec"]["containers"][0]["command"]
    shipped = of(docs, "ConfigMap", "prometheus-rules")[0]["data"]
    assert shipped == rules_configmap()["data"], "k8s/base/monitoring-rules.yaml is stale: see its header"
    assert (BASE_DIR / "monitoring-rules.yaml").read_text() == render_rules_manifest()


# --- kind ----------------------------------------------------------------------------------------
def test_kind_cluster_config_is_one_local_node():
    cfg = yaml.safe_load(KIND_CONFIG.read_text())
    assert (cfg["kind"], cfg["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    assert cfg["name"] == KubeSettings().cluster_name
    assert [n["role"] for n in cfg["nodes"]] == ["control-plane"]
    assert cfg["networking"]["apiServerAddress"] == "127.0.0.1"
    assert cfg["networking"]["podSubnet"] == CohortOptions().pod_cidr


def test_missing_kind_is_one_line_naming_how_to_install_it(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    from labkit.cluster import kind_path

    with pytest.raises(ToolMissing, match="kind"):
        kind_path()
    result = CliRunner().invoke(cluster_app, ["create"])
    assert result.exit_code == 2
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "`kind` is not installed" in lines[0] and "kind.sigs.k8s.io" in lines[0]


def test_cluster_commands_wrap_kind(tmp_path, monkeypatch):
    calls, clusters = tmp_path / "calls", tmp_path / "clusters"
    kind = tmp_path / "kind"
    kind.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n[ "$1" = get ] && cat {clusters} 2>/dev/null\nexit 0\n')
    kind.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    for var in ("LABKIT_IMAGE_REPOSITORY", "LABKIT_IMAGE_TAG"):
        monkeypatch.delenv(var, raising=False)
    runner = CliRunner()
    assert runner.invoke(cluster_app, ["create"]).exit_code == 0
    clusters.write_text("labkit\n")
    assert runner.invoke(cluster_app, ["create"]).exit_code == 0  # exists: not created twice
    assert runner.invoke(cluster_app, ["load-image"]).exit_code == 0
    assert runner.invoke(cluster_app, ["delete"]).exit_code == 0
    assert calls.read_text().splitlines() == [
        "get clusters", f"create cluster --name labkit --config {KIND_CONFIG} --wait 120s",
        "get clusters",
        "get clusters", "load docker-image labkit/modelapi:1.0.0 labkit/modelapi:1.1.0-rc1 labkit/monitoring:2.42.0-1 --name labkit",
        "get clusters", "delete cluster --name labkit"]
