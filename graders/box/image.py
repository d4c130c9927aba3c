"""Build the grading box image offline: the kernel's dependencies from host-downloaded wheels,
the kit as source (``sandbox``, ``graders``, ``labkit`` and the course plan), on the same base
as the model API image."""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

from docker.errors import DockerException

from sandbox._docker import engine
from sandbox.errors import InfrastructureError
from sandbox.images import Progress, build_one, download_wheels, resolve_base
from sandbox.settings import Settings

BOX_DIR = Path(__file__).resolve().parent
ROOT = BOX_DIR.parents[1]
KIT = ("sandbox", "graders", "labkit")
PLAN_FILES = ("plan.yaml", "plan.schema.json")
#: Label of the box image: the digest of the kit's source it holds.
KIT_DIGEST = "labkit.dev/kit-digest"


def kit_digest() -> str:
    """sha256 (16 hex) of the kit's source as the box image copies it."""
    h = hashlib.sha256()
    files = [p for package in KIT for p in (ROOT / package).rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
             and "wheels" not in p.relative_to(ROOT).parts and p.name != "Dockerfile"]
    files += [ROOT / "curriculum" / name for name in PLAN_FILES]
    for path in sorted(files):
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def check_box_image(settings: Settings) -> None:
    """Raise unless the box image holds this kit: a box built from other source would run
    another kit's ``connect()`` and client inside, against this grader's endpoint."""
    client = engine.connect_engine(settings.docker_host)
    try:
        held = (client.images.get(settings.images.box).labels or {}).get(KIT_DIGEST, "")
    except DockerException as e:
        raise engine.wrap(e, f"reading the grading box image {settings.images.box}") from e
    if held != kit_digest():
        raise InfrastructureError(
            f"the grading box image {settings.images.box} holds another version of the kit"
            f" ({held or 'unlabelled'}, this kit {kit_digest()})", fix="labkit images build (make images)")


def assemble_box_context(home: Path, progress: Progress) -> Path:
    """``home/build/box``: Dockerfile, requirements, wheels and the kit's source."""
    context = home / "build" / "box"
    requirements = (BOX_DIR / "requirements.txt").read_text()
    wheels = download_wheels(home, requirements, progress)
    if context.exists():
        shutil.rmtree(context)
    (context / "kit" / "curriculum").mkdir(parents=True)
    shutil.copy2(BOX_DIR / "Dockerfile", context / "Dockerfile")
    (context / "requirements.txt").write_text(requirements)
    shutil.copytree(wheels, context / "wheels")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "Dockerfile", "wheels")
    for package in KIT:
        shutil.copytree(ROOT / package, context / "kit" / package, ignore=skip)
    for name in PLAN_FILES:
        shutil.copy2(ROOT / "curriculum" / name, context / "kit" / "curriculum" / name)
    return context


def build_box_image(settings: Settings, progress: Progress = print) -> dict[str, float]:
    """Build ``settings.images.box``; seconds per step."""
    client = engine.connect_engine(settings.docker_host, timeout=600)
    seconds: dict[str, float] = {}
    t0 = time.monotonic()
    base = resolve_base(client, settings.images.base, progress)
    context = assemble_box_context(settings.home, progress)
    seconds["box context"] = time.monotonic() - t0
    t0 = time.monotonic()
    build_one(client, context, settings.images.box, {"BASE": base}, progress, {KIT_DIGEST: kit_digest()})
    seconds[settings.images.box] = time.monotonic() - t0
    return seconds
