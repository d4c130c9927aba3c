"""Rollout logic of the kube tier as pure functions: API objects (camelCase dicts) in,
records and patches out. Nothing here talks to a cluster, so all of it is unit-tested on
realistic Deployment/ReplicaSet objects.

The model is Kubernetes' own. A revision is a ReplicaSet of the ``modelapi`` Deployment,
numbered by ``deployment.kubernetes.io/revision``. Its ``DeploySpec`` is the pod template's
``labkit.dev/spec`` annotation (corrected by what the container really runs, in case
someone used ``kubectl set image``). Returning to an old template re-uses its ReplicaSet,
which takes the next number; the numbers it had before are in
``deployment.kubernetes.io/revision-history`` and are listed as superseded entries, so
the history reads like the Docker tier's. ``rollout_status`` is ``kubectl rollout status``;
``undo_patch`` is ``kubectl rollout undo`` (the target ReplicaSet's template, as a JSON
patch).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from .. import labels
from ..api import CONFIG_KEYS, DeploySpec, Revision
from ..errors import InvalidInput, UnknownChoice

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
CHANGE_CAUSE = "kubernetes.io/change-cause"
ROLLBACK_OF = "labkit.dev/rollback-of"
FAILED = "labkit.dev/failed-reason"
FINISHED_AT = "labkit.dev/finished-at"
HASH_LABEL = "pod-template-hash"
TIMED_OUT = "ProgressDeadlineExceeded"
AVAILABLE = "NewReplicaSetAvailable"
CONTAINER = "modelapi"
MANAGED_ENV = ("MODEL_VERSION", "INDEX_NAME", *(v for v in CONFIG_KEYS.values() if v))

Obj = dict[str, Any]


@dataclass(frozen=True)
class RolloutStatus:
    """Where a Deployment's rollout stands, as ``kubectl rollout status`` says it."""

    state: str  # complete | progressing | failed
    message: str


# --- small accessors -----------------------------------------------------------------------
def meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def annotations(obj: Obj) -> dict[str, str]:
    return meta(obj).get("annotations") or {}


def revision_number(obj: Obj) -> int:
    try:
        return int(annotations(obj).get(REVISION, "0"))
    except ValueError:
        return 0


def parse_time(value: Any) -> float | None:
    """Epoch seconds of an API timestamp (``2026-11-01T10:00:00Z``), None if absent."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def condition(obj: Obj, kind: str) -> Obj | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return c
    return None


def describe_conditions(obj: Obj) -> str:
    """``Progressing=False (ProgressDeadlineExceeded): ...; Available=True (...)``."""
    parts = []
    for c in (obj.get("status") or {}).get("conditions") or []:
        text = f"{c.get('type')}={c.get('status')}"
        if c.get("reason"):
            text += f" ({c['reason']})"
        if c.get("message"):
            text += f": {c['message']}"
        parts.append(text)
    return "; ".join(parts) or "no conditions reported yet"


# --- rollout status ------------------------------------------------------------------------
def rollout_status(dep: Obj) -> RolloutStatus:
    """``kubectl rollout status`` of a Deployment (observedGeneration, updated, ready,
    available replicas, the Progressing condition and its deadline)."""
    name = meta(dep).get("name", "?")
    st = dep.get("status") or {}
    if (st.get("observedGeneration") or 0) < (meta(dep).get("generation") or 0):
        return RolloutStatus("progressing", "waiting for the deployment spec update to be observed")
    progressing = condition(dep, "Progressing")
    if progressing and progressing.get("reason") == TIMED_OUT:
        return RolloutStatus("failed", f"deployment {name} exceeded its progress deadline: "
                                       f"{describe_conditions(dep)}")
    want = (dep.get("spec") or {}).get("replicas", 1)
    updated, total = st.get("updatedReplicas") or 0, st.get("replicas") or 0
    ready, available = st.get("readyReplicas") or 0, st.get("availableReplicas") or 0
    if updated < want:
        return RolloutStatus("progressing", f"{updated} out of {want} new replicas have been updated")
    if total > updated:
        return RolloutStatus("progressing", f"{total - updated} old replicas are pending termination")
    if ready < updated:
        return RolloutStatus("progressing", f"{ready} of {updated} updated replicas are ready")
    if available < updated:
        return RolloutStatus("progressing", f"{available} of {updated} updated replicas are available")
    return RolloutStatus("complete", f"deployment {name} successfully rolled out")


def _settled(dep: Obj) -> bool:
    """The controller has observed the spec and finished the rollout once (pods may restart
    later; the revision still serves)."""
    st = dep.get("status") or {}
    if (st.get("observedGeneration") or 0) < (meta(dep).get("generation") or 0):
        return False
    progressing = condition(dep, "Progressing")
    return bool(progressing and progressing.get("reason") == AVAILABLE) or rollout_status(dep).state == "complete"


# --- replica sets and specs ----------------------------------------------------------------
def owned(dep: Obj, replicasets: list[Obj]) -> list[Obj]:
    """The Deployment's ReplicaSets (owner uid when known), by revision number."""
    uid = meta(dep).get("uid")
    mine = [rs for rs in replicasets
            if not uid or any(o.get("uid") == uid for o in meta(rs).get("ownerReferences") or [])]
    return sorted((rs for rs in mine if revision_number(rs) > 0), key=revision_number)


