"""Unit tests of modelapi corpus loading and index build / verify / load / search."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sandbox.modelapi.__main__ import PACKAGE_DATA, main, seed
from sandbox.modelapi.corpus import (
    CorpusError,
    list_snapshots,
    load_eval,
    load_snapshot,
    snapshot_sha256,
)
from sandbox.modelapi.embedding import get_model
from sandbox.modelapi.index import (
    IndexCorrupt,
    IndexExists,
    IndexLoadError,
    IndexMissing,
    IndexModelMismatch,
    build_index,
    list_indexes,
    load_index,
    verify_index,
)

BUILT_AT = "2026-11-01T00:00:00Z"
FIXTURE_DOCS = [
    ("rb-0001", "Disk full on a database host", "disk-full", "Free space on /var, rotate logs."),
    ("rb-0002", "Pod OOMKilled", "oom", "Raise the memory limit or fix the leak in the heap."),
    ("rb-0003", "TLS certificate expiring", "tls", "Renew the certificate before expiry."),
    ("rb-0004", "DNS resolution failures", "dns", "Check CoreDNS pods and NXDOMAIN rates."),
    ("rb-0005", "High p99 latency", "latency", "Look for slow upstream calls and timeouts."),
]


def write_corpus(path: Path, docs: list[tuple[str, str, str, str]] = FIXTURE_DOCS) -> Path:
    """Write a snapshot file from ``(id, title, incident_class, body)`` tuples."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [dict(zip(("id", "title", "incident_class", "body"), d, strict=True)) for d in docs]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus" / "2026-11-01.jsonl")


@pytest.fixture
def indexes(tmp_path: Path, corpus: Path) -> Path:
    out = tmp_path / "indexes"
    for model in ("v1", "v2"):
        build_index(model, corpus, out, built_at=BUILT_AT)
    return out


# --- corpus -------------------------------------------------------------------------


def test_load_snapshot_reads_docs_in_order(corpus: Path) -> None:
    docs = load_snapshot(corpus)
    assert [d.id for d in docs] == [d[0] for d in FIXTURE_DOCS]
    assert docs[1].incident_class == "oom" and "memory" in docs[1].body


@pytest.mark.parametrize(
    ("lines", "fragment"),
    [
        (['{"id": "a", "title": "t", "incident_class": "c", "body": "b"}', "{oops"], "line 2"),
        (['{"id": "a", "title": "t", "incident_class": "c"}'], "'body'"),
        (['{"id": "a", "title": "", "incident_class": "c", "body": "b"}'], "'title'"),
        (['["not", "an", "object"]'], "JSON object"),
        (
            [
                '{"id": "a", "title": "t", "incident_class": "c", "body": "b"}',
                "",
                '{"id": "a", "title": "t2", "incident_class": "c", "body": "b"}',
            ],
            "duplicate id 'a' (first seen on line 1)",
        ),
        ([], "no documents"),
    ],
)
def test_load_snapshot_errors_name_file_and_line(
    tmp_path: Path, lines: list[str], fragment: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusError) as err:
        load_snapshot(path)
    assert str(path) in str(err.value)
    assert fragment in str(err.value)


def test_load_snapshot_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="file not found"):
        load_snapshot(tmp_path / "nope.jsonl")


def test_list_snapshots_sorted_and_sha(tmp_path: Path, corpus: Path) -> None:
    write_corpus(tmp_path / "corpus" / "2026-09-01.jsonl")
    (tmp_path / "corpus" / "notes.txt").write_text("ignored")
    assert list_snapshots(tmp_path / "corpus") == ["2026-09-01", "2026-11-01"]
    assert list_snapshots(tmp_path / "missing") == []
    sha = snapshot_sha256(corpus)
    assert len(sha) == 64
    corpus.write_text(corpus.read_text() + "\n")
    assert snapshot_sha256(corpus) != sha


