"""Build the grading box image offline: the kernel's dependencies from host-downloaded wheels,
the kit as source (``sandbox``, ``graders``, ``labkit`` and the course plan), on the same base
as the model API image."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from sandbox._docker import engine
from sandbox.images import Progress, build_one, download_wheels, resolve_base
from sandbox.settings import Settings

BOX_DIR = Path(__file__).resolve().parent
ROOT = BOX_DIR.parents[1]
KIT = ("sandbox", "graders", "labkit")
PLAN_FILES = ("plan.yaml", "plan.schema.json")


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
    build_one(client, context, settings.images.box, {"BASE": base}, progress)
    seconds[settings.images.box] = time.monotonic() - t0
    return seconds
