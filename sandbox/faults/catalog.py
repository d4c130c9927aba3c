"""Load and validate the fault catalog before anything runs.

YAML at the edge, dataclasses inside. Validation collects every problem and reports them
all at once in plain language ("fault 'stale-index': inject.action 'deplo' is not a known
action; valid: ...") before a single container is touched.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import InvalidInput, UnknownChoice
from .actions import ACTIONS
from .probes import PROBES

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")
INCIDENT_CLASSES = ("rollout", "index", "model-version", "provider", "capacity", "drift", "security",
                    "config", "data-quality")
SEVERITIES = ("sev1", "sev2", "sev3", "sev4")
SIGNAL_KINDS = ("endpoint", "metric", "log", "eval", "rollout", "data")
_ID = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")
REQUIRED = ("id", "title", "incident_class", "severity", "breaks", "signals", "inject", "heal",
            "remediation", "steady_state")


class CatalogInvalid(InvalidInput):
    """The catalog has problems; every one is listed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("fault catalog is invalid:\n  - " + "\n  - ".join(problems))
        self.problems = problems


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
        raise CatalogInvalid(["the file must be a mapping with a list under `faults`"])
    problems: list[str] = []
    faults, seen = [], set()
    for i, entry in enumerate(raw["faults"]):
        where = f"fault #{i + 1}" if not isinstance(entry, dict) else f"fault {entry.get('id', f'#{i + 1}')!r}"
        errors = _entry_problems(entry, seen, ACTIONS, PROBES)
        problems += [f"{where}: {e}" for e in errors]
        if not errors:
            faults.append(_to_fault(entry))
            seen.add(entry["id"])
    if problems:
        raise CatalogInvalid(problems)
    return Catalog(tuple(faults))


def _entry_problems(entry: Any, seen: set[str], actions: dict, probes: dict) -> list[str]:
    if not isinstance(entry, dict):
        return ["must be a mapping of fields"]
    problems = [f"missing field `{k}`" for k in REQUIRED if k not in entry]
    if problems:
        return problems
    if not isinstance(entry["id"], str) or not _ID.match(entry["id"]):
        problems.append("id must be kebab-case (a-z, 0-9, '-')")
    elif entry["id"] in seen:
        problems.append("id is used twice")
    if entry["incident_class"] not in INCIDENT_CLASSES:
        problems.append(f"incident_class {entry['incident_class']!r} unknown; valid: {', '.join(INCIDENT_CLASSES)}")
    if entry["severity"] not in SEVERITIES:
        problems.append(f"severity {entry['severity']!r} unknown; valid: {', '.join(SEVERITIES)}")
    signals = entry["signals"]
    if not isinstance(signals, list) or not signals:
        problems.append("signals must list at least one signal")
    else:
        for j, s in enumerate(signals):
            if not isinstance(s, dict) or s.get("kind") not in SIGNAL_KINDS or not s.get("what"):
                problems.append(f"signals[{j}] needs kind (one of {', '.join(SIGNAL_KINDS)}) and what")
    for key in ("inject", "heal"):
        problems += _step_problems(key, entry[key], "action", actions)
    steady = entry["steady_state"]
    if not isinstance(steady, list) or not steady:
        problems.append("steady_state must list at least one probe")
    else:
        for j, step in enumerate(steady):
            problems += _step_problems(f"steady_state[{j}]", step, "probe", probes)
    return problems


def _step_problems(where: str, step: Any, key: str, registry: dict) -> list[str]:
    if not isinstance(step, dict) or key not in step:
        return [f"{where} needs a `{key}`"]
    name, args = step[key], step.get("args", {}) or {}
    if name not in registry:
        return [f"{where}.{key} {name!r} is not a known {key}; valid: {', '.join(sorted(registry))}"]
    if not isinstance(args, dict):
        return [f"{where}.args must be a mapping"]
    try:
        inspect.signature(registry[name]).bind(None, **args)
    except TypeError as e:
        return [f"{where}: arguments {sorted(args)} do not fit {key} {name!r} ({e})"]
    return []


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