def test_load_eval_valid_and_invalid(tmp_path: Path) -> None:
    good = tmp_path / "eval.jsonl"
    good.write_text(
        '{"query": "disk full", "expected": ["rb-0001"]}\n'
        '{"query": "new thing", "expected": ["rb-0009"], "since": "2026-11-01"}\n'
    )
    cases = load_eval(good)
    assert [c.expected for c in cases] == [("rb-0001",), ("rb-0009",)]
    assert cases[0].since is None and cases[1].since == "2026-11-01"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "expected": []}\n')
    with pytest.raises(CorpusError, match=r"line 1: .*expected"):
        load_eval(bad)


# --- build and load -----------------------------------------------------------------


def test_build_writes_manifest_and_round_trips(tmp_path: Path, corpus: Path) -> None:
    manifest = build_index("v1", corpus, tmp_path / "indexes", built_at=BUILT_AT)
    index_dir = tmp_path / "indexes" / "2026-11-01-v1"
    on_disk = json.loads((index_dir / "manifest.json").read_text())
    assert on_disk == manifest.to_dict()
    assert on_disk["index_version"] == "2026-11-01-v1"
    assert on_disk["model_version"] == "v1" and on_disk["dimension"] == 256
    assert on_disk["corpus_snapshot"] == "2026-11-01"
    assert on_disk["corpus_sha256"] == snapshot_sha256(corpus)
    assert on_disk["doc_count"] == len(FIXTURE_DOCS)
    assert on_disk["built_at"] == BUILT_AT
    assert on_disk["builder"].startswith("modelapi ")
    docs = json.loads((index_dir / "docs.json").read_text())
    assert docs[0] == {"id": "rb-0001", "title": FIXTURE_DOCS[0][1], "incident_class": "disk-full"}

    loaded = load_index(index_dir, "v1")
    assert loaded.manifest == manifest
    assert loaded.vectors.shape == (len(FIXTURE_DOCS), 256)
    expected = get_model("v1").embed([d.text() for d in load_snapshot(corpus)])
    np.testing.assert_array_equal(loaded.vectors, expected)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_search_ranks_the_relevant_runbook_first(indexes: Path, version: str) -> None:
    loaded = load_index(indexes / f"2026-11-01-{version}", version)
    query = get_model(version).embed_one("pod was OOMKilled, memory limit too low")
    hits = loaded.search(query, 3)
    assert hits[0][0].id == "rb-0002"
    scores = [score for _, score in hits]
    assert scores == sorted(scores, reverse=True) and len(hits) == 3
    assert 0.0 < scores[0] <= 1.0 + 1e-6
    assert len(loaded.search(query, 50)) == len(FIXTURE_DOCS)
    with pytest.raises(ValueError, match="dimension"):
        loaded.search(np.zeros(7, dtype=np.float32), 3)


def test_builds_are_reproducible_with_fixed_built_at(tmp_path: Path, corpus: Path) -> None:
    for out in ("a", "b"):
        build_index("v2", corpus, tmp_path / out, built_at=BUILT_AT)
    for name in ("manifest.json", "vectors.npy", "docs.json"):
        first = (tmp_path / "a" / "2026-11-01-v2" / name).read_bytes()
        assert first == (tmp_path / "b" / "2026-11-01-v2" / name).read_bytes()


def test_refuses_overwrite_unless_asked(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "indexes"
    build_index("v1", corpus, out, name="prod", built_at=BUILT_AT)
    with pytest.raises(IndexExists, match="already exists"):
        build_index("v1", corpus, out, name="prod")
    manifest = build_index("v2", corpus, out, name="prod", overwrite=True)
    assert load_index(out / "prod", "v2").manifest == manifest
    assert [p.name for p in out.iterdir()] == ["prod"], "no temp or old dirs left behind"


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "2026-11-01.jsonl"
    bad.write_text("{broken\n")
    with pytest.raises(CorpusError):
        build_index("v1", bad, tmp_path / "indexes")
    assert not (tmp_path / "indexes" / "2026-11-01-v1").exists()


def test_rejects_unsafe_index_names(tmp_path: Path, corpus: Path) -> None:
    for name in ("../escape", ".hidden", "a/b"):
        with pytest.raises(ValueError, match="invalid index name"):
            build_index("v1", corpus, tmp_path, name=name)


# --- load failures ------------------------------------------------------------------


def test_missing_index_dir(tmp_path: Path) -> None:
    with pytest.raises(IndexMissing) as err:
        load_index(tmp_path / "indexes" / "2026-11-01-v1", "v1")
    assert err.value.reason == "missing"
    assert "2026-11-01-v1" in str(err.value) and "does not exist" in str(err.value)


def test_missing_file_in_index(indexes: Path) -> None:
    (indexes / "2026-11-01-v1" / "docs.json").unlink()
    with pytest.raises(IndexMissing, match=r"docs\.json is missing"):
        load_index(indexes / "2026-11-01-v1", "v1")


def test_flipped_byte_in_vectors_is_corrupt(indexes: Path) -> None:
    path = indexes / "2026-11-01-v1" / "vectors.npy"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt) as err:
        load_index(indexes / "2026-11-01-v1", "v1")
    assert err.value.reason == "corrupt"
    assert "vectors.npy sha256" in str(err.value) and "rebuild" in str(err.value)


