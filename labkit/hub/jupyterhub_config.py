"""JupyterHub's configuration file for ``labkit hub up``: everything comes from the hub's
``hub.json`` in ``$LABKIT_HUB_STATE`` (see ``labkit.hub.config.configure``)."""

import os

from labkit.hub.config import HubConfig, configure

c = get_config()  # noqa: F821 - provided by traitlets when JupyterHub loads this file
configure(c, HubConfig.load(os.environ["LABKIT_HUB_STATE"]))
