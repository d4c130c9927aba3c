"""Every wait of the kit, in one place, on tenacity.

``until(observe, ...)`` calls ``observe()`` until it returns something other than ``None`` and
returns that; when the deadline passes it raises what ``on_timeout()`` builds (default: a
``WaitTimeout`` naming ``what`` and the last thing observed). Strategies combine as
testcontainers' do: ``all_of(a, b)`` waits for both, and a probe may raise to stop the wait at
once (a crashed container is not worth waiting for).

    until(lambda: port_of(c), timeout_s=30, interval_s=0.1, what="gateway port")
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from .errors import LabkitError, WaitTimeout

T = TypeVar("T")
Observe = Callable[[], Any]


class _Last:
    """What the probe saw last, for the timeout message."""

    def __init__(self) -> None:
        self.seen: str = ""


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


def all_of(*probes: Observe) -> Observe:
    """A probe that holds when every one of ``probes`` does (each returns non-None); returns
    the list of their answers."""

    def probe() -> list[Any] | None:
        answers = [p() for p in probes]
        return None if any(a is None for a in answers) else answers

    return probe


def holds_for(probe: Callable[[], bool], *, seconds: float, interval_s: float,
              sleep: Callable[[float], None] = time.sleep, what: str = "the condition") -> None:
    """Require ``probe()`` to stay true for ``seconds`` (checked every ``interval_s``); raises
    ``WaitTimeout``-free: a ``LabkitError`` from the caller's probe, or ``ConditionBroke``."""
    if not probe():
        raise ConditionBroke(what, 0.0)
    waited = 0.0
    while waited < seconds:
        nap = min(interval_s, seconds - waited)
        sleep(nap)
        waited += nap
        if not probe():
            raise ConditionBroke(what, waited)


class ConditionBroke(LabkitError):
    """A condition that had to keep holding stopped holding after ``after_s`` seconds."""

    def __init__(self, what: str, after_s: float) -> None:
        super().__init__(f"{what} stopped holding after {after_s:g} s")
        self.after_s = after_s
