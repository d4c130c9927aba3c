"""The result of one check of live state, and how it prints.

A ``CheckResult`` is what every check returns. It is plain data (a dataclass), turned into
JSON only at the edges (``to_dict``), and it prints as a short message a trainee can act on::

    ✗ serving: observed model v2 / index 2026-11-01-v2; expected model v1
      hint: roll back with sb.rollback() (revision 1 served model v1)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sandbox.observe import Observation

PASS_MARK = "✓"
FAIL_MARK = "✗"
PARTIAL_MARK = "◐"


@dataclass(frozen=True)
class CheckResult:
    """What a check saw in the live sandbox, and what it wanted."""

    name: str
    """Registry name of the check (``serving``, ``recall_at_least`` ...)."""

    passed: bool
    """True when the live state is what the check wants."""

    points: float
    """Points earned (``0 <= points <= max_points``); below ``max_points`` when not passed."""

    max_points: float = 1.0
    """Points the check is worth (the ``points=`` argument of the check, default 1)."""

    observed: str = ""
    """What the live state showed, in one line."""

    expected: str = ""
    """What the check wanted, in one line."""

    hint: str = ""
    """What the trainee can do next: a command to run or a signal to look at."""

    details: dict[str, Any] = field(default_factory=dict)
    """Structured numbers behind ``observed`` (latencies, recall, probes); JSON-serialisable."""

    @property
    def partial(self) -> bool:
        """Not passed, but some points earned."""
        return not self.passed and 0 < self.points < self.max_points

    @property
    def mark(self) -> str:
        if self.passed:
            return PASS_MARK
        return PARTIAL_MARK if self.partial else FAIL_MARK

    def headline(self) -> str:
        """One line: mark, name, observed, expected (no hint)."""
        parts = [f"observed {self.observed}" if self.observed else "",
                 f"expected {self.expected}" if self.expected else ""]
        body = "; ".join(p for p in parts if p)
        score = f" [{_fmt_points(self.points)}/{_fmt_points(self.max_points)}]" if self.partial else ""
        return f"{self.mark} {self.name}{score}: {body}" if body else f"{self.mark} {self.name}{score}"

    def __str__(self) -> str:
        lines = [self.headline()]
        if self.hint and not self.passed:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the preprocessor's records and ``live_checks.jsonl`` use it)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CheckResult:
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        return cls(**known)

    @classmethod
    def from_observation(cls, obs: Observation, max_points: float = 1.0) -> CheckResult:
        """An observation scored: full points when it passed, its share of them otherwise."""
        points = max_points if obs.passed else round(obs.share * max_points, 4)
        return cls(obs.name, obs.passed, points, max_points, obs.observed, obs.expected, obs.hint,
                   dict(obs.data))

    def without_hint(self) -> CheckResult:
        """The same verdict with the hint removed: what a grade may show (the fix stays in the
        kernel's self-check)."""
        return CheckResult(self.name, self.passed, self.points, self.max_points, self.observed,
                           self.expected, "", dict(self.details))

    def scaled(self, max_points: float) -> CheckResult:
        """The same verdict worth ``max_points`` (points scaled proportionally)."""
        share = self.points / self.max_points if self.max_points else float(self.passed)
        points = max_points if self.passed else round(share * max_points, 4)
        return CheckResult(self.name, self.passed, points, max_points, self.observed,
                           self.expected, self.hint, dict(self.details))


def _fmt_points(value: float) -> str:
    return f"{round(value, 2):g}"
