"""Waits of the kube tier that raise with what was observed, and one-off Jobs.

Every wait polls one object until it is done, failed or out of time; on failure the error
carries the object's conditions, the state of its pods, the namespace's recent events about
them and the last lines of their logs (lightkube's "X has failure condition(s)" style,
testcontainers' "attach the logs on a timeout"). A pod that cannot get its image fails the
wait at once with the command that fixes it, instead of after the timeout.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client
from kubernetes.stream import stream

from .. import labels
from ..errors import ImageMissing, InfrastructureError, LabkitError
from ..waiting import until
from .api import KubeApi
from .rollout import IMAGE_ERRORS, condition, describe_conditions, describe_events, describe_pods, meta

#: Image errors no retry can fix (a pull error may be a registry hiccup: that one waits).
PERMANENT_IMAGE_ERRORS = ("ErrImageNeverPull", "InvalidImageName")
#: ... and those that make set-up give up (a pull that failed and is backing off too).
SETUP_IMAGE_ERRORS = (*PERMANENT_IMAGE_ERRORS, "ImagePullBackOff")
STDERR_MARK = "--- stderr ---"
#: Runs the command; stdout is its output, stderr is shown only when it fails.
WRAPPER = ('err=/tmp/labkit-stderr; "$@" 2>"$err"; rc=$?; '
           f'if [ $rc -ne 0 ]; then echo "{STDERR_MARK}"; tail -n 20 "$err"; fi; exit $rc')


def pods_of(api: KubeApi, selector: str) -> list[dict[str, Any]]:
    return sorted(api.list("Pod", selector), key=lambda p: meta(p).get("creationTimestamp") or "")


def image_problem(pods: list[dict[str, Any]], reasons: tuple[str, ...] = IMAGE_ERRORS) -> str:
    """A pod's container that cannot get its image: ``image X ... (ErrImageNeverPull)``."""
    for pod in pods:
        statuses = (pod.get("status") or {}).get("initContainerStatuses") or []
        for cs in statuses + ((pod.get("status") or {}).get("containerStatuses") or []):
            reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
            if reason in reasons:
                return f"image {cs.get('image')} is not available in the cluster ({reason})"
    return ""


def readyz_of(api: KubeApi, pods: list[dict[str, Any]], port: int = 8080) -> str:
    """What a running but unready pod's own ``/readyz`` says (through the API server)."""
    for pod in pods[:2]:
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        if not statuses or not all((cs.get("state") or {}).get("running") and not cs.get("ready") for cs in statuses):
            continue
        try:
            status, payload, _ = api.proxy(f"pods/{meta(pod).get('name')}:{port}", "GET", "/readyz", timeout_s=3)
            body = json.loads(payload or b"{}")
        except (InfrastructureError, ValueError):
            continue
        if isinstance(body, dict) and body.get("reason") and body.get("kind") != "Status":
            return f"last: /readyz {status} {body['reason']}: {body.get('detail', '')}".rstrip(": ")
    return ""


IMAGE_FIX = ("load it into kind with `labkit cluster load-image` (after `labkit images build`), or push it"
             " to the registry named by LABKIT_REGISTRY")


class ImageNotInCluster(ImageMissing):
    """The cluster's nodes cannot get an image a deploy needs (not loaded into kind, not in
    the registry): an infrastructure problem, never a trainee's failed rollout."""

    def __init__(self, image: str, detail: str = "") -> None:
        LabkitError.__init__(self, f"image {image} is not available in the cluster" + (f": {detail}" if detail else ""),
                             fix=IMAGE_FIX)
        self.image = image


def pods_settled(api: KubeApi, pods: list[dict[str, Any]]) -> bool:
    """Every pod is ready, or one has crashed, or its readiness probe got a 503 (the app
    is up and says why it is not ready) - no need to wait any longer."""
    statuses = [cs for p in pods for cs in (p.get("status") or {}).get("containerStatuses") or []]
    if statuses and len(statuses) >= len(pods) and all(cs.get("ready") for cs in statuses):
        return True
    if any(cs.get("restartCount") or (cs.get("state") or {}).get("terminated") for cs in statuses):
        return True
    names = {meta(p).get("name") for p in pods}
    try:
        events = api.list("Event")
    except InfrastructureError:
        return False
    return any((e.get("involvedObject") or {}).get("name") in names and e.get("reason") == "Unhealthy"
               and "503" in (e.get("message") or "") for e in events)


