"""Runbook corpus snapshots and the retrieval evaluation set.

A *snapshot* is a JSON Lines file, one runbook per line::

    {"id": "rb-0001", "title": "...", "incident_class": "...", "body": "..."}

Its name is the file stem (``2026-11-01.jsonl`` -> ``2026-11-01``); snapshots
sort by name, so ISO dates give chronological order. The evaluation set
(``eval.jsonl``) holds one labelled query per line::

    {"query": "...", "expected": ["rb-0042"], "since": "2026-11-01"}

where ``since`` (optional) is the first snapshot containing the expected docs.
Loaders validate every line and raise :class:`CorpusError` with a message
naming the file and line, so a broken data file is diagnosed in one read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CorpusError",
    "Doc",
    "EvalCase",
    "SNAPSHOT_SUFFIX",
    "latest_snapshot",
    "list_snapshots",
    "load_eval",
    "load_queries",
    "load_snapshot",
    "snapshot_path",
    "snapshot_sha256",
]

SNAPSHOT_SUFFIX = ".jsonl"
_DOC_FIELDS = ("id", "title", "incident_class", "body")


class CorpusError(ValueError):
    """A corpus or eval file is missing or malformed (message names file and line)."""


@dataclass(frozen=True)
class Doc:
    """One runbook of a corpus snapshot."""

    id: str
    title: str
    incident_class: str
    body: str

    def text(self) -> str:
        """Return the text that gets embedded: title, class and body."""
        return f"{self.title}\n{self.incident_class}\n{self.body}"


@dataclass(frozen=True)
class EvalCase:
    """One labelled query: the runbook ids a good answer should contain."""

    query: str
    expected: tuple[str, ...]
    since: str | None = None


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line of ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CorpusError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: cannot read file ({exc})") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{path} line {lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise CorpusError(f"{path} line {lineno}: expected a JSON object")
        yield lineno, obj


def _require_str(obj: dict[str, Any], key: str, where: str) -> str:
    """Return ``obj[key]`` if it is a non-blank string, else raise CorpusError."""
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CorpusError(f"{where}: field {key!r} must be a non-empty string")
    return value


def load_snapshot(path: str | Path) -> list[Doc]:
    """Load and validate a corpus snapshot; raise :class:`CorpusError` if invalid.

    Every line needs the four string fields; ids must be unique in the file.
    """
    path = Path(path)
    docs: list[Doc] = []
    seen: dict[str, int] = {}
    for lineno, obj in _json_lines(path):
        where = f"{path} line {lineno}"
        fields = {key: _require_str(obj, key, where) for key in _DOC_FIELDS}
        doc_id = fields["id"]
        if doc_id in seen:
            raise CorpusError(
                f"{where}: duplicate id {doc_id!r} (first seen on line {seen[doc_id]})"
            )
        seen[doc_id] = lineno
        docs.append(Doc(**fields))
    if not docs:
        raise CorpusError(f"{path}: snapshot contains no documents")
    return docs


def snapshot_sha256(path: str | Path) -> str:
    """Return the hex SHA-256 of the snapshot file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def list_snapshots(corpus_dir: str | Path) -> list[str]:
    """Return the snapshot names (file stems) in ``corpus_dir``, sorted.

    A missing directory yields an empty list.
    """
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        return []
    return sorted(
        p.name[: -len(SNAPSHOT_SUFFIX)]
        for p in corpus_dir.iterdir()
        if p.is_file() and p.name.endswith(SNAPSHOT_SUFFIX) and not p.name.startswith(".")
    )


def latest_snapshot(corpus_dir: str | Path) -> str | None:
    """Return the newest snapshot name in ``corpus_dir``, or None if there is none."""
    names = list_snapshots(corpus_dir)
    return names[-1] if names else None


def snapshot_path(corpus_dir: str | Path, snapshot: str) -> Path:
    """Return the file path of ``snapshot`` in ``corpus_dir`` (rejecting path tricks)."""
    if not snapshot or "/" in snapshot or "\\" in snapshot or snapshot.startswith("."):
        raise CorpusError(f"invalid snapshot name {snapshot!r}")
    return Path(corpus_dir) / f"{snapshot}{SNAPSHOT_SUFFIX}"


def load_eval(path: str | Path) -> list[EvalCase]:
    """Load and validate an evaluation set; raise :class:`CorpusError` if invalid."""
    path = Path(path)
    cases: list[EvalCase] = []
    for lineno, obj in _json_lines(path):
        where = f"{path} line {lineno}"
        query = _require_str(obj, "query", where)
        expected = obj.get("expected")
        if (
            not isinstance(expected, list)
            or not expected
            or not all(isinstance(e, str) and e.strip() for e in expected)
        ):
            raise CorpusError(f"{where}: field 'expected' must be a non-empty list of doc ids")
        since = obj.get("since")
        if since is not None and (not isinstance(since, str) or not since.strip()):
            raise CorpusError(f"{where}: field 'since' must be a snapshot name when present")
        cases.append(EvalCase(query=query, expected=tuple(expected), since=since))
    return cases


def load_queries(path: str | Path) -> list[str]:
    """Load a query set (``{"query": "..."}`` per line, e.g. ``queries/baseline.jsonl``)."""
    path = Path(path)
    return [_require_str(obj, "query", f"{path} line {n}") for n, obj in _json_lines(path)]
