"""What the grading machinery says of one run, for ``labkit course grade`` to decide by class.

Written in the trusted process (the box provisioner, ``LiveStateGrader``) to the JSON file that
``LABKIT_RUN_REPORT`` names; read back by the course workflow after nbgrader exits. A grade may
be recorded only when the sandbox and the box held for the whole run; otherwise the report names
the error class of the kit's tree (``temporary`` decides a retry on a fresh sandbox) and the cause.

    {"held": false, "error": "EngineLost", "temporary": true,
     "cause": "the gateway was restarted during the run (the engine restarted?)"}
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from sandbox.errors import InfrastructureError

REPORT_ENV = "LABKIT_RUN_REPORT"


class EngineLost(InfrastructureError):
    """The sandbox or the box did not hold for the whole run (an engine restart, a container
    killed by the engine or the out-of-memory killer, the engine gone)."""

    temporary = True


class SetupNotHeld(InfrastructureError):
    """The lab's own setup failed in the machinery (a fault injection of a locked cell raised an
    error of the machinery, not of the trainee's state): whatever the checks then measure, they
    cannot tell the trainee's repair from a fault that never took."""

    temporary = True


@dataclass(frozen=True)
class RunReport:
    held: bool = True
    error: str = ""
    temporary: bool = False
    cause: str = ""


def report_path() -> Path | None:
    raw = os.environ.get(REPORT_ENV, "")
    return Path(raw) if raw else None


def record_failure(error: InfrastructureError) -> None:
    """Note that the run did not hold (the first failure wins: it is the cause)."""
    path = report_path()
    if path is None or (read_report(path) or RunReport()).held is False:
        return
    report = RunReport(False, type(error).__name__, bool(error.temporary), error.message[:500])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(report)))


def read_report(path: Path | None) -> RunReport | None:
    if path is None or not path.exists():
        return None
    raw = json.loads(path.read_text() or "{}")
    return RunReport(**{k: raw[k] for k in RunReport.__dataclass_fields__ if k in raw})
