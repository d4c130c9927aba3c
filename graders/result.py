"""The result of one check of live state, and how it prints.

A ``CheckResult`` is what every check returns. It is plain data (a dataclass), turned into
JSON only at the edges (``to_dict``), and it prints as a short message a trainee can act on::

    ✗ serving: observed model v2 / index 2026-11-01-v2; expected model v1
      hint: roll back with sb.rollback() (revision 1 served model v1)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

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

    def scaled(self, max_points: float) -> CheckResult:
        """The same verdict worth ``max_points`` (points scaled proportionally)."""
        share = self.points / self.max_points if self.max_points else float(self.passed)
        points = max_points if self.passed else round(share * max_points, 4)
        return CheckResult(self.name, self.passed, points, max_points, self.observed,
                           self.expected, self.hint, dict(self.details))


def _fmt_points(value: float) -> str:
    return f"{round(value, 2):g}"


def passed(name: str, observed: str, expected: str = "", **details: Any) -> CheckResult:
    """A passing result worth one point (``check()`` rescales it)."""
    return CheckResult(name, True, 1.0, 1.0, observed, expected, "", details)


def failed(name: str, observed: str, expected: str, hint: str, share: float = 0.0,
           **details: Any) -> CheckResult:
    """A failing result worth one point; ``share`` in [0, 1) is the partial credit earned."""
    share = min(max(share, 0.0), 1.0)
    if share >= 1.0:
        share = 0.99
    return CheckResult(name, False, share, 1.0, observed, expected, hint, details)
