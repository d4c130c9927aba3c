"""Pods of a kube sandbox as the interface reports them, and in-place changes to them.

``component`` maps a pod onto the typed ``Component``: its phase and container states onto
``running | pending | stopped | failed``, with the kubelet's own words in ``detail``
(``CrashLoopBackOff``, ``Running (not ready)``) and the CPU limit enforced right now (the
container status' resources, which an in-place resize changes, else the pod spec's).

``resize_patch`` is the JSON patch of the ``resize`` subresource (in-place pod resize,
Kubernetes 1.33+) that changes one container's CPU limit without a restart; ``resized``
tells when the kubelet has applied it.
"""

from __future__ import annotations

from typing import Any

from kubernetes.utils.quantity import parse_quantity

from .. import labels
from ..records import Component, ComponentState
from .rollout import CONTAINER, meta, revision_of

Obj = dict[str, Any]
#: Waiting reasons of a container that will not run without someone changing something.
FAILED_WAITING = ("CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName",
                  "CreateContainerConfigError", "CreateContainerError", "RunContainerError")
RESIZE_PENDING = ("PodResizePending", "PodResizeInProgress")


def _main_index(pod: Obj) -> int:
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return next((i for i, c in enumerate(containers) if c.get("name") == CONTAINER), 0)


def _main_status(pod: Obj) -> Obj:
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    name = containers[_main_index(pod)].get("name")
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return next((cs for cs in statuses if cs.get("name") == name), statuses[0] if statuses else {})


def _cores(value: Any) -> float | None:
    return float(parse_quantity(str(value))) if value not in (None, "") else None


def live_cpus(pod: Obj) -> float | None:
    """The CPU limit of the pod's main container as the kubelet enforces it now."""
    actual = ((_main_status(pod).get("resources") or {}).get("limits") or {}).get("cpu")
    if actual is not None:
        return _cores(actual)
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return _cores(((containers[_main_index(pod)].get("resources") or {}).get("limits") or {}).get("cpu"))


def state_of(pod: Obj) -> tuple[ComponentState, str]:
    """The pod's state and the kubelet's words for it."""
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    if meta(pod).get("deletionTimestamp"):
        return "stopped", "Terminating"
    if phase == "Succeeded":
        return "stopped", "Completed"
    statuses = status.get("containerStatuses") or []
    for cs in statuses:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        if waiting.get("reason") in FAILED_WAITING:
            code = f", exited with code {last['exitCode']}" if last.get("exitCode") is not None else ""
            return "failed", f"{waiting['reason']}{code}"
        ended = (cs.get("state") or {}).get("terminated")
        if ended:
            kind: ComponentState = "stopped" if ended.get("exitCode") == 0 else "failed"
            return kind, f"{ended.get('reason') or 'Terminated'} (exit code {ended.get('exitCode')})"
    if phase == "Failed":
        return "failed", status.get("reason") or "Failed"
    if phase == "Running" and statuses and all((cs.get("state") or {}).get("running") for cs in statuses):
        return "running", "Running" if all(cs.get("ready") for cs in statuses) else "Running (not ready)"
    waiting = next((r for cs in statuses if (r := ((cs.get("state") or {}).get("waiting") or {}).get("reason"))), "")
    return "pending", waiting or phase


def component(pod: Obj) -> Component:
    """The ``Component`` of one pod."""
    pod_labels = meta(pod).get("labels") or {}
    state, detail = state_of(pod)
    images = ", ".join(c.get("image", "") for c in (pod.get("spec") or {}).get("containers") or [])
    return Component(name=meta(pod).get("name", ""), component=pod_labels.get(labels.COMPONENT, ""), state=state,
                     revision=revision_of(pod), image=images, detail=detail, cpus=live_cpus(pod))


def resize_patch(pod: Obj, resources: Obj) -> list[Obj]:
    """JSON patch of the ``resize`` subresource setting the main container's resources (the
    ``test`` op makes it fail rather than resize another container)."""
    i = _main_index(pod)
    name = ((pod.get("spec") or {}).get("containers") or [{}])[i].get("name", CONTAINER)
    return [{"op": "test", "path": f"/spec/containers/{i}/name", "value": name},
            {"op": "replace", "path": f"/spec/containers/{i}/resources", "value": resources}]


def resized(pod: Obj, cores: float | None) -> str | None:
    """``"done"`` once the kubelet enforces ``cores`` (or reports no resize pending), the
    reason when it refuses (``Infeasible``), None while it is still working on it."""
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "PodResizePending" and c.get("reason") == "Infeasible":
            return f"infeasible: {c.get('message') or 'the node cannot fit it'}"
    actual = ((_main_status(pod).get("resources") or {}).get("limits") or {}).get("cpu")
    if actual is not None:
        return "done" if _same(_cores(actual), cores) else None
    pending = any(c.get("type") in RESIZE_PENDING and c.get("status") == "True"
                  for c in (pod.get("status") or {}).get("conditions") or [])
    return None if pending else "done"


def _same(a: float | None, b: float | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and abs(a - b) < 1e-6)
