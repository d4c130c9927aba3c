"""The sandbox a lab notebook drives.

Three lines connect a notebook to it::

    from sandbox import connect
    sb = connect()              # Docker tier by default; LABKIT_BACKEND=kube for a cluster
    sb.deploy(model="v1", index="2026-11-01")
"""

from __future__ import annotations

from typing import Any

from .api import DeploySpec, Revision, Sandbox, SandboxStatus
from .errors import (
    CheckFailed,
    InfrastructureError,
    InvalidInput,
    LabkitError,
    RolloutFailed,
)
from .settings import Settings
from ._docker.backend import DockerSandbox
from .control import RemoteSandbox, control_transport

__all__ = [
    "connect",
    "Sandbox",
    "Settings",
    "DeploySpec",
    "Revision",
    "SandboxStatus",
    "LabkitError",
    "InfrastructureError",
    "InvalidInput",
    "RolloutFailed",
    "CheckFailed",
]


def make_sandbox(settings: Settings | None = None, **overrides: Any) -> Sandbox:
    """The backend the settings name, not yet brought up."""
    settings = settings or Settings.from_env(**overrides)
    if settings.backend == "kube":
        from ._kube.backend import KubeSandbox  # the kubernetes client costs ~1 s to import

        return KubeSandbox(settings)
    return DockerSandbox(settings)


def connect(settings: Settings | None = None, *, up: bool = True, fresh: bool = False,
            **overrides: Any) -> Sandbox | RemoteSandbox:
    """The trainee's sandbox (named by ``LABKIT_SANDBOX_ID``), brought up if ``up``.

    ``fresh=True`` starts from a clean slate instead: ``reset()`` tears down whatever the
    sandbox held (revisions, history, faults, rule files, data changes) and brings it up with
    nothing deployed. It is what a lab's first cell wants, in one step: bringing the sandbox up
    only to tear it down again costs a whole extra start of its front door and monitoring.

    In a grading box (``LABKIT_CONTROL_SOCKET`` set) it is reached through the box's control
    endpoint (``sandbox.control``), which authorises every operation; elsewhere directly.
    """
    settings = settings or Settings.from_env(**overrides)
    sandbox = RemoteSandbox(settings) if control_transport() is not None else make_sandbox(settings)
    if fresh:
        sandbox.reset()
        return sandbox
    return sandbox.up() if up else sandbox
