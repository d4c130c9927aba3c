"""What the kube tier writes into and reads out of Deployments and ReplicaSets, as pure
functions: API objects (camelCase dicts) in, pod templates, patches and verdicts out. Nothing
here talks to a cluster, so all of it is unit-tested on realistic objects.

Revisions are the kit's, numbered as on the Docker tier: every pod template carries
``labkit.dev/revision: N`` as a label and an annotation, with the revision's ``DeploySpec``
(``labkit.dev/spec``), change cause and ``rollback-of``. Each revision's template is therefore
unique and gets a ReplicaSet of its own (an undo is a new revision with a new ReplicaSet).

Two tracks share the ``modelapi`` component. The main Deployment ``modelapi`` runs
``labkit.dev/track: stable``, the only track the front-door Service selects. A canary
(``deploy(wait=False)``) is a Deployment of its own, ``modelapi-canary-r<N>``, whose pods run
``track: canary``: reachable through the API server's pod proxy, never through the Service.

``rollout_status`` is ``kubectl rollout status``; the ``describe_*`` helpers turn conditions,
pod states and events into the words of an error message.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from .. import labels
from ..api import CONFIG_KEYS, DeploySpec
from ..spec import cpu_quantity, parse_cpus

K8S_REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"  # on the Deployment: `kubectl rollout history` shows it
TRACK = "labkit.dev/track"
STABLE, CANARY = "stable", "canary"
CAUSE = "labkit.dev/change-cause"
ROLLBACK_OF = "labkit.dev/rollback-of"
CANARY_CREATED = "labkit.dev/canary-created"
"""On a promoted template: when its canary's ReplicaSet was created (the revision's start)."""
FAILED = "labkit.dev/failed-reason"
FINISHED_AT = "labkit.dev/finished-at"
PROMOTED_AT = "labkit.dev/promoted-at"
LAST_LOGS = "labkit.dev/last-logs"
"""The last log lines of a revision the kit stopped, kept on its ReplicaSet (its pods go)."""
HASH_LABEL = "pod-template-hash"
TIMED_OUT = "ProgressDeadlineExceeded"
AVAILABLE = "NewReplicaSetAvailable"
CONTAINER = "modelapi"
MAIN = "modelapi"
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


def template_of(obj: Obj) -> Obj:
    return (obj.get("spec") or {}).get("template") or {}


def revision_of(obj: Obj) -> int | None:
    """The kit's revision number of a pod, or of a ReplicaSet's / Deployment's template."""
    raw = (meta(obj).get("labels") or {}).get(labels.REVISION)
    if raw is None:
        raw = (meta(template_of(obj)).get("labels") or {}).get(labels.REVISION, "")
    return int(raw) if str(raw).isdigit() else None


def canary_name(number: int) -> str:
    return f"{MAIN}-canary-r{number}"


