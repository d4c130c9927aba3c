"""Data-volume side of the Docker tier: the fault records (the only document the tier keeps:
everything else is read off the engine), index artifacts, corpus snapshots, one-off jobs, and
the provider primitives of the fault catalog. Mixed into ``DockerSandbox``; it relies on its
``docker``, ``names``, ``id``, ``settings``, ``_gateway()`` and ``_labels()``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from ..errors import EngineFailure, InfrastructureError, InvalidInput
from ..evidence import stamp_job
from . import engine

FAULTS_PATH = "/data/state/faults.json"
PROVIDER_PORT = 8081


class DockerData:  # noqa: B903 - a mixin of DockerSandbox
    """State, data and fault primitives of a Docker sandbox."""

    # --- the one document with no engine object: active faults ------------------------
    def _fault_records(self) -> dict[str, dict[str, Any]]:
        raw = engine.get_file(self._gateway(), FAULTS_PATH)
        if raw is None:
            return {}
        try:
            doc = json.loads(raw)
        except ValueError as e:
            raise EngineFailure(f"the sandbox's fault records in {FAULTS_PATH} are unreadable ({e})",
                                fix="retry; if it persists, `labkit sandbox reset`") from e
        return dict(doc.get("faults") or {})

    def _save_fault(self, fault_id: str, record: dict[str, Any] | None) -> None:
        faults = self._fault_records()
        if record is None:
            faults.pop(fault_id, None)
        else:
            faults[fault_id] = record
        body = json.dumps({"version": 2, "faults": faults}, indent=1, sort_keys=True).encode()
        engine.put_file(self._gateway(), FAULTS_PATH, body)

    # --- indexes and corpora -------------------------------------------------------------
    def indexes(self) -> list[dict[str, Any]]:
        code, out = engine.exec_text(self._gateway(), ["python", "-m", "modelapi", "list-indexes", "--json"])
        if code != 0:
            raise InfrastructureError(f"could not list indexes: {out[-300:]}")
        return json.loads(out)

    def snapshots(self) -> list[str]:
        return sorted(n[: -len(".jsonl")] for n in self._names("/data/corpus") if n.endswith(".jsonl"))

    def _names(self, folder: str) -> list[str]:
        """Entries of a data-volume folder (cheap: no Python start-up in the container)."""
        code, out = engine.exec_text(self._gateway(), ["ls", "-1", folder], expect_output=True)
        if code != 0:
            raise InfrastructureError(f"could not list {folder} in the data volume: {out[-200:]}")
        return sorted(n for n in out.split() if n and not n.startswith("."))

    def run_job(self, cmd: list[str], what: str) -> str:
        """Run a one-off job on the data volume (like a Kubernetes Job); returns its stdout.
        An approval job is stamped with who made the call (``sandbox.evidence.stamp_job``)."""
        cmd = stamp_job(cmd, self.actor)
        job = f"labkit-{self.id}-job-{uuid.uuid4().hex[:6]}"
        with engine.one_off(
            self.docker,
            job,
            image=self.settings.images.default,
            command=cmd,
            labels=self._labels("job"),
            network_disabled=True,
            user="10001:10001",
            read_only=True,
            tmpfs={"/tmp": "size=32m"},
            volumes={self.names["volume"]: {"bind": "/data", "mode": "rw"}},
        ) as c:
            result = c.wait(timeout=120)
            out = c.logs(stdout=True, stderr=False).decode(errors="replace")
            if result.get("StatusCode") != 0:
                err = c.logs(stdout=False, stderr=True).decode(errors="replace").strip()
                raise InvalidInput(f"{what} failed: {err.splitlines()[-1] if err else out[-200:]}")
        return out

    def _record(self, cmd: list[str]) -> str:
        """A record job of the kit's own, in the gateway (it mounts the data volume read-write):
        an exec, not a container start."""
        code, out = engine.exec_text(self._gateway(), cmd, expect_output=True)
        if code != 0:
            raise InvalidInput(f"{cmd[3]} failed: {out.strip().splitlines()[-1] if out.strip() else code}")
        return out

    # --- fault primitives -------------------------------------------------------------------
    def provider_call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        provider = engine.get_container(self.docker, self.names["provider"])
        if provider is None or provider.status != "running":
            raise InfrastructureError("the provider is not running", fix="`labkit fault heal provider-outage`")
        script = (
            "import json,sys,urllib.request as u;"
            "d=sys.argv[3].encode() if sys.argv[3] else None;"
            "r=u.Request('http://127.0.0.1:%d'+sys.argv[2],data=d,method=sys.argv[1],"
            "headers={'Content-Type':'application/json'});"
            "print(u.urlopen(r,timeout=5).read().decode())" % PROVIDER_PORT
        )
        payload = json.dumps(body) if body is not None else ""
        code, out = engine.exec_text(provider, ["python", "-c", script, method, path, payload])
        if code != 0:
            raise InfrastructureError(f"provider {method} {path} failed: {out.strip()[-200:]}")
        return json.loads(out) if out.strip() else {}

    def set_provider_running(self, running: bool) -> None:
        provider = engine.get_container(self.docker, self.names["provider"])
        if provider is None:
            if running:
                self._ensure_provider(self.settings.images.default)
            return
        if running and provider.status != "running":
            provider.start()
        elif not running and provider.status == "running":
            provider.stop(timeout=2)
