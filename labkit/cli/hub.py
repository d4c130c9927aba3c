"""``labkit hub ...``: the cohort on JupyterHub, on this machine (run as root).

    labkit hub up [--course labs] [--ip 127.0.0.1] [--port 8000] [--instructor ID]...
    labkit hub passwd ID [--generate]        # a trainee's or instructor's password (hashed)
    labkit hub status [--json]
    labkit hub down [--sandboxes]

The roster is the course's ``cohort.yaml``; instructors default to its mentors. The hub keeps
its state in ``--state`` (``LABKIT_HUB_STATE``, default /srv/labkit-hub).
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from sandbox.errors import InvalidInput

from ..course import Course
from ..hub import passwords, runner
from ..hub.config import DEFAULT_STATE, HubConfig
from .common import JSON, handled, print_json

hub_app = typer.Typer(help="A cohort on JupyterHub on this machine: up, down, status, passwords.",
                      no_args_is_help=True)
console = Console()
STATE = typer.Option(DEFAULT_STATE, "--state", envvar="LABKIT_HUB_STATE", help="The hub's state folder.")


def _cfg(state: Path) -> HubConfig:
    if not (state / "hub" / "hub.json").is_file():
        raise InvalidInput(f"no hub was set up in {state}", fix="labkit hub up (as root)")
    return HubConfig.load(state)


@hub_app.command("up")
@handled
def up(
    course: Optional[Path] = typer.Option(None, "--course", "--root", envvar="LABKIT_COURSE_ROOT",
                                          help="Course root (with cohort.yaml); default ./labs."),
    ip: str = typer.Option("127.0.0.1", "--ip", help="Address of the hub (0.0.0.0 behind TLS for a cohort)."),
    port: int = typer.Option(8000, "--port", help="Public port of the hub."),
    hub_port: int = typer.Option(8081, "--hub-port", help="Port of the hub's API on 127.0.0.1."),
    proxy_api_port: int = typer.Option(8001, "--proxy-api-port", help="Port of the proxy's API on 127.0.0.1."),
    service_port: int = typer.Option(8090, "--service-port", help="Port of the formgrader service on 127.0.0.1."),
    instructor: Optional[list[str]] = typer.Option(None, "--instructor", help="Instructor id (repeatable);"
                                                   " default: the cohort's mentors."),
    home_root: Path = typer.Option(Path("/home"), "--home-root", help="Where the accounts' homes go."),
    group: str = typer.Option("labkit-cohort", "--group", help="Unix group of the hub's accounts."),
    state: Path = STATE,
) -> None:
    """Start JupyterHub for the course's roster (accounts, formgrader, exchange, sandboxes)."""
    cfg = runner.make_config(Course.locate(course), state, instructor, ip=ip, port=port, hub_port=hub_port,
                             proxy_api_port=proxy_api_port, service_port=service_port, home_root=home_root,
                             group=group)
    runner.up(cfg)
    console.print(f"hub for {len(cfg.trainees)} trainee(s) and {len(cfg.instructors)} instructor(s) at"
                  f" {cfg.hub_url}; formgrader at {cfg.hub_url}/services/{cfg.course_id}/")
    missing = [row["user"] for row in runner.status(cfg)["users"] if not row["password_set"]]
    if missing:
        console.print(f"no password yet for {', '.join(missing)}: labkit hub passwd ID --generate")
    console.print(f"CLI course commands on this hub: export LABKIT_EXCHANGE_ROOT={cfg.exchange}")


@hub_app.command("passwd")
@handled
def passwd(user: str, generate: bool = typer.Option(False, "--generate", help="Make one and print it once."),
           state: Path = STATE) -> None:
    """Set USER's hub password (stored as a salted scrypt hash, never in plain text)."""
    runner.require_root()
    cfg = _cfg(state)
    if user not in cfg.users:
        raise InvalidInput(f"{user!r} is not on this hub's roster; valid: {', '.join(cfg.users)}")
    if generate:
        secret = passwords.generate()
    elif sys.stdin.isatty():
        secret = getpass.getpass(f"password for {user}: ")
    else:
        secret = sys.stdin.readline().rstrip("\n")
    if len(secret) < 8:
        raise InvalidInput("a hub password needs at least 8 characters")
    passwords.set_password(cfg.file("passwords.json"), user, secret)
    console.print(f"password of {user} set" + (f": {secret}  (shown once; hand it over privately)" if generate else ""))


@hub_app.command("status")
@handled
def status(state: Path = STATE, as_json: bool = JSON) -> None:
    """Whether the hub runs, and each user's server and sandbox endpoint."""
    report = runner.status(_cfg(state))
    if as_json:
        return print_json(report)
    title = f"hub {'running (pid %s)' % report['pid'] if report['running'] else 'stopped'} at {report['url']}"
    table = Table("user", "role", "password", "server", "sandbox endpoint", "last activity", title=title)
    for row in report["users"]:
        table.add_row(row["user"], row["role"], "set" if row["password_set"] else "none", row["server"],
                      "open" if row["sandbox_endpoint"] else "-", str(row["last_activity"] or "-"))
    console.print(table)


@hub_app.command("down")
@handled
def down(sandboxes: bool = typer.Option(False, "--sandboxes", help="Also tear every user's sandbox down."),
         state: Path = STATE) -> None:
    """Stop the users' servers and the hub; sandboxes stay unless --sandboxes."""
    stopped = runner.down(_cfg(state), sandboxes=sandboxes)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
