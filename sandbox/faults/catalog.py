"""Load and validate the fault catalog before anything runs.

YAML at the edge, dataclasses inside. Validation collects every problem and reports them
all at once in plain language ("fault 'stale-index': inject.action 'deplo' is not a known
action; valid: ...") before a single container is touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import UnknownChoice
from ..observe import OBSERVERS, DefinitionInvalid, Problem, Registry
from .actions import ACTIONS
from . import agent_probes as _agent_probes  # noqa: F401 - registers the injection observers
from . import pool_probes as _pool_probes  # noqa: F401 - registers the pool observers
from . import probes as _probes  # noqa: F401 - registers the observers the catalog names

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")
INCIDENT_CLASSES = ("rollout", "index", "model-version", "provider", "capacity", "drift", "security",
                    "config", "data-quality")
SEVERITIES = ("sev1", "sev2", "sev3", "sev4")
SIGNAL_KINDS = ("endpoint", "metric", "log", "eval", "rollout", "data")
_ID = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")
REQUIRED = ("id", "title", "incident_class", "severity", "breaks", "signals", "inject", "heal",
            "remediation", "steady_state")


class CatalogInvalid(DefinitionInvalid):
    """The catalog has problems; every one is listed with its path."""

    def __init__(self, problems: list[Problem | str]) -> None:
        super().__init__("fault catalog", problems)


@dataclass(frozen=True)
class Step:
    """An action (inject/heal) or a probe, with its arguments."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Signal:
    kind: str
    what: str


@dataclass(frozen=True)
class Fault:
    """One catalog entry: what breaks, how it shows, how it is injected and healed."""

    id: str
    title: str
    incident_class: str
    severity: str
    breaks: str
    signals: tuple[Signal, ...]
    inject: Step
    heal: Step
    remediation: str
    steady_state: tuple[Step, ...]


@dataclass(frozen=True)
class Catalog:
    faults: tuple[Fault, ...]

    def ids(self) -> list[str]:
        return [f.id for f in self.faults]

    def get(self, fault_id: str) -> Fault:
        for f in self.faults:
            if f.id == fault_id:
                return f
        raise UnknownChoice("fault", fault_id, self.ids())


def load_catalog(path: Path | None = None) -> Catalog:
    """The catalog at ``path`` (default: the shipped one), validated."""
    raw = yaml.safe_load((path or CATALOG_PATH).read_text())
    return parse_catalog(raw)


def parse_catalog(raw: Any) -> Catalog:
    if not isinstance(raw, dict) or not isinstance(raw.get("faults"), list):
        raise CatalogInvalid([Problem("", "the file must be a mapping with a list under `faults`")])
    problems: list[Problem] = []
    faults, seen = [], set()
    for i, entry in enumerate(raw["faults"]):
        errors = _entry_problems(entry, seen, f"faults[{i}]")
        problems += errors
        if not errors:
            faults.append(_to_fault(entry))
            seen.add(entry["id"])
    if problems:
        raise CatalogInvalid(problems)
    return Catalog(tuple(faults))


def _entry_problems(entry: Any, seen: set[str], path: str) -> list[Problem]:
    if not isinstance(entry, dict):
        return [Problem(path, "must be a mapping of fields")]
    path = f"{path} ({entry.get('id')})" if entry.get("id") else path
    problems = [Problem(path, f"missing field `{k}`") for k in REQUIRED if k not in entry]
    if problems:
        return problems
    if not isinstance(entry["id"], str) or not _ID.match(entry["id"]):
        problems.append(Problem(f"{path}.id", "must be kebab-case (a-z, 0-9, '-')"))
    elif entry["id"] in seen:
        problems.append(Problem(f"{path}.id", "is used twice"))
    if entry["incident_class"] not in INCIDENT_CLASSES:
        problems.append(Problem(f"{path}.incident_class", f"{entry['incident_class']!r} unknown; valid: {', '.join(INCIDENT_CLASSES)}"))
    if entry["severity"] not in SEVERITIES:
        problems.append(Problem(f"{path}.severity", f"{entry['severity']!r} unknown; valid: {', '.join(SEVERITIES)}"))
    signals = entry["signals"]
    if not isinstance(signals, list) or not signals:
        problems.append(Problem(f"{path}.signals", "must list at least one signal"))
    else:
        for j, s in enumerate(signals):
            if not isinstance(s, dict) or s.get("kind") not in SIGNAL_KINDS or not s.get("what"):
                problems.append(Problem(f"{path}.signals[{j}]", f"needs kind (one of {', '.join(SIGNAL_KINDS)}) and what"))
    for key in ("inject", "heal"):
        problems += _step_problems(f"{path}.{key}", entry[key], "action", ACTIONS)
    steady = entry["steady_state"]
    if not isinstance(steady, list) or not steady:
        problems.append(Problem(f"{path}.steady_state", "must list at least one probe"))
    else:
        for j, step in enumerate(steady):
            problems += _step_problems(f"{path}.steady_state[{j}]", step, "probe", OBSERVERS)
    return problems


def _step_problems(path: str, step: Any, key: str, registry: Registry) -> list[Problem]:
    if not isinstance(step, dict) or key not in step:
        return [Problem(path, f"needs a `{key}`")]
    return registry.problems(step[key], step.get("args", {}), f"{path}.{key}")


def _to_fault(entry: dict[str, Any]) -> Fault:
    return Fault(
        id=entry["id"],
        title=entry["title"],
        incident_class=entry["incident_class"],
        severity=entry["severity"],
        breaks=" ".join(str(entry["breaks"]).split()),
        signals=tuple(Signal(s["kind"], s["what"]) for s in entry["signals"]),
        inject=Step(entry["inject"]["action"], dict(entry["inject"].get("args") or {})),
        heal=Step(entry["heal"]["action"], dict(entry["heal"].get("args") or {})),
        remediation=entry["remediation"],
        steady_state=tuple(Step(s["probe"], dict(s.get("args") or {})) for s in entry["steady_state"]),
    )
