"""Start, stop and report on the cohort's hub (``labkit hub up|down|status``).

``up`` checks the machine first (root, Docker, disk, the proxy, a private course, a kit the
trainees can read), makes the accounts, the state folder and the firewall, writes the hub's
configuration and starts ``jupyterhub`` in a session of its own; it returns once the hub
answers. ``down`` stops the users' servers through the hub's API, then the hub (which stops
its services and the proxy), and lifts the firewall; sandboxes stay unless asked.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from sandbox import make_sandbox
from sandbox.errors import InfrastructureError, InvalidInput, ToolMissing
from sandbox.settings import Settings

from .. import cohort as cohort_mod
from ..course import Course
from . import accounts, firewall
from .passwords import read_hashes
from .config import KIT_ROOT, HubConfig, formgrader_files, trainee_files

CONFIG_FILE = Path(__file__).with_name("jupyterhub_config.py")
MIN_FREE_BYTES = 2 * 1024**3


def require_root() -> None:
    if os.geteuid() != 0:
        raise InfrastructureError("the hub makes a Unix account per trainee and runs their servers as them",
                                  fix="run it as root: sudo make hub (or sudo labkit hub up)")


def check_disk(path: Path) -> None:
    probe = next(p for p in [path, *path.parents] if p.exists())
    free = shutil.disk_usage(probe).free
    if free < MIN_FREE_BYTES:
        raise InfrastructureError(f"the disk holding {probe} is full ({free / 1024**3:.1f} GiB free, the hub"
                                  " needs 2 GiB for servers, submissions and sandboxes)",
                                  fix="free space (docker system prune; old grade-logs) and run it again")


def check_private(course_root: Path) -> None:
    """The course (solutions, submissions, the gradebook) must not be readable by trainees."""
    if course_root.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InvalidInput(f"the course {course_root} is readable by other accounts; trainees would read the"
                           " solutions in source/", fix=f"chmod -R go-rwx {course_root}")


def check_reachable(path: Path, what: str, fix: str) -> None:
    """Trainees' accounts must traverse every folder down to ``path`` (symlinks resolved)."""
    if not path.exists():
        raise ToolMissing(what, fix)
    for folder in [path.resolve(), *path.resolve().parents]:
        if folder.is_dir() and not folder.stat().st_mode & stat.S_IXOTH:
            raise InvalidInput(f"trainees' accounts cannot reach {what} ({folder} is not world-traversable)", fix=fix)


def preflight(cfg: HubConfig) -> None:
    require_root()
    check_disk(cfg.state)
    if not cfg.chp.is_file():
        raise ToolMissing("configurable-http-proxy", "make hub (it runs .ci/ensure-hub: npm ci in hub/)")
    if shutil.which("jupyterhub", path=str(cfg.venv_bin)) is None:
        raise ToolMissing("jupyterhub", "pip install -e '.[hub]' (or make setup)")
    check_private(cfg.course_root)
    check_reachable(cfg.user_venv_bin / "python", "the trainees' Python", "make hub (.ci/ensure-hub makes one)")
    check_reachable(cfg.user_venv_bin / "jupyterhub-singleuser", "jupyterhub-singleuser", "make hub")
    check_reachable(KIT_ROOT, "the kit", f"chmod o+rx the folders above {KIT_ROOT}, or check it out under /opt")
    make_sandbox(Settings.from_env()).preflight()  # a stopped Docker daemon: one line, with the fix


def make_config(course: Course, state: Path, instructors: list[str] | None = None, **options: Any) -> HubConfig:
    """The hub's settings for ``course``'s cohort (instructors default to its mentors)."""
    cohort = cohort_mod.load(course.root)
    trainees = tuple(accounts.check_name(t.id) for t in cohort.trainees)
    staff = tuple(accounts.check_name(i) for i in (instructors or cohort.mentors))
    both = sorted(set(trainees) & set(staff))
    if both:
        raise InvalidInput(f"{', '.join(both)} cannot be both trainee and instructor")
    return HubConfig(state=state.resolve(), course_root=course.root, course_id=course.course_id,
                     trainees=trainees, instructors=staff, **options)


def _write(folder: Path, files: dict[str, str], mode: int = 0o644) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o755 if mode & 0o004 else 0o700)
        path.write_text(text, encoding="utf-8")
        os.chmod(path, mode)