def parse_time(value: Any) -> float | None:
    """Epoch seconds of an API timestamp (``2026-11-01T10:00:00Z``), None if absent."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def stamp(when: float | None = None) -> str:
    """An API-style timestamp with milliseconds (``2026-11-20T09:00:00.123Z``)."""
    when = time.time() if when is None else when
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + f".{int(when * 1000) % 1000:03d}Z"


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


def settled(dep: Obj) -> bool:
    """The controller observed the spec and finished its rollout once (pods may restart
    later; the template still serves)."""
    st = dep.get("status") or {}
    if (st.get("observedGeneration") or 0) < (meta(dep).get("generation") or 0):
        return False
    progressing = condition(dep, "Progressing")
    return bool(progressing and progressing.get("reason") == AVAILABLE) or rollout_status(dep).state == "complete"


# --- ReplicaSets of a Deployment -----------------------------------------------------------
def owner_of(rs: Obj, deployments: list[Obj]) -> Obj | None:
    """The Deployment that controls ``rs`` (by owner uid, else by name)."""
    refs = [o for o in meta(rs).get("ownerReferences") or [] if o.get("kind") == "Deployment"]
    for dep in deployments:
        m = meta(dep)
        if any((r.get("uid") and r.get("uid") == m.get("uid")) or
               (not r.get("uid") and r.get("name") == m.get("name")) for r in refs):
            return dep
    return None


def current_rs(dep: Obj, replicasets: list[Obj]) -> Obj | None:
    """The ReplicaSet of the Deployment's current template: the one whose Kubernetes revision
    the Deployment names (the newest of its own otherwise)."""
    mine = sorted((rs for rs in replicasets if owner_of(rs, [dep]) is not None),
                  key=lambda rs: int(annotations(rs).get(K8S_REVISION, "0") or 0))
    want = annotations(dep).get(K8S_REVISION)
    for rs in mine:
        if want and annotations(rs).get(K8S_REVISION) == want:
            return rs
    return mine[-1] if mine else None


def _strip_hash(template: Obj) -> Obj:
    t = copy.deepcopy(template)
    (meta(t).get("labels") or {}).pop(HASH_LABEL, None)
    return t


# --- templates and specs -------------------------------------------------------------------
def _container(template: Obj) -> Obj:
    containers = (template.get("spec") or {}).get("containers") or [{}]
    return next((c for c in containers if c.get("name") == CONTAINER), containers[0])


def spec_from_template(template: Obj, replicas: int | None = None,
                       resolve: Callable[[str], str] = str) -> DeploySpec:
    """The DeploySpec a pod template runs: its annotation, corrected by the container."""
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


def template_for(base: Obj, spec: DeploySpec, image: str, number: int, cause: str,
                 rollback_of: int | None, track: str = STABLE) -> Obj:
    """The pod template of revision ``number`` running ``spec`` on ``track``: image, the
    spec's env and CPU limit; the revision's label and annotations."""
    t = copy.deepcopy(base)
    tmeta = t.setdefault("metadata", {})
    tmeta.setdefault("labels", {}).pop(HASH_LABEL, None)
    tmeta["labels"].update({labels.REVISION: str(number), TRACK: track})
    tmeta.setdefault("annotations", {}).update({
        labels.SPEC: spec.to_json(), labels.REVISION: str(number), CAUSE: cause[:500],
        ROLLBACK_OF: "" if rollback_of is None else str(rollback_of)})
    tmeta["annotations"].pop(CANARY_CREATED, None)
    c = _container(t)
    c["image"] = image
    kept = [e for e in c.get("env") or [] if e.get("name") not in MANAGED_ENV]
    c["env"] = kept + [{"name": k, "value": v} for k, v in sorted(spec.env().items())]
    if spec.config.get("cpus"):
        c["resources"] = cpu_resources(c.get("resources") or {}, parse_cpus(spec.config["cpus"]))
    return t


def on_track(template: Obj, track: str, **extra_annotations: str) -> Obj:
    """The same template on another track (a canary's, promoted: ``track: stable``)."""
    t = _strip_hash(template)
    meta(t).setdefault("labels", {})[TRACK] = track
    t["metadata"].setdefault("annotations", {}).update(extra_annotations)
    return t


def cpu_resources(resources: Obj, cores: float) -> Obj:
    """``resources`` with a CPU limit of ``cores``; the request lowered to it if above (a
    limit below the request is invalid)."""
    res = copy.deepcopy(resources)
    limit = cpu_quantity(cores)
    res.setdefault("limits", {})["cpu"] = limit
    requests = res.setdefault("requests", {})
    if float(parse_quantity(str(requests.get("cpu", limit)))) > cores:
        requests["cpu"] = limit
    return res


def container_resources(template: Obj) -> Obj:
    return copy.deepcopy(_container(template).get("resources") or {})


# --- patches -----------------------------------------------------------------------------------
def _precondition(dep: Obj) -> list[Obj]:
    rv = meta(dep).get("resourceVersion")
    return [{"op": "replace", "path": "/metadata/resourceVersion", "value": rv}] if rv else []


def rollout_patch(dep: Obj, template: Obj, replicas: int, cause: str, deadline_s: int,
                  history_limit: int) -> list[Obj]:
    """JSON patch rolling the Deployment to ``template``: replicas, progress deadline,
    history limit and change cause, guarded by the resourceVersion that was read (409 if
    someone changed it in between)."""
    ann = dict(annotations(dep))
    ann[CHANGE_CAUSE] = cause[:500]
    return _precondition(dep) + [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/spec/replicas", "value": replicas},
        {"op": "replace", "path": "/spec/progressDeadlineSeconds", "value": deadline_s},
        {"op": "replace", "path": "/spec/revisionHistoryLimit", "value": history_limit},
        {"op": "add", "path": "/metadata/annotations", "value": ann},
    ]


def restore_patch(dep: Obj, rs: Obj) -> list[Obj]:
    """JSON patch putting the Deployment back on ``rs``'s template (after a rollout that
    failed): the controller scales ``rs`` up and the failed ReplicaSet down."""
    template = _strip_hash(template_of(rs))
    replicas = (rs.get("spec") or {}).get("replicas") or spec_from_template(template).replicas
    ann = {**annotations(dep), CHANGE_CAUSE: annotations(template).get(CAUSE, "")}
    return _precondition(dep) + [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/spec/replicas", "value": replicas},
        {"op": "add", "path": "/metadata/annotations", "value": ann},
    ]


def deployment(base: Obj, name: str, template: Obj, replicas: int, selector: dict[str, str],
               deadline_s: int, history_limit: int, cause: str, extra_labels: dict[str, str]) -> Obj:
    """A Deployment like the base's ``modelapi`` (strategy, labels) running ``template``."""
    dep = copy.deepcopy(base)
    dep["metadata"]["name"] = name
    dep["metadata"]["labels"] = {**dep["metadata"].get("labels", {}), **extra_labels}
    dep["metadata"]["annotations"] = {CHANGE_CAUSE: cause[:500]}
    dep["spec"].update(template=template, replicas=replicas, progressDeadlineSeconds=deadline_s,
                       revisionHistoryLimit=history_limit, selector={"matchLabels": selector})
    return dep


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
