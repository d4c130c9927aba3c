"""The API server accepts k8s/hub: ``kubectl apply --dry-run=server -k k8s/hub`` on a real cluster.

Skipped, with the reason, without a reachable cluster (``conftest.py``: ``--with-cluster`` or a
kubeconfig whose context answers). The hub's objects go into a namespace of this run,
``labkit-e2e-hub-<hex>``, created for real (a server-side dry-run of objects in a namespace
that does not exist is refused) and deleted at the end; nothing else is written.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from sandbox import labels
from sandbox._kube.manifests import K8S_DIR

pytestmark = [pytest.mark.cluster]


def kubectl(settings, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    path = shutil.which("kubectl")
    if not path:
        pytest.fail("kubectl is not installed (https://kubernetes.io/docs/tasks/tools/)", pytrace=False)
    context = ["--context", settings.kube.context] if settings.kube.context else []
    return subprocess.run([path, *context, *args], check=False, input=stdin, capture_output=True, text=True, timeout=120)


def test_the_api_server_accepts_k8s_hub(kube_settings, tmp_path: Path):
    namespace = f"labkit-e2e-hub-{uuid.uuid4().hex[:6]}"
    ns = {"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": namespace, "labels": labels.for_sandbox(namespace, "namespace")}}
    made = kubectl(kube_settings, "create", "-f", "-", stdin=yaml.safe_dump(ns))
    assert made.returncode == 0, made.stderr
    try:
        (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "namespace": namespace, "resources": [str(K8S_DIR / "hub")]}))
        done = kubectl(kube_settings, "apply", "--dry-run=server", "-k", str(tmp_path))
        assert done.returncode == 0, f"kubectl apply --dry-run=server -k k8s/hub: {done.stderr}"
        assert "labkit-formgrader" in done.stdout and "labkit-exchange" in done.stdout
    finally:
        kubectl(kube_settings, "delete", "namespace", namespace, "--wait=false")
