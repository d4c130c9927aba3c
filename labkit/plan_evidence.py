"""What levels 3 and 4 of a capability require beyond lab points: the plan's ledger evidence.

A capability level in ``curriculum/plan.yaml`` may carry ``requires``, a list of conditions
the report checks before it grants the level (``labkit.report.levels``)::

    3:
      descriptor: ...
      evidence: ...
      requires:
        - {ledger: production, mode: supervised, min: 2}   # reviewed production work on it
    4:
      requires:
        - {ledger: production, mode: owned, min: 1}
        - {kpi: change-failure-rate}                       # the trainee's KPI at its target

* ``ledger: production``: entries of kind ``production`` for this capability with a reviewer,
  in ``mode`` or a more independent one (``supervised`` accepts ``supervised`` and ``owned``);
* ``ledger: runbook``: runbooks for this capability a mentor accepted;
* ``kpi``: the trainee's value of that KPI meets the plan's target.

Levels 3 ("supervised production") and 4 ("independent production ownership") must each name
at least one ledger condition: sandbox scores alone never grant them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

LEDGER_KINDS = ("production", "runbook")
MODE_ORDER = ("shadowed", "supervised", "owned")


@dataclass(frozen=True)
class Requirement:
    """One condition a capability level needs (see the module docstring)."""

    ledger: str = ""
    """``production`` or ``runbook`` (empty for a KPI condition)."""
    mode: str = ""
    """Least independent production mode that counts (``production`` only)."""
    min: int = 1
    kpi: str = ""
    """A KPI id whose target the trainee must meet (empty for a ledger condition)."""

    def describe(self) -> str:
        if self.kpi:
            return f"KPI {self.kpi} at target"
        what = f"{self.mode} production work" if self.ledger == "production" else "accepted runbook"
        return f"{self.min} x {what} in the ledger"

    def modes(self) -> tuple[str, ...]:
        """The production modes that satisfy this condition."""
        return MODE_ORDER[MODE_ORDER.index(self.mode or "supervised"):]


def requirements(raw: list[dict[str, Any]] | None) -> tuple[Requirement, ...]:
    return tuple(Requirement(**r) for r in raw or [])


def check_requirements(plan: Any) -> Iterator[tuple[str, str]]:
    """Cross-checks as (path, message): levels 3-4 name ledger evidence, 1-2 none; KPI ids known."""
    kpis = {k.id for k in plan.kpis}
    for i, cap in enumerate(plan.capabilities):
        for level, spec in cap.levels.items():
            at = f"capabilities[{i}].levels.{level}.requires"
            if level <= 2 and spec.requires:
                yield (at, f"level {level} of {cap.id!r} is a sandbox level; only levels 3 and 4 require"
                              " ledger evidence")
            if level >= 3 and not any(r.ledger for r in spec.requires):
                yield (at, f"level {level} of {cap.id!r} names no ledger evidence; levels 3-4 are"
                              " never granted from lab points alone")
            for j, r in enumerate(spec.requires):
                if r.kpi and r.kpi not in kpis:
                    yield (f"{at}[{j}].kpi", f"unknown KPI {r.kpi!r}; valid: {', '.join(sorted(kpis))}")
                if r.mode and r.ledger != "production":
                    yield (f"{at}[{j}].mode", "mode applies to ledger: production only")
