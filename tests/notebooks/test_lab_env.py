"""``make lab``: JupyterLab 4 from the project's environment, nbgrader and widget extensions
enabled, and a default kernel that has the kit installed.

The fast tests ask the environment's own ``jupyter``; the slow one starts the exact command of
the Makefile's ``lab`` target headless (no browser, a free port, a token), asks the running
server for its kernelspecs and extensions, and stops it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from nbhelpers import REPO

BIN = Path(sys.executable).parent
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
PYTHON_NAMES = {"python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"}


def _jupyter(*args: str) -> str:
    proc = subprocess.run([str(BIN / "jupyter"), *args], capture_output=True, text=True, env=ENV,
                          timeout=120, check=True)
    return ANSI.sub("", proc.stdout + proc.stderr)


def test_default_kernel_imports_the_kit():
    specs = json.loads(_jupyter("kernelspec", "list", "--json"))["kernelspecs"]
    assert "python3" in specs, f"no python3 kernel: {sorted(specs)}"
    argv = specs["python3"]["spec"]["argv"]
    # jupyter_client runs a spec whose argv[0] is "python" with the server's own interpreter
    python = sys.executable if argv[0] in PYTHON_NAMES else argv[0]
    code = "import sandbox, graders, ipywidgets, nbgrader; print(sandbox.__file__); print(graders.__file__)"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120, env=ENV)
    assert out.returncode == 0, out.stderr
    assert all(str(REPO) in line for line in out.stdout.split()), out.stdout


def test_lab_extensions_nbgrader_and_widgets_enabled():
    text = _jupyter("labextension", "list")
    for name in ("@jupyter/nbgrader", "@jupyter-widgets/jupyterlab-manager"):
        line = next((ln for ln in text.splitlines() if name in ln), "")
        assert "enabled" in line and "OK" in line, f"{name} not enabled:\n{text}"


def test_server_extensions_of_nbgrader_enabled():
    text = _jupyter("server", "extension", "list")
    for name in ("formgrader", "assignment_list", "validate_assignment", "course_list"):
        assert re.search(rf"nbgrader\.server_extensions\.{name}\s+enabled", text), f"{name}:\n{text}"


def _lab_command() -> str:
    """The ``jupyter lab`` line of the Makefile's ``lab`` target, as make expands it."""
    makefile = os.environ.get("LABKIT_TEST_MAKEFILE", "Makefile")
    out = subprocess.run(["make", "-f", makefile, "-s", "-n", "--no-print-directory", "lab"], cwd=REPO, env=ENV,
                         capture_output=True, text=True, timeout=60)
    lines = [ln for ln in out.stdout.replace("\\\n", " ").splitlines() if "jupyter lab" in ln]
    assert lines, f"no `jupyter lab` in `make -n lab`:\n{out.stdout}{out.stderr}"
    return lines[-1]


@pytest.mark.slow
def test_make_lab_serves_kernels_and_extensions_headless(tmp_path):
    token = secrets.token_hex(8)
    cmd = f"{_lab_command()} --no-browser --ServerApp.port=0 --IdentityProvider.token={token}"
    log = tmp_path / "lab.log"
    with log.open("w") as out:
        proc = subprocess.Popen(["bash", "-c", cmd], cwd=REPO, env=ENV, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = _wait_for_url(proc, log)
        specs = _get(f"{url}/api/kernelspecs?token={token}")
        assert specs["default"] == "python3" and "python3" in specs["kernelspecs"]
        exts = {e["name"]: e["enabled"] for e in _get(f"{url}/lab/api/extensions?token={token}")}
        assert exts.get("jupyter-nbgrader") and exts.get("jupyter-widgets-jupyterlab-manager"), exts
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group, SIGKILL it if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait_s)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_for_url(proc: subprocess.Popen, log: Path, timeout_s: float = 90) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = re.search(r"http://127\.0\.0\.1:\d+", log.read_text())
        if found:
            return found.group(0)
        if proc.poll() is not None:
            text = log.read_text()
            hint = ("\n`make lab` needs --allow-root when run as root (uid 0): the Makefile's lab target"
                    " should add it then") if "Running as root" in text else ""
            pytest.fail(f"`make lab` exited {proc.returncode}:\n{text[-3000:]}{hint}", pytrace=False)
        time.sleep(0.3)
    pytest.fail(f"`make lab` did not serve within {timeout_s} s:\n{log.read_text()[-3000:]}", pytrace=False)


def _get(url: str) -> dict | list:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - our own local server
        return json.loads(response.read())
