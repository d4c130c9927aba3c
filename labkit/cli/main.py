"""``labkit``: the single command-line entry point of the kit.

Read commands take ``--json``. Every ``LabkitError`` becomes one line on stderr saying what
is wrong and how to fix it, and the exit status of its family (2 for bad input and unusable
infrastructure).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from graders.box.image import build_box_image
from sandbox.images import build_images
from sandbox.settings import Settings

from ..demo import run_demo
from .cluster import cluster_app
from .cohort import cohort_app
from .common import JSON, handled, print_json, sandbox_from_env
from .course import course_app
from .evidence import evidence_app
from .fault import fault_app
from .gameday import gameday_app
from .hub import hub_app
from .monitor import monitor_app
from .plan import plan
from .records import records_app
from .report import report

app = typer.Typer(help="Lab kit for running an AI-driven hosting stack.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
sandbox_app = typer.Typer(help="Bring the sandbox up, down, or look at it.", no_args_is_help=True)
rollout_app = typer.Typer(help="Rollout history and undo.", no_args_is_help=True)
index_app = typer.Typer(help="Build and list index artifacts.", no_args_is_help=True)
images_app = typer.Typer(help="Build the model API images (offline if needed).", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(rollout_app, name="rollout")
app.add_typer(index_app, name="index")
app.add_typer(images_app, name="images")
app.add_typer(fault_app, name="fault")
app.add_typer(gameday_app, name="gameday")
app.add_typer(cluster_app, name="cluster")
app.add_typer(course_app, name="course")
app.add_typer(monitor_app, name="monitor")
app.command("plan", help="The 90-day calendar: phases, weeks, labs, capabilities, KPIs.")(plan)
app.command("report")(report)
app.add_typer(cohort_app, name="cohort")
app.add_typer(evidence_app, name="evidence")
app.add_typer(hub_app, name="hub")
app.add_typer(records_app, name="records")

console = Console()
_sandbox = sandbox_from_env
_print_json = print_json


# --- sandbox ---------------------------------------------------------------------------
@sandbox_app.command("up")
@handled
def sandbox_up() -> None:
    """Create the sandbox (idempotent; repairs an interrupted up)."""
    sb = _sandbox(up=True)
    console.print(f"sandbox [bold]{sb.id}[/] is up at {sb.endpoint}")


@sandbox_app.command("down")
@handled
def sandbox_down() -> None:
    """Remove everything of this sandbox (selected by label; nothing else is touched)."""
    removed = _sandbox().down()
    console.print(f"removed {len(removed)} objects" + "".join(f"\n  {r}" for r in removed))


@sandbox_app.command("reset")
@handled
def sandbox_reset() -> None:
    """Tear down and bring up a clean sandbox (no history, no faults)."""
    sb = _sandbox()
    sb.reset()
    console.print(f"sandbox [bold]{sb.id}[/] reset; endpoint {sb.endpoint}")


@sandbox_app.command("status")
@handled
def sandbox_status(as_json: bool = JSON) -> None:
    """Serving revision, rollout state, readiness and components."""
    st = _sandbox().status()
    if as_json:
        return _print_json(st.to_dict())
    console.print(f"sandbox {st.sandbox_id} ({st.backend}): {'up' if st.up else 'down'}"
                  + (f" at {st.endpoint}" if st.endpoint else ""))
    if st.up:
        spec = st.spec
        serving = f"revision {st.serving_revision}: model={spec.model} index={spec.index} " \
                  f"image={spec.image} replicas={spec.replicas}" if spec else "nothing"
        console.print(f"serving: {serving}")
        console.print(f"rollout: {st.rollout}; ready: {st.ready}" + (f" ({st.reason})" if st.reason else ""))
        if st.faults:
            console.print(f"active faults: {', '.join(st.faults)}")
    table = Table("name", "component", "revision", "state", "cpus", "detail")
    for c in st.components:
        table.add_row(c.name, c.component, "" if c.revision is None else str(c.revision), c.state,
                      "" if c.cpus is None else f"{c.cpus:g}", c.detail)
    console.print(table)


# --- deploy and rollouts -----------------------------------------------------------------
@app.command("deploy")
@handled
def deploy(
    model: Optional[str] = typer.Option(None, help="Embedding model version (v1, v2)."),
    index: Optional[str] = typer.Option(None, help="Index name, or a corpus snapshot date."),
    image: Optional[str] = typer.Option(None, help="Model API image (default labkit/modelapi:TAG)."),
    replicas: Optional[int] = typer.Option(None, help="Replicas of the new revision."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Default k of /v1/search."),
    cause: str = typer.Option("", "--change-cause", help="Recorded in the rollout history."),
) -> None:
    """Roll out a new revision; it takes traffic only once /readyz passes."""
    sb = _sandbox(up=True)
    extra = {"top_k": top_k} if top_k is not None else {}
    rev = sb.deploy(model=model, index=index, image=image, replicas=replicas, change_cause=cause, **extra)
    console.print(f"revision {rev.number} is serving: model={rev.spec.model} index={rev.spec.index}")


@rollout_app.command("history")
@handled
def rollout_history(as_json: bool = JSON) -> None:
    """Revisions with their spec and outcome (as `kubectl rollout history`)."""
    revs = _sandbox().history()
    if as_json:
        return _print_json([r.to_dict() for r in revs])
    table = Table("rev", "state", "model", "index", "image", "replicas", "cause / reason")
    for r in revs:
        note = r.change_cause + (f" [{r.reason}]" if r.reason else "")
        table.add_row(str(r.number), r.state, r.spec.model, r.spec.index, r.spec.image,
                      str(r.spec.replicas), note)
    console.print(table)


@rollout_app.command("undo")
@handled
def rollout_undo(to_revision: Optional[int] = typer.Option(None, "--to-revision")) -> None:
    """Return to the previous (or a named) revision, as `kubectl rollout undo`."""
    rev = _sandbox().rollback(to_revision)
    console.print(f"rolled back: revision {rev.number} serves the spec of revision {rev.rollback_of}")


# --- indexes, images, search ------------------------------------------------------------------
@index_app.command("build")
@handled
def index_build(
    model: str = typer.Option(..., help="Model version that embeds the corpus."),
    corpus: str = typer.Option(..., help="Corpus snapshot, e.g. 2026-11-01."),
    name: Optional[str] = typer.Option(None, help="Index name (default <corpus>-<model>)."),
) -> None:
    """Build an index artifact in the sandbox (vectors, ids, manifest)."""
    manifest = _sandbox(up=True).build_index(model, corpus, name)
    console.print(f"built index {manifest['index_version']}: {manifest['doc_count']} docs, "
                  f"model {manifest['model_version']}, dim {manifest['dimension']}")


@index_app.command("list")
@handled
def index_list(as_json: bool = JSON) -> None:
    """Index artifacts in the sandbox and their manifests."""
    items = _sandbox().indexes()
    if as_json:
        return _print_json(items)
    table = Table("index", "model", "dim", "corpus", "docs", "built", "problem")
    for m in items:
        table.add_row(str(m.get("index_version", m.get("name", "?"))), str(m.get("model_version", "")),
                      str(m.get("dimension", "")), str(m.get("corpus_snapshot", "")),
                      str(m.get("doc_count", "")), str(m.get("built_at", "")), str(m.get("error", "")))
    console.print(table)


@images_app.command("build")
@handled
def images_build() -> None:
    """Build the model API, monitoring and grading-box images; offline base via mmdebstrap
    when no registry answers."""
    settings = Settings.from_env()
    progress = lambda line: console.print(line, highlight=False)  # noqa: E731
    report = build_images(settings, progress=progress)
    box = build_box_image(settings, progress=progress)
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in (report.seconds | box).items())
    console.print(f"built {', '.join([*report.images, settings.images.box])} on {report.base} ({timings})")


@app.command("search")
@handled
def search(text: str, k: Optional[int] = typer.Option(None), as_json: bool = JSON) -> None:
    """Ask the serving revision which runbooks fit TEXT."""
    body = _sandbox().search(text, k)
    if as_json:
        return _print_json(body)
    table = Table("id", "score", "class", "title")
    for r in body["results"]:
        table.add_row(r["id"], f"{r['score']:.3f}", r["incident_class"], r["title"])
    console.print(table)
    console.print(f"served by model {body['model']} index {body['index']} (provider {body.get('provider')})")


@app.command("eval")
@handled
def evaluate(k: int = typer.Option(5), as_json: bool = JSON) -> None:
    """recall@k of the live service on the labelled eval set."""
    report = _sandbox().evaluate(k)
    if as_json:
        return _print_json(asdict(report))
    console.print(report.summary())


@app.command("demo")
@handled
def demo() -> None:
    """Scripted incident end to end: build, up, break, detect, roll back, score."""
    raise typer.Exit(run_demo(Settings.from_env(), console))


def main() -> None:  # pragma: no cover - console script
    app()

