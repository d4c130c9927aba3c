"""``labkit fault list|describe|inject|status|heal``."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sandbox.faults import active_faults, heal, inject, load_catalog, probe_steady_state

from .common import JSON, handled, sandbox_from_env

fault_app = typer.Typer(help="Inject, observe and heal faults from the catalog.", no_args_is_help=True)
console = Console()


@fault_app.command("list")
@handled
def fault_list(as_json: bool = JSON) -> None:
    """Every fault in the catalog."""

    catalog = load_catalog()
    if as_json:
        sys.stdout.write(json.dumps([asdict(f) for f in catalog.faults], indent=2) + "\n")
        return
    table = Table("id", "class", "severity", "title")
    for f in catalog.faults:
        table.add_row(f.id, f.incident_class, f.severity, f.title)
    console.print(table)


@fault_app.command("describe")
@handled
def fault_describe(fault_id: str, as_json: bool = JSON) -> None:
    """What a fault breaks, the signals that reveal it, and how it is healed."""

    f = load_catalog().get(fault_id)
    if as_json:
        sys.stdout.write(json.dumps(asdict(f), indent=2) + "\n")
        return
    console.print(f"[bold]{f.id}[/] ({f.incident_class}, {f.severity}): {f.title}\n{f.breaks}\n")
    console.print("[bold]signals[/]")
    for s in f.signals:
        console.print(f"  - {escape('[' + s.kind + ']')} {escape(s.what)}")
    console.print(f"[bold]inject[/]: {f.inject.name} {f.inject.args or ''}")
    console.print("[bold]steady state[/]: " + ", ".join(f"{p.name} {p.args or ''}".strip() for p in f.steady_state))
    console.print(f"[bold]remediation[/]: {f.remediation}\n[bold]heal[/]: {f.heal.name}")


@fault_app.command("inject")
@handled
def fault_inject(fault_id: str) -> None:
    """Inject a fault into the sandbox (harmless if it is already active)."""

    out = inject(sandbox_from_env(), fault_id)
    console.print(f"{fault_id}: {'injected' if out['injected'] else out['reason']}")


@fault_app.command("heal")
@handled
def fault_heal(fault_id: str) -> None:
    """Restore the pre-fault state exactly."""

    out = heal(sandbox_from_env(), fault_id)
    console.print(f"{fault_id}: {'healed' if out['healed'] else out['reason']}")


@fault_app.command("status")
@handled
def fault_status(as_json: bool = JSON) -> None:
    """Active faults and whether their steady state holds now."""

    sb = sandbox_from_env()
    report = {fid: [asdict(p) for p in probe_steady_state(sb, fid)] for fid in active_faults(sb)}
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    if not report:
        console.print("no active faults")
    for fid, probes in report.items():
        console.print(f"[bold]{fid}[/]")
        for p in probes:
            mark = "[green]holds[/]" if p["ok"] else "[red]broken[/]"
            console.print(f"  {mark} {p['name']}: {p['observed']} (expected {p['expected']})")
