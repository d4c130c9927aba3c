"""The hub's settings (``HubConfig``, saved as ``<state>/hub/hub.json``), the layout of its state
folder, and ``configure(c, cfg)``, which turns them into JupyterHub's configuration.

    <state>/                     0755  (trainees traverse it)
      hub/                       0700  JupyterHub's database, cookie secret, passwords, tokens, logs
      exchange/                  0777  nbgrader's exchange (nbgrader sets its course folders' modes)
      control/<user>/            0700  owned by <user>: the socket of that user's sandbox endpoint
      trainee-config/            0755  Jupyter and nbgrader configuration of the trainees' servers
      formgrader-config/         0700  Jupyter configuration of the formgrader service
      audit/                     0700  each user's control endpoint audit log
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KIT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE = Path("/srv/labkit-hub")
SANDBOXES_SERVICE = "labkit-sandboxes"
ADMIN_SERVICE = "labkit-admin"
#: The frame JupyterLab shows the formgrader in is on the service's own origin.
FORMGRADER_CSP = "frame-ancestors 'self'"
#: What of the instructor's environment the hub's services keep.
KEEP_ENV = ("PATH", "LANG", "LC_ALL", "DOCKER_HOST", "PYTHONPATH", "VIRTUAL_ENV", "CI")


def world_reachable(path: Path) -> bool:
    """Whether another account can traverse every folder down to ``path`` (symlinks resolved)."""
    real = path.resolve()
    return all(p.stat().st_mode & 0o001 for p in real.parents if p.exists())


def trainee_python_bin() -> Path:
    own = Path(sys.executable)
    if world_reachable(own):
        return own.parent
    return Path(os.environ.get("LABKIT_HUB_VENV", "/opt/labkit-hub/venv")) / "bin"


@dataclass(frozen=True)
class HubConfig:
    """One cohort's hub on this machine."""

    state: Path = DEFAULT_STATE
    """Folder of everything the hub keeps (see the module doc)."""
    course_root: Path = Path("labs")
    """The nbgrader course the formgrader serves (private to root: it holds the solutions)."""
    course_id: str = "labkit"
    """nbgrader's ``CourseDirectory.course_id`` of that course."""
    trainees: tuple[str, ...] = ()
    """Hub (= Unix = gradebook) names of the roster's trainees."""
    instructors: tuple[str, ...] = ()
    """Hub names of the instructors: admins and the ``formgrade-<course>`` group."""
    ip: str = "127.0.0.1"
    """Address the proxy listens on (put TLS in front before opening it beyond this host)."""
    port: int = 8000
    """Public port of the proxy."""
    hub_port: int = 8081
    """Port of the hub's own API on 127.0.0.1 (the only address trainees' processes reach)."""
    proxy_api_port: int = 8001
    """Port of configurable-http-proxy's REST API on 127.0.0.1."""
    service_port: int = 8090
    """Port of the formgrader service on 127.0.0.1."""
    home_root: Path = Path("/home")
    """Where the users' home folders are made (``<home_root>/<user>``, 0700)."""
    group: str = "labkit-cohort"
    """Primary Unix group of every hub user (the firewall matches it)."""
    venv_bin: Path = field(default_factory=lambda: Path(sys.executable).parent)
    """``bin`` of the Python environment with the kit, JupyterLab and nbgrader."""
    user_venv_bin: Path = field(default_factory=lambda: trainee_python_bin())
    """``bin`` of the Python the trainees' servers run (the kit's own when every folder down to
    its interpreter is world-traversable, else ``$LABKIT_HUB_VENV``, made by ``.ci/ensure-hub``)."""
    chp: Path = KIT_ROOT / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
    """configurable-http-proxy, installed from npm by ``.ci/ensure-hub`` (``make hub``)."""
    runtime_root: Path = Path("/run/labkit-hub")
    """Root-owned parent of each user's Jupyter runtime folder (``<runtime_root>/<user>``, 0700):
    kernels talk ZeroMQ over unix sockets there, whose paths must stay under 107 bytes whatever
    ``home_root`` is, and no trainee can make another's folder first."""
    grade_timeout_s: float = 600.0
    """Seconds one submission may take when autograded from the formgrader."""

    # --- the layout ---------------------------------------------------------------------------
    @property
    def hub_dir(self) -> Path:
        return self.state / "hub"

    @property
    def exchange(self) -> Path:
        return self.state / "exchange"

    @property
    def control(self) -> Path:
        return self.state / "control"

    @property
    def audit(self) -> Path:
        return self.state / "audit"

    @property
    def trainee_config(self) -> Path:
        return self.state / "trainee-config"

    @property
    def formgrader_config(self) -> Path:
        return self.state / "formgrader-config"

    @property
    def users(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.trainees + self.instructors))

    def file(self, name: str) -> Path:
        """``hub.json``, ``passwords.json``, ``control.secret``, ``admin.token``, ``jupyterhub.log``..."""
        return self.hub_dir / name

    def runtime(self, user: str) -> Path:
        return self.runtime_root / user

    def socket(self, user: str) -> Path:
        return self.control / user / "control.sock"

    @property
    def hub_url(self) -> str:
        host = "127.0.0.1" if self.ip in ("0.0.0.0", "") else self.ip
        return f"http://{host}:{self.port}"

    # --- persistence ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> HubConfig:
        kinds = {f.name: f.type for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in kinds:
                continue
            kind = str(kinds[key])
            values[key] = Path(value) if "Path" in kind else tuple(value) if "tuple" in kind else value
        return cls(**values)

    def save(self) -> Path:
        path = self.file("hub.json")
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        os.chmod(path, 0o600)
        return path

    @classmethod
    def load(cls, state: Path | str) -> HubConfig:
        path = Path(state) / "hub" / "hub.json"
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


def control_token(cfg: HubConfig, user: str) -> str:
    """The bearer token of ``user``'s control endpoint: HMAC of the name under the hub's secret
    (root-only), so the endpoint and the spawner agree across restarts without storing tokens."""
    secret = cfg.file("control.secret").read_bytes()
    return hmac.new(secret, user.encode(), hashlib.sha256).hexdigest()


def service_env(cfg: HubConfig, **extra: str) -> dict[str, str]:
    """The environment of the hub's services: the kit first on PATH and PYTHONPATH."""
    env = {k: os.environ[k] for k in KEEP_ENV if k in os.environ}
    env["PATH"] = os.pathsep.join([str(cfg.venv_bin), env.get("PATH", "/usr/bin:/bin")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(KIT_ROOT), env.get("PYTHONPATH")]))
    env.update({k: v for k, v in os.environ.items() if k.startswith("LABKIT_")})
    env["LABKIT_HUB_STATE"] = str(cfg.state)
    env.update(extra)
    return env


