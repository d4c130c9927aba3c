"""Reap what a grading run that died left behind (testcontainers' Ryuk, by label).

Every object of a grading sandbox (and its box) carries ``labkit.dev/grader=<host>:<pid>`` of
the ``labkit course grade`` run that owns it. ``reap()`` removes, through the sandbox's own
label-selected ``down()``, every sandbox whose owner ran on this host and is no longer alive.
Nothing unlabelled, nothing of a live run and nothing of another host is touched.
"""

from __future__ import annotations

import os
import socket

from sandbox import labels, make_sandbox
from sandbox._docker import engine
from sandbox.settings import Settings


def lease() -> str:
    """The owner label of this process's grading sandboxes."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def orphaned(settings: Settings) -> dict[str, str]:
    """Sandbox id -> owner, for grading sandboxes whose owner on this host is gone."""
    if settings.backend != "docker":
        return {}
    client = engine.connect_engine(settings.docker_host)
    host = socket.gethostname()
    found: dict[str, str] = {}
    objects = (client.containers.list(all=True, filters=labels.docker_filters(), ignore_removed=True)
               + client.networks.list(filters=labels.docker_filters())
               + client.volumes.list(filters=labels.docker_filters()))
    for obj in objects:
        found_labels = (obj.labels if hasattr(obj, "labels") and obj.labels is not None
                        else obj.attrs.get("Labels")) or {}
        owner = found_labels.get(labels.GRADER, "")
        owner_host, _, pid = owner.rpartition(":")
        if labels.is_ours(found_labels) and owner_host == host and pid.isdigit() and not _alive(int(pid)):
            found[found_labels[labels.SANDBOX]] = owner
    return found


def remove_grading(settings: Settings, sandbox_id: str) -> list[str]:
    """Tear a grading sandbox down and its grading box with it (``down()`` leaves the box to
    its grader: a ``reset()`` from inside the box must not remove it)."""
    removed = make_sandbox(settings.with_(sandbox_id=sandbox_id, grader="")).down()
    if settings.backend == "docker":
        removed += engine.remove_labelled(engine.connect_engine(settings.docker_host), sandbox_id)
    return removed


def reap(settings: Settings) -> list[str]:
    """Tear down every orphaned grading sandbox, box included; what was removed."""
    removed: list[str] = []
    for sandbox_id in sorted(orphaned(settings)):
        removed += remove_grading(settings, sandbox_id)
    return removed
