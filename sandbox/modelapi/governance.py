"""Data governance of the model API's corpora and indexes.

* a validation gate for corpus snapshots (structure plus prompt-injection markers),
* approvals of snapshots as an append-only hash chain (``evidence/approvals.jsonl``: ``approve``
  and ``revoke`` entries naming who made the call; the registry is the chain replayed),
* lineage: can the served index be traced to an approved snapshot, byte for byte?
* quarantine of documents, with a record of who was removed from what and why,
* the operations the fault catalog uses on the data volume (adding a packaged snapshot,
  making an ad-hoc one, corrupting and restoring an index's vectors).

Layout under ``DATA_DIR``: ``corpus/<snapshot>.jsonl``, ``evidence/approvals.jsonl``,
``indexes/<name>/{vectors.npy,docs.json,manifest.json}``, ``quarantine/records.jsonl``,
``state/backup/<index>/vectors.npy``.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import chain
from .corpus import CorpusError, load_snapshot, snapshot_sha256

PACKAGE_DATA = Path(__file__).parent / "data"

#: Markers a validation gate rejects (see data/README.md): hidden fences, text addressed to
#: the model, instruction overrides, destructive commands, silenced alerting, exfiltration.
POISON_RULES: dict[str, re.Pattern[str]] = {
    "hidden-fence": re.compile(r"<!--.*?-->", re.I | re.S),
    "addressed-to-model": re.compile(
        r"\b(note|message|instructions?)\s+to\s+(the\s+)?(ai|assistant|model|llm)\b", re.I),
    "instruction-override": re.compile(
        r"\b(ignore|disregard|forget)\s+(all\s+)?(previous|prior|earlier|above|other)\s+"
        r"(runbooks?|instructions?|guidance)\b|\bthis document overrides\b|\bdo not (mention|tell|reveal)\b",
        re.I),
    "destructive-command": re.compile(
        r"\bkubectl\s+delete\s+(namespace|ns)\b|\brm\s+-rf\s+/|\bdrop\s+(database|table)\b", re.I),
    "disable-monitoring": re.compile(
        r"\bdisable\s+(all\s+)?(alerting|alerts|paging|monitoring)\b|\bamtool\s+silence\s+add\b[^\n]*=~",
        re.I),
    "credential-exfiltration": re.compile(
        r"\bsend\s+(the\s+)?(credentials|secrets?|tokens?|keys?|kubeconfig)\b|\|\s*(curl|wget|nc)\b"
        r"|https?://(?!(?:[a-z0-9-]+\.)*example(?:\.com)?(?:[/:\s]|$))\S+",
        re.I),
}


@dataclass
class Violation:
    doc_id: str
    rule: str
    excerpt: str


@dataclass
class GateReport:
    snapshot: str
    ok: bool
    docs: int
    violations: list[Violation] = field(default_factory=list)
    sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["violations"] = [asdict(v) for v in self.violations]
        return d


def corpus_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "corpus"


def snapshot_file(data_dir: Path, snapshot: str) -> Path:
    path = corpus_dir(data_dir) / f"{snapshot}.jsonl"
    if not path.is_file():
        have = sorted(p.stem for p in corpus_dir(data_dir).glob("*.jsonl"))
        raise CorpusError(f"unknown corpus snapshot {snapshot!r}; valid: {', '.join(have)}")
    return path


def validate_snapshot(data_dir: Path, snapshot: str) -> GateReport:
    """The validation gate: structure first, then every rule on every document."""
    path = snapshot_file(data_dir, snapshot)
    try:
        docs = load_snapshot(path)
    except CorpusError as e:
        return GateReport(snapshot, False, 0, [Violation("-", "structure", str(e)[:200])])
    violations = []
    for doc in docs:
        text = f"{doc.title}\n{doc.body}"
        for rule, pattern in POISON_RULES.items():
            match = pattern.search(text)
            if match:
                start = max(match.start() - 30, 0)
                violations.append(Violation(doc.id, rule, text[start : match.end() + 30].strip()))
    return GateReport(snapshot, not violations, len(docs), violations, snapshot_sha256(path))


def approvals_path(data_dir: Path) -> Path:
    return Path(data_dir) / "evidence" / "approvals.jsonl"


def approval_log(data_dir: Path) -> list[dict[str, Any]]:
    """Every approval record, oldest first (``approve`` and ``revoke`` entries of the chain)."""
    return chain.read(approvals_path(data_dir))


def approvals_in_force(data_dir: Path) -> dict[str, dict[str, Any]]:
    """Replay the chain (up to its first broken link): snapshot -> the approve entry in force."""
    state: dict[str, dict[str, Any]] = {}
    for entry in chain.trusted(approval_log(data_dir)):
        if entry.get("kind") == "approve":
            state[entry["snapshot"]] = entry
        elif entry.get("kind") == "revoke":
            state.pop(entry.get("snapshot"), None)
    return state


def approved(data_dir: Path) -> dict[str, str]:
    """Approved snapshots: name -> sha256 at approval time (the replayed approval chain)."""
    return {name: entry["sha256"] for name, entry in approvals_in_force(data_dir).items()}


def _require_approver(approver: str | None) -> str:
    name = (approver or "").strip()
    if not name:
        raise CorpusError("an approval needs its approver (who made the call); none was given")
    return name


def approve(data_dir: Path, snapshot: str, approver: str, note: str = "") -> dict[str, Any]:
    """Approve a snapshot that passes the gate: an ``approve`` entry naming who approved it."""
    name = _require_approver(approver)
    report = validate_snapshot(data_dir, snapshot)
    if not report.ok:
        rules = sorted({v.rule for v in report.violations})
        raise CorpusError(f"snapshot {snapshot} fails the validation gate ({', '.join(rules)}); not approved")
    entry = chain.append(approvals_path(data_dir), "approve", {
        "snapshot": snapshot, "sha256": report.sha256, "approver": name, "note": note[:300]})
    return {"snapshot": snapshot, "sha256": report.sha256, "approved": True, "approver": name,
            "seq": entry["seq"], "hash": entry["hash"]}


def revoke(data_dir: Path, snapshot: str, approver: str, reason: str = "") -> dict[str, Any]:
    """Withdraw the approval of a snapshot: a ``revoke`` entry (the approval stays on record)."""
    name = _require_approver(approver)
    if snapshot not in approvals_in_force(data_dir):
        raise CorpusError(f"snapshot {snapshot} is not approved; approved: {', '.join(sorted(approved(data_dir)))}")
    entry = chain.append(approvals_path(data_dir), "revoke",
                         {"snapshot": snapshot, "approver": name, "reason": reason[:300]})
    return {"snapshot": snapshot, "revoked": True, "approver": name, "seq": entry["seq"], "hash": entry["hash"]}


def lineage(data_dir: Path, index_name: str) -> dict[str, Any]:
    """Is ``index_name`` traceable to an approved snapshot whose bytes are unchanged?"""
    manifest_path = Path(data_dir) / "indexes" / index_name / "manifest.json"
    out: dict[str, Any] = {"index": index_name, "traceable": False}
    if not manifest_path.is_file():
        return out | {"reason": f"index {index_name} has no manifest"}
    manifest = json.loads(manifest_path.read_text())
    snapshot, sha = manifest.get("corpus_snapshot"), manifest.get("corpus_sha256")
    out.update(corpus_snapshot=snapshot, corpus_sha256=sha)
    in_force = approvals_in_force(data_dir)
    registry = {name: entry["sha256"] for name, entry in in_force.items()}
    if snapshot not in registry:
        return out | {"reason": f"snapshot {snapshot} is not an approved snapshot ({', '.join(sorted(registry))})"}
    if registry[snapshot] != sha:
        return out | {"reason": f"index was built from a corpus whose sha256 {str(sha)[:12]} differs from"
                                f" the approved {registry[snapshot][:12]}"}
    path = corpus_dir(data_dir) / f"{snapshot}.jsonl"
    if not path.is_file() or snapshot_sha256(path) != sha:
        return out | {"reason": f"snapshot file {snapshot}.jsonl is missing or changed since approval"}
    entry = in_force[snapshot]
    approval = {k: entry[k] for k in ("seq", "hash", "approver", "at")}
    return out | {"traceable": True, "approval": approval,
                  "reason": f"built from approved snapshot {snapshot} (sha256 {sha[:12]}),"
                            f" approved by {entry['approver']} (approval {entry['seq']})"}


def quarantine(data_dir: Path, snapshot: str, doc_ids: list[str], out: str | None = None,
               reason: str = "failed the validation gate") -> dict[str, Any]:
    """Write ``out`` (default ``<snapshot>-q``) without ``doc_ids``; record what was removed."""
    docs = load_snapshot(snapshot_file(data_dir, snapshot))
    wanted = set(doc_ids)
    missing = wanted - {d.id for d in docs}
    if missing:
        raise CorpusError(f"documents not in {snapshot}: {', '.join(sorted(missing))}")
    out = out or f"{snapshot}-q"
    kept = [d for d in docs if d.id not in wanted]
    lines = [json.dumps({"id": d.id, "title": d.title, "incident_class": d.incident_class, "body": d.body})
             for d in kept]
    _atomic_write(corpus_dir(data_dir) / f"{out}.jsonl", "\n".join(lines) + "\n")
    qdir = Path(data_dir) / "quarantine"
    qdir.mkdir(parents=True, exist_ok=True)
    with (qdir / "records.jsonl").open("a") as fh:
        for d in docs:
            if d.id in wanted:
                fh.write(json.dumps({"doc_id": d.id, "snapshot": snapshot, "clean_snapshot": out,
                                     "reason": reason, "at": time.time(), "title": d.title}) + "\n")
    return {"snapshot": snapshot, "clean_snapshot": out, "quarantined": sorted(wanted), "kept": len(kept)}


def quarantine_list(data_dir: Path) -> list[dict[str, Any]]:
    path = Path(data_dir) / "quarantine" / "records.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def add_packaged_snapshot(data_dir: Path, name: str) -> dict[str, Any]:
    """Copy a snapshot shipped with the package (``data/poisoned/<name>.jsonl``) into the corpus."""
    source = PACKAGE_DATA / "poisoned" / f"{name}.jsonl"
    if not source.is_file():
        raise CorpusError(f"no packaged snapshot {name!r}")
    target = corpus_dir(data_dir) / f"{name}.jsonl"
    shutil.copyfile(source, target)
    return {"snapshot": name, "sha256": snapshot_sha256(target)}


def make_adhoc_snapshot(data_dir: Path, base: str, name: str) -> dict[str, Any]:
    """An unapproved hotfix copy of ``base`` with one edited runbook (for lineage drills)."""
    docs = load_snapshot(snapshot_file(data_dir, base))
    lines = []
    for i, d in enumerate(docs):
        body = d.body + (" Hotfix note: edited directly on the server during an incident." if i == 0 else "")
        lines.append(json.dumps({"id": d.id, "title": d.title, "incident_class": d.incident_class, "body": body}))
    target = corpus_dir(data_dir) / f"{name}.jsonl"
    _atomic_write(target, "\n".join(lines) + "\n")
    return {"snapshot": name, "sha256": snapshot_sha256(target), "approved": False}


def tamper_index(data_dir: Path, name: str, mode: str) -> dict[str, Any]:
    """``corrupt``: back up, then flip bytes in the vectors; ``restore``: put the backup back."""
    vectors = Path(data_dir) / "indexes" / name / "vectors.npy"
    backup = Path(data_dir) / "state" / "backup" / name / "vectors.npy"
    if mode == "corrupt":
        if not vectors.is_file():
            raise CorpusError(f"index {name} has no vectors.npy")
        if not backup.exists():
            backup.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(vectors, backup)
        blob = bytearray(vectors.read_bytes())
        for offset in range(len(blob) // 2, min(len(blob) // 2 + 64, len(blob))):
            blob[offset] ^= 0xFF
        _atomic_write_bytes(vectors, bytes(blob))
        return {"index": name, "corrupted": True}
    if mode == "restore":
        if not backup.is_file():
            return {"index": name, "restored": False, "reason": "no backup"}
        _atomic_write_bytes(vectors, backup.read_bytes())
        backup.unlink()
        return {"index": name, "restored": True}
    raise CorpusError(f"unknown mode {mode!r}; valid: corrupt, restore")


def remove_artifacts(data_dir: Path, snapshots: list[str], indexes: list[str]) -> dict[str, Any]:
    """Remove snapshots and indexes a drill added (heal restores the data volume exactly)."""
    removed = []
    for s in snapshots:
        path = corpus_dir(data_dir) / f"{s}.jsonl"
        if path.is_file():
            path.unlink()
            removed.append(f"corpus/{s}.jsonl")
    for i in indexes:
        path = Path(data_dir) / "indexes" / i
        if path.is_dir():
            shutil.rmtree(path)
            removed.append(f"indexes/{i}")
    return {"removed": removed}


def _atomic_write(path: Path, text: str) -> None:
    _atomic_write_bytes(path, text.encode())


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
