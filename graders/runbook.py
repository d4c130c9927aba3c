"""Parse a trainee's markdown runbook into its sections and score it.

A runbook must have six headed sections, in any order and at any heading level:

========== =====================================================================
section    heading words accepted (case-insensitive, numbering ignored)
========== =====================================================================
problem    problem, summary, symptoms, overview, description, context, issue, impact
pre-checks pre-checks, prechecks, pre-flight, preconditions, prerequisites, before you start
steps      steps, procedure, mitigation, remediation, actions, resolution, fix, runbook steps
validation validation, verify, verification, confirm, success criteria, post-checks
escalation escalation, escalate, escalation criteria, when to escalate, paging
rollback   rollback, roll back, back out, backout, revert, undo, abort
========== =====================================================================

A heading is an ATX heading (``## Steps``) or a line that is bold only (``**Steps**``). A
section with no text under it, or only filler ("TBD", "see above"), counts as missing. Each step (a top-level list item of the
steps section; else each sub-heading; else each paragraph) must cite evidence of *this* kit
(``graders.vocabulary``): a command line of a real tool (``kubectl rollout undo ...``), a call of
the sandbox API or of a check that exists (``sb.rollback(...)``, ``expect("serving", ...)``), a
metric the services export or a rule the kit ships (``modelapi_requests_total``), an endpoint
they serve (``/readyz``), or the output to look for stated as a value ("expect HTTP 503").
"Expect it works" cites nothing. The steps section earns the share of its steps that cite
evidence; the score is the mean over the six sections.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import rubric, vocabulary

SECTIONS: tuple[str, ...] = ("problem", "pre-checks", "steps", "validation", "escalation", "rollback")

#: Checked in this order, so "Rollback steps" is rollback and "Validation steps" validation.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "rollback": ("rollback", "roll back", "roll-back", "back out", "backout", "back-out",
                 "revert", "undo", "abort"),
    "escalation": ("escalation", "escalate", "escalating", "when to page", "paging", "who to call"),
    "validation": ("validation", "validate", "verify", "verification", "confirm", "success criteria",
                   "post-checks", "postchecks", "post checks", "post-check", "how to check it worked"),
    "pre-checks": ("pre-checks", "prechecks", "pre checks", "pre-check", "precheck", "pre-flight",
                   "preflight", "preconditions", "pre-conditions", "prerequisites", "before you start",
                   "before you begin", "initial checks", "triage"),
    "problem": ("problem", "summary", "symptoms", "symptom", "overview", "description", "context",
                "issue", "impact", "what is happening", "alert"),
    "steps": ("steps", "step", "procedure", "mitigation", "remediation", "actions", "resolution",
              "fix", "instructions", "runbook"),
}

#: A section with fewer content words than this, and no number or command, is filler.
FILLER_WORDS = 2
_ITEM = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+(.*)$")


@dataclass
class Step:
    """One step of the steps section."""

    text: str
    has_evidence: bool

    @property
    def title(self) -> str:
        first = self.text.strip().splitlines()[0] if self.text.strip() else ""
        return first[:60]


@dataclass
class Runbook:
    """A parsed runbook: its canonical sections' bodies and its steps."""

    sections: dict[str, str] = field(default_factory=dict)
    headings: dict[str, str] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)

    def present(self) -> list[str]:
        """Sections with a heading and some text under it, in canonical order."""
        return [s for s in SECTIONS if self.sections.get(s, "").strip()]

    def missing(self) -> list[str]:
        return [s for s in SECTIONS if s not in self.present()]

    def empty(self) -> list[str]:
        """Sections that have a heading but nothing under it."""
        return [s for s in SECTIONS if s in self.headings and not self.sections.get(s, "").strip()]

    def steps_without_evidence(self) -> list[Step]:
        return [s for s in self.steps if not s.has_evidence]

    def section_credit(self, section: str) -> float:
        """1 for a present section; the steps section earns its share of steps with evidence."""
        if section not in self.present():
            return 0.0
        if section != "steps":
            return 1.0
        if not self.steps:
            return 0.0
        return sum(s.has_evidence for s in self.steps) / len(self.steps)

    def score(self) -> float:
        """Share of the six sections earned, in [0, 1]."""
        return sum(self.section_credit(s) for s in SECTIONS) / len(SECTIONS)


