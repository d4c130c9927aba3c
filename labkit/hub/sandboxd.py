"""``labkit-sandboxes``: the Hub-managed service that holds the engine and serves each hub user's
sandbox through a control endpoint of its own (``sandbox.control``).

    python -m labkit.hub.sandboxd <hub state folder>

Why a service rather than Docker access for the trainees: whoever can open the Docker socket
is root on the machine and can read or stop every other trainee's sandbox. The service runs
as root (with the hub), one ``ControlEndpoint`` per user on ``<state>/control/<user>/control.sock``;
that folder is owned by the user and has mode 0700, so only that user's processes can open the
socket, and the endpoint also wants the user's bearer token (``config.control_token``). Each
endpoint authorises every operation as a grading box's does (no healing, no fault records, no
teardown) and audits it to ``<state>/audit/<user>.jsonl``. One process for the cohort costs one
interpreter, not one per trainee.

The sandbox is named by the user (``LABKIT_SANDBOX_ID``) and is brought up by the trainee's
first ``connect()``; it outlives the service, the hub and the trainee's server (a restart
finds the same sandbox). JupyterHub restarts the service if it exits.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from sandbox import make_sandbox
from sandbox.control.server import ControlEndpoint
from sandbox.settings import Settings

from .accounts import private_dir
from .config import HubConfig, control_token


def open_endpoint(cfg: HubConfig, user: str, settings: Settings) -> ControlEndpoint:
    """Serve ``user``'s sandbox on its socket (the folder made and owned by the user first)."""
    private_dir(cfg.socket(user).parent, owner=user, mode=0o700)
    endpoint = ControlEndpoint(make_sandbox(settings.with_(sandbox_id=user)), cfg.socket(user),
                               cfg.audit / f"{user}.jsonl", actor=user)  # the records name the hub user
    endpoint.token = control_token(cfg, user)
    return endpoint.__enter__()


def serve(cfg: HubConfig, stop: threading.Event) -> None:
    """Open every user's endpoint; close them all when ``stop`` is set (sandboxes stay up)."""
    private_dir(cfg.audit)
    settings = Settings.from_env()
    endpoints = []
    try:
        for user in cfg.users:
            endpoints.append(open_endpoint(cfg, user, settings))
        print(f"labkit-sandboxes: serving {len(endpoints)} sandbox endpoint(s) under {cfg.control}", flush=True)
        stop.wait()
    finally:
        for endpoint in endpoints:
            endpoint.__exit__()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m labkit.hub.sandboxd <hub state folder>", file=sys.stderr)
        return 2
    cfg = HubConfig.load(Path(argv[0]))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    serve(cfg, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
