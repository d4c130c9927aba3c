"""The kube tier's monitoring surface (mixed into ``KubeSandbox``): Prometheus and
Alertmanager of the sandbox's namespace (``k8s/base/monitoring.yaml``), reached through the
API server's service proxy like the model API (``ServiceProxy``), and the rule ConfigMaps.

The kit's rules are the ConfigMap ``prometheus-rules`` (``k8s/base/monitoring-rules.yaml``,
kept equal to ``sandbox/monitoring_rules`` by a test); trainee rule files are keys of the
ConfigMap ``prometheus-rules-trainee``. The kubelet syncs a changed ConfigMap into the pod
within about a minute, so an install waits until Prometheus's pod reads the new text before
the caller reloads. ``promtool`` runs in a one-off container of the monitoring image on the
local Docker engine (the machine that runs the labs), the cluster needs nothing more.

``up`` creates the stack (``_ensure_monitoring``: every object of the base whose component is
Prometheus or Alertmanager, and an empty trainee ConfigMap) without waiting for it: it starts
while the seed Job runs, and until it answers the surface says Prometheus is unavailable.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import yaml

from .. import labels
from ..errors import InfrastructureError, KubeForbidden, PrometheusUnavailable
from ..monitoring import kit_rule_files
from .api import ServiceProxy

PROMETHEUS, ALERTMANAGER = "prometheus", "alertmanager"
RULES_CM, TRAINEE_RULES_CM = "prometheus-rules", "prometheus-rules-trainee"
TRAINEE_RULES_DIR = "/etc/labkit/rules/trainee"
SYNC_TIMEOUT_S = 150.0
#: The order ``up`` creates the stack's kinds in: what a pod runs as or mounts before the pod.
CREATE_ORDER = ("ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Service", "Deployment")
#: Kinds a cohort trainee may not read or write (no RBAC); the instructor's overlay applies them.
RBAC_KINDS = ("ServiceAccount", "Role", "RoleBinding")


def monitoring_objects(base: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects of ``k8s/base/monitoring*.yaml`` among the rendered base, in creation order."""
    objs = [o for o in base.values() if (o["metadata"].get("labels") or {}).get(labels.COMPONENT)
            in (PROMETHEUS, ALERTMANAGER)]
    return sorted(objs, key=lambda o: CREATE_ORDER.index(o["kind"]) if o["kind"] in CREATE_ORDER
                  else len(CREATE_ORDER))


def rules_configmap() -> dict[str, Any]:
    """``k8s/base/monitoring-rules.yaml``: the kit's rule files as the ConfigMap Prometheus mounts."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": RULES_CM, "labels": {labels.COMPONENT: "prometheus"}},
            "data": {f"{name}.yml": text for name, text in kit_rule_files().items()}}


def render_rules_manifest() -> str:
    head = ("# Generated from sandbox/monitoring_rules/*.rules.yml (the kit's SLI and SLO rules);\n"
            "# regenerate: python -c 'from sandbox._kube.monitoring import render_rules_manifest as r;"
            " print(r(), end=\"\")' > k8s/base/monitoring-rules.yaml\n")
    return head + yaml.dump(rules_configmap(), Dumper=_BlockDumper, sort_keys=False, width=1000)


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings as ``|`` blocks, so the rule file reads as itself in the manifest."""


_BlockDumper.add_representer(str, lambda d, v: d.represent_scalar(
    "tag:yaml.org,2002:str", v, style="|" if "\n" in v else None))


