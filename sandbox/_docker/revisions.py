"""The revisions of a Docker sandbox, read off the engine and changed through it.

A revision is the set of model API containers labelled with its number. Everything the rollout
rules need is what the engine itself records, fixed when the kit created or connected them:

* number, spec, change cause and ``rollback_of``: labels set at container creation;
* created: the engine's ``Created``; finished: its ``State.FinishedAt``; crashed: its exit code
  and OOM flag (the kit stops containers with SIGTERM, so 143/137 without OOM are the kit's);
* promoted (took user traffic): membership of the ``serving`` network, with the promotion time
  in an alias (``promoted-<unix ms>``) set by the engine's connect call. Containers of retired
  revisions are stopped, not removed (like a Deployment's old ReplicaSets), so the record stays,
  up to the history limit.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable
from typing import Any

from docker.errors import DockerException, NotFound
from docker.models.containers import Container

from .. import labels
from ..records import Component, ComponentState, DeploySpec
from ..spec import RevisionFacts
from . import engine

CFS_PERIOD_US = 100_000

SERVING_ALIAS = "serving"
PROMOTED_PREFIX = "promoted-"
CHANGE_CAUSE = "labkit.dev/change-cause"
ROLLBACK_OF = "labkit.dev/rollback-of"
KIT_STOP_CODES = (137, 143)  # SIGKILL / SIGTERM: the kit (or the engine on its behalf) stopped it


def parse_time(value: str | None) -> float | None:
    """Epoch seconds of an engine timestamp (``2026-12-01T21:34:52.092190724Z``); None for the
    engine's zero time or nothing."""
    if not value or value.startswith("0001-"):
        return None
    text = value.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # the engine gives nanoseconds; Python parses at most microseconds
        digits = "".join(ch for ch in rest if ch.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits):]}"
    stamp = dt.datetime.fromisoformat(text)
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)).timestamp()


def revision_labels(number: int, spec: DeploySpec, cause: str, rollback_of: int | None) -> dict[str, str]:
    """The facts of a revision, fixed on its containers when they are created."""
    return {labels.REVISION: str(number), labels.SPEC: spec.to_json(), CHANGE_CAUSE: cause[:500],
            ROLLBACK_OF: "" if rollback_of is None else str(rollback_of)}


def promoted_at(container: Container, serving_network: str) -> float | None:
    """When the container joined the serving network (its promotion), if it ever did."""
    net = ((container.attrs.get("NetworkSettings") or {}).get("Networks") or {}).get(serving_network) or {}
    for alias in net.get("Aliases") or []:
        if alias.startswith(PROMOTED_PREFIX) and alias[len(PROMOTED_PREFIX):].isdigit():
            return int(alias[len(PROMOTED_PREFIX):]) / 1000
    return None


def crash_of(container: Container) -> str:
    """Why a container died on its own ("" if it runs, or the kit stopped it)."""
    state = container.attrs.get("State") or {}
    if state.get("Running") or state.get("Status") in ("created", "restarting"):
        return ""
    if state.get("OOMKilled"):
        return f"{container.name} was killed by the out-of-memory killer"
    code = state.get("ExitCode")
    if code in KIT_STOP_CODES or code is None:
        return ""
    return f"{container.name} exited with code {code}"


def replicas_by_revision(containers: Iterable[Container], sandbox_id: str) -> dict[int, list[Container]]:
    out: dict[int, list[Container]] = {}
    for c in containers:
        raw = c.labels.get(labels.REVISION, "")
        if labels.is_ours(c.labels, sandbox_id) and raw.isdigit():
            out.setdefault(int(raw), []).append(c)
    return {n: sorted(cs, key=lambda c: c.name) for n, cs in sorted(out.items())}


