"""``RosterAuthenticator``: the roster's members log in with a password the instructor set.

Why this and not PAM or a sign-up page: a cohort is a dozen people on a known roster. Only the
names of ``Authenticator.allowed_users`` (the roster and the instructors) can log in at all; no
one can register a roster name before its trainee does (NativeAuthenticator's open sign-up
would let them); the hub's accounts have no Unix password, so nothing else on the machine
accepts a login. Passwords are stored as salted scrypt hashes (``hashlib.scrypt``, memory-hard)
in a root-only file; ``labkit hub passwd ID`` sets one (a generated one is printed once).
Five failed attempts on a name lock it for a minute.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from jupyterhub.auth import Authenticator
from traitlets import Float, Integer, Unicode

from .passwords import read_hashes, verify_password

class RosterAuthenticator(Authenticator):  # type: ignore[misc]
    """Roster members with a password hash in ``password_file`` (see the module doc)."""

    password_file = Unicode(help="JSON file of user -> scrypt hash, root-only (labkit hub passwd).").tag(config=True)
    max_failures = Integer(5, help="Failed logins of one name before it is locked.").tag(config=True)
    lock_seconds = Float(60.0, help="How long a name stays locked after max_failures.").tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._failures: dict[str, list[float]] = {}

    def _locked(self, name: str) -> bool:
        recent = [t for t in self._failures.get(name, []) if time.monotonic() - t < self.lock_seconds]
        self._failures[name] = recent
        return len(recent) >= self.max_failures

    async def authenticate(self, handler: Any, data: dict[str, str]) -> str | None:
        name = self.normalize_username(data.get("username", ""))
        if name not in self.allowed_users:
            self.log.warning("login refused: %r is not on the roster", name)
            return None
        if self._locked(name):
            self.log.warning("login refused: %r is locked after %d failures", name, self.max_failures)
            return None
        stored = read_hashes(Path(self.password_file)).get(name)
        if stored and verify_password(data.get("password", ""), stored):
            self._failures.pop(name, None)
            return name
        self._failures.setdefault(name, []).append(time.monotonic())
        return None