def test_edited_docs_is_corrupt(indexes: Path) -> None:
    path = indexes / "2026-11-01-v1" / "docs.json"
    path.write_text(path.read_text().replace("Disk full", "Disk FULL"))
    with pytest.raises(IndexCorrupt, match=r"docs\.json sha256"):
        load_index(indexes / "2026-11-01-v1", "v1")


@pytest.mark.parametrize("content", ["{not json", '{"index_version": "x"}', "[]"])
def test_bad_manifest_is_corrupt(indexes: Path, content: str) -> None:
    (indexes / "2026-11-01-v1" / "manifest.json").write_text(content)
    with pytest.raises(IndexCorrupt, match=r"manifest\.json"):
        load_index(indexes / "2026-11-01-v1", "v1")


def test_consistent_hash_but_wrong_shape_is_corrupt(indexes: Path) -> None:
    index_dir = indexes / "2026-11-01-v1"
    np.save(index_dir / "vectors.npy", np.zeros((2, 256), dtype=np.float32))
    manifest = json.loads((index_dir / "manifest.json").read_text())
    import hashlib

    manifest["vectors_sha256"] = hashlib.sha256(
        (index_dir / "vectors.npy").read_bytes()
    ).hexdigest()
    (index_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexCorrupt, match=r"\(2, 256\)"):
        load_index(index_dir, "v1")


def test_v2_index_loaded_by_v1_is_model_mismatch(indexes: Path) -> None:
    with pytest.raises(IndexModelMismatch) as err:
        load_index(indexes / "2026-11-01-v2", "v1")
    assert err.value.reason == "model-mismatch"
    assert str(err.value) == (
        "index 2026-11-01-v2 was built by model v2 (dim 384) "
        "but this service runs model v1 (dim 256)"
    )
    verify_index(indexes / "2026-11-01-v2")  # integrity alone is fine


def test_all_load_errors_share_a_base_class() -> None:
    for cls in (IndexMissing, IndexCorrupt, IndexModelMismatch):
        assert issubclass(cls, IndexLoadError)
    assert {IndexMissing.reason, IndexCorrupt.reason, IndexModelMismatch.reason} == {
        "missing",
        "corrupt",
        "model-mismatch",
    }


def test_list_indexes_reports_broken_ones(indexes: Path) -> None:
    (indexes / "2026-11-01-v2" / "vectors.npy").write_bytes(b"garbage")
    (indexes / "empty").mkdir()
    (indexes / ".2026-11-01-v1.tmp").mkdir()
    entries = {e["name"]: e for e in list_indexes(indexes)}
    assert set(entries) == {"2026-11-01-v1", "2026-11-01-v2", "empty"}
    assert entries["2026-11-01-v1"]["status"] == "ok"
    assert entries["2026-11-01-v1"]["model_version"] == "v1"
    assert entries["2026-11-01-v2"]["status"] == "broken"
    assert entries["2026-11-01-v2"]["reason"] == "corrupt" and entries["2026-11-01-v2"]["error"]
    assert entries["empty"]["reason"] == "missing"


# --- CLI and packaged data ----------------------------------------------------------