def classify_heading(text: str) -> str | None:
    """The canonical section a heading names, or None."""
    return rubric.classify(text, SYNONYMS)


def parse(text: str) -> Runbook:
    """Split markdown into canonical sections (fenced code never holds a heading).

    A heading deeper than the current section's that names no other section (``### Step 1``
    or ``**Note**`` under ``## Steps``) stays part of it; any other unrecognised heading ends
    the current section. A section whose text is filler only ("TBD", "see above") counts as
    empty.
    """
    book = Runbook()
    for key, section in rubric.split(text or "", SYNONYMS).items():
        book.headings[key] = section.heading
        filler = rubric.is_filler(section.text, min_words=FILLER_WORDS)
        book.sections[key] = "" if filler else section.text
    book.steps = split_steps(book.sections.get("steps", ""))
    return book


def _heading(line: str) -> tuple[int, str] | None:
    """(level, text) of an ATX heading or a bold-only line (level 7: below any ATX level)."""
    head = rubric.heading_of(line)
    return (head[0], head[1]) if head else None


def split_steps(body: str) -> list[Step]:
    """Top-level list items; else sub-headed blocks; else paragraphs (code joins the step above)."""
    blocks = _list_blocks(body) or _heading_blocks(body) or _paragraph_blocks(body)
    kit = vocabulary.kit()
    return [Step(b, kit.cites(b)) for b in blocks if b.strip()]


def _list_blocks(body: str) -> list[str]:
    lines = body.splitlines()
    indents = [len(m.group(1)) for line in lines if (m := _ITEM.match(line))]
    if not indents:
        return []
    top = min(indents)
    blocks: list[list[str]] = []
    for line in lines:
        m = _ITEM.match(line)
        if m and len(m.group(1)) == top:
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
    return ["\n".join(b) for b in blocks]


def _heading_blocks(body: str) -> list[str]:
    blocks: list[list[str]] = []
    in_fence = False
    for line in body.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        if not in_fence and _heading(line) is not None:
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
    return ["\n".join(b) for b in blocks]


def _paragraph_blocks(body: str) -> list[str]:
    blocks: list[str] = []
    in_fence = False
    current: list[str] = []
    for line in body.splitlines() + [""]:
        fence = line.lstrip().startswith(("```", "~~~"))
        if fence:
            in_fence = not in_fence
        if not line.strip() and not in_fence:
            if current:
                text = "\n".join(current)
                if text.lstrip().startswith(("```", "~~~")) and blocks:
                    blocks[-1] += "\n" + text  # a code block is the evidence of the step above
                else:
                    blocks.append(text)
                current = []
            continue
        current.append(line)
    return blocks


def describe(book: Runbook) -> tuple[str, str]:
    """(observed, hint) in plain words for a check result."""
    present = book.present()
    observed = f"{len(present)}/{len(SECTIONS)} sections ({', '.join(present) or 'none'})"
    lacking = book.steps_without_evidence()
    if book.steps:
        observed += f"; {len(book.steps) - len(lacking)}/{len(book.steps)} steps cite evidence"
    hints = []
    if book.missing():
        hints.append("add headed sections for: " + ", ".join(book.missing()))
    if book.empty():
        hints.append("write something under: " + ", ".join(book.empty()))
    if "steps" in present and not book.steps:
        hints.append("list the steps (one list item per step)")
    if lacking:
        titles = "; ".join(f"'{s.title}'" for s in lacking[:3])
        hints.append(f"give each step its evidence from this kit (the command you run, the metric or"
                     f" endpoint you read, the output value you look for) - missing in {titles}")
    return observed, ". ".join(hints)
