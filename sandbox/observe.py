"""One observation model for fault probes and grader checks, and one validator of declarations.

An *observation* is a small read-only question about the live sandbox: ``observe(name, sb,
**args)`` runs the observer registered under ``name`` and returns an ``Observation`` (passed,
observed, expected, hint, share, data). The fault catalog's steady-state hypotheses name
observers; a grader check is an observer plus points (``graders.check``). Observers read only
live state: the engine, the service's endpoints, Prometheus, the rollout history.

A ``Registry`` is the one decorator registry of the kit (observers here, fault actions in
``sandbox.faults.actions``). ``Registry.problems(name, args, path)`` is the one validator of a
declaration (catalog steps, plan evidence, notebook cell metadata): it reports every problem
as a ``Problem(path, message)`` before anything runs, as chaostoolkit validates an experiment.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .errors import InvalidInput, StateError, UnknownChoice

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Problem:
    """One problem of a declaration, with where it is (``weeks[3].evidence[0]``)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class DefinitionInvalid(InvalidInput):
    """A declaration has problems; every one is listed, each with its path."""

    def __init__(self, what: str, problems: Iterable[Problem | str]) -> None:
        self.problems = [p if isinstance(p, Problem) else Problem("", str(p)) for p in problems]
        super().__init__(f"{what} is invalid:\n  - " + "\n  - ".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class Entry(Generic[F]):
    name: str
    fn: F
    needs_sandbox: bool = True

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.fn) or ""


class Registry(Generic[F]):
    """Named functions ``fn(sb, **args)`` of one kind, registered with a decorator."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[F]] = {}

    def register(self, name: str, *, needs_sandbox: bool = True) -> Callable[[F], F]:
        def decorate(fn: F) -> F:
            if name in self._entries and self._entries[name].fn is not fn:
                raise InvalidInput(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, fn, needs_sandbox)
            return fn

        return decorate

    def pop(self, name: str) -> Entry[F] | None:
        """Unregister ``name`` (tests register throwaway entries)."""
        return self._entries.pop(name, None)

    def __iter__(self):  # the names, as a dict's keys
        return iter(self.names())

    def __getitem__(self, name: str) -> Entry[F]:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> Entry[F]:
        entry = self._entries.get(name)
        if entry is None:
            raise UnknownChoice(self.kind, name, self.names())
        return entry

    def problems(self, name: Any, args: Any, path: str = "", bound: Iterable[str] = ()) -> list[Problem]:
        """Every reason ``name(**args)`` cannot run; ``bound`` names arguments the caller
        supplies itself (a baseline, the cell's text)."""
        if name not in self._entries:
            return [Problem(path, f"{name!r} is not a known {self.kind}; valid: {', '.join(self.names())}")]
        if args is None:
            args = {}
        if not isinstance(args, dict):
            return [Problem(path, "args must be a mapping")]
        fn = self._entries[name].fn
        params = inspect.signature(fn).parameters
        given = {k: v for k, v in args.items() if k != "points"}
        given.update({k: None for k in bound if k in params and k not in given})
        try:
            inspect.signature(fn).bind(None, *([None] if "record" in params else []), **given)
        except TypeError as e:
            valid = [p for p in params if p not in ("sb", "record")]
            return [Problem(path, f"arguments {sorted(args)} do not fit {self.kind} {name!r} ({e});"
                                  f" valid: {', '.join(valid) or 'none'}")]
        return []


@dataclass(frozen=True)
class Observation:
    """What an observer saw in the live sandbox, and what it wanted."""

    name: str
    passed: bool
    observed: str
    expected: str
    hint: str = ""
    """What the trainee can do next (shown by the kernel's self-check, never at grading)."""
    share: float = 1.0
    """Partial credit in [0, 1]: 1.0 when passed, below 1.0 otherwise."""
    data: dict[str, Any] = field(default_factory=dict)
    """Structured numbers behind ``observed`` (latencies, recall, probes); JSON-ready."""

    @property
    def ok(self) -> bool:  # the name fault probes used
        return self.passed


def holds(name: str, observed: str, expected: str = "", **data: Any) -> Observation:
    return Observation(name, True, observed, expected, "", 1.0, data)


def broken(name: str, observed: str, expected: str, hint: str, share: float = 0.0, **data: Any) -> Observation:
    """A failed observation; ``share`` in [0, 1) is the partial credit it still earns."""
    return Observation(name, False, observed, expected, hint, min(max(share, 0.0), 0.99), data)


Observer = Callable[..., Observation]
OBSERVERS: Registry[Observer] = Registry("observation")


def observer(name: str, *, needs_sandbox: bool = True) -> Callable[[Observer], Observer]:
    """Register ``fn(sb, **args) -> Observation`` under ``name`` (a decorator)."""
    return OBSERVERS.register(name, needs_sandbox=needs_sandbox)


def observe(name: str, sb: Any, **args: Any) -> Observation:
    """Run observer ``name``. The trainee's state being wrong (nothing deployed, not up, the
    service not answering) is a failed observation; the machinery failing raises."""
    problems = OBSERVERS.problems(name, args)
    if problems:
        raise DefinitionInvalid(f"observation {name}", problems)
    try:
        return OBSERVERS.get(name).fn(sb, **args)
    except StateError as e:
        return broken(name, e.message, "a running sandbox with a serving revision",
                      e.fix or "run `labkit sandbox status` and look at the serving revision")