def test_cli_build_and_list(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--data-dir", str(tmp_path)]
    assert main(["build-index", "--model", "v2", "--corpus", "2026-11-01", *args]) == 0
    assert json.loads(capsys.readouterr().out)["index_version"] == "2026-11-01-v2"
    assert main(["build-index", "--model", "v2", "--corpus", "2026-11-01", *args]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["build-index", "--model", "v1", "--corpus", "1999-01-01", *args]) == 1
    assert "file not found" in capsys.readouterr().err
    assert main(["list-indexes", "--json", *args]) == 0
    assert [e["name"] for e in json.loads(capsys.readouterr().out)] == ["2026-11-01-v2"]
    assert main(["list-snapshots", *args]) == 0
    assert capsys.readouterr().out.split() == ["2026-11-01"]


def test_seed_from_fixture_source_is_reproducible(tmp_path: Path, corpus: Path) -> None:
    write_corpus(tmp_path / "corpus" / "2026-10-01.jsonl", FIXTURE_DOCS[:3])
    (tmp_path / "eval.jsonl").write_text('{"query": "disk", "expected": ["rb-0001"]}\n')
    built = seed(tmp_path / "a", source=tmp_path)
    assert built == ["2026-10-01-v1", "2026-10-01-v2", "2026-11-01-v1", "2026-11-01-v2"]
    seed(tmp_path / "b", source=tmp_path)
    for name in built:
        a = (tmp_path / "a" / "indexes" / name / "manifest.json").read_text()
        assert a == (tmp_path / "b" / "indexes" / name / "manifest.json").read_text()
    assert json.loads(a)["built_at"] == "2026-11-01T00:00:00Z"
    assert (tmp_path / "a" / "state").is_dir() and (tmp_path / "a" / "eval.jsonl").is_file()


def _recall_at_5(index_dir: Path, model: str, cases: list) -> float:
    loaded = load_index(index_dir, model)
    vecs = get_model(model).embed([c.query for c in cases])
    hits = [
        bool({d.id for d, _ in loaded.search(v, 5)} & set(c.expected))
        for c, v in zip(cases, vecs, strict=True)
    ]
    return sum(hits) / len(hits)


def test_packaged_data_seeds_and_retrieves(tmp_path: Path) -> None:
    """The real packaged corpora and eval set: seed them and measure recall@5."""
    assert list_snapshots(PACKAGE_DATA / "corpus"), f"no packaged corpus in {PACKAGE_DATA}"
    built = seed(tmp_path)
    snapshots = list_snapshots(tmp_path / "corpus")
    assert len(snapshots) >= 2 and len(built) == 2 * len(snapshots)
    assert (tmp_path / "queries").is_dir() and not (tmp_path / "poisoned").exists()
    cases = load_eval(tmp_path / "eval.jsonl")
    assert cases
    stale, latest = snapshots[0], snapshots[-1]
    for model in ("v1", "v2"):
        fresh = _recall_at_5(tmp_path / "indexes" / f"{latest}-{model}", model, cases)
        old = _recall_at_5(tmp_path / "indexes" / f"{stale}-{model}", model, cases)
        assert fresh >= 0.85, f"{model} recall@5 on {latest} is {fresh:.3f}"
        assert old < fresh - 0.1, f"stale {stale} should miss the newer runbooks ({old:.3f})"
    # the offline evaluator the grader runs as a job agrees with this computation
    from sandbox.modelapi.__main__ import eval_indexes

    names = [f"{latest}-v1", f"{stale}-v1"]
    got = eval_indexes(tmp_path, [*names, "no-such-index"])
    for name in names:
        expected = _recall_at_5(tmp_path / "indexes" / name, "v1", cases)
        assert got[name]["recall"] == pytest.approx(expected, abs=1e-4) and got[name]["model"] == "v1"
    assert got["no-such-index"]["recall"] is None and "not found" in got["no-such-index"]["reason"]
    (tmp_path / "indexes" / names[0] / "vectors.npy").write_bytes(b"tampered")
    corrupt = eval_indexes(tmp_path, names[:1])[names[0]]
    assert corrupt["recall"] is None and "sha256" in corrupt["reason"]
