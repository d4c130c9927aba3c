"""Checks of governance artifacts (registered into ``graders.checks.CHECKS``).

* ``data_classification`` reads a markdown table that classifies the stack's data assets
  (corpus, index, query logs, eval set, quarantine records, metrics): every required asset a
  row with a classification from the scale, whether it holds personal data, a concrete
  retention and a named owner; queries - which can carry personal data and leave for the
  reranker provider - held to a stricter bar.
* ``corpus_runbook`` judges a runbook written to be added to the corpus: its six sections
  (``runbook_sections``) and whether the live service would retrieve it for the incident's
  alert text at rank ``rank`` or better. The rank is computed with the serving model's own
  embedding against the live index's scores for that query (vector order, before any rerank).
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.modelapi.embedding import get_model

from . import rubric as r
from .checks import register, runbook_sections
from sandbox.observe import Observation, broken, holds

CLASSES = ("public", "internal", "confidential", "restricted")
#: Required rows: asset key -> pattern its "asset" cell matches.
ASSETS: dict[str, str] = {
    "corpus": r"corpus|snapshot|runbook",
    "index": r"\bindex|vector|embedding|manifest",
    "queries": r"quer|search (log|request)|request log|access log",
    "eval-set": r"\beval",
    "quarantine": r"quarantin",
    "metrics": r"metric|prometheus",
}
#: Column key -> header words, checked in this order ("personal data" before "data").
COLUMNS: dict[str, tuple[str, ...]] = {
    "personal": ("personal data", "personal", "pii"),
    "classification": ("classification", "class", "sensitivity", "level"),
    "retention": ("retention", "retain", "kept for", "keep for", "keep"),
    "owner": ("owner", "steward", "data owner", "accountable"),
    "deletion": ("deletion", "delete", "erasure", "deletion path", "how to delete"),
    "where": ("where", "location", "stored", "flows to", "flows"),
    "asset": ("asset", "data asset", "dataset", "data set", "data", "what"),
}
_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(day|week|month|year)s?\b", re.IGNORECASE)
_YES = re.compile(r"\b(yes|may|can|possibly|likely|sometimes)\b", re.IGNORECASE)
_NO = re.compile(r"\b(no|none)\b", re.IGNORECASE)
_FOREVER = re.compile(r"\b(indefinite\w*|permanent\w*|forever|until (superseded|replaced|deleted)\b[^|]*\d)",
                      re.IGNORECASE)
QUERY_MAX_DAYS = 90


def _columns(header: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i, cell in enumerate(header):
        key = r.classify(cell, COLUMNS)
        if key and key not in out:
            out[key] = i
    return out


def _classification_table(text: str) -> tuple[list[list[str]], dict[str, int]]:
    for table in r.tables(text):
        cols = _columns(table[0]) if table else {}
        if "asset" in cols and "classification" in cols:
            return table[1:], cols
    return [], {}


def retention_days(cell: str) -> float | None:
    """The longest duration named in a retention cell, in days (None: no duration)."""
    spans = [float(n) * _DAYS[u.lower()] for n, u in _DURATION.findall(cell or "")]
    return max(spans) if spans else None


def _row_part(key: str, row: list[str] | None, cols: dict[str, int]) -> r.PartScore:
    part = r.PartScore(key, key, row is not None, ask=f"give {key} a row: class, personal data, retention, owner")
    if row is None:
        part.missing = ["a row"]
        return part
    cell = lambda c: row[cols[c]] if c in cols and cols[c] < len(row) else ""  # noqa: E731
    checks = {
        f"a classification ({'/'.join(CLASSES)})": any(c in cell("classification").lower() for c in CLASSES),
        "personal data yes/no": bool(_YES.search(cell("personal")) or _NO.search(cell("personal"))),
        "a concrete retention (a duration)": retention_days(cell("retention")) is not None
        or bool(_FOREVER.search(cell("retention"))),
        "a named owner": bool(r.ROLE.search(cell("owner")) or r.PERSON.search(cell("owner"))),
    }
    for label, ok in checks.items():
        (part.met if ok else part.missing).append(label)
    return part


def _queries_part(row: list[str] | None, cols: dict[str, int], text: str) -> r.PartScore:
    part = r.PartScore("queries-handled", "queries", row is not None,
                       ask=f"queries can carry personal data: confidential or restricted, kept at most "
                           f"{QUERY_MAX_DAYS} days, a deletion path, and the provider named where they flow")
    if row is None:
        part.missing = ["a queries row"]
        return part
    joined = " | ".join(row)
    cell = lambda c: row[cols[c]] if c in cols and cols[c] < len(row) else ""  # noqa: E731
    days = retention_days(cell("retention"))
    checks = {
        "personal data: yes": bool(_YES.search(cell("personal"))),
        "confidential or restricted": bool(re.search(r"confidential|restricted", cell("classification"), re.I)),
        f"retention at most {QUERY_MAX_DAYS} days": days is not None and days <= QUERY_MAX_DAYS,
        "a deletion path": len(r.content_words(cell("deletion"))) >= 3 if "deletion" in cols
        else bool(re.search(r"delet|eras|purg", joined, re.I)),
        "the provider data flow": bool(re.search(r"provider|rerank|third part|vendor", joined + text, re.I)),
    }
    for label, ok in checks.items():
        (part.met if ok else part.missing).append(label)
    return part


@register("data_classification", needs_sandbox=False)
def data_classification(sb: Any, text: str = "") -> Observation:
    """A classification table of the corpus, index, queries, eval set, quarantine and metrics.

    Partial credit: the mean over the six rows (each the share of class, personal data,
    retention and owner given) and the stricter queries part.
    """
    rows, cols = _classification_table(text or "")
    by_asset: dict[str, list[str]] = {}
    for row in rows:
        asset = row[cols["asset"]] if cols["asset"] < len(row) else ""
        for key, pattern in ASSETS.items():
            if re.search(pattern, asset, re.IGNORECASE) and key not in by_asset:
                by_asset[key] = row
                break
    judgement = r.Judgement([_row_part(k, by_asset.get(k), cols) for k in ASSETS])
    judgement.parts.append(_queries_part(by_asset.get("queries"), cols, text or ""))
    observed, hint = judgement.describe()
    if not rows:
        observed, hint = "no table with an asset and a classification column", \
            "write a markdown table with columns asset | classification | personal data | retention | owner | deletion"
    expected = "a row per asset (" + ", ".join(ASSETS) + ") with class, personal data, retention, owner; queries strict"
    share = judgement.score()
    if share >= 1.0:
        return holds("data_classification", observed, expected, parts=judgement.details())
    return broken("data_classification", observed, expected, hint, share, parts=judgement.details())


# --- a runbook for the corpus -------------------------------------------------------------------


def _as_document(text: str, incident_class: str) -> tuple[str, str]:
    """(title, embedded text) of a markdown runbook, as the corpus loader would embed it."""
    lines = (text or "").strip().splitlines()
    head = r.heading_of(lines[0]) if lines else None
    title = head[1] if head else (lines[0] if lines else "")
    body = "\n".join(lines[1:]) if head else "\n".join(lines)
    return title, f"{title}\n{incident_class}\n{body}"


def retrieval_rank(sb: Any, text: str, alert: str, incident_class: str = "", depth: int = 10) -> tuple[int | None, str]:
    """(rank the live index would give the runbook for ``alert`` or None past ``depth``, model)."""
    model = str(sb.version().get("model") or "v1")
    embedder = get_model(model)
    title, doc = _as_document(text, incident_class)
    vectors = embedder.embed([doc, alert])
    mine = float(vectors[0] @ vectors[1])
    results = sb.search(alert, k=depth).get("results", [])
    better = [h for h in results if float(h.get("score", 0.0)) > mine and h.get("title") != title]
    if len(better) >= depth:
        return None, model
    return len(better) + 1, model


@register("corpus_runbook")
def corpus_runbook(sb: Any, text: str = "", alert: str = "", rank: int = 3, incident_class: str = "") -> Observation:
    """A runbook for the corpus: six sections with evidence, retrieved at ``rank`` or better.

    Half the credit is ``runbook_sections``; half is retrieval: full at ``rank`` or better,
    half at up to twice that, nothing beyond (and nothing for text without a single section).
    """
    if not alert:
        raise ValueError("corpus_runbook needs the incident's alert text (args: alert=...)")
    sections = runbook_sections(sb, text=text)
    expected = f"six sections with evidence, and rank <= {rank} for {alert[:60]!r}"
    if sections.share <= 0 and not sections.passed:  # no section with content: nothing a retrieval rank could be earned for
        return broken("corpus_runbook", f"no runbook ({sections.observed})", expected, sections.hint)
    found, model = retrieval_rank(sb, text, alert, incident_class)
    retrieval = 1.0 if found is not None and found <= rank else 0.5 if found is not None and found <= 2 * rank else 0.0
    share = ((1.0 if sections.passed else sections.share) + retrieval) / 2
    observed = (f"{sections.observed}; retrieved at rank {found if found is not None else '>10'} by model {model}"
                f" for the alert text")
    details = {"rank": found, "model": model, "sections": 1.0 if sections.passed else sections.share}
    if share >= 1.0:
        return holds("corpus_runbook", observed, expected, **details)
    hints = [sections.hint] if sections.hint else []
    if retrieval < 1.0:
        hints.append("start the runbook with the alert name and use the words of the alert text and of its"
                     " symptoms (reason codes, metric names) in the title and the first lines")
    return broken("corpus_runbook", observed, expected, "; ".join(hints), share, **details)
