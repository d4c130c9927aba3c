"""Thin, labelled access to the Docker engine.

Every object created here carries the kit's labels; every listing for deletion filters on
them. Docker SDK exceptions are wrapped where they are raised.
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container

from .. import labels
from ..errors import (
    DockerUnavailable,
    EngineFailure,
    ImageMissing,
    InfrastructureError,
    PortInUse,
)

_PORT_ERRORS = ("port is already allocated", "address already in use", "bind for")


def connect_engine(docker_host: str = "", timeout: int = 60) -> docker.DockerClient:
    """A Docker client that has answered a ping, or ``DockerUnavailable``."""
    address = docker_host or "the default socket (DOCKER_HOST or /var/run/docker.sock)"
    try:
        client = (
            docker.DockerClient(base_url=docker_host, timeout=timeout)
            if docker_host
            else docker.from_env(timeout=timeout)
        )
        client.ping()
    except DockerException as e:
        raise DockerUnavailable(address, _short(e)) from e
    except OSError as e:  # socket errors that escape the SDK
        raise DockerUnavailable(address, _short(e)) from e
    return client


def _short(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:200]


def ensure_image(client: docker.DockerClient, image: str) -> None:
    try:
        client.images.get(image)
    except ImageNotFound as e:
        raise ImageMissing(image) from e
    except DockerException as e:
        raise DockerUnavailable("the engine", _short(e)) from e


def get_container(client: docker.DockerClient, name: str) -> Container | None:
    try:
        return client.containers.get(name)
    except NotFound:
        return None


def run_container(
    client: docker.DockerClient,
    *,
    image: str,
    name: str,
    labels_: dict[str, str],
    network: str,
    aliases: list[str] | None = None,
    host_port: int | None = None,
    container_port: int = 8080,
    prepare: Callable[[Container], None] | None = None,
    **kwargs: Any,
) -> Container:
    """Start a hardened, labelled container; removes it again if the start fails.

    Ports bind to 127.0.0.1 only (``host_port`` None = one Docker picks). ``prepare`` is called
    with the created container before it starts (e.g. to ``put_archive`` its configuration).
    """
    endpoint = client.api.create_endpoint_config(aliases=aliases or [])
    binding = ("127.0.0.1", host_port) if host_port else ("127.0.0.1",)
    options: dict[str, Any] = {
        "read_only": True,
        "tmpfs": {"/tmp": "size=32m"},
        "user": "10001:10001",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "mem_limit": "768m",
    }
    options.update(kwargs)
    for attempt in range(COPY_UP_RETRIES + 1):
        try:
            return _run_once(client, image, name, labels_, network, endpoint, container_port, binding,
                             prepare, options)
        except APIError as e:
            _remove_quietly(client, name)
            text = str(e).lower()
            if all(marker in text for marker in _COPY_UP_RACE) and attempt < COPY_UP_RETRIES:
                time.sleep(0.2 * (attempt + 1))  # the other container has populated the volume by now
                continue
            if host_port and any(marker in text for marker in _PORT_ERRORS):
                raise PortInUse(host_port) from e
            if isinstance(e, ImageNotFound) or "no such image" in text:
                raise ImageMissing(image) from e
            raise EngineFailure(f"could not start container {name}: {_short(e)}") from e
    raise AssertionError("unreachable")


#: Two containers created at once on one fresh named volume both copy the image's files into it;
#: the engine then fails the later one with "mkdir .../_data/<dir>: file exists". Creating it again
#: succeeds (the volume is populated); the kit starts Prometheus and Alertmanager side by side.
_COPY_UP_RACE = ("mkdir", "/_data/", "file exists")
COPY_UP_RETRIES = 3


def _run_once(client: docker.DockerClient, image: str, name: str, labels_: dict[str, str], network: str,
              endpoint: Any, container_port: int, binding: tuple, prepare: Callable[[Container], None] | None,
              options: dict[str, Any]) -> Container:
    if prepare is None:
        return client.containers.run(
            image, name=name, labels=labels_, detach=True, network=network,
            networking_config={network: endpoint}, ports={f"{container_port}/tcp": binding}, **options)
    container = client.containers.create(
        image, name=name, labels=labels_, network=network, networking_config={network: endpoint},
        ports={f"{container_port}/tcp": binding}, **options)
    prepare(container)
    container.start()
    container.reload()
    return container


def _remove_quietly(client: docker.DockerClient, name: str) -> None:
    container = get_container(client, name)
    if container is not None and labels.is_ours(container.labels):
        try:
            container.remove(force=True)
        except DockerException:
            pass


def published_port(container: Container, container_port: int) -> int | None:
    container.reload()
    ports = container.attrs.get("NetworkSettings", {}).get("Ports") or {}
    bindings = ports.get(f"{container_port}/tcp") or []
    for b in bindings:
        if b.get("HostIp") in ("127.0.0.1", "") and b.get("HostPort"):
            return int(b["HostPort"])
    return None


def exec_text(container: Container, cmd: list[str], expect_output: bool = False) -> tuple[int, str]:
    """Run ``cmd`` in a running container; returns exit code and combined output.

    With ``expect_output``, an empty successful answer is retried: under load the engine
    can lose the output of a process that exits before the attach completes.
    """
    for attempt in range(4 if expect_output else 1):
        try:
            result = container.exec_run(cmd, demux=False)
        except DockerException as e:
            raise wrap(e, f"exec in {container.name}") from e
        out = (result.output or b"").decode(errors="replace")
        if result.exit_code != 0 or out.strip() or not expect_output:
            return result.exit_code, out
        time.sleep(0.05 * (attempt + 1))
    return result.exit_code, out


def put_file(container: Container, path: str, data: bytes, uid: int = 10001) -> None:
    """Write ``data`` at ``path`` in a running container (a writable volume path; the root
    filesystem may be read-only) through the engine's archive API. The engine extracts the
    archive into place in one step, so a reader never sees half a file."""
    folder, _, name = path.rpartition("/")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.uid, info.gid, info.mode = len(data), int(time.time()), uid, uid, 0o644
        tar.addfile(info, io.BytesIO(data))
    try:
        container.put_archive(folder or "/", buf.getvalue())
    except NotFound as e:
        raise EngineFailure(f"{folder} does not exist in {container.name}",
                            fix="`labkit sandbox reset` recreates the sandbox's data volume") from e
    except DockerException as e:
        raise wrap(e, f"writing {path} in {container.name}") from e


def get_file(container: Container, path: str) -> bytes | None:
    """The bytes of ``path`` in a container, or None if it does not exist."""
    try:
        chunks, _ = container.get_archive(path)
        raw = b"".join(chunks)
    except NotFound:
        return None
    except DockerException as e:
        raise wrap(e, f"reading {path} in {container.name}") from e
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        member = tar.next()
        handle = tar.extractfile(member) if member is not None else None
        return handle.read() if handle is not None else None


def wrap(e: DockerException, doing: str) -> InfrastructureError:
    """The kit's error for an engine exception: a lost connection is ``DockerUnavailable``
    (temporary), anything else an ``EngineFailure`` naming what was being done."""
    if isinstance(e, APIError) and e.response is not None:
        return EngineFailure(f"{doing}: the engine answered {e.response.status_code}: {_short(e)}")
    return DockerUnavailable("the engine", f"{doing}: {_short(e)}")


def ensure_network(client: docker.DockerClient, name: str, labels_: dict[str, str]) -> None:
    if not client.networks.list(names=[name], filters=labels.docker_filters()):
        existing = client.networks.list(names=[name])
        if any(n.name == name for n in existing):
            raise InfrastructureError(
                f"a network named {name} exists but was not made by labkit",
                fix="choose another LABKIT_SANDBOX_ID; the kit never touches foreign objects",
            )
        try:
            client.networks.create(name, driver="bridge", labels=labels_, check_duplicate=True)
        except APIError as e:
            if "address pool" in str(e):
                raise EngineFailure(
                    f"Docker has no free address pool for network {name}"
                    f" ({len(client.networks.list())} networks exist)",
                    fix="remove sandboxes you no longer use (`labkit sandbox down`), or start dockerd"
                    " with --default-address-pool base=172.17.0.0/12,size=24",
                ) from e
            raise EngineFailure(f"could not create network {name}: {_short(e)}") from e


def ensure_volume(client: docker.DockerClient, name: str, labels_: dict[str, str]) -> None:
    try:
        volume = client.volumes.get(name)
    except NotFound:
        client.volumes.create(name, labels=labels_)
        return
    if not labels.is_ours(volume.attrs.get("Labels")):
        raise InfrastructureError(
            f"a volume named {name} exists but was not made by labkit",
            fix="choose another LABKIT_SANDBOX_ID; the kit never touches foreign objects",
        )


def remove_labelled(client: docker.DockerClient, sandbox_id: str, keep: tuple[str, ...] = ()) -> list[str]:
    """Remove containers (but those of the ``keep`` components), then networks, then volumes of
    one sandbox, selected by label."""
    removed: list[str] = []
    filters = labels.docker_filters(sandbox_id)
    for c in client.containers.list(all=True, filters=filters, ignore_removed=True):
        if labels.is_ours(c.labels, sandbox_id) and c.labels.get(labels.COMPONENT) not in keep:
            _ignore_missing(lambda c=c: c.remove(force=True, v=False))
            removed.append(f"container/{c.name}")
    for n in client.networks.list(filters=filters):
        if labels.is_ours(n.attrs.get("Labels"), sandbox_id):
            _ignore_missing(n.remove)
            removed.append(f"network/{n.name}")
    for v in client.volumes.list(filters=filters):
        if labels.is_ours(v.attrs.get("Labels"), sandbox_id):
            _ignore_missing(lambda v=v: v.remove(force=True))
            removed.append(f"volume/{v.name}")
    return removed


def _ignore_missing(fn: Any) -> None:
    try:
        fn()
    except NotFound:
        pass


@contextmanager
def one_off(client: docker.DockerClient, name: str, **run_kwargs: Any) -> Iterator[Container]:
    """A job container that is always removed afterwards, even if the caller fails."""
    container = client.containers.run(name=name, detach=True, **run_kwargs)
    try:
        yield container
    finally:
        _ignore_missing(lambda: container.remove(force=True))


def foreign_inventory(client: docker.DockerClient) -> dict[str, dict[str, dict[str, Any]]]:
    """Every container, network and volume on the engine NOT labelled ``managed-by=labkit``:
    ``{"containers": {id: {name, status, created, started, restarts}}, "networks": {id: {name,
    created}}, "volumes": {id: {name, created}}}``."""
    snap: dict[str, dict[str, dict[str, Any]]] = {"containers": {}, "networks": {}, "volumes": {}}
    for c in client.containers.list(all=True, ignore_removed=True):
        if not labels.is_ours(c.labels):
            state = c.attrs.get("State") or {}
            snap["containers"][c.id] = {
                "name": c.name, "status": c.status, "created": c.attrs.get("Created", ""),
                "started": state.get("StartedAt", "") if isinstance(state, dict) else "",
                "restarts": int(c.attrs.get("RestartCount", 0) or 0),
            }
    for n in client.networks.list():
        if not labels.is_ours(n.attrs.get("Labels")):
            snap["networks"][n.id] = {"name": n.name, "created": n.attrs.get("Created", "")}
    for v in client.volumes.list():
        if not labels.is_ours(v.attrs.get("Labels")):
            snap["volumes"][v.id] = {"name": v.name, "created": v.attrs.get("CreatedAt", "")}
    return snap
