"""Process machinery of grading: run a command with a wall-clock limit and kill its whole tree,
run tasks in a thread pool, and stop everything cleanly on Ctrl-C or SIGTERM.

``run_with_timeout`` starts each command in a session of its own and remembers it while it runs,
so ``cancel_all`` (called by ``run_pool`` on an interrupt) can kill every running tree; the
workers' own ``finally`` blocks then tear their sandboxes down.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil

_running: set[int] = set()  # pids of the process trees run_with_timeout started and still waits on
_running_lock = threading.Lock()
cancelled = threading.Event()
"""Set by ``cancel_all``: workers grade nothing more."""


def run_pool(jobs: int, tasks: list[Any]) -> list[Any]:
    """Run ``tasks`` (callables) ``jobs`` at a time; their results in order. On an interrupt,
    kill every running process tree, wait for the workers (they tear their sandboxes down)
    and re-raise."""
    cancelled.clear()
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="labkit-grade")
    try:
        futures = [pool.submit(task) for task in tasks]
        return [f.result() for f in futures]
    except BaseException:
        cancel_all()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def cancel_all() -> None:
    """Stop every process tree ``run_with_timeout`` is waiting on; nothing new is graded."""
    cancelled.set()
    with _running_lock:
        pids = list(_running)
    for pid in pids:
        kill_tree(pid)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """In the main thread, turn SIGTERM into ``KeyboardInterrupt`` so cleanup runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_with_timeout(cmd: list[str], cwd: Path, env: dict[str, str], timeout_s: float,
                     out: Any) -> int | None:
    """Run ``cmd`` in a new session; kill its whole process tree after ``timeout_s``.

    Returns the exit status, or ``None`` when it was cut off.
    """
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    with _running_lock:
        _running.add(proc.pid)
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid)
        proc.wait(timeout=30)
        return None
    finally:
        if proc.poll() is None:  # interrupted (KeyboardInterrupt): leave nothing behind
            kill_tree(proc.pid)
        with _running_lock:
            _running.discard(proc.pid)


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid``, its process group and every descendant (the kernel runs in a
    session of its own, so the group alone would leave it behind)."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except Exception:  # noqa: BLE001 - psutil missing or the process already gone
        children = []
    for target in children:
        try:
            target.kill()
        except Exception:  # noqa: BLE001 - already exited
            pass
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
