"""What every ``labkit`` sub-command shares: error handling, ``--json``, the sandbox."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from sandbox import make_sandbox
from sandbox.errors import LabkitError
from sandbox.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])
err_console = Console(stderr=True)
JSON = typer.Option(False, "--json", help="Print machine-readable JSON.")


def handled(fn: F) -> F:
    """Turn ``LabkitError`` into one line on stderr and its family's exit status."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LabkitError as e:
            err_console.print(f"[bold red]error:[/] {e}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None

    return wrapper  # type: ignore[return-value]


def sandbox_from_env(up: bool = False):
    """The sandbox the environment names (``LABKIT_SANDBOX_ID``, ``LABKIT_BACKEND``)."""
    sb = make_sandbox(Settings.from_env())
    return sb.up() if up else sb


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
