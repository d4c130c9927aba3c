"""The trainees' processes have no network but the hub's API (iptables' owner match).

Every sandbox publishes its ports on 127.0.0.1 and its containers have addresses on Docker's
bridges; a trainee's kernel must not reach another trainee's (or its own, bypassing the control
endpoint). So every packet a process of the hub's group sends goes through the chain
``LKHUB-<group>``: replies on established connections (the proxy talking to the trainee's
server) and new connections to the hub's API on 127.0.0.1 pass, everything else is rejected.
Kernels speak ZeroMQ over unix sockets (``KernelManager.transport = ipc``) and reach their
sandbox through its control socket, so nothing a lab does needs more.
"""

from __future__ import annotations

import shutil
import subprocess

from sandbox.errors import InfrastructureError

TOOLS = ("iptables", "ip6tables")


def chain(group: str) -> str:
    return f"LKHUB-{group}"[:28]


def _ipt(tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([tool, "-w", "10", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise InfrastructureError(f"`{tool} {' '.join(args)}` failed: {done.stderr.strip()[-300:]}",
                                  fix="run `labkit hub up` as root on a host with iptables (apt-get install iptables)")
    return done


def _jump(group: str) -> list[str]:
    return ["OUTPUT", "-m", "owner", "--gid-owner", group, "-j", chain(group)]


def apply(group: str, hub_port: int) -> None:
    """(Re)write the chain for ``group`` and hook it into OUTPUT (idempotent)."""
    for tool in TOOLS:
        if shutil.which(tool) is None:
            raise InfrastructureError(f"{tool} not found: trainees' processes could reach every sandbox port",
                                      fix="apt-get install iptables")
        name = chain(group)
        if _ipt(tool, "-n", "-L", name, check=False).returncode != 0:
            _ipt(tool, "-N", name)
        _ipt(tool, "-F", name)
        _ipt(tool, "-A", name, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
        if tool == "iptables":
            _ipt(tool, "-A", name, "-o", "lo", "-p", "tcp", "-d", "127.0.0.1", "--dport", str(hub_port),
                 "-j", "ACCEPT")
            _ipt(tool, "-A", name, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset")
        _ipt(tool, "-A", name, "-j", "REJECT")
        if _ipt(tool, "-C", *_jump(group), check=False).returncode != 0:
            _ipt(tool, "-I", *_jump(group))


def remove(group: str) -> None:
    """Unhook and delete the chain (nothing when it is not there)."""
    for tool in TOOLS:
        if shutil.which(tool) is None:
            continue
        while _ipt(tool, "-C", *_jump(group), check=False).returncode == 0:
            _ipt(tool, "-D", *_jump(group))
        if _ipt(tool, "-n", "-L", chain(group), check=False).returncode == 0:
            _ipt(tool, "-F", chain(group))
            _ipt(tool, "-X", chain(group))


def active(group: str) -> bool:
    return shutil.which("iptables") is not None and _ipt("iptables", "-C", *_jump(group), check=False).returncode == 0
