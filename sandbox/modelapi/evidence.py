"""Release records, evaluation results and notes, kept as hash chains (``chain``) on the data
volume, and the replay that answers "what served at T, built from which snapshot, approved by
whom when, evaluated how".

Layout under ``DATA_DIR``: ``evidence/releases.jsonl`` (a ``release`` entry per revision that
took traffic), ``evidence/evaluations.jsonl`` (``evaluation``), ``evidence/notes.jsonl``
(``incident``, ``reconstruction``... entries whose fields are the caller's). The approvals are
``evidence/approvals.jsonl`` (``governance``). Only the kit's own process appends these (its
``record-*`` jobs are not a trainee's); every entry names who made the call (``actor``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import chain
from . import governance as gov

LOGS = ("releases", "evaluations", "notes")


def log_path(data_dir: Path, name: str) -> Path:
    return Path(data_dir) / "evidence" / f"{name}.jsonl"


def _actor(actor: str | None) -> str:
    name = (actor or "").strip()
    if not name:
        raise gov.CorpusError("a record needs who made the call (--actor); none was given")
    return name


def _manifest(data_dir: Path, index: str) -> dict[str, Any]:
    path = Path(data_dir) / "indexes" / index / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def record_release(data_dir: Path, fields: dict[str, Any], actor: str, at: float | None = None) -> dict[str, Any]:
    """A revision took traffic: what it runs, the data it was built from, the approval it rests on.

    Idempotent: a revision already on record with the same ``served_from`` is returned as it is.
    """
    for entry in chain.trusted(chain.read(log_path(data_dir, "releases"))):
        if entry.get("revision") == fields.get("revision") and entry.get("served_from") == fields.get("served_from"):
            return entry
    manifest = _manifest(data_dir, str(fields.get("index", "")))
    snapshot, sha = manifest.get("corpus_snapshot"), manifest.get("corpus_sha256")
    entry = gov.approvals_in_force(data_dir).get(str(snapshot))
    approval = ({k: entry[k] for k in ("seq", "hash", "approver", "at")}
                if entry and entry.get("sha256") == sha else None)
    evaluation = last_evaluation(data_dir, int(fields["revision"]))
    return chain.append(log_path(data_dir, "releases"), "release", {
        **fields, "corpus_snapshot": snapshot, "corpus_sha256": sha, "approval": approval,
        "evaluation": evaluation, "deployed_by": _actor(actor)}, at=at)


def record_evaluation(data_dir: Path, fields: dict[str, Any], actor: str, at: float | None = None) -> dict[str, Any]:
    return chain.append(log_path(data_dir, "evaluations"), "evaluation", {**fields, "by": _actor(actor)}, at=at)


def record_note(data_dir: Path, kind: str, fields: dict[str, Any], actor: str, at: float | None = None) -> dict[str, Any]:
    if kind in ("release", "evaluation", "approve", "revoke"):
        raise gov.CorpusError(f"{kind!r} records are the kit's own; a note is e.g. 'incident' or 'reconstruction'")
    text = json.dumps(fields, default=str)
    if len(text) > 4000:
        raise gov.CorpusError(f"a note holds at most 4000 characters of fields ({len(text)} given)")
    return chain.append(log_path(data_dir, "notes"), kind, {"fields": fields, "by": _actor(actor)}, at=at)


def last_evaluation(data_dir: Path, revision: int, before: float | None = None) -> dict[str, Any] | None:
    found = [e for e in chain.trusted(chain.read(log_path(data_dir, "evaluations")))
             if e.get("revision") == revision and (before is None or e["at"] <= before)]
    return _brief(found[-1]) if found else None


def _brief(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: entry[k] for k in ("seq", "at", "hash", "k", "recall", "hits", "total", "by") if k in entry}


def records(data_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Every record, by log (``approvals`` too), oldest first."""
    out = {name: chain.read(log_path(data_dir, name)) for name in LOGS}
    return {"approvals": gov.approval_log(data_dir), **out}


def verify(data_dir: Path, anchors: dict[str, dict[int, str]] | None = None) -> dict[str, Any]:
    """Every chain checked; ``ok`` only if all hold (and every anchor is found unchanged)."""
    logs = {name: chain.verify(entries, (anchors or {}).get(name))
            for name, entries in records(data_dir).items()}
    broken = [f"{name}: {v['reason']}" for name, v in logs.items() if not v["ok"]]
    return {"ok": not broken, "logs": logs, "reason": "; ".join(broken) or "every record verifies"}


def served_at(data_dir: Path, at: float) -> dict[str, Any]:
    """Replay the (verified parts of the) records: what served at ``at`` and on what evidence."""
    logs = {name: chain.trusted(entries) for name, entries in records(data_dir).items()}
    releases = [e for e in logs["releases"] if e["at"] <= at]
    out: dict[str, Any] = {"at": at, "served": None, "approval": None, "evaluations": [],
                           "verified": verify(data_dir)["ok"]}
    if not releases:
        out["reason"] = "no release record at or before that moment (nothing served yet)"
        return out
    release = releases[-1]
    out["served"] = {k: v for k, v in release.items() if k not in ("approval", "evaluation", "prev")}
    out["approval"] = _approval_then(logs["approvals"], release.get("approval"), at)
    out["evaluations"] = [_brief(e) for e in logs["evaluations"]
                          if e.get("revision") == release["revision"] and e["at"] <= at]
    out["incidents"] = [e for e in logs["notes"] if e.get("kind") == "incident" and release["at"] <= e["at"] <= at]
    approver = out["approval"]["approver"] if out["approval"] else "nobody (no approval on record)"
    out["reason"] = (f"revision {release['revision']} ({release.get('model')}, index {release.get('index')}) from"
                     f" {release.get('corpus_snapshot')}, approved by {approver}")
    return out


def _approval_then(approvals: list[dict[str, Any]], ref: dict[str, Any] | None, at: float) -> dict[str, Any] | None:
    """The approve entry a release rested on, if the chain holds it unchanged; revoked by ``at``?"""
    if not ref:
        return None
    entry = next((e for e in approvals if e["seq"] == ref.get("seq") and e["hash"] == ref.get("hash")), None)
    if entry is None:
        return {**ref, "on_record": False}
    revoked = next((e for e in approvals if e.get("kind") == "revoke" and e["seq"] > entry["seq"]
                    and e.get("snapshot") == entry["snapshot"] and e["at"] <= at), None)
    return {k: entry[k] for k in ("seq", "hash", "at", "approver", "snapshot", "sha256", "note")} | {
        "on_record": True, "revoked_by": revoked["approver"] if revoked else None}