def prepare(cfg: HubConfig) -> None:
    """Accounts, folders with their modes, secrets, the trainees' and the formgrader's config."""
    accounts.ensure_group(cfg.group)
    for user in cfg.users:
        accounts.ensure_user(user, cfg.group, cfg.home_root)
    accounts.private_dir(cfg.state, mode=0o755)
    accounts.private_dir(cfg.hub_dir)
    accounts.private_dir(cfg.exchange, mode=0o777)  # nbgrader: "chmod ugo+rw" the exchange root
    accounts.private_dir(cfg.control, mode=0o711)
    accounts.private_dir(cfg.audit)
    accounts.private_dir(cfg.runtime_root, mode=0o755)
    for user in cfg.users:
        accounts.private_dir(cfg.runtime(user), owner=user)
    for name in ("control.secret", "admin.token"):
        path = cfg.file(name)
        if not path.exists():
            path.write_text(secrets.token_hex(32))
            os.chmod(path, 0o600)
    accounts.private_dir(cfg.trainee_config, mode=0o755)
    _write(cfg.trainee_config, trainee_files(cfg))
    accounts.private_dir(cfg.formgrader_config)
    _write(cfg.formgrader_config, formgrader_files(cfg), mode=0o600)
    cfg.save()


def running_pid(cfg: HubConfig) -> int | None:
    path = cfg.file("jupyterhub.pid")
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def up(cfg: HubConfig, timeout_s: float = 120.0) -> HubConfig:
    """Start the hub for ``cfg`` (see the module doc); returns once it answers."""
    preflight(cfg)
    if running_pid(cfg):
        raise InvalidInput(f"a hub already runs from {cfg.state} (pid {running_pid(cfg)})",
                           fix="labkit hub status, or labkit hub down first")
    prepare(cfg)
    firewall.apply(cfg.group, cfg.hub_port)
    log = cfg.file("jupyterhub.log").open("ab")
    env = os.environ | {"LABKIT_HUB_STATE": str(cfg.state),
                        "PATH": os.pathsep.join([str(cfg.venv_bin), os.environ.get("PATH", "/usr/bin:/bin")])}
    subprocess.Popen([str(cfg.venv_bin / "jupyterhub"), "-f", str(CONFIG_FILE)], cwd=cfg.hub_dir, env=env,
                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    wait_ready(cfg, timeout_s)
    return cfg


def wait_ready(cfg: HubConfig, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{cfg.hub_url}/hub/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    tail = cfg.file("jupyterhub.log").read_text(errors="replace").splitlines()[-5:]
    raise InfrastructureError(f"the hub did not answer on {cfg.hub_url} within {timeout_s:g} s: {' | '.join(tail)}",
                              fix=f"read {cfg.file('jupyterhub.log')}")


def api(cfg: HubConfig, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A request to the hub's REST API as the ``labkit-admin`` service."""
    token = cfg.file("admin.token").read_text().strip()
    return httpx.request(method, f"http://127.0.0.1:{cfg.hub_port}/hub/api{path}",
                         headers={"Authorization": f"token {token}"}, timeout=30, **kwargs)


def down(cfg: HubConfig, sandboxes: bool = False, timeout_s: float = 60.0) -> list[str]:
    """Stop every server, the hub and the firewall; tear sandboxes down if asked. What stopped."""
    require_root()
    stopped: list[str] = []
    pid = running_pid(cfg)
    if pid:
        try:
            running = [u["name"] for u in api(cfg, "GET", "/users").json() if u.get("servers")]
            for user in running:
                api(cfg, "DELETE", f"/users/{user}/server")
                stopped.append(f"server of {user}")
        except (httpx.HTTPError, ValueError):
            pass
        _stop_servers(cfg, timeout_s)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while running_pid(cfg) and time.monotonic() < deadline:
            time.sleep(0.2)
        stopped.append(f"hub (pid {pid})")
    firewall.remove(cfg.group)
    if sandboxes:
        settings = Settings.from_env()
        for user in cfg.users:
            if make_sandbox(settings.with_(sandbox_id=user)).down():
                stopped.append(f"sandbox {user}")
    return stopped


def _stop_servers(cfg: HubConfig, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            users = api(cfg, "GET", "/users").json()
        except (httpx.HTTPError, ValueError):
            return
        if not any(u.get("servers") for u in users):
            return
        time.sleep(0.5)


def status(cfg: HubConfig) -> dict[str, Any]:
    """The hub's process, URL and, per user, role, password set, server and sandbox socket."""
    pid = running_pid(cfg)
    users: dict[str, Any] = {}
    if pid:
        try:
            users = {u["name"]: u for u in api(cfg, "GET", "/users").json()}
        except (httpx.HTTPError, ValueError):
            users = {}
    hashes = read_hashes(cfg.file("passwords.json"))
    rows = []
    for user in cfg.users:
        server = (users.get(user, {}).get("servers") or {}).get("", {})
        rows.append({"user": user, "role": "instructor" if user in cfg.instructors else "trainee",
                     "password_set": user in hashes, "server": "ready" if server.get("ready") else
                     ("starting" if server else "stopped"), "last_activity": users.get(user, {}).get("last_activity"),
                     "sandbox_endpoint": cfg.socket(user).exists()})
    return {"running": bool(pid), "pid": pid, "url": cfg.hub_url, "state": str(cfg.state),
            "course": str(cfg.course_root), "exchange": str(cfg.exchange),
            "firewall": firewall.active(cfg.group), "users": rows, "python": sys.executable}
