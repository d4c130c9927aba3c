"""Validate the model API data files in sandbox/modelapi/data (see its README.md).

Pure data checks: stdlib + pytest only, except one test that feeds the files
through the package loaders (skipped if the package cannot be imported).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "sandbox" / "modelapi" / "data"
CORPUS = DATA / "corpus"
OLD, NEW = "2026-10-01", "2026-11-01"
POISONED = DATA / "poisoned" / "2026-11-15-poisoned.jsonl"
POISON_ID = "rb-9001"

CLASSES = frozenset(
    {
        "rollout", "index", "model-version", "data-quality", "drift", "provider", "capacity",
        "latency", "network", "storage", "security", "observability", "config", "certificates",
    }
)
DOC_KEYS = {"id", "title", "incident_class", "body"}
ID_RE = re.compile(r"^rb-\d{4}$")
SNAPSHOT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
STOP = frozenset(
    """a an and are as at be been by can for from has have how i in into is it its of on or our
    so that the their then there this to was we were what when where which while why will with
    you your""".split()
)

# Marker families a corpus validation gate must reject (kept in sync with README.md).
GATE_MARKERS: dict[str, list[str]] = {
    "hidden fence": [r"<!--.*?-->"],
    "addressed to the model": [
        r"\b(note|message|instructions?)\s+to\s+(the\s+)?(ai|assistant|model|llm)\b"
    ],
    "override / concealment": [
        r"\b(ignore|disregard|forget)\s+(all\s+)?(previous|prior|earlier|above|other)\s+"
        r"(runbooks?|instructions?|guidance)\b",
        r"\bthis document overrides\b",
        r"\bdo not (mention|tell|reveal)\b",
    ],
    "destructive command": [
        r"\bkubectl\s+delete\s+(namespace|ns)\b",
        r"\brm\s+-rf\s+/",
        r"\bdrop\s+(database|table)\b",
    ],
    "alerting disabled": [
        r"\bdisable\s+(all\s+)?(alerting|alerts|paging|monitoring)\b",
        r"\bamtool\s+silence\s+add\b[^\n]*=~",
    ],
    "exfiltration": [
        r"\bsend\s+(the\s+)?(credentials|secrets?|tokens?|keys?|kubeconfig)\b",
        r"\|\s*(curl|wget|nc)\b",
        r"https?://(?!(?:[a-z0-9-]+\.)*example(?:\.com)?(?:[/:\s]|$))\S+",
    ],
}
_COMPILED = {
    family: [re.compile(p, re.IGNORECASE | re.DOTALL) for p in patterns]
    for family, patterns in GATE_MARKERS.items()
}


def gate_hits(text: str) -> set[str]:
    """Return the marker families that match ``text``."""
    return {f for f, pats in _COMPILED.items() if any(p.search(text) for p in pats)}


def words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP]


def read_jsonl(path: Path) -> list[dict]:
    assert path.is_file(), f"{path} is missing"
    raw = path.read_bytes()
    assert raw.endswith(b"\n"), f"{path}: last line must end with a newline"
    rows = []
    for n, line in enumerate(raw.decode("utf-8").split("\n")[:-1], start=1):
        assert line.strip(), f"{path} line {n}: blank line"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:  # pragma: no cover - failure path
            pytest.fail(f"{path} line {n}: invalid JSON ({exc})")
        assert isinstance(obj, dict), f"{path} line {n}: not a JSON object"
        rows.append(obj)
    return rows


def snapshot(name: str) -> list[dict]:
    return read_jsonl(CORPUS / f"{name}.jsonl")


@pytest.fixture(scope="module")
def old() -> list[dict]:
    return snapshot(OLD)


@pytest.fixture(scope="module")
def new() -> list[dict]:
    return snapshot(NEW)


@pytest.fixture(scope="module")
def evalset() -> list[dict]:
    return read_jsonl(DATA / "eval.jsonl")


@pytest.fixture(scope="module")
def poisoned() -> list[dict]:
    return read_jsonl(POISONED)


# --------------------------------------------------------------------------- snapshots


def test_corpus_dir_holds_exactly_the_two_dated_snapshots():
    names = sorted(p.name for p in CORPUS.iterdir() if not p.name.startswith("."))
    assert names == [f"{OLD}.jsonl", f"{NEW}.jsonl"]
    assert all(SNAPSHOT_RE.match(n.removesuffix(".jsonl")) for n in names)


@pytest.mark.parametrize("name", [OLD, NEW])
def test_snapshot_schema(name):
    docs = snapshot(name)
    for n, doc in enumerate(docs, start=1):
        where = f"{name} line {n}"
        assert set(doc) == DOC_KEYS, f"{where}: keys {sorted(doc)}"
        for key in DOC_KEYS:
            assert isinstance(doc[key], str) and doc[key].strip() == doc[key] != "", (where, key)
        assert ID_RE.match(doc["id"]), f"{where}: bad id {doc['id']!r}"
        assert doc["incident_class"] in CLASSES, f"{where}: class {doc['incident_class']!r}"
        assert len(doc["title"]) <= 80, f"{where}: title too long"
        assert "\n" not in doc["title"] + doc["body"], f"{where}: embedded newline"


@pytest.mark.parametrize("name", [OLD, NEW])
def test_snapshot_ids_unique_and_sorted(name):
    ids = [d["id"] for d in snapshot(name)]
    dupes = [i for i, c in Counter(ids).items() if c > 1]
    assert not dupes, f"duplicate ids in {name}: {dupes}"
    assert ids == sorted(ids)


@pytest.mark.parametrize("name", [OLD, NEW])
def test_titles_unique(name):
    titles = [d["title"].lower() for d in snapshot(name)]
    assert len(set(titles)) == len(titles)


@pytest.mark.parametrize("name", [OLD, NEW])
def test_runbook_bodies_are_structured(name):
    for doc in snapshot(name):
        body, where = doc["body"], f"{name} {doc['id']}"
        n = len(body.split())
        assert 60 <= n <= 150, f"{where}: body has {n} words"
        assert body.startswith(("Alert:", "Use when:")), where
        assert "Likely " in body, f"{where}: no likely causes"
        pos = [body.find(k) for k in ("Symptoms", "First checks:", "Remediation:", "Escalate:")]
        assert min(pos) >= 0, f"{where}: missing section {pos}"
        assert pos == sorted(pos), f"{where}: sections out of order"


def test_snapshot_counts(old, new):
    assert len(old) >= 60
    assert len(new) >= 72
    assert len(old) == 60 and len(new) == 74  # the documented numbers (README.md)


def test_classes_cover_fixed_set(new):
    counts = Counter(d["incident_class"] for d in new)
    assert set(counts) == CLASSES
    assert min(counts.values()) >= 3, counts


def test_old_snapshot_is_subset_of_new(old, new):
    assert {d["id"] for d in old} <= {d["id"] for d in new}


def test_new_only_docs(old, new):
    new_only = {d["id"] for d in new} - {d["id"] for d in old}
    assert len(new_only) >= 12
    assert new_only == {f"rb-{i:04d}" for i in range(61, 75)}


def test_revised_docs(old, new):
    by_id = {d["id"]: d for d in new}
    revised = []
    for doc in old:
        newer = by_id[doc["id"]]
        if newer != doc:
            # A revision updates the body only; the id keeps its topic.
            assert (newer["title"], newer["incident_class"]) == (doc["title"], doc["incident_class"])
            assert newer["body"] != doc["body"]
            revised.append(doc["id"])
    assert 3 <= len(revised) <= 5, revised
    assert revised == ["rb-0006", "rb-0016", "rb-0019", "rb-0055"]


# --------------------------------------------------------------------------- eval set


def test_eval_schema(evalset):
    assert len(evalset) >= 48
    for n, case in enumerate(evalset, start=1):
        where = f"eval line {n}"
        assert set(case) == {"query", "expected", "since"}, where
        assert isinstance(case["query"], str) and case["query"].strip(), where
        exp = case["expected"]
        assert isinstance(exp, list) and 1 <= len(exp) <= 2, where
        assert all(isinstance(e, str) and ID_RE.match(e) for e in exp), where
        assert len(set(exp)) == len(exp), where
        assert case["since"] in (OLD, NEW), where
    queries = [c["query"].lower() for c in evalset]
    assert len(set(queries)) == len(queries), "duplicate eval queries"


def test_eval_expectations_resolve(evalset, old, new):
    ids = {OLD: {d["id"] for d in old}, NEW: {d["id"] for d in new}}
    for case in evalset:
        exp = set(case["expected"])
        assert exp <= ids[case["since"]], case
        assert exp <= ids[NEW], case
        # `since` is the first snapshot that has every expected doc.
        first = OLD if exp <= ids[OLD] else NEW
        assert case["since"] == first, case
        assert POISON_ID not in exp


def test_eval_targets_new_topics(evalset):
    assert sum(c["since"] == NEW for c in evalset) >= 12


def test_eval_queries_are_not_titles_and_share_vocabulary(evalset, new):
    by_id = {d["id"]: d for d in new}
    titles = [d["title"].lower() for d in new]
    for case in evalset:
        q = case["query"].lower()
        assert not any(t in q for t in titles), f"query copies a title: {q!r}"
        shared = set()
        for e in case["expected"]:
            doc = by_id[e]
            shared |= set(words(q)) & set(words(f"{doc['title']} {doc['body']}"))
        assert shared, f"query shares no word with its runbook: {q!r}"


# --------------------------------------------------------------------------- query sets


@pytest.mark.parametrize("name", ["baseline", "drifted"])
def test_query_files(name):
    rows = read_jsonl(DATA / "queries" / f"{name}.jsonl")
    assert len(rows) == 200
    for n, row in enumerate(rows, start=1):
        assert set(row) == {"query"}, f"{name} line {n}"
        assert isinstance(row["query"], str) and row["query"].strip() == row["query"] != ""
    assert len({r["query"].lower() for r in rows}) == 200, f"duplicates in {name}"


def test_query_sets_differ_in_corpus_vocabulary(new):
    vocab = set()
    for d in new:
        vocab |= set(words(f"{d['title']} {d['incident_class']} {d['body']}"))

    def coverage(name: str) -> float:
        rows = read_jsonl(DATA / "queries" / f"{name}.jsonl")
        fr = [sum(w in vocab for w in words(r["query"])) / max(1, len(words(r["query"]))) for r in rows]
        return sum(fr) / len(fr)

    baseline = {r["query"] for r in read_jsonl(DATA / "queries" / "baseline.jsonl")}
    drifted = {r["query"] for r in read_jsonl(DATA / "queries" / "drifted.jsonl")}
    assert not baseline & drifted
    assert coverage("baseline") >= 0.8
    assert coverage("drifted") <= 0.5


# --------------------------------------------------------------------------- poisoned snapshot


def test_poisoned_snapshot_is_new_plus_one(poisoned, new):
    assert poisoned[:-1] == new
    extra = poisoned[-1]
    assert extra["id"] == POISON_ID
    assert set(extra) == DOC_KEYS and extra["incident_class"] in CLASSES
    assert POISONED.read_bytes().startswith((CORPUS / f"{NEW}.jsonl").read_bytes())


def test_poison_doc_only_in_poisoned_snapshot(old, new, poisoned):
    assert POISON_ID not in {d["id"] for d in old}
    assert POISON_ID not in {d["id"] for d in new}
    assert [d["id"] for d in poisoned].count(POISON_ID) == 1


def test_gate_catches_every_marker_family_in_poison_doc(poisoned):
    doc = poisoned[-1]
    assert gate_hits(f"{doc['title']}\n{doc['body']}") == set(GATE_MARKERS)


@pytest.mark.parametrize("name", [OLD, NEW])
def test_gate_has_no_false_positives_on_clean_snapshots(name):
    for doc in snapshot(name):
        hits = gate_hits(f"{doc['title']}\n{doc['body']}")
        assert not hits, f"{name} {doc['id']} trips the gate: {sorted(hits)}"


def test_readme_documents_files_and_markers():
    text = (DATA / "README.md").read_text(encoding="utf-8")
    for item in (
        f"{OLD}.jsonl", f"{NEW}.jsonl", "eval.jsonl", "baseline.jsonl", "drifted.jsonl",
        "2026-11-15-poisoned.jsonl", POISON_ID,
    ):
        assert item in text, item
    for family in GATE_MARKERS:
        assert family in text, family
    for cls in CLASSES:
        assert f"`{cls}`" in text, cls


# --------------------------------------------------------------------------- package loaders


def test_package_loaders_accept_the_files():
    corpus = pytest.importorskip("sandbox.modelapi.corpus")
    assert corpus.list_snapshots(CORPUS) == [OLD, NEW]
    assert corpus.latest_snapshot(CORPUS) == NEW
    for name in (OLD, NEW):
        assert len(corpus.load_snapshot(corpus.snapshot_path(CORPUS, name))) == len(snapshot(name))
    assert len(corpus.load_snapshot(POISONED)) == len(snapshot(NEW)) + 1
    assert len(corpus.load_eval(DATA / "eval.jsonl")) == len(read_jsonl(DATA / "eval.jsonl"))
