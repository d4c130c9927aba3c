"""Vector index artifacts: build, verify, load and search.

An index is a directory ``<indexes_dir>/<name>/`` holding three files:

* ``vectors.npy`` - float32 array ``(doc_count, dimension)``, one row per doc;
* ``docs.json`` - ``[{"id", "title", "incident_class"}, ...]`` in row order;
* ``manifest.json`` - provenance and integrity data::

    {"index_version": "2026-11-01-v1", "model_version": "v1", "dimension": 256,
     "corpus_snapshot": "2026-11-01", "corpus_sha256": "...", "doc_count": 72,
     "built_at": "2026-11-01T00:00:00Z", "vectors_sha256": "...",
     "docs_sha256": "...", "builder": "modelapi 0.1.0"}

Builds are atomic (written to a hidden temp directory, then renamed), so a
crashed build never leaves a half-written index under its real name. Loading
verifies the artifact before trusting it and fails with a subclass of
:class:`IndexLoadError` whose ``reason`` is ``missing``, ``corrupt`` or
``model-mismatch`` and whose message says what is wrong in plain language.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .corpus import load_snapshot, snapshot_sha256
from .embedding import get_model

__all__ = [
    "IndexCorrupt",
    "IndexExists",
    "IndexLoadError",
    "IndexMissing",
    "IndexModelMismatch",
    "IndexedDoc",
    "LoadedIndex",
    "Manifest",
    "build_index",
    "format_timestamp",
    "list_indexes",
    "load_index",
    "parse_timestamp",
    "validate_index_name",
    "verify_index",
]

from .artifact import (
    DOCS_FILE,
    MANIFEST_FILE,
    VECTORS_FILE,
    IndexCorrupt,
    IndexedDoc,
    IndexExists,
    IndexLoadError,
    IndexMissing,
    IndexModelMismatch,
    LoadedIndex,
    Manifest,
    format_timestamp,
    parse_timestamp,
    validate_index_name,
)


def _sha256(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and fsync it."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _vectors_bytes(vectors: np.ndarray) -> bytes:
    """Serialise ``vectors`` in ``.npy`` format (deterministic bytes)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def _exists_message(final: Path) -> str:
    """Explain that ``final`` exists and how to replace it."""
    return (
        f"index {final.name} already exists at {final}; "
        "pass overwrite=True (CLI: --overwrite) to replace it"
    )


