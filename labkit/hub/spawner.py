"""``LabkitSpawner``: a trainee's JupyterLab 4 as the trainee's own Unix account.

JupyterHub's ``LocalProcessSpawner`` (setuid to the account, the hub runs as root) with:

* ``LABKIT_SANDBOX_ID`` = the user name, and ``LABKIT_CONTROL_SOCKET`` / ``LABKIT_CONTROL_TOKEN``
  of the user's endpoint (``sandboxd``): ``connect()`` in the trainee's kernel returns a
  ``RemoteSandbox``; the engine stays with the service, the Docker socket out of reach;
* ``JUPYTER_RUNTIME_DIR`` = the user's own folder under ``/run/labkit-hub`` (kernel sockets);
* ``JUPYTER_CONFIG_PATH`` = the hub's ``trainee-config`` (the exchange, ipc kernels, no
  instructor tools), the kit's environment first on ``PATH``;
* the state it keeps across hub restarts is LocalProcessSpawner's pid: a second login gets the
  same server, a killed server comes back on the same home (notebooks) and the same sandbox id.
"""

from __future__ import annotations

import os
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Unicode

from .config import KIT_ROOT, HubConfig, control_token


class LabkitSpawner(LocalProcessSpawner):  # type: ignore[misc]
    """LocalProcessSpawner with the sandbox's scoped access (see the module doc)."""

    hub_state = Unicode(help="The hub's state folder (labkit.hub.config).").tag(config=True)

    def _cfg(self) -> HubConfig:
        return HubConfig.load(self.hub_state)

    def get_env(self) -> dict[str, Any]:
        env = super().get_env()
        cfg = self._cfg()
        name = self.user.name
        env.update({
            "LABKIT_SANDBOX_ID": name,
            "LABKIT_CONTROL_SOCKET": str(cfg.socket(name)),
            "LABKIT_CONTROL_TOKEN": control_token(cfg, name),
            "JUPYTER_CONFIG_PATH": str(cfg.trainee_config),
            "JUPYTER_RUNTIME_DIR": str(cfg.runtime(name)),  # short unix-socket paths for ipc kernels
            "PATH": os.pathsep.join([str(cfg.user_venv_bin), "/usr/local/bin", "/usr/bin", "/bin"]),
            "PYTHONPATH": str(KIT_ROOT),
            "MPLBACKEND": "Agg",
        })
        for key in ("DOCKER_HOST", "DOCKER_CERT_PATH"):
            env.pop(key, None)
        return env
