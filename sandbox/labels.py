"""The labels every object the kit creates carries, and selectors built from them.

Cleanup selects by these labels only: nothing without ``app.kubernetes.io/managed-by=labkit``
and the sandbox's id is ever listed for deletion.
"""

from __future__ import annotations

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "labkit"
PART_OF = "app.kubernetes.io/part-of"
COMPONENT = "app.kubernetes.io/component"
SANDBOX = "labkit.dev/sandbox"
CREATED_BY = "labkit.dev/created-by"
REVISION = "labkit.dev/revision"
SPEC = "labkit.dev/spec"
GRADER = "labkit.dev/grader"
#: The component of a grading box (``graders.box``): labelled with the sandbox it grades, but the
#: grader's, not the sandbox's: a ``reset()`` or ``down()`` of that sandbox leaves it running.
GRADING_BOX = "box"


def for_sandbox(sandbox_id: str, component: str | None = None, **extra: str) -> dict[str, str]:
    """Labels for an object of ``sandbox_id`` (and of one ``component``)."""
    labels = {
        MANAGED_BY: MANAGED_BY_VALUE,
        PART_OF: "labkit",
        SANDBOX: sandbox_id,
        CREATED_BY: "labkit",
    }
    if component:
        labels[COMPONENT] = component
    labels.update(extra)
    return labels


def docker_filters(sandbox_id: str | None = None, component: str | None = None) -> dict:
    """Docker API ``filters`` selecting the kit's objects (of one sandbox, one component)."""
    wanted = [f"{MANAGED_BY}={MANAGED_BY_VALUE}"]
    if sandbox_id:
        wanted.append(f"{SANDBOX}={sandbox_id}")
    if component:
        wanted.append(f"{COMPONENT}={component}")
    return {"label": wanted}


def kube_selector(sandbox_id: str | None = None, component: str | None = None) -> str:
    """A Kubernetes label selector string for the same set."""
    parts = [f"{MANAGED_BY}={MANAGED_BY_VALUE}"]
    if sandbox_id:
        parts.append(f"{SANDBOX}={sandbox_id}")
    if component:
        parts.append(f"{COMPONENT}={component}")
    return ",".join(parts)


def is_ours(labels: dict[str, str] | None, sandbox_id: str | None = None) -> bool:
    """True only for objects the kit made (and, if given, of that sandbox)."""
    labels = labels or {}
    if labels.get(MANAGED_BY) != MANAGED_BY_VALUE:
        return False
    return sandbox_id is None or labels.get(SANDBOX) == sandbox_id
