"""Password hashes of the hub's users: salted scrypt (``hashlib.scrypt``, memory-hard) in a
root-only JSON file, ``{user: "scrypt$N$r$p$<salt>$<key>"}``. No password is ever stored."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

N, R, P = 2**14, 8, 1
SCHEME = "scrypt"


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$<salt>$<key>`` (base64) of ``password`` with a fresh salt."""
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return "$".join([SCHEME, str(N), str(R), str(P), base64.b64encode(salt).decode(), base64.b64encode(key).decode()])


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != SCHEME:
            return False
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(base64.b64decode(key)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(key))


def read_hashes(path: Path) -> dict[str, str]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def set_password(path: Path, user: str, password: str) -> None:
    """Store the hash of ``password`` for ``user`` (the file stays root-only, 0600)."""
    hashes = read_hashes(path) | {user: hash_password(password)}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def generate() -> str:
    """A random password to hand a trainee (printed once, never stored)."""
    return secrets.token_urlsafe(12)
