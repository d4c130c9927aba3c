"""The Docker tier's monitoring stack: a Prometheus and an Alertmanager per sandbox.

Layout (``<sid>`` is the sandbox id)::

    127.0.0.1:P -> labkit-<sid>-prometheus  (networks labkit-<sid> and labkit-<sid>-serving)
                     | scrapes, every scrape interval, the targets in /monitoring/targets:
                     |   modelapi: every replica of every revision  <container>:8080
                     |             labels revision, model, index (from the container's labels), replica
                     |   gateway:  labkit-<sid>-gateway:9102    provider: labkit-<sid>-provider:8081
                     | evaluates /monitoring/rules/kit/*.yml (shipped) and rules/trainee/*.yml
                     v
    127.0.0.1:A -> labkit-<sid>-alertmanager (alias "alertmanager" on labkit-<sid>)

Both run from the monitoring image as the kit's non-root user on a read-only root filesystem;
their files live in the labelled volume ``labkit-<sid>-monitoring``. Targets are derived from
the engine's containers (their labels), never from a state document, and written atomically
(file-SD picks them up without a reload). Configuration and rule changes go through
Prometheus's reload API. ``promtool`` runs in a one-off labelled container of the same image.
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import yaml
from docker.errors import APIError, DockerException, ImageNotFound
from docker.models.containers import Container

from .. import labels
from ..errors import ImageMissing, InfrastructureError, PrometheusUnavailable
from ..monitoring import PrometheusClient, kit_rule_files
from . import engine

if TYPE_CHECKING:
    from .backend import DockerSandbox

PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
GATEWAY_METRICS_PORT = 9102
API_PORT = 8080
PROVIDER_PORT = 8081
ROOT = "/monitoring"
_WRITE = ('for f; do p="${f%%=*}"; mkdir -p "$(dirname "$p")";'
          ' printf %s "${f#*=}" | base64 -d > "$p.tmp" && mv "$p.tmp" "$p" || exit 1; done')
_REMOVE = 'rm -f "$1"'


class DockerMonitoring:
    """Start, configure and feed the monitoring containers of one Docker sandbox."""

    def __init__(self, sb: DockerSandbox) -> None:
        self.sb = sb
        prefix = f"labkit-{sb.id}"
        self.names = {"prometheus": f"{prefix}-prometheus", "alertmanager": f"{prefix}-alertmanager",
                      "volume": f"{prefix}-monitoring"}
        self.settings = sb.settings.monitoring

    # --- lifecycle ---------------------------------------------------------------------
    def ensure(self) -> None:
        """Start what is missing with its configuration, kit rules and targets already in place
        (copied in before the start: no reload, no wait - ``up()`` does not wait for Prometheus;
        the first rollout waits until Prometheus scrapes its replicas). Running containers get
        the configuration rewritten and a reload. Does nothing when monitoring is disabled."""
        if not self.settings.enabled:
            return
        docker = self.sb.docker
        engine.ensure_image(docker, self.settings.image)
        engine.ensure_volume(docker, self.names["volume"], self.sb._labels("monitoring"))
        with ThreadPoolExecutor(max_workers=2) as pool:
            jobs = {what: pool.submit(self._ensure, what, start) for what, start in
                    (("alertmanager", self._start_alertmanager), ("prometheus", self._start_prometheus))}
            started = {what: job.result() for what, job in jobs.items()}
        if not started["prometheus"]:  # it was running: bring its files up to date, reload
            _write(self._container("prometheus"), {f"{ROOT}/{path}": text for path, text in self._files().items()})
            error = self.client().reload()
            if error:
                raise InfrastructureError(f"Prometheus of sandbox {self.sb.id} refused the kit's configuration: {error}")

    def _files(self) -> dict[str, str]:
        """Everything Prometheus reads, relative to /monitoring."""
        files = {"prometheus.yml": self.config()}
        files.update({f"rules/kit/{name}.yml": text for name, text in kit_rule_files().items()})
        files.update({path.removeprefix(f"{ROOT}/"): text for path, text in self._target_files().items()})
        return files

    def _ensure(self, what: str, start: Any) -> bool:
        """Start the container unless it runs; True if it was started now."""
        name = self.names[what]
        container = engine.get_container(self.sb.docker, name)
        if container is not None and not labels.is_ours(container.labels, self.sb.id):
            raise InfrastructureError(f"a container named {name} exists but was not made by this sandbox",
                                      fix="choose another LABKIT_SANDBOX_ID; the kit never touches foreign objects")
        if container is not None and container.status == "running":
            return False
        if container is not None:
            container.remove(force=True)
        start()
        return True

    def _run(self, what: str, command: list[str], port: int, aliases: list[str], prepare: Any = None) -> Container:
        return engine.run_container(
            self.sb.docker, image=self.settings.image, name=self.names[what],
            labels_=self.sb._labels(what), network=self.sb.names["network"], aliases=aliases,
            container_port=port, command=command, mem_limit=self.settings.memory,
            volumes={self.names["volume"]: {"bind": ROOT, "mode": "rw"}}, prepare=prepare,
        )

    def _start_prometheus(self) -> Container:
        files = self._files()
        container = self._run("prometheus", ["labkit-prometheus", f"--storage.tsdb.retention.time={self.settings.retention}"],
                              PROMETHEUS_PORT, ["prometheus"], prepare=lambda c: c.put_archive(ROOT, _tar(files)))
        try:  # the gateway lives on the serving network only
            self.sb.docker.networks.get(self.sb.names["serving_network"]).connect(container)
        except DockerException as e:
            raise InfrastructureError(f"could not attach {container.name} to the serving network: {e}") from e
        return container

    def _start_alertmanager(self) -> Container:
        return self._run("alertmanager", ["labkit-alertmanager"], ALERTMANAGER_PORT, ["alertmanager"])

    # --- addresses ---------------------------------------------------------------------
    def _container(self, what: str) -> Container:
        container = engine.get_container(self.sb.docker, self.names[what])
        if container is None or not labels.is_ours(container.labels, self.sb.id) or container.status != "running":
            raise PrometheusUnavailable(what.capitalize(), f"container {self.names[what]} is not running")
        return container

    @staticmethod
    def _url(container: Container, port: int) -> str:
        published = engine.published_port(container, port)
        return f"http://127.0.0.1:{published}" if published else ""

    def url(self, what: str) -> str:
        port = PROMETHEUS_PORT if what == "prometheus" else ALERTMANAGER_PORT
        url = self._url(self._container(what), port)
        if not url:
            raise PrometheusUnavailable(what.capitalize(), f"{self.names[what]} publishes no port")
        return url

    def client(self) -> PrometheusClient:
        return PrometheusClient(self.url("prometheus"), self.url("alertmanager"))

    # --- configuration and targets -------------------------------------------------------
    def config(self) -> str:
        """prometheus.yml from the settings: file-SD for every job, the kit's and the trainee's
        rule files, this sandbox's Alertmanager."""
        interval = f"{self.settings.scrape_interval_s:g}s"
        jobs = [{"job_name": job, "file_sd_configs": [{"files": [f"{ROOT}/targets/{job}.json"]}]}
                for job in ("modelapi", "gateway", "provider")]
        jobs += [{"job_name": "prometheus", "static_configs": [{"targets": [f"localhost:{PROMETHEUS_PORT}"]}]},
                 {"job_name": "alertmanager", "static_configs": [{"targets": [f"alertmanager:{ALERTMANAGER_PORT}"]}]}]
        config = {
            "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval,
                       "external_labels": {"sandbox": self.sb.id}},
            "rule_files": [f"{ROOT}/rules/kit/*.yml", f"{ROOT}/rules/trainee/*.yml"],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"alertmanager:{ALERTMANAGER_PORT}"]}]}]},
            "scrape_configs": jobs,
        }
        return "# written by labkit from its settings; rewritten at every `up`\n" + yaml.safe_dump(config, sort_keys=False)

    def targets(self) -> list[dict[str, Any]]:
        """File-SD groups for every running model API container of the sandbox, from its labels
        (retired revisions stay as stopped containers of the history: not targets)."""
        groups = []
        for c in self.sb.docker.containers.list(filters=labels.docker_filters(self.sb.id, "modelapi"),
                                                ignore_removed=True):
            if not labels.is_ours(c.labels, self.sb.id):
                continue
            try:
                spec = json.loads(c.labels.get(labels.SPEC) or "{}")
            except ValueError:
                spec = {}
            groups.append({"targets": [f"{c.name}:{API_PORT}"], "labels": {
                "revision": c.labels.get(labels.REVISION, ""), "model": str(spec.get("model", "")),
                "index": str(spec.get("index", "")), "replica": c.name.rsplit("-", 1)[-1]}})
        return sorted(groups, key=lambda g: g["targets"][0])

    def _target_files(self) -> dict[str, str]:
        gateway = [{"targets": [f"{self.sb.names['gateway']}:{GATEWAY_METRICS_PORT}"]}]
        provider = [{"targets": [f"{self.sb.names['provider']}:{PROVIDER_PORT}"]}]
        return {f"{ROOT}/targets/modelapi.json": json.dumps(self.targets(), indent=1),
                f"{ROOT}/targets/gateway.json": json.dumps(gateway), f"{ROOT}/targets/provider.json": json.dumps(provider)}

    def refresh_targets(self) -> None:
        """Rewrite the model API targets (after a revision started, was promoted or retired).
        Quietly nothing when the stack is disabled or not running."""
        if not self.settings.enabled:
            return
        prom = engine.get_container(self.sb.docker, self.names["prometheus"])
        if prom is None or prom.status != "running" or not labels.is_ours(prom.labels, self.sb.id):
            return
        _write(prom, {f"{ROOT}/targets/modelapi.json": json.dumps(self.targets(), indent=1)})

    def wait_scraped(self, containers: list[Container], timeout_s: float = 20.0) -> bool:
        """Wait (bounded) until Prometheus has scraped every one of ``containers`` successfully,
        so a revision is monitored from the moment it serves. Prometheus applies target changes
        in 5 s ticks (discovery, then scrape manager), so this takes up to ~10 s after the
        targets were written. Never fails a rollout: False on timeout, when the stack is
        disabled or not running."""
        if not (self.settings.enabled and self.settings.scraped_before_serving and containers):
            return False
        try:
            client = PrometheusClient(self.url("prometheus"), timeout_s=2)
        except PrometheusUnavailable:
            return False
        wanted = {f"{c.name}:{API_PORT}" for c in containers}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:  # Prometheus may still be starting (up() does not wait for it)
                up = {t["labels"].get("instance") for t in client.targets() if t.get("health") == "up"}
            except (PrometheusUnavailable, KeyError, ValueError):
                up = set()
            if wanted <= up:
                return True
            time.sleep(0.2)
        return False

    # --- rule files ------------------------------------------------------------------------
    def install_rule_file(self, name: str, text: str | None) -> None:
        """Write (or with None remove) ``rules/trainee/<name>.yml``; the caller reloads."""
        prom, path = self._container("prometheus"), f"{ROOT}/rules/trainee/{name}.yml"
        if text is None:
            engine.exec_text(prom, ["sh", "-c", _REMOVE, "rm", path])
        else:
            _write(prom, {path: text})

    def rule_file(self, name: str) -> str | None:
        code, out = engine.exec_text(self._container("prometheus"), ["cat", f"{ROOT}/rules/trainee/{name}.yml"])
        return out if code == 0 else None

    def promtool(self, args: list[str], files: dict[str, str]) -> tuple[int, str]:
        """``promtool ARGS`` in a one-off container of this sandbox (see ``run_promtool``)."""
        return run_promtool(self.sb.docker, self.settings.image, self.sb._labels("job"),
                            f"labkit-{self.sb.id}-promtool-{uuid.uuid4().hex[:6]}", args, files)