def configure(c: Any, cfg: HubConfig) -> None:
    """Fill JupyterHub's config object ``c`` for ``cfg`` (``jupyterhub_config.py`` calls this)."""
    course = cfg.course_id
    c.JupyterHub.bind_url = f"http://{cfg.ip}:{cfg.port}"
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{cfg.hub_port}"
    c.JupyterHub.db_url = f"sqlite:///{cfg.file('jupyterhub.sqlite')}"
    c.JupyterHub.cookie_secret_file = str(cfg.file("jupyterhub_cookie_secret"))
    c.JupyterHub.cleanup_servers = False  # a hub restart leaves the trainees' servers running
    c.JupyterHub.pid_file = str(cfg.file("jupyterhub.pid"))
    c.ConfigurableHTTPProxy.command = [str(cfg.chp)]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{cfg.proxy_api_port}"
    c.ConfigurableHTTPProxy.pid_file = str(cfg.file("proxy.pid"))

    c.JupyterHub.authenticator_class = "labkit.hub.auth.RosterAuthenticator"
    c.RosterAuthenticator.password_file = str(cfg.file("passwords.json"))
    c.Authenticator.allowed_users = set(cfg.users)
    c.Authenticator.admin_users = set(cfg.instructors)

    c.JupyterHub.spawner_class = "labkit.hub.spawner.LabkitSpawner"
    c.LabkitSpawner.hub_state = str(cfg.state)
    c.Spawner.cmd = [str(cfg.user_venv_bin / "jupyterhub-singleuser")]
    c.Spawner.default_url = "/lab"
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 120

    c.JupyterHub.load_groups = {f"formgrade-{course}": {"users": list(cfg.instructors)},
                                f"nbgrader-{course}": {"users": list(cfg.trainees)}}
    c.JupyterHub.load_roles = [
        {"name": "formgraders", "groups": [f"formgrade-{course}"], "scopes": [f"access:services!service={course}"]},
        {"name": "formgrader-service", "services": [course],
         "scopes": ["list:users", "read:users:groups", "list:groups", "read:groups"]},
        {"name": "labkit-admin", "services": [ADMIN_SERVICE],
         "scopes": ["list:users", "read:users", "read:servers", "admin:servers", "read:hub"]},
    ]
    c.JupyterHub.services = [
        {"name": course, "url": f"http://127.0.0.1:{cfg.service_port}", "oauth_no_confirm": True,
         "command": [str(cfg.venv_bin / "jupyterhub-singleuser"), f"--ServerApp.root_dir={cfg.course_root}",
                     "--ServerApp.default_url=/lab", "--allow-root"],
         "cwd": str(cfg.course_root),
         "environment": service_env(cfg, JUPYTER_CONFIG_DIR=str(cfg.formgrader_config),
                                    LABKIT_EXCHANGE_ROOT=str(cfg.exchange))},
        {"name": SANDBOXES_SERVICE, "command": [sys.executable, "-m", "labkit.hub.sandboxd", str(cfg.state)],
         "environment": service_env(cfg)},
        {"name": ADMIN_SERVICE, "api_token": cfg.file("admin.token").read_text().strip()},
    ]


