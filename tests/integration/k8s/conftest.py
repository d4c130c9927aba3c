"""Is there a Kubernetes cluster to run the kube tier's end-to-end suite against?

The suite runs when ``--with-cluster`` is given or a kubeconfig is present (``KUBECONFIG``
or ``~/.kube/config``) and its context answers ``/version`` within 3 s. Otherwise every
test here is skipped with the reason (and the reason is printed once). With
``--with-cluster`` outside CI an unreachable cluster fails the suite instead: it was asked
for explicitly. To get a cluster: ``labkit cluster create`` and ``labkit cluster
load-image``, then ``make test-k8s`` (see k8s/README.md).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
HINT = "run `labkit cluster create && labkit cluster load-image`, then `make test-k8s`"


def _kubeconfig() -> str:
    path = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    return path if any(Path(p).is_file() for p in path.split(os.pathsep) if p) else ""


def _context(settings) -> str:
    """The context the suite will use, for messages: ``context kind-labkit``."""
    if settings.kube.context:
        return f"context {settings.kube.context}"
    try:
        from kubernetes import config

        return f"context {config.list_kube_config_contexts(settings.kube.kubeconfig or None)[1]['name']}"
    except Exception:  # noqa: BLE001 - only for the message
        return "the current context"


def cluster_problem(settings, with_cluster: bool) -> str:
    """Why there is no cluster to test against ('' when one answers)."""
    if not with_cluster and not _kubeconfig():
        return (f"no Kubernetes cluster configured (no --with-cluster, no KUBECONFIG, no ~/.kube/config); {HINT}")
    from kubernetes import client

    from sandbox._kube.api import new_api_client

    context = _context(settings)
    try:
        client.VersionApi(new_api_client(settings, retries=0)).get_code(_request_timeout=3)
    except Exception as e:  # noqa: BLE001 - any failure is the reason
        text = getattr(e, "message", None) or str(e).strip() or type(e).__name__
        return f"no Kubernetes cluster reachable (tried {context}): {text.splitlines()[0][:300]}; {HINT}"
    return ""


@pytest.fixture(scope="session")
def kube_settings():
    from sandbox.settings import RolloutSettings, Settings

    deadline = float(os.environ.get("LABKIT_PROGRESS_DEADLINE_S") or 60)  # margin for pulls on a slow node
    return Settings.from_env(backend="kube", sandbox_id=f"e2e-{uuid.uuid4().hex[:6]}",
                             rollout=RolloutSettings(progress_deadline_s=deadline))


@pytest.fixture(scope="session", autouse=True)
def cluster(request, kube_settings) -> str:
    """Skips (or, with --with-cluster outside CI, fails) every test here without a cluster."""
    with_cluster = request.config.getoption("--with-cluster")
    problem = cluster_problem(kube_settings, with_cluster)
    if problem:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"tests/integration/k8s: {problem}", yellow=True)
        if with_cluster and not IN_CI:
            pytest.fail(problem, pytrace=False)
        pytest.skip(problem)
    return _context(kube_settings)


@pytest.fixture(scope="session")
def kube_sb(cluster, kube_settings) -> Iterator:
    """One sandbox (its own namespace) for the whole suite; removed by label at the end."""
    from sandbox._kube.backend import KubeSandbox

    sb = KubeSandbox(kube_settings)
    try:
        yield sb.up()
    finally:
        sb.down()