def current(dep: Obj, replicasets: list[Obj]) -> Obj | None:
    """The ReplicaSet of the Deployment's current revision (the newest one)."""
    rss = owned(dep, replicasets)
    want = revision_number(dep)
    for rs in rss:
        if revision_number(rs) == want:
            return rs
    return rss[-1] if rss else None


def _container(template: Obj) -> Obj:
    containers = (template.get("spec") or {}).get("containers") or [{}]
    return next((c for c in containers if c.get("name") == CONTAINER), containers[0])


def spec_from_template(template: Obj, replicas: int | None = None,
                       resolve: Callable[[str], str] = str) -> DeploySpec:
    """The DeploySpec a pod template runs: its annotation, corrected by the container."""
    raw: dict[str, Any] = {}
    try:
        raw = json.loads(annotations(template).get(labels.SPEC) or "{}")
    except ValueError:
        raw = {}
    c = _container(template)
    env = {e.get("name"): e.get("value") for e in c.get("env") or [] if "value" in e}
    config = {str(k): str(v) for k, v in (raw.get("config") or {}).items()}
    for key, var in CONFIG_KEYS.items():
        if var and env.get(var) is not None:
            config[key] = str(env[var])
    image = raw.get("image") or c.get("image", "?")
    if c.get("image") and resolve(image) != c["image"]:
        image = c["image"]  # changed behind the kit's back (kubectl set image)
    return DeploySpec(
        model=env.get("MODEL_VERSION") or raw.get("model") or "?",
        index=env.get("INDEX_NAME") or raw.get("index") or "?",
        image=image,
        replicas=int(replicas if replicas is not None else raw.get("replicas", 1)),
        config=config,
    )


def _rs_spec(dep: Obj, rs: Obj, is_current: bool, resolve: Callable[[str], str]) -> DeploySpec:
    replicas = (dep.get("spec") or {}).get("replicas") if is_current else None
    return spec_from_template((rs.get("spec") or {}).get("template") or {}, replicas, resolve)


def serving(dep: Obj, replicasets: list[Obj]) -> Obj | None:
    """The ReplicaSet that serves: the current one once rolled out, else the newest older
    one that still has replicas and did not fail (it keeps serving during a rollout)."""
    cur = current(dep, replicasets)
    if cur is None:
        return None
    if _settled(dep):
        return cur
    st = dep.get("status") or {}
    observed = (st.get("observedGeneration") or 0) >= (meta(dep).get("generation") or 0)
    live = [rs for rs in owned(dep, replicasets) if (rs is not cur or not observed)  # not observed: cur is the old one
            and not annotations(rs).get(FAILED) and ((rs.get("spec") or {}).get("replicas") or 0) > 0]
    return live[-1] if live else None


def _state(dep: Obj, rs: Obj, cur: Obj | None, serve: Obj | None) -> tuple[str, str]:
    failed = annotations(rs).get(FAILED, "")
    if rs is serve:
        return "serving", ""
    if rs is cur:
        status = rollout_status(dep)
        if failed or status.state == "failed":
            return "failed", failed or status.message
        return "progressing", ""
    return ("failed", failed) if failed else ("superseded", "")


