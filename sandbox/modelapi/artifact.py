"""The on-disk format of a vector index: its file names, its manifest, the records a loaded
index is made of, and the errors a load fails with (see the ``index`` module for the layout,
the build and the verification)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DOCS_FILE",
    "MANIFEST_FILE",
    "VECTORS_FILE",
    "IndexCorrupt",
    "IndexExists",
    "IndexLoadError",
    "IndexMissing",
    "IndexModelMismatch",
    "IndexedDoc",
    "LoadedIndex",
    "Manifest",
    "format_timestamp",
    "parse_timestamp",
    "validate_index_name",
]

MANIFEST_FILE = "manifest.json"
VECTORS_FILE = "vectors.npy"
DOCS_FILE = "docs.json"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class IndexLoadError(Exception):
    """Base class of index loading failures; ``reason`` is a short stable code."""

    reason = "error"

    def __init__(self, message: str, *, index: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.index = index


class IndexMissing(IndexLoadError):
    """The index directory or one of its files does not exist."""

    reason = "missing"


class IndexCorrupt(IndexLoadError):
    """The index exists but fails integrity checks (hashes, shapes, JSON)."""

    reason = "corrupt"


class IndexModelMismatch(IndexLoadError):
    """The index was built by a different embedding model than the one serving."""

    reason = "model-mismatch"


class IndexExists(FileExistsError):
    """Building would overwrite an existing index and ``overwrite`` was not set."""


def validate_index_name(name: str) -> str:
    """Return ``name`` if it is a safe directory name, else raise ValueError."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in {".", ".."}:
        raise ValueError(
            f"invalid index name {name!r}: use letters, digits, '.', '_' or '-' "
            "(max 128 chars, not starting with '.', '_' or '-')"
        )
    return name


def format_timestamp(value: datetime | str | None = None) -> str:
    """Return ``value`` (default: now) as ISO-8601 UTC like ``2026-11-01T00:00:00Z``."""
    if value is None:
        value = datetime.now(UTC)
    elif isinstance(value, str):
        value = parse_timestamp(value)
    if value.tzinfo is None:
        raise ValueError("built_at must be timezone-aware (UTC)")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO-8601 timestamp (``Z`` suffix allowed); naive means UTC."""
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Manifest:
    """Provenance and integrity record of an index (``manifest.json``)."""

    index_version: str
    model_version: str
    dimension: int
    corpus_snapshot: str
    corpus_sha256: str
    doc_count: int
    built_at: str
    vectors_sha256: str
    docs_sha256: str
    builder: str

    def to_dict(self) -> dict[str, Any]:
        """Return the manifest as a JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "manifest") -> Manifest:
        """Build a Manifest from parsed JSON, raising :class:`IndexCorrupt` if invalid."""
        if not isinstance(data, dict):
            raise IndexCorrupt(f"{where}: expected a JSON object")
        values: dict[str, Any] = {}
        for field in fields(cls):
            value = data.get(field.name)
            expected_type = int if field.type in ("int", int) else str
            if not isinstance(value, expected_type) or isinstance(value, bool):
                raise IndexCorrupt(
                    f"{where}: field {field.name!r} missing or not a {expected_type.__name__}"
                )
            values[field.name] = value
        return cls(**values)

    def built_at_datetime(self) -> datetime:
        """Return ``built_at`` as an aware datetime."""
        return parse_timestamp(self.built_at)


@dataclass(frozen=True)
class IndexedDoc:
    """The per-row document metadata stored in ``docs.json``."""

    id: str
    title: str
    incident_class: str

    def to_dict(self) -> dict[str, str]:
        """Return the doc as a JSON-serialisable dict."""
        return asdict(self)


@dataclass(frozen=True)
class LoadedIndex:
    """A verified index in memory, ready to search."""

    path: Path
    manifest: Manifest
    docs: tuple[IndexedDoc, ...]
    vectors: np.ndarray

    @property
    def name(self) -> str:
        """The index version recorded in the manifest."""
        return self.manifest.index_version

    def search(self, query_vec: np.ndarray, k: int) -> list[tuple[IndexedDoc, float]]:
        """Return the ``k`` docs most similar to ``query_vec`` with cosine scores.

        Vectors are L2-normalised, so cosine similarity is a dot product. Ties
        keep corpus order, so results are deterministic.
        """
        query = np.asarray(query_vec, dtype=np.float32).reshape(-1)
        if query.shape[0] != self.vectors.shape[1]:
            raise ValueError(
                f"query vector has dimension {query.shape[0]}, index {self.name} "
                f"expects {self.vectors.shape[1]}"
            )
        if k < 1 or not self.docs:
            return []
        scores = self.vectors @ query
        order = np.argsort(-scores, kind="stable")[:k]
        return [(self.docs[i], float(scores[i])) for i in order]
