"""Build the model API image, online or offline.

The Dockerfile's base is a build argument. With ``base=auto`` the kit uses, in order: a local
``python:3.11-slim``; a local offline base ``labkit/base:bookworm``; ``python:3.11-slim``
pulled from a registry; and, when no registry answers, a Debian base made offline with
``mmdebstrap`` from the host's apt sources piped into ``docker import``. Python wheels are
downloaded on the host (``pip download``) into the build context and installed in the image
with ``--no-index``, so the build itself never needs the network.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from docker.errors import APIError, BuildError, DockerException, ImageNotFound

from . import labels
from ._docker import engine
from .errors import InfrastructureError, ToolMissing
from .settings import Settings

Progress = Callable[[str], None]
OFFLINE_BASE = "labkit/base:bookworm"
ONLINE_BASE = "python:3.11-slim"
MODELAPI_DIR = Path(__file__).parent / "modelapi"
DEBIAN_PACKAGES = ("python3", "python3-venv")


@dataclass
class BuildReport:
    """What ``build_images`` did and how long each step took."""

    base: str = ""
    images: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    cached: dict[str, bool] = field(default_factory=dict)


def build_images(settings: Settings, progress: Progress = print) -> BuildReport:
    """Build the good and the defective model API images (cache reused when unchanged)."""
    client = engine.connect_engine(settings.docker_host, timeout=600)
    report = BuildReport()
    t0 = time.monotonic()
    report.base = resolve_base(client, settings.images.base, progress)
    report.seconds["base"] = time.monotonic() - t0
    t0 = time.monotonic()
    context = assemble_context(settings.home, progress)
    report.seconds["context"] = time.monotonic() - t0
    variants = [
        (settings.images.default, {"IMAGE_REVISION": settings.images.tag}),
        (settings.images.defect, {"IMAGE_REVISION": settings.images.defect_tag,
                                  "MODELAPI_DEFECT": "crash-on-start"}),
    ]
    for tag, args in variants:
        t0 = time.monotonic()
        report.cached[tag] = build_one(client, context, tag, {"BASE": report.base, **args}, progress)
        report.seconds[tag] = time.monotonic() - t0
        report.images.append(tag)
    if settings.monitoring.enabled:
        from .images_monitoring import build_monitoring  # it builds on this module's helpers

        build_monitoring(client, settings, report, progress)
    return report


def resolve_base(client, base: str, progress: Progress) -> str:
    """Name of a usable base image, making or pulling it if needed."""
    if base != "auto":
        if not _present(client, base) and not _pull(client, base, progress):
            raise InfrastructureError(
                f"base image {base} is neither local nor pullable",
                fix="set LABKIT_BASE_IMAGE=auto to build a Debian base offline",
            )
        return base
    for candidate in (ONLINE_BASE, OFFLINE_BASE):
        if _present(client, candidate):
            progress(f"base: using local {candidate}")
            return candidate
    if _pull(client, ONLINE_BASE, progress):
        return ONLINE_BASE
    progress("base: no registry answers; building a Debian base offline with mmdebstrap")
    make_offline_base(OFFLINE_BASE, progress)
    return OFFLINE_BASE


def _present(client, image: str) -> bool:
    try:
        client.images.get(image)
        return True
    except ImageNotFound:
        return False


def _pull(client, image: str, progress: Progress) -> bool:
    repo, _, tag = image.partition(":")
    try:
        progress(f"base: pulling {image}")
        client.images.pull(repo, tag=tag or "latest")
        return True
    except (APIError, DockerException) as e:
        progress(f"base: cannot pull {image}: {str(e).splitlines()[0][:160]}")
        return False


def make_offline_base(name: str, progress: Progress, packages: tuple[str, ...] = DEBIAN_PACKAGES,
                      extra: tuple[str, ...] = ()) -> None:
    """``mmdebstrap --variant=apt ... bookworm - | docker import - NAME`` (about 30-40 s)."""
    if shutil.which("mmdebstrap") is None:
        raise ToolMissing("mmdebstrap", "apt-get install -y mmdebstrap (Debian/Ubuntu, as root)")
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        raise ToolMissing("docker", "apt-get install -y docker.io")
    include = ",".join(packages)
    strap = subprocess.Popen(
        ["mmdebstrap", "--variant=apt", f"--include={include}", *extra, "bookworm", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    change = f"LABEL {labels.MANAGED_BY}={labels.MANAGED_BY_VALUE}"
    imported = subprocess.run(
        [docker_cli, "import", "--change", change, "-", name],
        stdin=strap.stdout,
        capture_output=True,
        text=True,
    )
    strap.stdout.close()  # type: ignore[union-attr]
    err = strap.stderr.read().decode(errors="replace") if strap.stderr else ""
    if strap.wait() != 0 or imported.returncode != 0:
        last = (err.strip().splitlines() or [imported.stderr.strip()])[-1]
        raise InfrastructureError(
            f"offline base build failed: {last[:300]}",
            fix="check that apt sources work (`apt-get update`) and that you are root",
        )
    progress(f"base: imported {name}")


def assemble_context(home: Path, progress: Progress) -> Path:
    """``home/build/modelapi``: Dockerfile, requirements, the package and host-downloaded wheels."""
    context = home / "build" / "modelapi"
    requirements = (MODELAPI_DIR / "requirements.txt").read_text()
    wheels = download_wheels(home, requirements, progress)
    if context.exists():
        shutil.rmtree(context)
    context.mkdir(parents=True)
    shutil.copy2(MODELAPI_DIR / "Dockerfile", context / "Dockerfile")
    (context / "requirements.txt").write_text(requirements)
    shutil.copytree(wheels, context / "wheels")
    shutil.copytree(
        MODELAPI_DIR,
        context / "modelapi",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "Dockerfile", "requirements.txt"),
    )
    return context


def _platforms() -> list[str]:
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine())
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(36, 16, -1)]
    return tags + [f"manylinux2014_{arch}", f"linux_{arch}"]


def download_wheels(home: Path, requirements: str, progress: Progress) -> Path:
    """Wheels for CPython 3.11 on Linux, cached by the requirements' hash."""
    digest = hashlib.sha256(requirements.encode()).hexdigest()[:16]
    target = home / "wheels" / digest
    marker = target / ".complete"
    if marker.exists():
        progress(f"wheels: cached ({len(list(target.glob('*.whl')))} wheels)")
        return target
    target.mkdir(parents=True, exist_ok=True)
    req_file = target / "requirements.txt"
    req_file.write_text(requirements)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "-r", str(req_file), "-d", str(target),
           "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp"]
    for tag in _platforms():
        cmd += ["--platform", tag]
    progress("wheels: downloading on the host (pip download)")
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise InfrastructureError(
            f"pip download failed: {(done.stderr.strip().splitlines() or ['?'])[-1][:300]}",
            fix="check that PyPI is reachable from this host (containers never need it)",
        )
    marker.write_text(digest)
    progress(f"wheels: {len(list(target.glob('*.whl')))} downloaded")
    return target


def build_one(client, context: Path, tag: str, buildargs: dict[str, str], progress: Progress,
              extra_labels: dict[str, str] | None = None) -> bool:
    """Build one tag; streams the builder's steps to ``progress``; True if fully cached."""
    all_cached = True
    try:
        stream = client.api.build(
            path=str(context), tag=tag, buildargs=buildargs, rm=True, forcerm=True, decode=True,
            labels={labels.MANAGED_BY: labels.MANAGED_BY_VALUE, labels.PART_OF: "labkit", **(extra_labels or {})},
        )
        for chunk in stream:
            if "error" in chunk:
                raise BuildError(chunk["error"], [chunk])
            line = str(chunk.get("stream", "")).strip()
            if line.startswith("Step "):
                progress(f"{tag}: {line.splitlines()[0][:120]}")
            elif line and "Running in" in line:
                all_cached = False
    except (BuildError, APIError) as e:
        raise InfrastructureError(f"building {tag} failed: {str(e)[:400]}") from e
    progress(f"{tag}: built{' (all steps cached)' if all_cached else ''}")
    return all_cached