def history(dep: Obj | None, replicasets: list[Obj], resolve: Callable[[str], str] = str) -> list[Revision]:
    """The rollout history, oldest first, rebuilt from the Deployment's ReplicaSets."""
    if dep is None:
        return []
    cur, serve = current(dep, replicasets), serving(dep, replicasets)
    revisions: list[Revision] = []
    for rs in owned(dep, replicasets):
        ann = annotations(rs)
        spec = _rs_spec(dep, rs, rs is cur, resolve)
        state, reason = _state(dep, rs, cur, serve)
        created = parse_time(meta(rs).get("creationTimestamp")) or 0.0
        number = revision_number(rs)
        rollback_of = int(ann[ROLLBACK_OF]) if (ann.get(ROLLBACK_OF) or "").isdigit() else None
        progress = condition(dep, "Progressing") or {}
        done = parse_time(progress.get("lastUpdateTime")) if rs is cur and state != "progressing" else None
        done = parse_time(ann.get(FINISHED_AT)) or done
        revisions.append(Revision(number, spec, state, created, ann.get(CHANGE_CAUSE, ""), rollback_of,
                                  ready_at=done if state == "serving" else None,
                                  finished_at=done if state in ("serving", "failed") else None, reason=reason))
        for old in (ann.get(REVISION_HISTORY) or "").split(","):
            if old.strip().isdigit():
                revisions.append(Revision(int(old), spec, "superseded", created,
                                          f"same template as revision {number}"))
    return sorted(revisions, key=lambda r: r.number)


# --- undo ------------------------------------------------------------------------------------
def rs_of(dep: Obj, replicasets: list[Obj], number: int) -> Obj | None:
    for rs in owned(dep, replicasets):
        olds = [o.strip() for o in (annotations(rs).get(REVISION_HISTORY) or "").split(",")]
        if revision_number(rs) == number or str(number) in olds:
            return rs
    return None


def undo_target(dep: Obj, replicasets: list[Obj], to_revision: int | None = None,
                resolve: Callable[[str], str] = str) -> tuple[Obj, int]:
    """The ReplicaSet ``rollout undo`` returns to, and the revision number it stands for.

    Without a number: a stuck or failed rollout goes back to what serves; otherwise the
    newest superseded revision with another template. Failed revisions are never targets.
    """
    revs = history(dep, replicasets, resolve)
    cur = current(dep, replicasets)
    if to_revision is not None:
        ok = [r for r in revs if r.number == to_revision and r.state != "failed"]
        if not ok:
            raise UnknownChoice("revision", to_revision, [r.number for r in revs if r.state != "failed"])
        target = ok[0]
    else:
        live = [r for r in revs if r.state == "serving"]
        if revs and revs[-1].state in ("failed", "progressing") and live:
            target = live[-1]
        else:
            older = [r for r in revs if r.state == "superseded" and rs_of(dep, replicasets, r.number) is not cur]
            if not older:
                raise InvalidInput("no previous revision to roll back to; see `labkit rollout history`")
            target = older[-1]
    rs = rs_of(dep, replicasets, target.number)
    assert rs is not None  # every history entry comes from a ReplicaSet
    return rs, target.number


def _precondition(dep: Obj) -> list[Obj]:
    rv = meta(dep).get("resourceVersion")
    return [{"op": "replace", "path": "/metadata/resourceVersion", "value": rv}] if rv else []


def _annotation_ops(dep: Obj, cause: str, rollback_of: int | None) -> list[Obj]:
    ann = dict(annotations(dep))
    ann[CHANGE_CAUSE] = cause
    ann[ROLLBACK_OF] = str(rollback_of) if rollback_of is not None else ""
    return [{"op": "add", "path": "/metadata/annotations", "value": ann}]


