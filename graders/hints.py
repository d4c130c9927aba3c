"""Hints of the brief-only labs: shown on request in the notebook, each reveal recorded.

The labs of phase 3 (``hints.brief_only_phases`` in ``curriculum/plan.yaml``) state the page, the
objectives and the graded outcome, and name no calls. Their hints live outside the released
notebook, in ``curriculum/hints/<lab>.yaml`` (2-4 a lab; the last one names the calls)::

    from graders import hint
    hint("lab09-provider-outage", 1, sb)     # shows hint 1 (Markdown) and records the reveal

``hint(lab, n, sb)`` records ``sb.record_event("hint", note="<lab>#<n>")`` and returns the hint,
which a notebook renders as Markdown. What the record is worth:

* only the graded run records: the grader re-executes the submitted notebook in a box, where the
  control endpoint stamps the event into the audit log the box cannot reach; a sandbox driven
  directly keeps nothing. A reveal is therefore recorded when its cell is in the submitted
  notebook - a trainee who reads the hint and deletes the cell, or reads the YAML, leaves no record;
* hints are scaffolding, not secrets: the YAML is in the kit, and the box does not carry it (the
  reveal is recorded there all the same, and the text is said to be absent);
* a reveal costs no points (``hints.cost_points: 0`` in the plan); ``labkit report`` lists the
  hints each trainee revealed per lab, read from the kept audit logs (:func:`reveals`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sandbox.control.audit import AuditRecord
from sandbox.errors import InvalidInput, UnknownChoice

HINTS_DIR = Path(__file__).resolve().parents[1] / "curriculum" / "hints"
"""``curriculum/hints/``: one ``<lab>.yaml`` per brief-only lab (absent in a grading box)."""
EVENT = "hint"
"""The event a reveal records (``sb.record_event(EVENT, note="<lab>#<n>")``)."""
MIN_HINTS, MAX_HINTS = 2, 4
_NOTE = re.compile(r"^(?P<lab>[a-z0-9-]+)#(?P<n>[0-9]+)$")
ABSENT = ("*The hint texts are not in the grading box; this reveal of {lab} #{n} is recorded all the"
          " same.*")


@dataclass(frozen=True)
class Hint:
    """One hint of one lab; renders as Markdown in a notebook."""

    lab: str
    number: int
    text: str
    recorded: bool = False
    """True when the sandbox's control endpoint took the reveal (a graded run)."""

    def _repr_markdown_(self) -> str:
        return f"**Hint {self.number} of {self.lab}**\n\n{self.text}"

    def __str__(self) -> str:
        return self._repr_markdown_()


def load_hints(lab: str, directory: Path | None = None) -> tuple[str, ...]:
    """The hints of ``lab`` (Markdown, in order), validated: ``{lab: <id>, hints: [{text}, ...]}``
    with 2-4 non-empty texts. A lab without a file names the labs that have one."""
    folder = directory or HINTS_DIR
    path = folder / f"{lab}.yaml"
    if not path.is_file():
        raise UnknownChoice("lab with hints", lab, sorted(p.stem for p in folder.glob("*.yaml")))
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise InvalidInput(f"{path.name}: not valid YAML: {e}") from e
    return _validated(path.name, lab, raw)


def _validated(name: str, lab: str, raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, dict) or set(raw) != {"lab", "hints"}:
        raise InvalidInput(f"{name}: a mapping with exactly the keys lab and hints")
    if raw["lab"] != lab:
        raise InvalidInput(f"{name}: lab is {raw['lab']!r}, the file name says {lab!r}")
    hints = raw["hints"]
    if not isinstance(hints, list) or not MIN_HINTS <= len(hints) <= MAX_HINTS:
        raise InvalidInput(f"{name}: hints is a list of {MIN_HINTS}-{MAX_HINTS} entries")
    texts = []
    for i, entry in enumerate(hints, 1):
        text = entry.get("text") if isinstance(entry, dict) and set(entry) == {"text"} else None
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput(f"{name}: hints[{i}] is {{text: <non-empty Markdown>}}")
        texts.append(text.strip())
    return tuple(texts)


def hint(lab: str, n: int, sb: Any = None) -> Hint:
    """Hint ``n`` (1-based) of ``lab``; the reveal is recorded through ``sb`` (the notebook's
    sandbox; ``None`` records nothing). Outside a grading box an unknown lab or number raises
    with the valid choices before anything is recorded."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidInput(f"hint number {n!r}: a whole number from 1")
    text = None
    if HINTS_DIR.is_dir():  # the kit's checkout; a grading box carries no hint texts
        texts = load_hints(lab)
        if n > len(texts):
            raise UnknownChoice(f"hint of {lab}", n, list(range(1, len(texts) + 1)))
        text = texts[n - 1]
    recorded = bool(sb.record_event(EVENT, note=f"{lab}#{n}")) if sb is not None else False
    return Hint(lab, n, text if text is not None else ABSENT.format(lab=lab, n=n), recorded)


def reveals(audit: list[AuditRecord]) -> dict[str, list[int]]:
    """Lab -> the hint numbers revealed (distinct, sorted), from a run's audit log."""
    out: dict[str, set[int]] = {}
    for r in audit:
        if r.op != "event" or r.outcome != "ok" or r.args.get("event") != EVENT:
            continue
        found = _NOTE.match(str(r.args.get("note", "")))
        if found:
            out.setdefault(found["lab"], set()).add(int(found["n"]))
    return {lab: sorted(numbers) for lab, numbers in sorted(out.items())}
