"""Judge a written artifact part by part: headed sections, each held to concrete content.

A rubric is a tuple of :class:`Part`. Each part names the heading words that open it and the
requirements its text must meet. A requirement asks for *concrete* content - a number, a named
person or role, a decision, a reason, a command or metric - never for words alone, so six
headings with "TBD" or "we should think about it" under them earn nothing::

    judgement = judge(text, DESIGN_REVIEW)
    judgement.score()            # mean over the parts, each the share of its requirements met

Headings are found as in :mod:`graders.runbook`: ATX headings (``## Decision``), bold-only
lines (``**Decision**``) and, with ``labels=True``, a paragraph that starts with a bold or plain
label (``**Situation:** In the week-12 game day...``, ``Status: Accepted``). A deeper heading that
names no other part stays in the part above it; fenced code never holds a heading.

A part whose text is filler (fewer than four content words once filler phrases are removed,
and no number or command) is reported as filler and earns nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from markdown_it import MarkdownIt

_MD = MarkdownIt("commonmark").enable("table")

ATX = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
BOLD = re.compile(r"^\s*(\*\*|__)([^*_].*?)(\*\*|__)\s*:?\s*$")
_BOLD_LABEL = re.compile(r"^\s*(\*\*|__)(?P<label>[^*_]{2,60}?)\s*[:.]?\s*(\*\*|__)\s*[:.\-\u2013\u2014]?\s*(?P<rest>\S.*)$")
_PLAIN_LABEL = re.compile(r"^\s*(?P<label>[A-Z][A-Za-z][A-Za-z /&-]{1,40}?)\s*:\s+(?P<rest>\S.*)$")
_FENCE = ("```", "~~~")

# --- signals of concrete content ------------------------------------------------------------

STOP_WORDS = frozenset(
    """a an and are as at be been but by can could do does for from had has have how i if in into
    is it its of on or our so that the their them then there these they this those to was we were
    what when where which while who why will with would you your should may might must also just
    very really more most some any all each every one""".split())

#: Phrases that carry no information; a part made of them is filler.
FILLER_PHRASES = (
    r"tbd", r"tbc", r"todo", r"n/?a", r"lorem ipsum\w*", r"dolor sit amet", r"to be (decided|determined|defined|confirmed|done)",
    r"see above", r"see below", r"as (discussed|needed|appropriate|required|usual)", r"where (necessary|needed)",
    r"it depends", r"various (things|reasons|options|factors)", r"etc\.?", r"and so on", r"best practices?",
    r"industry standard", r"looks good", r"needs (more )?work", r"good job", r"well done", r"great work",
    r"we should (think|talk) about (it|this)", r"(think|talk) about it later", r"nothing (special|to add)",
    r"not sure", r"some (things|stuff|issues)", r"things", r"stuff", r"placeholder", r"fill (this|me) in",
    r"your answer here", r"write (it|this) (here|later)",
)
_FILLER = re.compile(r"(?<![\w-])(" + "|".join(FILLER_PHRASES) + r")(?![\w-])", re.IGNORECASE)
#: A template's placeholder (``<the decision>``, ``<minutes from the log>``) is filler too.
_PLACEHOLDER = re.compile(r"<[^<>\n]{1,80}>")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")
_NUMBER = re.compile(
    r"(?<![\w.@/-])[$\u20ac\u00a3]?\d+(?:[.,]\d+)*(?:\s?(?:%|ms|s|sec|min|h|d|x|k)\b)?", re.IGNORECASE)
_ENUMERATOR = re.compile(r"^\s*(?:[-*+]\s+)?\d+[.)]\s+", re.MULTILINE)
_CODE = re.compile(r"`[^`]+`|^\s*(```|~~~)|\b[a-z][a-z0-9]*_[a-z0-9_]+\b|(^|\s)/(readyz|healthz|metrics|version|v1/\w+)\b",
                   re.MULTILINE)
ROLE = re.compile(
    r"\b(on-?call|sre|mentor|trainee|(service|data|product|platform|model|index|corpus|budget) owner|owner|"
    r"platform (team|lead|owner)|security( on-call| team| lead)?|incident (manager|commander)|commander|approver|"
    r"supervisor|release manager|scribe|ops lead|comms lead|communications lead|game master|observer|vendor|"
    r"procurement|legal|finance|dpo|privacy (officer|team)|engineers?|users?|customers?|agents?|assistant|"
    r"(search|data|platform|security|sre|infra|ml|product|support) team|team lead|tech lead|lead|manager|"
    r"director|head of [a-z]+|cto|vp [a-z]+|architect|auditors?)\b", re.IGNORECASE)
#: A person named with a role: "Priya Raman (head of platform)", "Dana, the service owner".
PERSON = re.compile(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)?\s*(\(|,\s*(the\s+)?[a-z])")
ACCOUNTABLE = re.compile(
    r"\b((service|platform|product|data|budget|model) owner|owner|head of [a-z]+|director|cto|vp [a-z]+|"
    r"engineering manager|manager|incident commander|approver|decision-maker|decides)\b", re.IGNORECASE)
DECISION = re.compile(
    r"\b(we will|we'll|we decided|we decide|decided|decision is|we choose|we chose|chosen|go(es)? with|"
    r"goes first|approved?|rejected?|we accept|accepted|adopt(ed)?|defer(red)?|postpone[ds]?|"
    r"will (ship|build|do|start|fund|staff|run|move|keep|roll|enable|automate|add|replace|stay|use))\b",
    re.IGNORECASE)
REASON = re.compile(
    r"\b(because|since|so that|due to|as it|which (would|means)|otherwise|rejected|given that|"
    r"at the cost of|too (slow|costly|risky|expensive|late|noisy)|cannot|can't|does not|doesn't|would not)\b",
    re.IGNORECASE)
TIME_OF_DAY = re.compile(r"\b([01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?\b")
WHEN = re.compile(
    r"\b(20\d\d-\d\d-\d\d|day[- ]\d+|week[- ]\d+|by (mon|tues|wednes|thurs|fri|satur|sun)day|next (week|sprint|"
    r"game day|quarter|month|review|rotation)|within \d+ (hours?|days?|weeks?)|\+\d+ ?d(ays)?|"
    r"(january|february|march|april|may|june|july|august|september|october|november|december)( \d+)?|q[1-4]|"
    r"last (week|night|sprint|game day|shift)|yesterday|today|this (morning|afternoon|week))\b",
    re.IGNORECASE)


def content_words(text: str) -> list[str]:
    """Words of three letters or more, minus stop words, filler phrases and placeholders."""
    stripped = _FILLER.sub(" ", _PLACEHOLDER.sub(" ", text or ""))
    return [w for w in _WORD.findall(stripped) if w.lower() not in STOP_WORDS]


def numbers(text: str) -> list[str]:
    """Quantities in ``text`` (list enumerators, placeholders and ids such as ``CHG-1234`` do not count)."""
    return _NUMBER.findall(_ENUMERATOR.sub(" ", _PLACEHOLDER.sub(" ", text or "")))


def is_filler(text: str, min_words: int = 4) -> bool:
    """Nothing concrete: under ``min_words`` content words, and no number or command
    (a code span holding only filler, such as `TBD`, is no command)."""
    text = re.sub(r"`([^`]*)`", lambda m: m.group(0) if (content_words(m.group(1)) or numbers(m.group(1))
                                                         or re.search(r"[./_=()]", m.group(1))) else " ",
                  _PLACEHOLDER.sub(" ", text or ""))
    return len(content_words(text)) < min_words and not numbers(text) and not _CODE.search(text)


def has_code(text: str) -> bool:
    return bool(_CODE.search(text or ""))


# --- splitting into parts ----------------------------------------------------------------------


@dataclass
class Section:
    """The text under one recognised heading."""

    key: str
    heading: str
    text: str = ""

    @property
    def items(self) -> list[str]:
        """Top-level list items; else table rows; else paragraphs; else sentences."""
        found = list_items(self.text) or [" | ".join(r) for r in (tables(self.text) or [[]])[0][1:]]
        if found:
            return found
        paras = paragraphs(self.text)
        return paras if len(paras) > 1 else sentences(self.text)


def classify(heading: str, synonyms: dict[str, tuple[str, ...]]) -> str | None:
    """The key whose synonyms the heading names (checked in ``synonyms`` order), or None."""
    words = re.sub(r"[`*_:()\[\]]", " ", heading.lower())
    words = re.sub(r"^\s*\d+[.)]?\s*", "", words)
    words = " " + re.sub(r"\s+", " ", words).strip() + " "
    for key, names in synonyms.items():
        for name in names:
            if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", words):
                return key
    return None


def heading_of(line: str) -> tuple[int, str, str] | None:
    """(level, title, rest of line) of an ATX heading or a bold-only line (level 7)."""
    m = ATX.match(line)
    if m:
        return len(m.group(1)), m.group(2), ""
    m = BOLD.match(line)
    if m:
        return 7, m.group(2), ""
    return None


def _label_of(line: str, synonyms: dict[str, tuple[str, ...]]) -> tuple[int, str, str] | None:
    """A paragraph opened by a bold or plain label that names a part (level 8)."""
    for pattern in (_BOLD_LABEL, _PLAIN_LABEL):
        m = pattern.match(line)
        if m and classify(m.group("label"), synonyms):
            return 8, m.group("label"), m.group("rest")
    return None


def split(text: str, synonyms: dict[str, tuple[str, ...]], labels: bool = False) -> dict[str, Section]:
    """The recognised parts of ``text``, keyed by synonym key, in the order they appear.

    A repeated heading continues its part; an unrecognised heading ends the current part unless
    it is deeper than the current one (then it is the part's own sub-heading).
    """
    found: dict[str, Section] = {}
    bodies: dict[str, list[str]] = {}
    current: str | None = None
    level, in_fence, previous_blank = 0, False, True
    for line in (text or "").splitlines():
        if line.lstrip().startswith(_FENCE):
            in_fence = not in_fence
        head = None if in_fence else heading_of(line)
        if head is None and labels and not in_fence and previous_blank:
            head = _label_of(line, synonyms)
        previous_blank = not line.strip() or head is not None
        key = classify(head[1], synonyms) if head else None
        if head is None or (current is not None and head[0] > level and key in (None, current)
                            and head[0] != 8):
            if current is not None:
                bodies[current].append(line)
            continue
        current, level = key, head[0]
        if current is None:
            continue
        found.setdefault(current, Section(current, head[1]))
        bodies.setdefault(current, [])
        if head[2]:
            bodies[current].append(head[2])
    for key, section in found.items():
        section.text = "\n".join(bodies[key]).strip()
    return found


# --- markdown structure inside a part ------------------------------------------------------------


def list_items(text: str) -> list[str]:
    """The text of each top-level list item (nested items join their parent)."""
    tokens = _MD.parse(text or "")
    lines = (text or "").splitlines()
    items, depth = [], 0
    for tok in tokens:
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            depth += 1
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            depth -= 1
        elif tok.type == "list_item_open" and depth == 1 and tok.map:
            items.append("\n".join(lines[tok.map[0]:tok.map[1]]).strip())
    return [re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", i) for i in items if i]


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text or "") if p.strip()]


def tables(text: str) -> list[list[list[str]]]:
    """Every table as rows of cell texts (the header row first)."""
    out: list[list[list[str]]] = []
    rows: list[list[str]] = []
    row: list[str] = []
    tokens = _MD.parse(text or "")
    for i, tok in enumerate(tokens):
        if tok.type == "table_open":
            rows = []
        elif tok.type == "tr_open":
            row = []
        elif tok.type in ("th_open", "td_open"):
            inline = tokens[i + 1] if i + 1 < len(tokens) and tokens[i + 1].type == "inline" else None
            row.append(inline.content.strip() if inline else "")
        elif tok.type == "tr_close":
            rows.append(row)
        elif tok.type == "table_close":
            out.append(rows)
    return out


def sentences(text: str) -> list[str]:
    flat = re.sub(r"\s+", " ", re.sub(r"`[^`]*`", "code", text or "")).strip()
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])", flat) if s.strip()]


# --- parts, requirements and the judgement ---------------------------------------------------------

Check = Callable[[Section], bool]


@dataclass(frozen=True)
class Req:
    """One thing a part's text must carry; ``label`` names it when it is missing."""

    label: str
    test: Check


@dataclass(frozen=True)
class Part:
    """A headed part of an artifact and what its text must carry."""

    key: str
    title: str
    synonyms: tuple[str, ...]
    reqs: tuple[Req, ...]
    ask: str
    """What to write, in one line (the hint when the part is weak)."""
    min_words: int = 4
    """Fewer content words than this (and no number or command) is filler."""


@dataclass
class PartScore:
    """How one part fared."""

    key: str
    title: str
    present: bool
    filler: bool = False
    met: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    ask: str = ""

    @property
    def credit(self) -> float:
        if not self.present or self.filler:
            return 0.0
        total = len(self.met) + len(self.missing)
        return len(self.met) / total if total else 1.0


@dataclass
class Judgement:
    parts: list[PartScore]

    def score(self) -> float:
        return sum(p.credit for p in self.parts) / len(self.parts) if self.parts else 0.0

    def details(self) -> dict[str, dict[str, object]]:
        return {p.key: {"credit": round(p.credit, 3), "present": p.present, "filler": p.filler,
                        "missing": p.missing} for p in self.parts}

    def describe(self) -> tuple[str, str]:
        """(observed, hint) in plain words."""
        full = [p.key for p in self.parts if p.credit >= 1.0]
        observed = f"{len(full)}/{len(self.parts)} parts concrete"
        absent = [p.key for p in self.parts if not p.present]
        filler = [p.key for p in self.parts if p.present and p.filler]
        thin = [p for p in self.parts if p.present and not p.filler and p.credit < 1.0]
        if absent:
            observed += "; missing: " + ", ".join(absent)
        if filler:
            observed += "; filler only: " + ", ".join(filler)
        if thin:
            observed += "; thin: " + ", ".join(f"{p.key} (lacks {' / '.join(p.missing)})" for p in thin)
        hints = [f"{p.title}: {p.ask}" for p in self.parts if p.credit < 1.0]
        return observed, "; ".join(hints)


def score_part(part: Part, section: Section | None) -> PartScore:
    result = PartScore(part.key, part.title, section is not None and bool(section.text.strip()), ask=part.ask)
    if not result.present or section is None:
        result.missing = [r.label for r in part.reqs]
        return result
    result.filler = is_filler(section.text, part.min_words)
    for req in part.reqs:
        (result.met if not result.filler and req.test(section) else result.missing).append(req.label)
    return result


def judge(text: str, parts: tuple[Part, ...], labels: bool = True) -> Judgement:
    """Split ``text`` into the rubric's parts and score each one."""
    found = split(text, {p.key: p.synonyms for p in parts}, labels=labels)
    return Judgement([score_part(p, found.get(p.key)) for p in parts])


# --- requirement builders ------------------------------------------------------------------------


def number(n: int = 1, label: str = "") -> Req:
    return Req(label or ("a number" if n == 1 else f"{n} numbers"), lambda s: len(numbers(s.text)) >= n)


def role(label: str = "a named person or role") -> Req:
    return Req(label, lambda s: bool(ROLE.search(s.text) or PERSON.search(s.text)))


def accountable(label: str = "a named accountable person or role") -> Req:
    return Req(label, lambda s: bool(ACCOUNTABLE.search(s.text)) and bool(PERSON.search(s.text) or ROLE.search(s.text)))


def decision(label: str = "a decision") -> Req:
    return Req(label, lambda s: bool(DECISION.search(s.text)))


def reason(n: int = 1, label: str = "") -> Req:
    return Req(label or "a reason (because ...)", lambda s: len(REASON.findall(s.text)) >= n)


def items(n: int, label: str = "", words: int = 4) -> Req:
    return Req(label or f"at least {n} items",
               lambda s: sum(len(content_words(i)) >= words for i in s.items) >= n)


def terms(pattern: str, label: str, n: int = 1) -> Req:
    rx = re.compile(pattern, re.IGNORECASE)
    return Req(label, lambda s: len({m.group(0).lower() for m in rx.finditer(s.text)}) >= n)


def code(label: str = "a command, metric or endpoint") -> Req:
    return Req(label, lambda s: has_code(s.text))


def when(label: str = "a date or deadline") -> Req:
    return Req(label, lambda s: bool(WHEN.search(s.text) or TIME_OF_DAY.search(s.text)))


def any_of(label: str, *reqs: Req) -> Req:
    return Req(label, lambda s: any(r.test(s) for r in reqs))
