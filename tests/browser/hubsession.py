"""A real cohort hub for the browser tests: ``labkit hub up`` on free ports, for a private copy of
the course holding the fixture lab, with trainees (two by default) and an instructor whose names carry a
random suffix (their Unix accounts, group, firewall chain, sandboxes and state are removed
afterwards, by name; nothing else is touched)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import psutil

from labkit import cohort as cohort_mod
from labkit.course import Course
from labkit.hub import accounts, passwords, runner
from labkit.hub.config import HubConfig

KIT = Path(__file__).resolve().parents[2]
LAB = "lab00-fixture"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class HubSession:
    cfg: HubConfig
    course: Course
    trainees: tuple[str, ...]
    instructor: str
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.cfg.hub_url

    def as_user(self, user: str, code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``python -c code`` as ``user``'s account, with the environment their server has."""
        entry = pwd.getpwnam(user)
        env = {"HOME": entry.pw_dir, "PATH": f"{self.cfg.user_venv_bin}:/usr/bin:/bin", "PYTHONPATH": str(KIT)}
        return subprocess.run([str(self.cfg.user_venv_bin / "python"), "-c", code], env=env, capture_output=True,
                              text=True, timeout=timeout, cwd="/", user=entry.pw_uid, group=entry.pw_gid,
                              extra_groups=[])

    def ensure_server(self, user: str, timeout: float = 180) -> None:
        """``user``'s server running (started through the hub's API if it is not)."""
        runner.api(self.cfg, "POST", f"/users/{user}/server")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = (runner.api(self.cfg, "GET", f"/users/{user}").json().get("servers") or {}).get("", {})
            if server.get("ready"):
                return
            time.sleep(1)
        raise AssertionError(f"the server of {user} did not start in {timeout:g} s")

    def home(self, user: str) -> Path:
        return Path(pwd.getpwnam(user).pw_dir)


def make_course(root: Path, trainees: tuple[str, ...], mentor: str) -> Course:
    """A private course (0700) with the repo's config and the fixture lab, generated."""
    sys.path.insert(0, str(KIT / "tests" / "notebooks"))
    from fixture_lab import write_fixture_lab

    root.mkdir(parents=True)
    shutil.copy(KIT / "labs" / "nbgrader_config.py", root / "nbgrader_config.py")
    write_fixture_lab(root)
    os.chmod(root, 0o700)
    course = Course(root.resolve())
    course.nbgrader("generate_assignment", LAB, "--create", "--force")
    cohort_mod.save(root, cohort_mod.make_cohort("2027-01-11", [cohort_mod.make_trainee(t, "sre", mentor)
                                                                for t in trainees]))
    return course


def start(tmp: Path, trainees: int = 2, prefix: str = "hb") -> HubSession:
    """The hub up for ``trainees`` trainees (``<prefix><tag>a``, ``...b``, ...) and an instructor
    (``<prefix><tag>m``), every user with a password; torn down again if any step fails.
    ``make bench`` uses another ``prefix``, so its cohort and a test run's never share a name."""
    if not 1 <= trainees <= 12:  # a..l: "m" is the instructor's
        raise ValueError(f"1 to 12 trainees, got {trainees}")
    tag = uuid.uuid4().hex[:6]
    names = tuple(f"{prefix}{tag}{chr(ord('a') + i)}" for i in range(trainees))
    instructor = f"{prefix}{tag}m"
    course = make_course(tmp / "course", names, instructor)
    base = Path(f"/tmp/lk{prefix}-{tag}")
    (base / "home").mkdir(parents=True)
    os.chmod(base, 0o755)
    os.chmod(base / "home", 0o755)
    cfg = runner.make_config(course, base / "state", None, port=free_port(), hub_port=free_port(),
                             proxy_api_port=free_port(), service_port=free_port(), home_root=base / "home",
                             group=f"lk{prefix}-{tag}", grade_timeout_s=300.0)
    session = HubSession(cfg, course, names, instructor)
    try:
        runner.up(cfg)
        for user in cfg.users:
            session.secrets[user] = passwords.generate()
            passwords.set_password(cfg.file("passwords.json"), user, session.secrets[user])
    except BaseException:
        stop(session)
        raise
    return session


def stop(session: HubSession) -> None:
    cfg = session.cfg
    try:
        runner.down(cfg, sandboxes=True)
    finally:
        for user in cfg.users:
            _kill_account_processes(user)
            accounts.remove_user(user)
            shutil.rmtree(cfg.runtime(user), ignore_errors=True)
        accounts.remove_group(cfg.group)
        log = cfg.file("jupyterhub.log")
        if log.exists():  # kept beside the course copy, for a failed run's post-mortem
            shutil.copy(log, session.course.root.parent / "jupyterhub.log")
        shutil.rmtree(cfg.state.parent, ignore_errors=True)


def _kill_account_processes(user: str) -> None:
    """SIGKILL what still runs as the test's own account ``user``, by pid."""
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return
    for proc in psutil.process_iter(["uids"]):
        if proc.info["uids"] and proc.info["uids"].real == uid:
            try:
                proc.kill()
            except psutil.Error:
                pass


def solved(nb_path: Path, solution: str) -> None:
    """Write ``solution`` into the fetched notebook's solution cell (what a trainee types)."""
    nb = nbformat.read(str(nb_path), as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = solution
    nbformat.write(nb, str(nb_path))