def trainee_files(cfg: HubConfig) -> dict[str, str]:
    """Files of ``trainee-config/`` (the trainees' ``JUPYTER_CONFIG_PATH``): nbgrader finds the
    course's exchange; kernels speak ZeroMQ over unix sockets (the trainees' group has no
    loopback TCP but the hub's API); the instructor's nbgrader tools are off."""
    nbgrader = (f"c = get_config()  # noqa: F821\nc.CourseDirectory.course_id = {cfg.course_id!r}\n"
                f"c.Exchange.root = {str(cfg.exchange)!r}\n")
    server = {"KernelManager": {"transport": "ipc"},
              "ServerApp": {"jpserver_extensions": {"nbgrader.server_extensions.formgrader": False,
                                                    "nbgrader.server_extensions.course_list": False}}}
    page = {"disabledExtensions": {f"@jupyter/nbgrader:{p}": True
                                   for p in ("formgrader", "create-assignment", "course-list")}}
    return {"nbgrader_config.py": nbgrader, "jupyter_server_config.json": json.dumps(server, indent=1),
            "labconfig/page_config.json": json.dumps(page, indent=1)}


def formgrader_files(cfg: HubConfig) -> dict[str, str]:
    """Files of ``formgrader-config/``: the CSP that lets JupyterLab frame the formgrader (JupyterHub
    >= 4.1 sends ``frame-ancestors 'none'`` otherwise, and the panel stays blank), the labkit
    extension whose autograde goes through the grading boxes, no terminals (the service is root)."""
    server = {"ServerApp": {"tornado_settings": {"headers": {"Content-Security-Policy": FORMGRADER_CSP}},
                            "terminals_enabled": False,
                            "jpserver_extensions": {"labkit.hub.formgrade": True,
                                                    "nbgrader.server_extensions.assignment_list": False}}}
    return {"jupyter_server_config.json": json.dumps(server, indent=1)}
