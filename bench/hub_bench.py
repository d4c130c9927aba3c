"""Cohort-hub figures for ``make bench`` (section ``hub`` of ``bench/run.py``): a real hub
(``labkit.hub.runner.up``, brought up as ``tests/browser/hubsession.py`` does) on free ports, with
generated trainees ``hbench<tag>a``, ``...b``, ... and an instructor, all removed by name afterwards.

* ``login``: per trainee, seconds from opening ``/hub/login`` (httpx posting the form with its
  ``_xsrf``, as a browser does) to the server ready in the hub's API, to JupyterLab's page, and
  to a ready sandbox: the first lab cell (``connect()`` brings the sandbox up, then ``deploy`` v1)
  run in a kernel of the trainee's server until ``status().ready``. Trainee k logs in while
  trainees 1..k-1 are logged in. Baseline: a bare ``jupyter lab`` of the trainees' venv
  (--no-browser, free port, temp dir, --allow-root) to ``/api/status`` answering, median of
  ``REPEATS`` after one discarded warm-up start, in the same run.
* ``memory_per_trainee``: RSS of every process of the trainee's uid (server, kernel) plus their
  sandbox's containers (by the kit's labels; usage less inactive file cache, as ``docker stats``),
  taken after the last curve point's cells ran.
* ``curve``: for N trainees each running a lab cell (searches through their sandbox, a status
  every tenth call) in their server's kernel, the p95 of ``GET /hub/api/users/<name>`` (admin
  service token, closed loop through the public proxy) over the window; and the largest N with
  p95 < 500 ms.

Knobs: ``LABKIT_BENCH_HUB_MAX`` (largest N of 1, 2, 4, 6, 8; default 8), ``LABKIT_BENCH_HUB_WINDOW``
(seconds of hub API requests per point; default 10).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import psutil
import websocket

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "browser"))
sys.path.insert(0, str(ROOT / "tests" / "notebooks"))

from hubsession import HubSession, free_port, start, stop  # noqa: E402

from labkit.hub import runner  # noqa: E402
from sandbox import labels  # noqa: E402
from sandbox._docker import engine  # noqa: E402

STEPS = (1, 2, 4, 6, 8)
REPEATS = 3
P95_LIMIT_MS = 500.0
WARMUP_S = 1.0
FIRST_CELL = ("from sandbox import connect\nsb = connect()\nsb.deploy(model='v1', index='2026-11-01')\n"
              "print(sb.status().ready)")
READY_CELL = "print(connect(up=False).status().ready)"
LOOP_CELL = """import json, time
from sandbox import connect
from sandbox.client import load_queries
sb, queries, lat, errors, end = connect(up=False), load_queries("baseline"), [], 0, time.monotonic() + {seconds}
while time.monotonic() < end:
    t0 = time.perf_counter()
    try:
        sb.status() if len(lat) % 10 == 0 else sb.search(queries[len(lat) % len(queries)], k=5)
    except Exception:
        errors += 1
    lat.append(time.perf_counter() - t0)
print(json.dumps({{"calls": len(lat), "errors": errors, "p95_ms": 1000 * sorted(lat)[int(0.95 * (len(lat) - 1))]}}))
"""


def bare_lab_s(bin_dir: Path) -> float:
    """Seconds from starting a bare ``jupyter lab`` to its ``/api/status`` answering 200."""
    tmp, port, token = Path(tempfile.mkdtemp(prefix="labkit-bare-lab-")), free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(HOME=str(tmp), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               PATH=os.pathsep.join([str(bin_dir), env.get("PATH", "/usr/bin:/bin")]))
    cmd = [str(bin_dir / "jupyter-lab"), "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--allow-root",
           f"--ServerApp.root_dir={tmp}", f"--IdentityProvider.token={token}"]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.monotonic() - t0 < 120:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=1,
                             headers={"Authorization": f"token {token}"}).status_code == 200:
                    return time.monotonic() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("a bare jupyter lab did not answer /api/status in 120 s")
    finally:  # with the npm/yarn probes JupyterLab starts (they outlive a killed server)
        family = psutil.Process(proc.pid).children(recursive=True)
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for child in family:
            with contextlib.suppress(psutil.Error):
                child.kill()
        psutil.wait_procs(family, timeout=5)
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class Lab:
    """A logged-in trainee: their browser-like client, a token of theirs, one kernel's channels."""

    user: str
    http: httpx.Client
    ws: websocket.WebSocket | None = None
    session: str = field(default_factory=lambda: uuid.uuid4().hex)

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
        self.http.close()