class KubeMonitored:
    """``prometheus_url`` / ``alertmanager_url`` and the rule hooks of ``KubeSandbox``; relies
    on its ``api``, ``id`` and ``settings``."""

    _monitoring_proxies: dict[str, ServiceProxy] | None = None

    def _monitoring_url(self, service: str) -> str:
        proxies = self._monitoring_proxies
        if proxies is None:
            proxies = self._monitoring_proxies = {}
        if service not in proxies:
            if self.api.read("Service", service) is None:  # type: ignore[attr-defined]
                raise PrometheusUnavailable(service.capitalize(), f"no Service {service} in the sandbox's namespace")
            proxies[service] = ServiceProxy(self.api, service, 0, target=f"services/{service}:web")  # type: ignore[attr-defined]
        return proxies[service].url

    def _ensure_monitoring(self, base: dict[tuple[str, str], dict[str, Any]]) -> None:
        """Create what is missing of the monitoring stack, and the empty trainee rules
        ConfigMap; never waits (the pods start meanwhile). Nothing when monitoring is off."""
        if not self.settings.monitoring.enabled:  # type: ignore[attr-defined]
            return
        for obj in monitoring_objects(base):
            try:
                self._ensure(obj)  # type: ignore[attr-defined]
            except KubeForbidden:  # a cohort trainee may not touch RBAC: the instructor's overlay made it
                if obj["kind"] not in RBAC_KINDS:
                    raise
        self._ensure(self._trainee_rules_cm({}))  # type: ignore[attr-defined]

    def _remove_monitoring_rbac(self) -> list[str]:
        """``down``'s part for the kinds it does not otherwise delete (gone with the namespace
        when the kit made it; a cohort trainee may not list them: the instructor's)."""
        removed = []
        for kind in reversed(RBAC_KINDS):
            try:
                found = self.api.list(kind, labels.kube_selector(self.id))  # type: ignore[attr-defined]
            except KubeForbidden:
                continue
            for obj in found:
                if self.api.delete(kind, obj["metadata"]["name"]):  # type: ignore[attr-defined]
                    removed.append(f"{kind.lower()}/{obj['metadata']['name']}")
        return removed

    def _trainee_rules_cm(self, data: dict[str, str]) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": TRAINEE_RULES_CM, "namespace": self.namespace,  # type: ignore[attr-defined]
                             "labels": labels.for_sandbox(self.id, PROMETHEUS)},  # type: ignore[attr-defined]
                "data": data}

    def _close_monitoring_proxies(self) -> None:
        for proxy in (self._monitoring_proxies or {}).values():
            proxy.close()
        self._monitoring_proxies = None

    @property
    def prometheus_url(self) -> str:
        return self._monitoring_url(PROMETHEUS)

    @property
    def alertmanager_url(self) -> str:
        return self._monitoring_url(ALERTMANAGER)

    def _trainee_rules(self) -> dict[str, str]:
        cm = self.api.read("ConfigMap", TRAINEE_RULES_CM)  # type: ignore[attr-defined]
        return dict((cm or {}).get("data") or {})

    def _rule_file(self, name: str) -> str | None:
        return self._trainee_rules().get(f"{name}.yml")

    def _install_rule_file(self, name: str, text: str | None) -> None:
        data = self._trainee_rules()
        if text is None:
            data.pop(f"{name}.yml", None)
        else:
            data[f"{name}.yml"] = text
        if self.api.read("ConfigMap", TRAINEE_RULES_CM) is None:  # type: ignore[attr-defined]
            self.api.create(self._trainee_rules_cm(data))  # type: ignore[attr-defined]
        else:
            self.api.patch("ConfigMap", TRAINEE_RULES_CM, {"data": {f"{name}.yml": text}})  # type: ignore[attr-defined]
        self._wait_synced(name, text)

    def _wait_synced(self, name: str, text: str | None, timeout_s: float = SYNC_TIMEOUT_S) -> None:
        """Until Prometheus's pod reads ``text`` (or no file) at the rule file's path."""
        from . import waits

        deadline = time.monotonic() + timeout_s
        path = f"{TRAINEE_RULES_DIR}/{name}.yml"
        while time.monotonic() < deadline:
            pods = self.api.list("Pod", labels.kube_selector(self.id, PROMETHEUS))  # type: ignore[attr-defined]
            seen = waits.exec_read(self.api, pods, PROMETHEUS, ["sh", "-c", f'cat "{path}" 2>/dev/null; true'])  # type: ignore[attr-defined]
            if seen is not None and (seen == (text or "")):
                return
            time.sleep(2.0)
        raise InfrastructureError(f"Prometheus's pod did not see the new {name}.yml within {timeout_s:.0f}s",
                                  fix="check the prometheus pod (`kubectl -n <namespace> get pods`) and retry")

    def _promtool(self, args: list[str], files: dict[str, str]) -> tuple[int, str]:
        from .._docker.engine import connect_engine
        from .._docker.monitoring import run_promtool

        docker = connect_engine(self.settings.docker_host)  # type: ignore[attr-defined]
        return run_promtool(docker, self.settings.monitoring.image, labels.for_sandbox(self.id, "job"),  # type: ignore[attr-defined]
                            f"labkit-{self.id}-promtool-{uuid.uuid4().hex[:6]}", args, files)  # type: ignore[attr-defined]
