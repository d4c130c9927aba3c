"""A cohort on JupyterHub, on one machine: ``labkit hub up|down|status|passwd``.

JupyterHub (PyPI) with configurable-http-proxy (npm, ``hub/package.json``) serves the course's
roster (``cohort.yaml``) and its instructors:

* ``RosterAuthenticator`` (``auth``): only roster members log in; passwords are kept as salted
  scrypt hashes in a root-only file, set by ``labkit hub passwd``.
* ``LabkitSpawner`` (``spawner``): each trainee's JupyterLab 4 runs as a Unix account of its own
  (``accounts``), home 0700, ``LABKIT_SANDBOX_ID`` = the user name, and reaches its sandbox only
  through the control endpoint the ``labkit-sandboxes`` service (``sandboxd``) serves on a socket
  in a folder only that user can open. The trainees' group has no network but the hub's API
  (``firewall``): no other trainee's server, sandbox port or container address, and no Docker
  socket (they are not in the ``docker`` group).
* The formgrader runs as a Hub-managed service for the ``formgrade-<course>`` group, its
  Content-Security-Policy allowing the frame JupyterLab shows it in, and its autograde button
  going through ``labkit.course_grade`` (``formgrade``): a box and a fresh sandbox per submission.
* The nbgrader exchange is a folder of the hub's state, with the permissions nbgrader documents.

``config`` holds the layout and writes ``jupyterhub_config`` input; ``runner`` starts and stops.
"""