def facts(number: int, replicas: list[Container], serving_network: str, deadline_s: float) -> RevisionFacts:
    """The rollout facts of one revision from its containers."""
    first = replicas[0]
    created = min(parse_time(c.attrs.get("Created")) or 0.0 for c in replicas)
    promoted = [t for c in replicas if (t := promoted_at(c, serving_network)) is not None]
    running = any((c.attrs.get("State") or {}).get("Running") for c in replicas)
    stopped = [] if running else [t for c in replicas
                                  if (t := parse_time((c.attrs.get("State") or {}).get("FinishedAt")))]
    crashed = next((why for c in replicas if (why := crash_of(c))), "")
    failure = ""
    if not promoted and not crashed and stopped and max(stopped) >= created + deadline_s - 1:
        failure = f"progress deadline exceeded (not ready within {deadline_s:g}s)"  # the kit gave up
    raw_back = first.labels.get(ROLLBACK_OF, "")
    return RevisionFacts(
        number=number,
        spec=DeploySpec.from_dict(_spec_label(first)),
        created_at=created,
        change_cause=first.labels.get(CHANGE_CAUSE, ""),
        rollback_of=int(raw_back) if raw_back.isdigit() else None,
        promoted_at=min(promoted) if promoted else None,
        finished_at=max(stopped) if stopped else None,
        crashed="" if promoted else crashed,
        failure=failure,
    )


def _spec_label(container: Container) -> dict[str, Any]:
    return json.loads(container.labels.get(labels.SPEC) or "{}")


def promote(client: Any, serving_network: str, replicas: list[Container], when_ms: int) -> None:
    """Connect each replica to the serving network: from now on the gateway sends it traffic."""
    network = client.networks.get(serving_network)
    for c in replicas:
        network.connect(c, aliases=[SERVING_ALIAS, f"{PROMOTED_PREFIX}{when_ms}"])


def stop(replicas: Iterable[Container], timeout_s: int = 5) -> None:
    """Stop gracefully (in-flight requests finish); the containers stay as history."""
    for c in replicas:
        try:
            c.reload()
            if (c.attrs.get("State") or {}).get("Running"):
                c.stop(timeout=timeout_s)
        except NotFound:
            continue
        except DockerException as e:
            raise engine.wrap(e, f"stopping {c.name}") from e


def remove(replicas: Iterable[Container]) -> None:
    for c in replicas:
        try:
            c.remove(force=True)
        except NotFound:
            continue
        except DockerException as e:
            raise engine.wrap(e, f"removing {c.name}") from e


def awaiting(f: RevisionFacts, deadline_s: float) -> bool:
    """Never promoted, not crashed or stopped, and past its progress deadline."""
    return (f.promoted_at is None and not f.crashed and not f.failure and f.finished_at is None
            and time.time() > f.created_at + deadline_s)


def cpu_limit(cores: float) -> dict[str, int]:
    """A CFS quota (not NanoCpus, which the engine cannot change on a live container)."""
    return {"cpu_period": CFS_PERIOD_US, "cpu_quota": max(1000, int(cores * CFS_PERIOD_US))}


_STATES: dict[str, ComponentState] = {"running": "running", "created": "pending", "restarting": "pending",
                                      "paused": "stopped", "removing": "stopped"}


def component_of(c: Container) -> Component:
    state = c.attrs.get("State") or {}
    status = state.get("Status") or c.status
    if status in ("exited", "dead"):
        kind: ComponentState = "failed" if crash_of(c) else "stopped"
        detail = f"exited ({state.get('ExitCode')})" + (", OOM killed" if state.get("OOMKilled") else "")
    else:
        kind, detail = _STATES.get(status, "pending"), status
    host = c.attrs.get("HostConfig") or {}
    quota, period, nano = host.get("CpuQuota") or 0, host.get("CpuPeriod") or CFS_PERIOD_US, host.get("NanoCpus") or 0
    cpus = quota / period if quota > 0 else (nano / 1e9 if nano else None)
    raw = c.labels.get(labels.REVISION, "")
    return Component(name=c.name, component=c.labels.get(labels.COMPONENT, ""), state=kind,
                     revision=int(raw) if raw.isdigit() else None,
                     image=str((c.attrs.get("Config") or {}).get("Image") or ""), detail=detail, cpus=cpus)
