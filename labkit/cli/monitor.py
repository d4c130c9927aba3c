"""``labkit monitor query|range|alerts|rules check|test|load|unload|list`` over the sandbox's
Prometheus and Alertmanager. Bad PromQL, a rejected rule file and failed rule tests exit 2
with Prometheus's or promtool's own message; so does a monitoring stack that is down."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .common import JSON, handled, print_json, sandbox_from_env

monitor_app = typer.Typer(help="PromQL, alerts and rule files of the sandbox's Prometheus.", no_args_is_help=True)
rules_app = typer.Typer(help="Check, test and load alerting and recording rule files.", no_args_is_help=True)
monitor_app.add_typer(rules_app, name="rules")
console = Console()


def _labels(labels: dict[str, str]) -> str:
    name = labels.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return escape(f"{name}{{{rest}}}" if rest or not name else name)


@monitor_app.command("query")
@handled
def query(promql: str, as_json: bool = JSON) -> None:
    """Instant PromQL query."""
    result = sandbox_from_env().query(promql)
    if as_json:
        print_json([asdict(r) for r in result])
        return
    for r in result:
        value = getattr(r, "value", None)
        console.print(f"{_labels(r.labels)}  {value if value is not None else r.values[-5:]}")


@monitor_app.command("range")
@handled
def query_range(promql: str, since: float = typer.Option(300, help="seconds back from now"),
                step: float = typer.Option(0, help="seconds between points; 0 = about 250 points"),
                as_json: bool = JSON) -> None:
    """Range PromQL query over the last ``--since`` seconds."""
    result = sandbox_from_env().query_range(promql, -abs(since), None, step or None)
    if as_json:
        print_json([asdict(r) for r in result])
        return
    for s in result:
        console.print(f"{_labels(s.labels)}  {len(s.values)} points, last {s.values[-1] if s.values else '-'}")


@monitor_app.command("alerts")
@handled
def alerts(as_json: bool = JSON) -> None:
    """Alerts firing now (from Alertmanager)."""
    result = sandbox_from_env().alerts()
    if as_json:
        print_json([asdict(a) for a in result])
        return
    table = Table("alert", "severity", "since", "summary")
    for a in result:
        table.add_row(a.name, a.labels.get("severity", ""), a.starts_at, a.annotations.get("summary", ""))
    console.print(table)


@rules_app.command("check")
@handled
def rules_check(path: Path) -> None:
    """``promtool check rules PATH``."""
    console.print(escape(sandbox_from_env().rules.check(path)))


@rules_app.command("test")
@handled
def rules_test(path: Path, tests: Path) -> None:
    """``promtool test rules TESTS`` against the rules in PATH."""
    console.print(escape(sandbox_from_env().rules.test(path, tests)))


@rules_app.command("load")
@handled
def rules_load(path: Path) -> None:
    """Validate PATH with promtool and load it into the sandbox's Prometheus."""
    loaded = sandbox_from_env().rules.load(path)
    console.print(f"loaded {len(loaded)} rules from {escape(str(path))}: {', '.join(r.name for r in loaded)}")


@rules_app.command("unload")
@handled
def rules_unload(name: str) -> None:
    """Remove a loaded rule file by name."""
    sandbox_from_env().rules.unload(name)
    console.print(f"unloaded {escape(name)}")


@rules_app.command("list")
@handled
def rules_list(as_json: bool = JSON) -> None:
    """Every rule Prometheus evaluates, with its state."""
    loaded = sandbox_from_env().rules.loaded()
    if as_json:
        print_json([asdict(r) for r in loaded])
        return
    table = Table("file", "group", "rule", "kind", "state", "health")
    for r in loaded:
        table.add_row(Path(r.file).name, r.group, r.name, r.kind, r.state, r.health)
    console.print(table)
