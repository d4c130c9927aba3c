"""The kubelet of the fake cluster (``tests.kubefake``): what a pod's container does, decided
from its spec as the kit's images would behave, and the data volume its Jobs work on.

* ``classify`` reads a pod's main container (image, env, the ``modelapi-config`` ConfigMap it
  takes ``envFrom``) and returns its ``Workload``: the defect image crashes on start (exit
  code 3, ``crash-on-start`` in its log), an index that is missing or built by the other model
  runs but answers ``/readyz`` 503 with the model API's own reason (``index-missing``,
  ``model-mismatch``), an image the node does not hold is ``ErrImageNeverPull``; else ready.
  Prometheus and Alertmanager (the monitoring image's commands) are ready.
* ``Workload.http`` answers what the model API (or the provider) answers: ``/healthz``,
  ``/readyz``, ``/version``, ``/v1/search``, ``/metrics`` with ``modelapi_requests_total``
  by route, the provider's ``/admin/mode``, Prometheus's and Alertmanager's ``/-/ready`` (a test
  that queries them answers through ``FakeCluster.answers``); every request is counted in ``served``.
* ``job_pod`` runs a Job's command against ``DataVolume``: ``ls`` of the corpus and index
  folders, ``list-indexes``, ``build-index``, ``add-snapshot``; other subcommands answer what
  the cluster's ``job_out`` says (or fail with ``job_fail``).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

DEFECT_IMAGE = "labkit/modelapi:1.1.0-rc1"
MONITORING_IMAGE = "labkit/monitoring:2.42.0-1"
MONITORING = ("prometheus", "prometheus-alertmanager")  # the monitoring image's commands
CRASH = '{"level":"error","msg":"defect crash-on-start: refusing to serve"}'
DIMS = {"v1": 256, "v2": 384}
Obj = dict[str, Any]


@dataclass
class DataVolume:
    """The ``labkit-data`` PVC as the seed Job leaves it."""

    snapshots: list[str] = field(default_factory=lambda: ["2026-10-01", "2026-11-01"])
    indexes: list[Obj] = field(default_factory=lambda: [
        {"index_version": f"{s}-{m}", "model_version": m, "corpus_snapshot": s, "dims": DIMS[m]}
        for s in ("2026-10-01", "2026-11-01") for m in ("v1", "v2")])

    def index(self, name: str) -> Obj | None:
        return next((m for m in self.indexes if m["index_version"] == name), None)

    def run(self, argv: list[str], extra: dict[str, str]) -> str:
        """stdout of one command (``ls -1 DIR`` or ``python -m modelapi SUB ...``)."""
        if argv[:2] == ["ls", "-1"]:
            folder = argv[2].rstrip("/")
            if folder.endswith("/corpus"):
                return "".join(f"{s}.jsonl\n" for s in self.snapshots)
            return "".join(f"{m['index_version']}\n" for m in self.indexes)
        sub = argv[argv.index("modelapi") + 1]
        opts = {a: argv[i + 1] for i, a in enumerate(argv[:-1]) if a.startswith("--")}
        if sub == "list-indexes":
            return json.dumps(self.indexes)
        if sub == "build-index":
            name = opts.get("--name") or f"{opts['--corpus']}-{opts['--model']}"
            manifest = {"index_version": name, "model_version": opts["--model"], "corpus_snapshot": opts["--corpus"],
                        "dims": DIMS.get(opts["--model"], 0)}
            self.indexes = [m for m in self.indexes if m["index_version"] != name] + [manifest]
            return json.dumps(manifest)
        if sub == "add-snapshot":
            self.snapshots = sorted({*self.snapshots, opts["--name"]})
            return json.dumps({"added": opts["--name"]})
        return extra.get(sub, "seeded\n" if sub == "seed" else "{}")


@dataclass
class Workload:
    """What one pod's main container does."""

    kind: str  # modelapi | provider | monitoring
    state: str = "ready"  # ready | unready | crash | noimage
    image: str = ""
    model: str = ""
    index: str = ""
    snapshot: str = ""
    manifest: Obj | None = None
    top_k: int = 5
    reason: str = ""
    detail: str = ""
    exit_code: int = 3
    crash_log: str = CRASH
    served: Counter = field(default_factory=Counter)

    @property
    def log(self) -> str:
        if self.state == "crash":
            return self.crash_log + "\n"
        return f'{{"level":"info","msg":"serving model {self.model} index {self.index}"}}\n'

    def pod_status(self, pod_spec: Obj) -> Obj:
        c = pod_spec["containers"][0]
        base = {"name": c["name"], "image": c["image"], "imageID": "", "restartCount": 0,
                "resources": dict(c.get("resources") or {})}
        started = {"running": {"startedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
        if self.state == "noimage":
            return {"phase": "Pending", "containerStatuses": [{**base, "ready": False, "state": {"waiting": {
                "reason": "ErrImageNeverPull",
                "message": f'Container image "{c["image"]}" is not present with pull policy of Never'}}}]}
        if self.state == "crash":
            return {"phase": "Running", "containerStatuses": [{
                **base, "ready": False, "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
                "lastState": {"terminated": {"exitCode": self.exit_code, "reason": "Error"}}}]}
        ready = self.state == "ready"
        return {"phase": "Running", "conditions": [{"type": "Ready", "status": str(ready)}],
                "containerStatuses": [{**base, "ready": ready, "state": started}]}

    def events(self, pod: str) -> list[Obj]:
        reason, message = {"crash": ("BackOff", f"Back-off restarting failed container {self.kind}"),
                           "unready": ("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503")
                           }.get(self.state, ("", ""))
        if not reason:
            return []
        return [{"apiVersion": "v1", "kind": "Event", "metadata": {"name": f"{pod}.{reason.lower()}"},
                 "involvedObject": {"kind": "Pod", "name": pod}, "reason": reason, "message": message,
                 "lastTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}]

    def http(self, method: str, path: str, body: Any, cluster: Any) -> tuple[int, Any]:
        route = path.split("?", 1)[0]
        self.served[route] += 1
        if self.kind == "provider":
            return _provider(cluster, method, route, body)
        if self.kind == "monitoring":  # a test that reads Prometheus answers it (``answers``)
            return (200, b"ready\n") if route in ("/-/ready", "/-/healthy") else (404, {"detail": "Not Found"})
        ready = {"ready": True, "model": self.model, "index": self.index} if self.state == "ready" else {
            "ready": False, "reason": self.reason, "detail": self.detail}
        if route == "/healthz":
            return 200, {"status": "ok"}
        if route == "/readyz":
            return (200 if ready["ready"] else 503), ready
        if route == "/version":
            return 200, {"model": self.model, "index": self.index, "image_revision": self.image.rsplit(":", 1)[-1],
                         "index_manifest": self.manifest, "corpus_snapshot": self.snapshot or None,
                         "service_version": "fake"}
        if route == "/metrics":
            return 200, self._metrics().encode()
        if route == "/v1/search" and method == "POST":
            if not ready["ready"]:
                return 503, ready
            k = int((body or {}).get("k") or self.top_k)
            mode = cluster.provider_mode()
            return 200, {"results": [{"id": f"rb-{i:04d}", "title": f"runbook {i}", "score": 1 - i / 100}
                                     for i in range(1, k + 1)], "model": self.model, "index": self.index,
                         "revision": self.image.rsplit(":", 1)[-1], "reranked": mode == "ok", "provider": mode}
        return 404, {"detail": "Not Found"}

    def _metrics(self) -> str:
        lines = ["# HELP modelapi_ready 1 when the index is loaded", "# TYPE modelapi_ready gauge",
                 f"modelapi_ready {1.0 if self.state == 'ready' else 0.0}",
                 "# HELP modelapi_requests Requests served", "# TYPE modelapi_requests counter"]
        lines += [f'modelapi_requests_total{{route="{r}"}} {float(n)}' for r, n in sorted(self.served.items())]
        return "\n".join(lines) + "\n"


def _provider(cluster: Any, method: str, route: str, body: Any) -> tuple[int, Any]:
    if route == "/admin/mode" and method == "POST":
        cluster.provider = {"mode": body.get("mode", "ok"), "delay_s": float(body.get("delay_s", 0.0))}
    if route == "/admin/mode":
        return 200, dict(cluster.provider)
    if route == "/admin/pool":
        if method == "POST":
            cluster.pool.update({k: body[k] for k in ("slots", "service_ms") if body.get(k) is not None})
        return 200, dict(cluster.pool)
    return (200, {"status": "ok"}) if route == "/healthz" else (404, {"detail": "Not Found"})


def _env(container: Obj, config: dict[str, str]) -> dict[str, str]:
    env = dict(config) if any(e.get("configMapRef") for e in container.get("envFrom") or []) else {}
    env.update({e["name"]: e.get("value", "") for e in container.get("env") or []})
    return env


def classify(pod_spec: Obj, config: dict[str, str], cluster: Any) -> Workload:
    """The workload of a pod with ``pod_spec``, as the kit's images behave."""
    c = pod_spec["containers"][0]
    image, env = c["image"], _env(c, config)
    command = c.get("command") or [""]
    kind = "provider" if "provider" in command else "monitoring" if command[0] in MONITORING else "modelapi"
    w = Workload(kind, image=image, model=env.get("MODEL_VERSION", ""), index=env.get("INDEX_NAME", ""),
                 top_k=int(env.get("TOP_K") or 5))
    if image not in cluster.images:
        w.state = "noimage"
    elif kind == "monitoring":
        w.state = "ready"
    elif kind == "provider":
        w.state = "crash" if cluster.provider_crashes else "ready"
        w.exit_code, w.crash_log = 1, "ValueError: PROVIDER_MODE='sloww' must be one of ok, slow, error"
    elif cluster.outcome:
        w.state, w.reason, w.detail = cluster.outcome, "index-missing", "forced by the test"
    elif image == DEFECT_IMAGE:
        w.state = "crash"
    else:
        _readiness(w, env.get("DATA_DIR", "/data"), cluster.data)
    return w


def _readiness(w: Workload, data_dir: str, data: DataVolume) -> None:
    manifest = data.index(w.index) if data_dir.rstrip("/") == "/data" else None
    if manifest is None:
        w.state, w.reason = "unready", "index-missing"
        w.detail = f"no index {w.index!r} at {data_dir}/indexes/{w.index}"
    elif manifest["model_version"] != w.model:
        w.state, w.reason = "unready", "model-mismatch"
        w.detail = (f"model {w.model} ({DIMS.get(w.model, 0)} dims) over an index built by"
                    f" {manifest['model_version']} ({manifest['dims']} dims)")
    else:
        w.snapshot, w.manifest = manifest["corpus_snapshot"], dict(manifest)


def job_pod(job: Obj, cluster: Any) -> tuple[Obj, str, bool]:
    """The pod of a Job that has run (or cannot start): ``(pod, log, failed)``."""
    spec = job["spec"]["template"]["spec"]
    c = spec["containers"][0]
    cmd = c["command"]
    argv = cmd[4:] if cmd[:2] == ["sh", "-c"] else cmd
    sub = argv[argv.index("modelapi") + 1] if "modelapi" in argv else argv[0]
    failed = sub in cluster.job_fail
    name = f"{job['metadata']['name']}-x1"
    labels = {**job["spec"]["template"]["metadata"].get("labels", {}), "job-name": job["metadata"]["name"]}
    status: Obj = {"phase": "Failed" if failed else "Succeeded"}
    log = cluster.job_fail[sub] if failed else ""
    if cluster.image_missing:
        status = {"phase": "Pending", "containerStatuses": [{
            "name": c["name"], "ready": False, "restartCount": 0, "image": c["image"], "imageID": "",
            "state": {"waiting": {"reason": "ErrImageNeverPull", "message": f'Container image "{c["image"]}" is not'
                                  ' present with pull policy of Never'}}}]}
    elif not failed:
        log = cluster.data.run(argv, cluster.job_out)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": name, "labels": labels,
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job["metadata"]["name"],
                             "uid": job["metadata"]["uid"], "controller": True}]},
        "spec": spec, "status": status}
    return pod, log, failed