def _cookie(http: httpx.Client, name: str, path: str) -> str:
    found = [c.value for c in http.cookies.jar if c.name == name and c.path == path]
    if not found:
        raise RuntimeError(f"no {name} cookie for {path} (cookies: {sorted(c.name for c in http.cookies.jar)})")
    return found[-1] or ""


def _wait_server(session: HubSession, user: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = (runner.api(session.cfg, "GET", f"/users/{user}").json().get("servers") or {}).get("", {})
        if server.get("ready"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the server of {user} was not ready {timeout:g} s after login")


def _open_kernel(session: HubSession, lab: Lab) -> None:
    """A token of the trainee's own (the hub's Token page does this), a kernel, its channels."""
    lab.http.get("/hub/token").raise_for_status()
    xsrf = _cookie(lab.http, "_xsrf", "/hub/")
    answer = lab.http.post(f"/hub/api/users/{lab.user}/tokens", params={"_xsrf": xsrf},
                           headers={"X-XSRFToken": xsrf}, json={"note": "labkit bench", "expires_in": 3600})
    answer.raise_for_status()
    auth = {"Authorization": f"token {answer.json()['token']}"}
    kernel = lab.http.post(f"/user/{lab.user}/api/kernels", headers=auth, json={"name": "python3"})
    kernel.raise_for_status()
    url = session.cfg.hub_url.replace("http", "ws", 1)
    lab.ws = websocket.create_connection(f"{url}/user/{lab.user}/api/kernels/{kernel.json()['id']}/channels"
                                         f"?session_id={lab.session}", header=[f"{k}: {v}" for k, v in auth.items()],
                                         timeout=300)


def execute(lab: Lab, code: str, timeout: float = 600) -> str:
    """Run ``code`` in the trainee's kernel (Jupyter's messaging over the websocket); its stdout."""
    msg_id, deadline, ws = uuid.uuid4().hex, time.monotonic() + timeout, lab.ws
    header = {"msg_id": msg_id, "msg_type": "execute_request", "username": lab.user, "session": lab.session,
              "date": datetime.now(timezone.utc).isoformat(), "version": "5.3"}
    content = {"code": code, "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False}
    assert ws is not None
    ws.send(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "content": content, "channel": "shell"}))
    out, replied, idle = [], False, False
    while not (replied and idle):
        if time.monotonic() > deadline:
            raise RuntimeError(f"a cell in {lab.user}'s kernel ran over {timeout:g} s")
        msg = json.loads(ws.recv())
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, body = msg["msg_type"], msg["content"]
        if kind == "stream":
            out.append(body["text"])
        elif kind == "error":
            raise RuntimeError(f"a cell in {lab.user}'s kernel failed: {body['ename']}: {body['evalue']}")
        replied = replied or kind == "execute_reply"
        idle = idle or (kind == "status" and body["execution_state"] == "idle")
    return "".join(out)


def login(session: HubSession, user: str) -> tuple[Lab, dict[str, Any]]:
    """Log ``user`` in as a browser would, up to a ready JupyterLab and a ready sandbox."""
    lab = Lab(user, httpx.Client(base_url=session.url, timeout=180, follow_redirects=True))
    try:
        t0 = time.monotonic()
        lab.http.get("/hub/login").raise_for_status()
        form = {"username": user, "password": session.secrets[user], "_xsrf": _cookie(lab.http, "_xsrf", "/hub/")}
        answer = lab.http.post("/hub/login", data=form)  # -> /hub/spawn -> spawn-pending (or the Lab)
        if answer.status_code >= 400 or answer.url.path.endswith("/hub/login"):
            raise RuntimeError(f"{user} could not log in ({answer.status_code} at {answer.url.path})")
        _wait_server(session, user)
        server_s = time.monotonic() - t0
        page = lab.http.get(f"/user/{user}/lab")  # the OAuth handshake with the server, then the Lab
        if page.status_code != 200 or "jupyter-config-data" not in page.text:
            raise RuntimeError(f"JupyterLab of {user} did not load ({page.status_code} at {page.url.path})")
        lab_s = time.monotonic() - t0
        _open_kernel(session, lab)
        ready = execute(lab, FIRST_CELL).strip().endswith("True")
        while not ready and time.monotonic() - t0 < 600:
            time.sleep(0.5)
            ready = execute(lab, READY_CELL).strip().endswith("True")
        if not ready:
            raise RuntimeError(f"the sandbox of {user} was not ready 600 s after login")
        return lab, {"user": user, "to_server_ready_s": round(server_s, 2), "to_lab_page_s": round(lab_s, 2),
                     "to_sandbox_ready_s": round(time.monotonic() - t0, 2)}
    except BaseException:
        lab.close()
        raise


def _container_mb(docker: Any, container_id: str) -> float:
    mem = docker.api.stats(container_id, stream=False, one_shot=True).get("memory_stats") or {}
    stats = mem.get("stats") or {}
    cache = stats.get("inactive_file", stats.get("total_inactive_file", 0))
    return max(0, mem.get("usage", 0) - cache) / 1e6


def trainee_memory_mb(docker: Any, user: str) -> dict[str, Any]:
    """RSS of the processes of ``user``'s uid plus the memory of their sandbox's containers."""
    uid = pwd.getpwnam(user).pw_uid
    rss = sum(p.info["memory_info"].rss for p in psutil.process_iter(["uids", "memory_info"])
              if p.info["uids"] and p.info["uids"].real == uid and p.info["memory_info"])
    containers = docker.containers.list(filters=labels.docker_filters(user))
    sandbox = sum(_container_mb(docker, c.id) for c in containers)
    return {"user": user, "server_rss_mb": round(rss / 1e6, 1), "sandbox_mb": round(sandbox, 1),
            "sandbox_containers": len(containers), "total_mb": round(rss / 1e6 + sandbox, 1)}


def hub_api_latency(session: HubSession, users: list[str], seconds: float) -> dict[str, Any]:
    """Closed-loop ``GET /hub/api/users/<name>`` through the proxy for ``seconds``."""
    token = session.cfg.file("admin.token").read_text().strip()
    lat, errors = [], 0
    with httpx.Client(base_url=session.url, headers={"Authorization": f"token {token}"}, timeout=10) as c:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter()
            try:
                errors += c.get(f"/hub/api/users/{users[len(lat) % len(users)]}").status_code != 200
            except httpx.HTTPError:
                errors += 1
            lat.append(time.perf_counter() - t0)
    lat.sort()
    return {"requests": len(lat), "errors": errors, "p50_ms": round(1000 * lat[len(lat) // 2], 1),
            "p95_ms": round(1000 * lat[int(0.95 * (len(lat) - 1))], 1)}


def curve_point(session: HubSession, labs: list[Lab], docker: Any, window: float) -> tuple[dict, list]:
    """Every lab's loop cell running while the hub's API is timed; then each trainee's memory."""
    cell_s = window + 2 * WARMUP_S
    cells: list[dict[str, Any]] = [{} for _ in labs]

    def run_cell(i: int) -> None:
        try:
            cells[i] = json.loads(execute(labs[i], LOOP_CELL.format(seconds=cell_s)).strip().splitlines()[-1])
        except Exception as e:  # noqa: BLE001 - reported in the point
            cells[i] = {"error": f"{type(e).__name__}: {e}"}

    threads = [threading.Thread(target=run_cell, args=(i,)) for i in range(len(labs))]
    for t in threads:
        t.start()
    time.sleep(WARMUP_S)
    api = hub_api_latency(session, [lab.user for lab in labs], window)
    load = os.getloadavg()[0]
    for t in threads:
        t.join()
    failed = [c["error"] for c in cells if "error" in c]
    if failed:
        raise RuntimeError(f"lab cells failed: {failed}")
    memory = [trainee_memory_mb(docker, lab.user) for lab in labs]
    return {"trainees": len(labs), "hub_api_p95_ms": api["p95_ms"], "hub_api_p50_ms": api["p50_ms"],
            "hub_api_requests": api["requests"], "hub_api_errors": api["errors"],
            "lab_calls_per_s": round(sum(c["calls"] for c in cells) / cell_s, 1),
            "lab_call_errors": sum(c["errors"] for c in cells),
            "lab_call_p95_ms_median": round(statistics.median(c["p95_ms"] for c in cells), 1),
            "memory_per_trainee_mb_median": round(statistics.median(m["total_mb"] for m in memory), 1),
            "load_average_1m": round(load, 2)}, memory


def measure(session: HubSession, steps: list[int], window: float, figures: dict[str, Any]) -> None:
    """Baseline, then the curve; trainees log in as each point needs them (timed)."""
    bin_dir = session.cfg.user_venv_bin
    warm_up, bare = bare_lab_s(bin_dir), [bare_lab_s(bin_dir) for _ in range(REPEATS)]
    figures["bare_jupyter_lab_to_api_status_s"] = {
        "median": round(statistics.median(bare), 2), "runs": [round(b, 2) for b in bare],
        "discarded_warm_up": round(warm_up, 2), "venv": str(bin_dir.parent)}
    docker, labs, logins, curve = engine.connect_engine(), [], [], []
    figures["login"], figures["curve"] = logins, curve
    try:
        for n in steps:
            while len(labs) < n:
                lab, timing = login(session, session.trainees[len(labs)])
                labs.append(lab)
                logins.append(timing)
                print(f"  login {timing}", flush=True)
            point, memory = curve_point(session, labs, docker, window)
            curve.append(point)
            figures["memory_per_trainee"] = {"median_total_mb": point["memory_per_trainee_mb_median"],
                                             "with_trainees": n, "per_trainee": memory}
            print(f"  {n} trainee(s): hub API p95 {curve[-1]['hub_api_p95_ms']} ms", flush=True)
    finally:
        for lab in labs:
            lab.close()


def summarise(figures: dict[str, Any]) -> None:
    """Medians of the logins and their ratios to the bare Lab; the largest N under the limit."""
    bare = figures["bare_jupyter_lab_to_api_status_s"]["median"]
    for key in ("to_server_ready_s", "to_lab_page_s", "to_sandbox_ready_s"):
        median = statistics.median(t[key] for t in figures["login"])
        figures[f"login_{key}_median"] = round(median, 2)
        figures[f"ratio_login_{key}_to_bare_lab"] = round(median / bare, 2)
    under = [p["trainees"] for p in figures["curve"] if p["hub_api_p95_ms"] < P95_LIMIT_MS]
    figures["largest_trainees_hub_api_p95_under_500ms"] = max(under) if under else None


def run(results: dict[str, Any]) -> None:
    """Measure everything above; store it in ``results["hub"]``."""
    cap = int(os.environ.get("LABKIT_BENCH_HUB_MAX", "8"))
    steps = [n for n in STEPS if n <= cap] or [1]
    window = float(os.environ.get("LABKIT_BENCH_HUB_WINDOW", "10"))
    figures: dict[str, Any] = {"steps": steps, "window_s": window,
                               "load_average_start": [round(x, 2) for x in os.getloadavg()]}
    tmp, session = Path(tempfile.mkdtemp(prefix="labkit-hub-bench-")), None
    try:
        session = start(tmp, trainees=max(steps), prefix="hbench")
        measure(session, steps, window, figures)
        summarise(figures)
    except Exception as e:  # noqa: BLE001 - keep the figures measured so far, say what failed
        figures["error"] = f"{type(e).__name__}: {e}"
        print(f"  hub bench failed: {figures['error']}", flush=True)
    finally:
        if session is not None:
            stop(session)
        shutil.rmtree(tmp, ignore_errors=True)
        figures["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        results["hub"] = figures

