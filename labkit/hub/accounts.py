"""Unix accounts of the hub's users: one per trainee or instructor, named as in the roster.

The account name is the hub name, the gradebook's student id (nbgrader's exchange takes the
submitter's id from the process's user) and the sandbox id, so it must be a valid Unix name.
Each account gets the hub's group as its primary group (the firewall matches it), a home of
its own with mode 0700, no password (it logs in through the hub only) and the comment
``COMMENT``: an existing account without it is never taken over or removed.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

from sandbox.errors import InfrastructureError, InvalidInput

COMMENT = "labkit cohort member"
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def check_name(name: str) -> str:
    """``name`` if it can be a hub user and a Unix account; else one line saying the rule."""
    if not _NAME.match(name):
        raise InvalidInput(f"roster id {name!r} cannot be a hub user: use a lowercase letter, then up to 31 of"
                           " a-z 0-9 _ - (edit cohort.yaml)")
    return name


def _run(cmd: list[str]) -> None:
    if shutil.which(cmd[0]) is None:
        raise InfrastructureError(f"{cmd[0]} not found", fix="install Debian's passwd package (apt-get install passwd)")
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise InfrastructureError(f"`{' '.join(cmd)}` failed: {done.stderr.strip()[-300:]}",
                                  fix="run `labkit hub up` as root")


def ensure_group(group: str) -> int:
    """The gid of ``group``, created as a system group if missing."""
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        _run(["groupadd", "--system", group])
        return grp.getgrnam(group).gr_gid


def ours(name: str) -> bool:
    """Whether ``name`` is an account this kit made."""
    try:
        return pwd.getpwnam(name).pw_gecos == COMMENT
    except KeyError:
        return False


def ensure_user(name: str, group: str, home_root: Path) -> pwd.struct_passwd:
    """The account ``name``, made if missing; its home exists with mode 0700."""
    check_name(name)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        entry = None
    if entry is not None and entry.pw_gecos != COMMENT:
        raise InvalidInput(f"{name!r} is already an account of this machine that labkit did not make;"
                           " rename the trainee in cohort.yaml")
    if entry is None:
        home = home_root / name
        _run(["useradd", "--create-home", "--home-dir", str(home), "--gid", group, "--shell", "/bin/bash",
              "--comment", COMMENT, name])
        entry = pwd.getpwnam(name)
    home = Path(entry.pw_dir)
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    os.chmod(home, 0o700)
    return entry


def remove_user(name: str) -> bool:
    """Remove the account and its home, only if this kit made it; whether it did."""
    if not ours(name):
        return False
    _run(["userdel", "--remove", name])
    return True


def remove_group(group: str) -> None:
    """Remove ``group`` once no account has it as its primary group."""
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        return
    if not any(p.pw_gid == gid for p in pwd.getpwall()):
        _run(["groupdel", group])


def private_dir(path: Path, owner: str | None = None, mode: int = 0o700) -> Path:
    """``path`` made with ``mode``, owned by ``owner`` (root when None)."""
    path.mkdir(parents=True, exist_ok=True)
    if owner is not None:
        entry = pwd.getpwnam(owner)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    os.chmod(path, mode)
    return path
