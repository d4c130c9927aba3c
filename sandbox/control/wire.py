"""How records and errors cross the control endpoint (JSON both ways)."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from ..errors import LabkitError, error_class
from ..records import Component, DeploySpec, Revision, SandboxStatus
from ..client import Readiness


def status_to_wire(st: SandboxStatus) -> dict[str, Any]:
    d = st.to_dict()
    d["faults"] = []  # production does not say what broke
    return d


def status_from_wire(d: dict[str, Any]) -> SandboxStatus:
    d = dict(d)
    d["spec"] = DeploySpec.from_dict(d["spec"]) if d.get("spec") else None
    d["components"] = [Component(**c) for c in d.get("components") or []]
    return SandboxStatus(**d)


def revision_from_wire(d: dict[str, Any]) -> Revision:
    return Revision.from_dict(d)


def readiness_from_wire(d: dict[str, Any]) -> Readiness:
    return Readiness(**{f.name: d[f.name] for f in fields(Readiness) if f.name in d})


def error_to_wire(e: LabkitError) -> dict[str, Any]:
    attrs = {k: v for k, v in vars(e).items() if k not in ("message", "fix", "args")
             and isinstance(v, (str, int, float, bool, type(None), list, dict))}
    return {"error": type(e).__name__, "message": e.message, "fix": e.fix, "attrs": attrs}


def error_from_wire(d: dict[str, Any]) -> LabkitError:
    """The same class of the kit's tree, with its message, fix and plain attributes."""
    cls = error_class(str(d.get("error", ""))) or LabkitError
    e = cls.__new__(cls)
    LabkitError.__init__(e, str(d.get("message", "")), fix=d.get("fix"))
    for key, value in (d.get("attrs") or {}).items():
        setattr(e, key, value)
    return e


def readiness_to_wire(r: Readiness) -> dict[str, Any]:
    return asdict(r)