def undo_patch(dep: Obj, rs: Obj, cause: str, rollback_of: int, resolve: Callable[[str], str] = str) -> list[Obj]:
    """JSON patch restoring ``rs``'s pod template (without its pod-template-hash label), its
    replicas, the change cause and ``labkit.dev/rollback-of``: ``kubectl rollout undo``."""
    template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
    (template.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    replicas = spec_from_template(template, None, resolve).replicas
    return _precondition(dep) + [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/spec/replicas", "value": replicas},
    ] + _annotation_ops(dep, cause, rollback_of)


# --- deploy ----------------------------------------------------------------------------------
def cpu_quantity(cpus: str) -> str:
    """``0.05`` -> ``50m``; ``2`` -> ``2`` (a CPU limit from the spec's ``cpus``)."""
    try:
        value = float(cpus)
    except ValueError as e:
        raise InvalidInput(f"cpus must be a number of cores such as 0.5, got {cpus!r}") from e
    if not 0.001 <= value <= 64:
        raise InvalidInput(f"cpus must be between 0.001 and 64 cores, got {cpus}")
    return str(int(value)) if value == int(value) else f"{round(value * 1000)}m"


def _cores(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def template_for(template: Obj, spec: DeploySpec, image: str) -> Obj:
    """A pod template running ``spec``: image, the spec's env, CPU limit, spec annotation."""
    t = copy.deepcopy(template)
    tmeta = t.setdefault("metadata", {})
    tmeta.setdefault("labels", {}).pop(HASH_LABEL, None)
    tmeta.setdefault("annotations", {})[labels.SPEC] = spec.to_json()
    c = _container(t)
    c["image"] = image
    kept = [e for e in c.get("env") or [] if e.get("name") not in MANAGED_ENV]
    c["env"] = kept + [{"name": k, "value": v} for k, v in sorted(spec.env().items())]
    if spec.config.get("cpus"):
        limit = cpu_quantity(spec.config["cpus"])
        res = c.setdefault("resources", {})
        res.setdefault("limits", {})["cpu"] = limit
        requests = res.setdefault("requests", {})
        if _cores(str(requests.get("cpu", limit))) > _cores(limit):
            requests["cpu"] = limit
    return t


def deploy_patch(dep: Obj, template: Obj, replicas: int, cause: str, deadline_s: int,
                 history_limit: int) -> list[Obj]:
    """JSON patch of a deploy: the new template and replicas, progress deadline, history
    limit and change cause, guarded by the resourceVersion that was read (409 if stale)."""
    return _precondition(dep) + [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/spec/replicas", "value": replicas},
        {"op": "replace", "path": "/spec/progressDeadlineSeconds", "value": deadline_s},
        {"op": "replace", "path": "/spec/revisionHistoryLimit", "value": history_limit},
    ] + _annotation_ops(dep, cause, None)


# --- diagnostics for error messages ------------------------------------------------------------
IMAGE_ERRORS = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName")


def describe_pods(pods: list[Obj]) -> str:
    """One clause per unhappy pod: waiting reason, last exit code and message."""
    parts = []
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if cs.get("ready"):
                continue
            waiting = (cs.get("state") or {}).get("waiting") or {}
            last = (cs.get("lastState") or {}).get("terminated") or (cs.get("state") or {}).get("terminated") or {}
            text = f"{meta(pod).get('name')}: {waiting.get('reason') or 'not ready'}"
            if last.get("exitCode") is not None:
                text += f", exited with code {last['exitCode']}"
                if last.get("reason"):
                    text += f" ({last['reason']})"
            if waiting.get("reason") in IMAGE_ERRORS:
                text += f" [{waiting.get('message', '')[:120]}]"
            text += f", {cs.get('restartCount', 0)} restarts"
            parts.append(text)
    return "; ".join(parts)


def describe_events(events: list[Obj], names: set[str], limit: int = 5) -> str:
    """The newest events about the named objects: ``Kind/name Reason: message``."""
    def when(e: Obj) -> float:
        return parse_time(e.get("lastTimestamp") or e.get("eventTime") or meta(e).get("creationTimestamp")) or 0.0

    mine = [e for e in events if (e.get("involvedObject") or {}).get("name") in names]
    mine.sort(key=when)
    return "; ".join(
        f"{e['involvedObject'].get('kind')}/{e['involvedObject'].get('name')} {e.get('reason')}: "
        f"{(e.get('message') or '').strip()}" for e in mine[-limit:]
    )