def diagnose(api: KubeApi, obj: dict[str, Any], pods: list[dict[str, Any]], tail: int = 20) -> tuple[str, str]:
    """``(reason, logs)``: conditions, pod states, recent events, and the pods' last log lines."""
    names = {meta(obj).get("name", "")} | {meta(p).get("name", "") for p in pods}
    owners = {o.get("name") for p in pods for o in meta(p).get("ownerReferences") or []}
    try:
        events = describe_events(api.list("Event"), names | owners)
    except InfrastructureError:
        events = "(events not readable)"
    parts = [describe_conditions(obj)]
    if describe_pods(pods):
        parts.append("pods: " + describe_pods(pods))
    if events:
        parts.append("events: " + events)
    return "; ".join(parts), tail_logs(api, pods, tail)


def tail_logs(api: KubeApi, pods: list[dict[str, Any]], tail: int = 20) -> str:
    """The last lines of (up to three of) the pods' logs; of the previous container for a
    pod that restarted (a crash says why in the run that died)."""
    logs = []
    for pod in pods[-3:]:
        name = meta(pod).get("name", "")
        restarted = any(cs.get("restartCount") for cs in (pod.get("status") or {}).get("containerStatuses") or [])
        text = api.pod_log(name, tail=tail, previous=True) if restarted else ""
        text = text or api.pod_log(name, tail=tail)
        if text.strip():
            logs.append(f"==> {name} <==\n{text.rstrip()}")
    return "\n".join(logs)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


# --- Jobs ------------------------------------------------------------------------------------
def job_state(job: dict[str, Any]) -> str:
    """``complete``, ``failed`` or ``running``."""
    for kind, state in (("Complete", "complete"), ("Failed", "failed")):
        c = condition(job, kind)
        if c and c.get("status") == "True":
            return state
    return "running"


def wait_job(api: KubeApi, name: str, timeout_s: float, interval_s: float, what: str) -> dict[str, Any]:
    """Wait until the Job finished (either way); raise on a missing image or time out."""
    selector = f"{labels.MANAGED_BY}={labels.MANAGED_BY_VALUE},job-name={name}"

    def check() -> dict[str, Any] | None:
        job = api.read("Job", name)
        if job is None:
            raise InfrastructureError(f"{what}: Job {name} disappeared while it ran")
        if job_state(job) != "running":
            return job
        problem = image_problem(pods_of(api, selector), SETUP_IMAGE_ERRORS)
        if problem:
            raise InfrastructureError(f"{what}: {problem}", fix=IMAGE_FIX)
        return None

    def timeout() -> Exception:
        job = api.read("Job", name) or {"metadata": {"name": name}}
        reason, logs = diagnose(api, job, pods_of(api, selector))
        return InfrastructureError(f"{what}: Job {name} not finished within {timeout_s:.0f}s; {reason}"
                                   + (f"; last log line: {_last_line(logs)}" if logs else ""))

    return until(check, timeout_s=timeout_s, interval_s=interval_s, what=what, on_timeout=timeout)


def job_output(api: KubeApi, name: str) -> str:
    """The log of the Job's last pod (stdout; stderr follows the mark if it failed)."""
    pods = pods_of(api, f"{labels.MANAGED_BY}={labels.MANAGED_BY_VALUE},job-name={name}")
    return api.pod_log(meta(pods[-1]).get("name", "")) if pods else ""


def job_manifest(template: dict[str, Any], name: str, cmd: list[str], sandbox_id: str) -> dict[str, Any]:
    """A one-off Job like ``template`` (the base's seed Job: same image, volumes, security)
    running ``cmd``: no retries, cleaned up by TTL if the kit does not delete it first."""
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": name, "labels": labels.for_sandbox(sandbox_id, "job")},
           "spec": {**template["spec"], "backoffLimit": 0, "activeDeadlineSeconds": 300,
                    "ttlSecondsAfterFinished": 600}}
    pod = {**template["spec"]["template"]}
    pod["metadata"] = {"labels": labels.for_sandbox(sandbox_id, "job")}
    container = {**pod["spec"]["containers"][0], "name": "job", "command": ["sh", "-c", WRAPPER, "sh", *cmd]}
    pod["spec"] = {**pod["spec"], "containers": [container]}
    job["spec"]["template"] = pod
    return job


