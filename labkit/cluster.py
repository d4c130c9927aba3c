"""Cluster helpers for instructors: the kind CLI wrapper and the generator of the cohort
overlay (the base as a sandbox applies it is ``sandbox._kube.manifests``).

* ``create_cluster`` / ``delete_cluster`` / ``load_images`` wrap ``kind``; a missing
  ``kind`` is one line saying how to install it.
* ``write_cohort_overlay`` writes ``k8s/overlays/cohort``: one namespace per trainee with a
  Role and RoleBinding limited to it, a ResourceQuota, a LimitRange and a default-deny
  NetworkPolicy with the exceptions the stack needs. Its rendering (``cohort_files``, the Role's
  ``_role_rules``) lives in ``sandbox._kube.cohort``, where the control endpoint can render it
  too (the access-review lab); it is re-exported here unchanged.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

from sandbox._kube.cohort import (  # noqa: F401 - the cohort overlay's rendering, re-exported
    GENERATED,
    HUB_TRAINEE_DIR,
    TENANT,
    CohortOptions,
    _dump,
    _meta,
    _role_rules,
    _tenant_docs,
    _trainee_docs,
    _trainee_ids,
    cohort_files,
)
from sandbox._kube.manifests import BASE_DIR, K8S_DIR
from sandbox.errors import InfrastructureError, InvalidInput, ToolMissing
from sandbox.settings import Settings

KIND_CONFIG = K8S_DIR / "kind-cluster.yaml"
COHORT_DIR = K8S_DIR / "overlays" / "cohort"
KIND_INSTALL = ("install kind: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
                " (e.g. `go install sigs.k8s.io/kind@latest`, or `brew install kind`)")
Runner = Callable[..., subprocess.CompletedProcess]


# --- kind -------------------------------------------------------------------------------
def kind_path() -> str:
    """The ``kind`` executable, or ``ToolMissing`` naming how to install it."""
    path = shutil.which("kind")
    if not path:
        raise ToolMissing("kind", KIND_INSTALL)
    return path


def run_kind(args: list[str], runner: Runner = subprocess.run) -> str:
    """Run ``kind ARGS``; its output, or an error carrying kind's last line."""
    cmd = [kind_path(), *args]
    try:
        done = runner(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise InfrastructureError(f"`{' '.join(cmd)}` could not run: {e}") from e
    if done.returncode != 0:
        lines = (done.stderr or done.stdout or "").strip().splitlines()
        raise InfrastructureError(f"`kind {' '.join(args)}` failed: {lines[-1] if lines else done.returncode}")
    return (done.stdout or "") + (done.stderr or "")


def cluster_exists(name: str, runner: Runner = subprocess.run) -> bool:
    return name in run_kind(["get", "clusters"], runner).split()


def create_cluster(settings: Settings, config: Path = KIND_CONFIG, runner: Runner = subprocess.run) -> str:
    """Create the local kind cluster (no-op if it exists); returns its kubeconfig context."""
    name = settings.kube.cluster_name
    if not cluster_exists(name, runner):
        run_kind(["create", "cluster", "--name", name, "--config", str(config), "--wait", "120s"], runner)
    return f"kind-{name}"


def delete_cluster(settings: Settings, runner: Runner = subprocess.run) -> bool:
    """Delete the local kind cluster; False if there was none."""
    name = settings.kube.cluster_name
    if not cluster_exists(name, runner):
        return False
    run_kind(["delete", "cluster", "--name", name], runner)
    return True


def load_images(settings: Settings, images: Iterable[str] = (), runner: Runner = subprocess.run) -> list[str]:
    """``kind load docker-image`` the model API images (good and defective) into the node."""
    wanted = list(images) or [settings.images.default, settings.images.defect, settings.monitoring.image]
    name = settings.kube.cluster_name
    if not cluster_exists(name, runner):
        raise InfrastructureError(f"there is no kind cluster named {name}", fix="run `labkit cluster create`")
    run_kind(["load", "docker-image", *wanted, "--name", name], runner)
    return wanted


# --- the cohort overlay -----------------------------------------------------------------
def read_trainees(path: Path) -> list[str]:
    """Trainee names from a file: one a line, ``#`` starts a comment."""
    if not path.is_file():
        raise InvalidInput(f"trainee file {path} does not exist; give one name a line")
    names = []
    for line in path.read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name)
    return names


def write_cohort_overlay(trainees: Iterable[str], out_dir: Path = COHORT_DIR, opts: CohortOptions = CohortOptions(),
                         base_dir: Path = BASE_DIR) -> list[Path]:
    """Write the cohort overlay; trainee directories a previous run generated and this list
    no longer names are removed (only directories this generator wrote)."""
    files = cohort_files(trainees, out_dir, opts, base_dir)
    keep = {p.parent for p in files}
    if out_dir.is_dir():
        for child in out_dir.iterdir():
            marker = child / "kustomization.yaml"
            if child.is_dir() and child not in keep and marker.is_file() and marker.read_text().startswith(GENERATED):
                shutil.rmtree(child)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return sorted(files)
