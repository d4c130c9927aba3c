"""Inject and heal actions, written once against the ``Sandbox`` interface.

Every action has the signature ``action(sb, record=None, **args) -> dict``. ``record`` is
the fault's record (what served before, artifacts it added); the dict an inject action
returns is merged into it, so heal can restore the pre-fault state exactly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..api import DeploySpec, Sandbox
from ..errors import RolloutFailed
from ..observe import Registry
from ..waiting import until
from .probes import send_traffic

Action = Callable[..., dict[str, Any]]
ACTIONS: Registry[Action] = Registry("action")
action = ACTIONS.register


def _modelapi(sb: Sandbox, *args: str) -> dict[str, Any]:
    out = sb.run_job(["python", "-m", "modelapi", *args], args[0])
    return json.loads(out) if out.strip() else {}


def _spec(sb: Sandbox) -> DeploySpec:
    return sb.current().spec


@action("deploy-defect-image")
def deploy_defect_image(sb: Sandbox, record: dict | None = None) -> dict[str, Any]:
    try:
        sb.deploy(image=sb.settings.images.defect, change_cause="release 1.1.0-rc1")
    except RolloutFailed as e:
        return {"rollout_failed": e.reason}
    return {"rollout_failed": ""}


@action("deploy-stale-index")
def deploy_stale_index(sb: Sandbox, record: dict | None = None, snapshot: str = "2026-10-01") -> dict[str, Any]:
    sb.deploy(index=f"{snapshot}-{_spec(sb).model}", change_cause=f"reindex from snapshot {snapshot}")
    return {}


@action("corrupt-serving-index")
def corrupt_serving_index(sb: Sandbox, record: dict | None = None) -> dict[str, Any]:
    index = _spec(sb).index
    _modelapi(sb, "tamper-index", "--name", index, "--mode", "corrupt")
    sb.restart_serving()  # as after a node reboot: the replicas must load the index again
    return {"index": index}


@action("restore-index-bytes")
def restore_index_bytes(sb: Sandbox, record: dict | None = None) -> dict[str, Any]:
    index = (record or {}).get("index")
    if index:
        _modelapi(sb, "tamper-index", "--name", index, "--mode", "restore")
    restore_spec(sb, record)
    if not sb.readiness().ready:
        sb.restart_serving()  # they load the restored bytes; healed once they serve again
        until(lambda: True if sb.readiness().ready else None, timeout_s=sb.settings.rollout.progress_deadline_s,
              interval_s=0.25, what="the serving replicas ready again after the restart",
              describe=lambda: str(sb.readiness().reason))
    return {}


@action("deploy-mismatched-model")
def deploy_mismatched_model(sb: Sandbox, record: dict | None = None) -> dict[str, Any]:
    spec = _spec(sb)
    other = "v2" if spec.model == "v1" else "v1"
    rev = sb.deploy(model=other, index=spec.index, wait=False,
                    change_cause=f"upgrade model to {other}")
    return {"revision": rev.number}


@action("provider-mode")
def provider_mode(sb: Sandbox, record: dict | None = None, mode: str = "slow",
                  delay_s: float = 2.0) -> dict[str, Any]:
    before = sb.provider_call("GET", "/admin/mode")
    if mode == "down":
        sb.set_provider_running(False)
    else:
        sb.provider_call("POST", "/admin/mode", {"mode": mode, "delay_s": delay_s})
    return {"provider_before": before}


@action("provider-restore")
def provider_restore(sb: Sandbox, record: dict | None = None) -> dict[str, Any]:
    sb.set_provider_running(True)
    before = (record or {}).get("provider_before") or {}
    sb.provider_call("POST", "/admin/mode", {"mode": before.get("mode", "ok"),
                                             "delay_s": before.get("delay_s", 0.0)})
    restore_spec(sb, record)
    return {}


@action("provider-pool")
def provider_pool(sb: Sandbox, record: dict | None = None, slots: int = 2,
                  service_ms: float = 100.0) -> dict[str, Any]:
    """Put the provider on a fixed accelerator pool (``modelapi.pool``): ``slots`` slots of
    ``service_ms`` each; the pool before is kept for the heal."""
    before = sb.provider_call("GET", "/admin/pool")
    sb.provider_call("POST", "/admin/pool", {"slots": int(slots), "service_ms": float(service_ms)})
    return {"pool_before": {"slots": before.get("slots", 0), "service_ms": before.get("service_ms", 0.0)}}


@action("provider-pool-restore")
def provider_pool_restore(sb: Sandbox, record: dict | None = None) -> dict[str, Any]:
    before = (record or {}).get("pool_before") or {"slots": 0, "service_ms": 0.0}
    sb.provider_call("POST", "/admin/pool", before)
    restore_spec(sb, record)
    return {}


@action("deploy-config")
def deploy_config(sb: Sandbox, record: dict | None = None, **config: str) -> dict[str, Any]:
    cause = "tuning: " + ", ".join(f"{k}={v}" for k, v in sorted(config.items()))
    sb.deploy(change_cause=cause, **config)
    return {}


@action("throttle-serving")
def throttle_serving(sb: Sandbox, record: dict | None = None, cpus: float = 0.02) -> dict[str, Any]:
    """Starve the replicas that serve now, in place: the same revision, a smaller CPU limit."""
    serving = sb.current()
    sb.throttle_serving(float(cpus))
    return {"revision": serving.number}


@action("unthrottle-serving")
def unthrottle_serving(sb: Sandbox, record: dict | None = None) -> dict[str, Any]:
    """Give the throttled revision back the limit its spec says (if it still serves), then
    return to the pre-fault spec."""
    if sb.current().number == (record or {}).get("revision"):
        sb.throttle_serving(None)
    return restore_spec(sb, record)


@action("send-traffic")
def send_traffic_action(sb: Sandbox, record: dict | None = None, queries: str = "drifted") -> dict[str, Any]:
    send_traffic(sb, queries, 200)
    return {}


@action("deploy-poisoned-snapshot")
def deploy_poisoned_snapshot(sb: Sandbox, record: dict | None = None,
                             snapshot: str = "2026-11-15-poisoned") -> dict[str, Any]:
    _modelapi(sb, "add-snapshot", "--name", snapshot)
    return _build_and_deploy(sb, snapshot, "corpus update")


@action("deploy-adhoc-snapshot")
def deploy_adhoc_snapshot(sb: Sandbox, record: dict | None = None,
                          snapshot: str = "2026-11-20-hotfix") -> dict[str, Any]:
    latest = max(s for s in sb.snapshots() if s.count("-") == 2)
    _modelapi(sb, "make-adhoc-snapshot", "--base", latest, "--name", snapshot)
    return _build_and_deploy(sb, snapshot, "hotfix rebuild during incident")


def _build_and_deploy(sb: Sandbox, snapshot: str, cause: str) -> dict[str, Any]:
    model = _spec(sb).model
    index = f"{snapshot}-{model}"
    if index not in [m.get("index_version") for m in sb.indexes()]:
        sb.build_index(model, snapshot, name=index)
    sb.deploy(index=index, change_cause=f"{cause}: {snapshot}")
    return {"artifacts": {"snapshots": [snapshot], "indexes": [index]}}


@action("restore-spec")
def restore_spec(sb: Sandbox, record: dict | None = None) -> dict[str, Any]:
    """Back to exactly what served before the fault: clear a stuck rollout, then return to
    the pre-fault revision's spec (by rollback when it is still in the history)."""
    before = (record or {}).get("before") or {}
    history = sb.history()
    if history and history[-1].state in ("failed", "progressing"):
        sb.rollback()
        history = sb.history()
    if not before.get("spec"):
        return {}
    want = DeploySpec.from_dict(before["spec"])
    if _spec(sb) == want:
        return {}
    same = [r for r in history if r.spec == want and r.state != "failed"]
    if same:
        sb.rollback(to_revision=same[-1].number)
    else:
        sb.deploy(model=want.model, index=want.index, image=want.image, replicas=want.replicas,
                  change_cause="heal: restore pre-fault spec", **want.config)
    return {}


def remove_artifacts(sb: Sandbox, record: dict[str, Any]) -> list[str]:
    """Remove the snapshots and indexes a fault added, and anything derived from them."""
    artifacts = record.get("artifacts") or {}
    snapshots = list(artifacts.get("snapshots", []))
    if not snapshots and not artifacts.get("indexes"):
        return []
    derived = [s for s in sb.snapshots() if any(s != base and s.startswith(base) for base in snapshots)]
    all_snapshots = snapshots + derived
    indexes = set(artifacts.get("indexes", []))
    for m in sb.indexes():
        if m.get("corpus_snapshot") in all_snapshots:
            indexes.add(m.get("index_version"))
    args = ["remove-artifacts"]
    for s in all_snapshots:
        args += ["--snapshot", s]
    for i in sorted(x for x in indexes if x):
        args += ["--index", i]
    return _modelapi(sb, *args).get("removed", [])
