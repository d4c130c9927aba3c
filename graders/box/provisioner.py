"""``BoxProvisioner``: a jupyter_client kernel provisioner that runs a submission's kernel in a
container of its own (the "box"), and serves the box's sandbox through a control endpoint.

nbgrader's ``Execute`` starts kernels through jupyter_client; a kernelspec whose metadata names
this provisioner (``graders/box/kernels/labkit-box``) makes every graded kernel a box:

* unprivileged (uid 10002), read-only root filesystem, all capabilities dropped, no new
  privileges, memory / CPU / pids limits, ``/work`` and ``/tmp`` on size-limited tmpfs;
* **no network at all** (``network_mode=none``): the kernel's ZeroMQ sockets are unix sockets
  (``transport=ipc``) in a per-run directory that is the box's only mount, beside the control
  endpoint's socket; nothing of the host, of other sandboxes or of the course is reachable;
* only the submission's folder is copied in (its notebook and files), never mounted;
* the control endpoint (``sandbox.control``) runs here, in the trusted grading process, holding
  the engine; it authorises and audits every operation and is revoked when the kernel ends, so
  nothing the kernel left behind can change the sandbox while it is scored.

The provisioner replaces ``LocalProvisioner``'s process with the container: ``poll``, ``wait``,
``send_signal``, ``kill`` and ``terminate`` act on it; ``cleanup`` removes it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from docker.errors import DockerException, NotFound
from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning import LocalProvisioner
from traitlets import Float, Int, Unicode

from sandbox import labels, make_sandbox
from sandbox._docker import engine
from sandbox.control.server import ControlEndpoint
from sandbox.errors import InvalidInput
from sandbox.settings import Settings

from ..runreport import EngineLost, record_failure

WORK = "/work"
BOX_USER = "10002:10002"
MAX_COPY_BYTES = 32 * 1024 * 1024
RUNTIME_CAP = "40m"  # the connection file, sockets and the staged submission (<= 32 MB)
AUDIT_ENV = "LABKIT_AUDIT_LOG"


class BoxProvisioner(LocalProvisioner):  # type: ignore[misc]
    """Run the kernel in a grading box (see the module doc)."""

    memory = Unicode("1g", help="Memory limit of the box (the kernel and what it starts).").tag(config=True)
    cpus = Float(1.0, help="CPU limit of the box, in cores.").tag(config=True)
    pids = Int(256, help="Most processes and threads the box may hold (fork bombs stop here).").tag(config=True)
    tmpfs_size = Unicode("64m", help="Size of each of the box's tmpfs mounts (/work, /tmp).").tag(config=True)

    container: Any = None
    endpoint: ControlEndpoint | None = None
    _shutting_down = False
    _mounted = False

    runtime: Path | None = None

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        """The kernel's connection file and sockets go into a fresh, short directory of their own:
        the only thing the box mounts (never the shared Jupyter runtime directory)."""
        km = self.parent
        if km is None or km.transport != "ipc":
            raise InvalidInput("the grading box needs c.KernelManager.transport = 'ipc' (it has no network)",
                               fix="grade with `labkit course grade`, or use the course's nbgrader_config.py")
        self.runtime = Path(tempfile.mkdtemp(prefix="lkbox-", dir="/tmp"))
        self._cap(self.runtime)
        os.chmod(self.runtime, 0o1777)  # the kernel (another uid) creates its sockets here
        km.connection_file = str(self.runtime / "kernel.json")
        km.ip = str(self.runtime / "k")  # ipc sockets: /tmp/lkbox-XXXX/k-<n> (unix paths stay short)
        return await super().pre_launch(**kwargs)

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        return await asyncio.to_thread(self._launch, cmd, Path(kwargs.get("cwd") or Path.cwd()))

    def _launch(self, cmd: list[str], cwd: Path) -> KernelConnectionInfo:
        settings = Settings.from_env()
        runtime = self.runtime or Path(self.parent.connection_file).resolve().parent
        os.chmod(self.parent.connection_file, 0o644)  # the kernel runs as another uid; it is the only reader
        audit = Path(os.environ.get(AUDIT_ENV) or runtime.with_name(runtime.name + "-audit.jsonl"))
        sandbox = make_sandbox(settings)
        self.endpoint = ControlEndpoint(sandbox, runtime / "control.sock", audit).__enter__()
        try:
            self.container = self._start(settings, cmd, runtime, self._stage(cwd, runtime))
        except BaseException:
            self._teardown()
            raise
        self.pid = None
        self.cwd = WORK
        return self.connection_info

    def _start(self, settings: Settings, cmd: list[str], runtime: Path, staged: Path) -> Any:
        cmd = ["python", *cmd[1:]]  # jupyter_client puts the grader's own interpreter first
        client = engine.connect_engine(settings.docker_host)
        assert self.endpoint is not None
        env = self.endpoint.box_env() | {"LABKIT_PROGRESS_DEADLINE_S": f"{settings.rollout.progress_deadline_s:g}"}
        tmpfs = f"size={self.tmpfs_size},uid=10002,gid=10002,mode=0700"
        try:
            return client.containers.run(
                settings.images.box,
                ["sh", "-c", 'umask 000; mkdir -p "$HOME"; cp -R "$0"/. /work/ && exec "$@"', str(staged), *cmd],
                name=f"labkit-{settings.sandbox_id}-box", detach=True, environment=env,
                labels=labels.for_sandbox(settings.sandbox_id, labels.GRADING_BOX, **(
                    {labels.GRADER: settings.grader} if settings.grader else {})), user=BOX_USER, working_dir=WORK,
                network_mode="none", read_only=True, cap_drop=["ALL"], security_opt=["no-new-privileges"],
                mem_limit=self.memory, memswap_limit=self.memory, nano_cpus=int(self.cpus * 1e9),
                pids_limit=self.pids, tmpfs={WORK: tmpfs, "/tmp": tmpfs},
                volumes={str(runtime): {"bind": str(runtime), "mode": "rw"}},
            )
        except DockerException as e:
            raise engine.wrap(e, f"starting the grading box of {settings.sandbox_id}") from e

    def _cap(self, runtime: Path) -> None:
        """The box's one writable host path gets a size-limited tmpfs of its own (as root), so
        a kernel that writes without end fills that, not the grader's disk."""
        if os.geteuid() != 0 or shutil.which("mount") is None:
            self.log.warning("labkit: not root: the box's runtime directory %s has no size cap", runtime)
            return
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={RUNTIME_CAP},mode=1777", "tmpfs", str(runtime)],
                              capture_output=True, text=True)
        if done.returncode == 0:
            self._mounted = True
        else:
            self.log.warning("labkit: could not cap %s: %s", runtime, done.stderr.strip()[-200:])

    def _stage(self, folder: Path, runtime: Path) -> Path:
        """Copy the submission's folder (its notebook and the files beside it) where the box's
        start command copies it into its own ``/work`` (a tmpfs); nothing is mounted back."""
        staged, total = runtime / "in", 0
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
                if total > MAX_COPY_BYTES:
                    raise InvalidInput(f"the submission folder {folder} holds more than 32 MB")
                target = staged / path.relative_to(folder)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
        staged.mkdir(exist_ok=True)
        for path in [staged, *staged.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        return staged

    def _note_death(self) -> None:
        """A box the out-of-memory killer (or the engine) took is the machinery's failure."""
        try:
            self.container.reload()
        except NotFound:
            if not self._shutting_down:
                record_failure(EngineLost("the grading box disappeared during the run (the engine restarted?)"))
            return
        except DockerException as e:
            record_failure(engine.wrap(e, "inspecting the grading box"))
            return
        state = self.container.attrs.get("State") or {}
        if state.get("OOMKilled"):
            record_failure(EngineLost(f"the grading box ran out of memory ({self.memory}) and was killed"))

    # --- the container is the kernel's process --------------------------------------------
    @property
    def has_process(self) -> bool:
        return self.container is not None

    async def poll(self) -> int | None:
        if self.container is None:
            return 0
        try:
            await asyncio.to_thread(self.container.reload)
        except NotFound:
            return 0
        state = self.container.attrs.get("State") or {}
        return None if state.get("Running") else int(state.get("ExitCode") or 0)

    async def wait(self) -> int | None:
        while (code := await self.poll()) is None:
            await asyncio.sleep(0.1)
        return code

    async def send_signal(self, signum: int) -> None:
        if self.container is not None:
            try:
                await asyncio.to_thread(self.container.kill, signal=signum)
            except DockerException:
                pass

    async def kill(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGKILL)

    async def terminate(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGTERM)

    async def cleanup(self, restart: bool = False) -> None:
        await asyncio.to_thread(self._teardown)

    async def shutdown_requested(self, restart: bool = False) -> None:
        self._shutting_down = True

    def _teardown(self) -> None:
        """Revoke the endpoint first (nothing changes the sandbox from now on), note a box the
        engine killed, then remove the box."""
        if self.endpoint is not None:
            self.endpoint.__exit__()
            self.endpoint = None
        if self.container is not None:
            self._note_death()
            try:
                self.container.remove(force=True)
            except NotFound:
                pass
            except DockerException as e:
                self.log.warning("labkit: could not remove box %s: %s", self.container.name, e)
            self.container = None
        if self.runtime is not None:
            if self._mounted:
                subprocess.run(["umount", "-l", str(self.runtime)], capture_output=True)
                self._mounted = False
            shutil.rmtree(self.runtime, ignore_errors=True)
            self.runtime = None
