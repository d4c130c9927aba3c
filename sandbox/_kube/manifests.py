"""The ``k8s/base`` manifests as the kube tier applies them.

``render_base`` reads ``k8s/base`` (the files its ``kustomization.yaml`` lists) and does what
an overlay does: namespace, the sandbox's labels (on selectors and pod templates too) and the
image registry. What the tests validate is therefore what a sandbox runs.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .. import labels
from ..errors import InfrastructureError

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

K8S_DIR = Path(__file__).resolve().parents[2] / "k8s"
BASE_DIR = K8S_DIR / "base"
PSA_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


# --- the base, as the backend applies it ------------------------------------------------
def registry_image(image: str, registry: str) -> str:
    """``labkit/modelapi:1.0.0`` from ``registry.example.edu/labkit`` is
    ``registry.example.edu/labkit/modelapi:1.0.0``; no registry = the image unchanged."""
    if not registry:
        return image
    return f"{registry.rstrip('/')}/{image.rsplit('/', 1)[-1]}"


def load_base(base_dir: Path = BASE_DIR) -> list[dict[str, Any]]:
    """Every document of the files ``base_dir/kustomization.yaml`` lists, in order (parsed once
    a process: every deploy renders the base)."""
    return copy.deepcopy(_load_base(base_dir))


@functools.lru_cache(maxsize=4)
def _load_base(base_dir: Path) -> list[dict[str, Any]]:
    kustomization = base_dir / "kustomization.yaml"
    if not kustomization.is_file():
        raise InfrastructureError(
            f"the Kubernetes manifests are missing ({kustomization} not found)",
            fix="run the kit from its source checkout (`pip install -e .`), where k8s/ lives",
        )
    docs: list[dict[str, Any]] = []
    for name in yaml.safe_load(kustomization.read_text())["resources"]:
        docs += [d for d in yaml.load_all((base_dir / name).read_text(), Loader=SafeLoader) if d]
    return docs


def render_base(sandbox_id: str, namespace: str, image_for: Callable[[str], str] = str,
                base_dir: Path = BASE_DIR) -> dict[tuple[str, str], dict[str, Any]]:
    """The base objects of one sandbox by ``(kind, name)``: namespaced, labelled, imaged."""
    out = {}
    for doc in load_base(base_dir):
        obj = copy.deepcopy(doc)
        meta = obj.setdefault("metadata", {})
        component = (meta.get("labels") or {}).get(labels.COMPONENT)
        meta["labels"] = {**(meta.get("labels") or {}), **labels.for_sandbox(sandbox_id, component)}
        meta["namespace"] = namespace
        spec = obj.get("spec") or {}
        if obj["kind"] == "Service":
            spec["selector"][labels.SANDBOX] = sandbox_id
        if obj["kind"] == "Deployment":
            spec["selector"]["matchLabels"][labels.SANDBOX] = sandbox_id
        template = spec.get("template")
        if template:
            tmeta = template.setdefault("metadata", {})
            tcomp = (tmeta.get("labels") or {}).get(labels.COMPONENT, component)
            tmeta["labels"] = {**(tmeta.get("labels") or {}), **labels.for_sandbox(sandbox_id, tcomp)}
            pod = template["spec"]
            for c in pod.get("initContainers", []) + pod.get("containers", []):
                c["image"] = image_for(c["image"])
        out[(obj["kind"], meta["name"])] = obj
    return out