def _install_dir(tmp: Path, final: Path, overwrite: bool) -> None:
    """Atomically move the finished ``tmp`` directory to ``final``."""
    if not final.exists():
        os.rename(tmp, final)
        return
    if not overwrite:
        raise IndexExists(_exists_message(final))
    old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
    os.rename(final, old / final.name)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def build_index(
    model_version: str,
    corpus_path: str | Path,
    out_dir: str | Path,
    name: str | None = None,
    built_at: datetime | str | None = None,
    *,
    overwrite: bool = False,
) -> Manifest:
    """Embed a corpus snapshot and write the index ``<out_dir>/<name>/`` atomically.

    Args:
        model_version: Embedding model, e.g. ``"v1"``.
        corpus_path: Snapshot file; its stem is the snapshot name.
        out_dir: The indexes directory (created if missing).
        name: Index name; default ``<snapshot>-<model>`` (``2026-11-01-v1``).
        built_at: Build timestamp (default now); fix it for reproducible builds.
        overwrite: Replace an existing index of the same name.

    Raises:
        IndexExists: the index exists and ``overwrite`` is false.
        CorpusError, UnknownModelError, ValueError: invalid inputs.
    """
    model = get_model(model_version)
    corpus_path = Path(corpus_path)
    snapshot = corpus_path.name.removesuffix(".jsonl")
    name = validate_index_name(name or f"{snapshot}-{model.version}")
    final = Path(out_dir) / name
    if final.exists() and not overwrite:
        raise IndexExists(_exists_message(final))
    docs = load_snapshot(corpus_path)
    vec_bytes = _vectors_bytes(model.embed([d.text() for d in docs]))
    docs_bytes = _docs_bytes([IndexedDoc(d.id, d.title, d.incident_class) for d in docs])
    manifest = Manifest(
        index_version=name,
        model_version=model.version,
        dimension=model.dimension,
        corpus_snapshot=snapshot,
        corpus_sha256=snapshot_sha256(corpus_path),
        doc_count=len(docs),
        built_at=format_timestamp(built_at),
        vectors_sha256=_sha256(vec_bytes),
        docs_sha256=_sha256(docs_bytes),
        builder=f"modelapi {__version__}",
    )
    manifest_bytes = (json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n").encode()
    files = {VECTORS_FILE: vec_bytes, DOCS_FILE: docs_bytes, MANIFEST_FILE: manifest_bytes}
    _write_atomically(final, files, overwrite)
    return manifest


def _docs_bytes(docs: list[IndexedDoc]) -> bytes:
    """Serialise the ``docs.json`` rows (compact, deterministic)."""
    rows = [doc.to_dict() for doc in docs]
    return (json.dumps(rows, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def _write_atomically(final: Path, files: dict[str, bytes], overwrite: bool) -> None:
    """Write ``files`` into a hidden temp dir beside ``final``, then rename it into place.

    The manifest is written last, so a directory with a manifest is complete.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        os.chmod(tmp, 0o755)
        for filename, data in files.items():
            _write_file(tmp / filename, data)
        _install_dir(tmp, final, overwrite)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _read_required(index_dir: Path, name: str) -> tuple[bytes, bytes, bytes]:
    """Return the bytes of manifest, vectors and docs, or raise IndexMissing."""
    if not index_dir.is_dir():
        raise IndexMissing(f"index {name} not found: {index_dir} does not exist", index=name)
    blobs = []
    for filename in (MANIFEST_FILE, VECTORS_FILE, DOCS_FILE):
        try:
            blobs.append((index_dir / filename).read_bytes())
        except FileNotFoundError:
            raise IndexMissing(
                f"index {name} is incomplete: {filename} is missing in {index_dir}", index=name
            ) from None
        except OSError as exc:
            raise IndexCorrupt(
                f"index {name}: cannot read {filename} ({exc})", index=name
            ) from None
    return blobs[0], blobs[1], blobs[2]


def _parse_docs(docs_bytes: bytes, name: str) -> tuple[IndexedDoc, ...]:
    """Parse ``docs.json`` bytes, raising IndexCorrupt if malformed."""
    try:
        rows = json.loads(docs_bytes)
        return tuple(IndexedDoc(r["id"], r["title"], r["incident_class"]) for r in rows)
    except (ValueError, TypeError, KeyError) as exc:
        raise IndexCorrupt(
            f"index {name} is corrupt: {DOCS_FILE} is malformed ({exc})", index=name
        ) from None


def _check_hash(blob: bytes, expected: str, filename: str, name: str) -> None:
    """Raise IndexCorrupt unless ``sha256(blob) == expected``."""
    actual = _sha256(blob)
    if actual != expected:
        raise IndexCorrupt(
            f"index {name} is corrupt: {filename} sha256 {actual[:12]}... does not match "
            f"the manifest ({expected[:12]}...); rebuild the index",
            index=name,
        )


def verify_index(index_dir: str | Path) -> LoadedIndex:
    """Load an index and verify its integrity, without checking the model.

    Raises:
        IndexMissing: directory or a file is missing.
        IndexCorrupt: bad manifest, hash mismatch, or inconsistent shapes.
    """
    index_dir = Path(index_dir)
    name = index_dir.name
    manifest_bytes, vec_bytes, docs_bytes = _read_required(index_dir, name)
    try:
        manifest_data = json.loads(manifest_bytes)
    except ValueError as exc:
        raise IndexCorrupt(
            f"index {name} is corrupt: {MANIFEST_FILE} is not valid JSON ({exc})", index=name
        ) from None
    manifest = Manifest.from_dict(manifest_data, where=f"index {name} is corrupt: {MANIFEST_FILE}")
    _check_hash(vec_bytes, manifest.vectors_sha256, VECTORS_FILE, name)
    _check_hash(docs_bytes, manifest.docs_sha256, DOCS_FILE, name)
    try:
        vectors = np.load(io.BytesIO(vec_bytes), allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise IndexCorrupt(
            f"index {name} is corrupt: cannot read {VECTORS_FILE} ({exc})", index=name
        ) from None
    expected_shape = (manifest.doc_count, manifest.dimension)
    if vectors.dtype != np.float32 or vectors.shape != expected_shape:
        raise IndexCorrupt(
            f"index {name} is corrupt: {VECTORS_FILE} is {vectors.dtype} {vectors.shape}, "
            f"manifest says float32 {expected_shape}",
            index=name,
        )
    docs = _parse_docs(docs_bytes, name)
    if len(docs) != manifest.doc_count:
        raise IndexCorrupt(
            f"index {name} is corrupt: {DOCS_FILE} lists {len(docs)} docs, "
            f"manifest says {manifest.doc_count}",
            index=name,
        )
    vectors.setflags(write=False)
    return LoadedIndex(path=index_dir, manifest=manifest, docs=docs, vectors=vectors)


def load_index(index_dir: str | Path, model_version: str) -> LoadedIndex:
    """Verify an index and check it was built by ``model_version``.

    Raises:
        IndexMissing, IndexCorrupt: see :func:`verify_index`.
        IndexModelMismatch: built by another model version or dimension.
        UnknownModelError: ``model_version`` itself is not a known model.
    """
    model = get_model(model_version)
    loaded = verify_index(index_dir)
    manifest = loaded.manifest
    if manifest.model_version != model.version or manifest.dimension != model.dimension:
        raise IndexModelMismatch(
            f"index {Path(index_dir).name} was built by model {manifest.model_version} "
            f"(dim {manifest.dimension}) but this service runs model {model.version} "
            f"(dim {model.dimension})",
            index=Path(index_dir).name,
        )
    return loaded


def list_indexes(indexes_dir: str | Path) -> list[dict[str, Any]]:
    """Describe every index under ``indexes_dir``, sorted by name.

    Healthy indexes give their manifest plus ``name``, ``path`` and
    ``status: "ok"``; broken ones give ``name``, ``path``, ``status: "broken"``,
    ``reason`` and a human ``error``. Hidden entries (temp dirs) are skipped.
    """
    indexes_dir = Path(indexes_dir)
    if not indexes_dir.is_dir():
        return []
    out: list[dict[str, Any]] = []
    for child in sorted(indexes_dir.iterdir()):
        if not child.is_dir() or child.name.startswith("."):
            continue
        entry: dict[str, Any] = {"name": child.name, "path": str(child)}
        try:
            entry.update(verify_index(child).manifest.to_dict(), status="ok")
        except IndexLoadError as exc:
            entry.update(status="broken", reason=exc.reason, error=exc.message)
        out.append(entry)
    return out