def run_promtool(docker: Any, image: str, labels_: dict[str, str], name: str, args: list[str],
                 files: dict[str, str]) -> tuple[int, str]:
    """``promtool ARGS`` in a one-off labelled container of the monitoring image (no network,
    non-root), with ``files`` (name -> text) copied into its working directory by
    ``put_archive``; (exit code, output). The container is removed whatever happens."""
    try:
        container = docker.containers.create(
            image, command=["promtool", *args], name=name, labels=labels_, network_disabled=True,
            user="10001:10001", working_dir=f"{ROOT}/check", cap_drop=["ALL"],
            security_opt=["no-new-privileges"], mem_limit="256m")
    except ImageNotFound as e:
        raise ImageMissing(image) from e
    except APIError as e:
        raise InfrastructureError(f"could not create the promtool job: {e}") from e
    try:
        container.put_archive(ROOT, _tar({f"check/{n}": text for n, text in files.items()}))
        container.start()
        code = int(container.wait(timeout=120).get("StatusCode", 1))
        return code, container.logs(stdout=True, stderr=True).decode(errors="replace")
    except DockerException as e:
        raise InfrastructureError(f"promtool job failed to run: {e}") from e
    finally:
        try:
            container.remove(force=True)
        except DockerException:
            pass


def _tar(files: dict[str, str]) -> bytes:
    """A tar archive of text files owned by the kit's user (directories included)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs = sorted({name.rsplit("/", 1)[0] for name in files if "/" in name})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, 10001, 10001
            tar.addfile(info)
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid, info.mtime = len(data), 0o644, 10001, 10001, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _write(container: Container, files: dict[str, str]) -> None:
    """Write text files atomically (tmp + rename) in a running container, in one exec."""
    args = [f"{path}={base64.b64encode(text.encode()).decode()}" for path, text in files.items()]
    code, out = engine.exec_text(container, ["sh", "-c", _WRITE, "write", *args])
    if code != 0:
        raise InfrastructureError(f"could not write {', '.join(files)} in {container.name}: {out[-300:]}")


class MonitoredSandbox:
    """The monitoring surface of ``DockerSandbox`` (mixed in): where Prometheus and
    Alertmanager answer, and the tier hooks of ``sb.rules``. Relies on the sandbox's
    ``docker``, ``names``, ``id``, ``settings`` and ``_labels()``."""

    _monitoring: DockerMonitoring | None = None

    @property
    def monitoring(self) -> DockerMonitoring:
        if self._monitoring is None:
            self._monitoring = DockerMonitoring(self)  # type: ignore[arg-type]
        return self._monitoring

    @property
    def prometheus_url(self) -> str:
        return self.monitoring.url("prometheus")

    @property
    def alertmanager_url(self) -> str:
        return self.monitoring.url("alertmanager")

    def _promtool(self, args: list[str], files: dict[str, str]) -> tuple[int, str]:
        return self.monitoring.promtool(args, files)

    def _install_rule_file(self, name: str, text: str | None) -> None:
        self.monitoring.install_rule_file(name, text)

    def _rule_file(self, name: str) -> str | None:
        return self.monitoring.rule_file(name)