def run_job(api: KubeApi, job: dict[str, Any], what: str, timeout_s: float, interval_s: float) -> tuple[bool, str]:
    """Create the Job, wait for it, read its output, delete it: ``(succeeded, output)``."""
    name = job["metadata"]["name"]
    api.create(job)
    try:
        done = wait_job(api, name, timeout_s, interval_s, what)
        return job_state(done) == "complete", job_output(api, name)
    finally:
        api.delete("Job", name)


def job_error(output: str) -> str:
    """The line of a failed job's output that says why (its stderr's last line)."""
    tail = output.split(STDERR_MARK, 1)[-1]
    return _last_line(tail) or "no output (see `kubectl get events`)"


# --- Deployments and exec ----------------------------------------------------------------------
def wait_available(api: KubeApi, name: str, replicas: int, timeout_s: float, interval_s: float,
                   what: str) -> dict[str, Any]:
    """Wait until ``name`` has exactly ``replicas`` available (0 = all pods gone)."""
    selector = f"{labels.MANAGED_BY}={labels.MANAGED_BY_VALUE},{labels.COMPONENT}={name}"

    def check() -> dict[str, Any] | None:
        dep = api.read("Deployment", name)
        if dep is None:
            raise InfrastructureError(f"{what}: Deployment {name} is missing", fix="run `labkit sandbox up`")
        st = dep.get("status") or {}
        pods = pods_of(api, selector) if replicas == 0 or (st.get("availableReplicas") or 0) < replicas else []
        if replicas == 0:
            return dep if not pods else None
        if (st.get("availableReplicas") or 0) >= replicas and (st.get("replicas") or 0) == replicas:
            return dep
        problem = image_problem(pods, SETUP_IMAGE_ERRORS)
        if problem:
            raise InfrastructureError(f"{what}: {problem}", fix=IMAGE_FIX)
        crashing = [p for p in pods if any(((cs.get("state") or {}).get("waiting") or {}).get("reason")
                                           == "CrashLoopBackOff" for cs in (p.get("status") or {}).get(
                                               "containerStatuses") or [])]
        if crashing:
            reason, logs = diagnose(api, dep, crashing)
            raise InfrastructureError(f"{what}: {name} keeps crashing; {reason}"
                                      + (f"; last log line: {_last_line(logs)}" if logs else ""),
                                      fix=f"read its logs: `kubectl logs -n {api.namespace} deploy/{name} --previous`")
        return None

    def timeout() -> Exception:
        dep = api.read("Deployment", name) or {"metadata": {"name": name}}
        reason, logs = diagnose(api, dep, pods_of(api, selector))
        return InfrastructureError(f"{what}: not done within {timeout_s:.0f}s; {reason}"
                                   + (f"; last log line: {_last_line(logs)}" if logs else ""))

    return until(check, timeout_s=timeout_s, interval_s=interval_s, what=what, on_timeout=timeout)


def exec_read(api: KubeApi, pods: list[dict[str, Any]], container: str, cmd: list[str]) -> str | None:
    """stdout of ``cmd`` in the first ready pod, or None (no ready pod, no permission, error)."""
    ready = [p for p in pods if any(cs.get("ready") for cs in (p.get("status") or {}).get("containerStatuses") or [])]
    if not ready:
        return None
    # stream() swaps the client's transport while it runs: use a client of its own.
    core = client.CoreV1Api(client.ApiClient(api.api_client.configuration))
    try:
        ws = stream(core.connect_get_namespaced_pod_exec, meta(ready[0])["name"], api.namespace,
                    container=container, command=cmd, stderr=True, stdin=False, stdout=True, tty=False,
                    _preload_content=False)
        ws.run_forever(timeout=60)
        out = ws.read_stdout() or ""
        code = ws.returncode
        ws.close()
    except Exception:  # noqa: BLE001 - any exec failure falls back to a Job
        return None
    return out if code == 0 and out.strip() else None
