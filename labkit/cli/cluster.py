"""``labkit cluster create|delete|load-image|cohort``: the local kind cluster and cohort mode.

Mounted by ``labkit.cli.main`` as ``app.add_typer(cluster_app, name="cluster")``. Every
``LabkitError`` is one line on stderr (what is wrong, and the command that fixes it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from sandbox.settings import Settings

from ..cluster import COHORT_DIR, CohortOptions, create_cluster, delete_cluster, load_images, read_trainees, write_cohort_overlay
from .common import handled

cluster_app = typer.Typer(help="Local kind cluster and cohort namespaces for the kube backend.",
                          no_args_is_help=True)
console = Console()


@cluster_app.command("create")
@handled
def create() -> None:
    """Create the local kind cluster from k8s/kind-cluster.yaml (no-op if it exists)."""

    settings = Settings.from_env()
    context = create_cluster(settings)
    console.print(f"kind cluster [bold]{settings.kube.cluster_name}[/] is ready (context {context}).\n"
                  f"next: `labkit images build && labkit cluster load-image`, then\n"
                  f"  export LABKIT_BACKEND=kube LABKIT_KUBE_CONTEXT={context}")


@cluster_app.command("delete")
@handled
def delete() -> None:
    """Delete the local kind cluster and everything in it."""

    settings = Settings.from_env()
    gone = delete_cluster(settings)
    console.print(f"kind cluster {settings.kube.cluster_name} " + ("deleted" if gone else "did not exist"))


@cluster_app.command("load-image")
@handled
def load_image(image: Optional[list[str]] = typer.Argument(None, help="Images (default: the good and"
                                                                      " the defective model API image).")) -> None:
    """Copy locally built images into the kind node (`kind load docker-image`)."""

    loaded = load_images(Settings.from_env(), image or [])
    console.print("loaded into kind: " + ", ".join(loaded))


@cluster_app.command("cohort")
@handled
def cohort(
    trainee: Optional[list[str]] = typer.Option(None, "--trainee", help="Trainee name (repeatable)."),
    file: Optional[Path] = typer.Option(None, "--file", help="File with one trainee name a line."),
    out: Optional[Path] = typer.Option(None, "--out", help="Overlay directory (default k8s/overlays/cohort)."),
    registry: Optional[str] = typer.Option(None, help="Image registry (default LABKIT_REGISTRY)."),
    user_prefix: str = typer.Option("", help="Prefix of user names in the cluster's auth, e.g. `oidc:`."),
    api_server_cidr: str = typer.Option("0.0.0.0/0", help="Where service-proxy and probe traffic comes from."),
    pod_cidr: str = typer.Option("10.244.0.0/16", help="The cluster's pod network (denied by default)."),
    hub: bool = typer.Option(True, "--hub/--no-hub", help="Also what a trainee's JupyterLab from the cohort's"
                                                         " JupyterHub needs (k8s/hub/trainee)."),
) -> None:
    """Generate the cohort overlay: a namespace, Role, quota and network policy per trainee."""

    names = list(trainee or []) + (read_trainees(file) if file else [])
    settings = Settings.from_env()
    opts = CohortOptions(registry=settings.images.registry if registry is None else registry,
                         user_prefix=user_prefix, api_server_cidr=api_server_cidr, pod_cidr=pod_cidr, hub=hub)
    target = out or COHORT_DIR
    written = write_cohort_overlay(names, target, opts)
    console.print(f"wrote {len(written)} files for {len(names)} trainees in {target}\n"
                  f"apply with `kubectl apply -k {target}`")
