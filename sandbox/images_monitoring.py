"""Build the monitoring image (Prometheus, promtool, Alertmanager) offline.

Two steps, like the model API's offline base: a Debian bookworm root filesystem with
Debian's ``prometheus`` and ``prometheus-alertmanager`` packages, made by ``mmdebstrap``
from the host's apt sources and piped into ``docker import`` (``labkit/monitoring-base``,
made once), then a small Dockerfile layer with the kit's configuration and entry points
(``labkit/monitoring:<tag>``, rebuilt from cache when unchanged). Containers never need the
network; no registry is involved.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from . import images
from .settings import Settings

MONITORING_DIR = Path(__file__).parent / "monitoring_image"
MONITORING_BASE = "labkit/monitoring-base:bookworm"
MONITORING_PACKAGES = ("prometheus", "prometheus-alertmanager")
#: No recommends (node exporter, ...), no docs: the image holds what the sandbox runs.
MMDEBSTRAP_OPTIONS = (
    '--aptopt=APT::Install-Recommends "false"',
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
)


def build_monitoring(client: Any, settings: Settings, report: images.BuildReport,
                     progress: images.Progress = print) -> str:
    """Make the base if missing, then build ``settings.monitoring.image``; returns its tag."""
    t0 = time.monotonic()
    if not images._present(client, MONITORING_BASE):
        progress(f"monitoring: building {MONITORING_BASE} offline with mmdebstrap (about a minute)")
        images.make_offline_base(MONITORING_BASE, progress, MONITORING_PACKAGES, MMDEBSTRAP_OPTIONS)
    report.seconds[MONITORING_BASE] = time.monotonic() - t0
    t0 = time.monotonic()
    context = assemble_context(settings.home)
    tag = settings.monitoring.image
    revision = tag.rsplit(":", 1)[-1]
    report.cached[tag] = images.build_one(
        client, context, tag, {"BASE": MONITORING_BASE, "IMAGE_REVISION": revision}, progress)
    report.seconds[tag] = time.monotonic() - t0
    report.images.append(tag)
    return tag


def assemble_context(home: Path) -> Path:
    """``home/build/monitoring``: the Dockerfile, default configuration and entry points."""
    context = home / "build" / "monitoring"
    if context.exists():
        shutil.rmtree(context)
    shutil.copytree(MONITORING_DIR, context, ignore=shutil.ignore_patterns("__pycache__"))
    return context
