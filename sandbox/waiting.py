"""Every wait of the kit, in one place, on tenacity.

``until(observe, ...)`` calls ``observe()`` until it returns something other than ``None`` and
returns that; when the deadline passes it raises what ``on_timeout()`` builds (default: a
``WaitTimeout`` naming ``what`` and the last thing observed). A probe may raise to stop the wait
at once (a crashed container is not worth waiting for). ``throughout(check, ...)`` is the other
shape: a condition that must keep holding for a while (a game day's confirmation window).

    until(lambda: port_of(c), timeout_s=30, interval_s=0.1, what="gateway port")
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from .errors import WaitTimeout

T = TypeVar("T")


def until(observe: Callable[[], T | None], *, timeout_s: float, interval_s: float = 0.1, what: str,
          on_timeout: Callable[[], BaseException] | None = None,
          describe: Callable[[], str] | None = None) -> T:
    """Poll ``observe`` until it returns non-``None``; raise on timeout (see module doc).

    ``describe()`` says what was observed last (for the error); exceptions ``observe`` raises
    stop the wait and propagate.
    """
    retrying = Retrying(stop=stop_after_delay(max(0.0, timeout_s)), wait=wait_fixed(interval_s),
                        retry=retry_if_result(lambda value: value is None), reraise=False, sleep=time.sleep)
    try:
        return retrying(observe)
    except RetryError as e:
        if on_timeout is not None:
            raise on_timeout() from None
        seen = describe() if describe is not None else ""
        raise WaitTimeout(what, timeout_s, seen) from e.last_attempt.exception() if e.last_attempt.failed else None


def throughout(check: Callable[[float], None], *, seconds: float, interval_s: float,
               sleep: Callable[[float], None] = time.sleep) -> None:
    """Call ``check(elapsed_s)`` now and every ``interval_s`` until ``seconds`` have passed; a
    condition that must keep holding (a confirmation window) raises from ``check`` to stop."""
    began, elapsed = time.monotonic(), 0.0
    while True:
        check(elapsed)
        if elapsed >= seconds:
            return
        sleep(min(interval_s, seconds - elapsed))
        elapsed = time.monotonic() - began
