"""Data-volume side of the kube tier: the fault records (ConfigMap ``labkit-state``, the only
state with no engine object of its own), index artifacts, corpus snapshots, one-off Jobs and
the provider primitives of the fault catalog. Mixed into ``KubeSandbox``; it relies on its
``api``, ``id``, ``settings``, ``api_poll_s``, ``_base()`` and ``_ensure()``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from .. import labels
from ..errors import InfrastructureError, InvalidInput, KubeConflict, SandboxNotUp
from ..evidence import stamp_job
from . import waits
from .api import MERGE_PATCH, ensure_ours

PROVIDER, STATE = "provider", "labkit-state"
MODELAPI = "modelapi"
STATE_KEY = "state.json"


class KubeData:  # noqa: B903 - a mixin of KubeSandbox
    """Fault records, data and provider primitives of a kube sandbox."""

    # --- the one document with no engine object: active faults ----------------------------
    def _state_map(self, doc: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": STATE, "labels": labels.for_sandbox(self.id, "state")},
                "data": {STATE_KEY: json.dumps(doc, indent=1, sort_keys=True)}}

    def _state_doc(self) -> tuple[dict[str, Any], str]:
        """The state document and the resourceVersion it was read at."""
        cm = self.api.read("ConfigMap", STATE)
        if cm is None:
            raise SandboxNotUp(self.id)
        ensure_ours(cm, self.id, f"ConfigMap {STATE}")
        try:
            doc = json.loads((cm.get("data") or {}).get(STATE_KEY) or "{}")
        except ValueError as e:
            raise InfrastructureError(f"ConfigMap {STATE} holds no readable JSON ({e})",
                                      fix="`labkit sandbox reset` (the fault records are lost)") from e
        return doc, cm["metadata"].get("resourceVersion") or ""

    def _fault_records(self) -> dict[str, dict[str, Any]]:
        return dict(self._state_doc()[0].get("faults") or {})

    def _save_fault(self, fault_id: str, record: dict[str, Any] | None) -> None:
        """Read, change one record, write back guarded by the resourceVersion read (a
        concurrent writer makes the API server refuse it: read again, up to three times)."""
        for attempt in range(3):
            doc, rv = self._state_doc()
            faults = dict(doc.get("faults") or {})
            if record is None:
                faults.pop(fault_id, None)
            else:
                faults[fault_id] = record
            doc["faults"] = faults
            body: dict[str, Any] = {"data": {STATE_KEY: json.dumps(doc, indent=1, sort_keys=True)}}
            if rv:
                body["metadata"] = {"resourceVersion": rv}
            try:
                self.api.patch("ConfigMap", STATE, body, MERGE_PATCH)
                return
            except KubeConflict:
                if attempt == 2:
                    raise

    # --- indexes and corpora -------------------------------------------------------------
    def _read_data(self, cmd: list[str], what: str) -> str:
        """A read-only command on the data volume: exec in a ready pod, else a Job."""
        if not self._is_up():
            raise SandboxNotUp(self.id)
        for component in (PROVIDER, MODELAPI):
            pods = self.api.list("Pod", labels.kube_selector(self.id, component))
            out = waits.exec_read(self.api, pods, component, cmd)
            if out is not None:
                return out
        return self.run_job(cmd, what)

    def _names(self, folder: str) -> list[str]:
        """Entries of a data-volume folder (cheap: no Python start-up in the pod)."""
        out = self._read_data(["ls", "-1", folder], f"listing {folder}")
        return sorted(n for n in out.split() if n and not n.startswith("."))

    def _index_names(self) -> list[str]:
        return self._names("/data/indexes")

    def indexes(self) -> list[dict[str, Any]]:
        return json.loads(self._read_data(["python", "-m", "modelapi", "list-indexes", "--json"], "list-indexes"))

    def snapshots(self) -> list[str]:
        return sorted(n[: -len(".jsonl")] for n in self._names("/data/corpus") if n.endswith(".jsonl"))

    def run_job(self, cmd: list[str], what: str) -> str:
        """A one-off Job on the data volume (read-write); its stdout, or ``InvalidInput``.
        An approval job is stamped with who made the call (``sandbox.evidence.stamp_job``)."""
        cmd = stamp_job(cmd, self.actor)
        name = f"labkit-job-{uuid.uuid4().hex[:6]}"
        job = waits.job_manifest(self._base()[("Job", "labkit-seed")], name, cmd, self.id)
        ok, out = waits.run_job(self.api, job, what, 300, self.api_poll_s)
        if not ok:
            raise InvalidInput(f"{what} failed: {waits.job_error(out)}")
        return out

    # --- fault primitives -------------------------------------------------------------------
    def provider_call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        status, payload, _ = self.api.proxy(f"services/{PROVIDER}:http", method, path, body)
        message = payload.decode(errors="replace").strip()
        if status >= 400:
            raise InfrastructureError(f"provider {method} {path} answered {status}: {message[-200:]}",
                                      fix="`labkit fault heal provider-outage` if the provider is stopped")
        return json.loads(message) if message else {}

    def set_provider_running(self, running: bool) -> None:
        dep = self.api.read("Deployment", PROVIDER)
        ensure_ours(dep, self.id, f"Deployment {PROVIDER}")
        if dep is None:
            if not running:
                return
            self._ensure(self._base()[("Deployment", PROVIDER)])
        self.api.scale(PROVIDER, 1 if running else 0)
        what = "starting the provider" if running else "stopping the provider"
        waits.wait_available(self.api, PROVIDER, 1 if running else 0, 120, self.api_poll_s, what)
