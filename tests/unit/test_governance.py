"""The validation gate, approvals, lineage and quarantine on a seeded data directory."""

from __future__ import annotations

import json

import pytest

from sandbox.modelapi import governance as gov
from sandbox.modelapi.__main__ import main, seed
from sandbox.modelapi.corpus import CorpusError


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Seeded, plus the packaged poisoned update: every test stands alone (xdist may split them)."""
    d = tmp_path_factory.mktemp("data")
    seed(d)
    gov.add_packaged_snapshot(d, "2026-11-15-poisoned")
    return d


def test_seed_approves_the_shipped_snapshots_and_they_pass_the_gate(data_dir):
    assert sorted(gov.approved(data_dir)) == ["2026-10-01", "2026-11-01"]
    for snapshot in ("2026-10-01", "2026-11-01"):
        report = gov.validate_snapshot(data_dir, snapshot)
        assert report.ok and report.violations == [], report.violations


def test_gate_catches_every_marker_of_the_poisoned_document(data_dir):
    gov.add_packaged_snapshot(data_dir, "2026-11-15-poisoned")
    report = gov.validate_snapshot(data_dir, "2026-11-15-poisoned")
    assert not report.ok
    assert {v.doc_id for v in report.violations} == {"rb-9001"}
    assert {v.rule for v in report.violations} == set(gov.POISON_RULES)
    with pytest.raises(CorpusError, match="fails the validation gate"):
        gov.approve(data_dir, "2026-11-15-poisoned", approver="data-owner")


def test_quarantine_writes_a_clean_snapshot_and_a_record(data_dir):
    out = gov.quarantine(data_dir, "2026-11-15-poisoned", ["rb-9001"])
    assert out["clean_snapshot"] == "2026-11-15-poisoned-q" and out["kept"] == 74
    assert gov.validate_snapshot(data_dir, "2026-11-15-poisoned-q").ok
    assert [r["doc_id"] for r in gov.quarantine_list(data_dir)] == ["rb-9001"]
    with pytest.raises(CorpusError, match="not in"):
        gov.quarantine(data_dir, "2026-11-01", ["rb-9999"])


def test_lineage_traces_approved_bytes_only(data_dir):
    assert gov.lineage(data_dir, "2026-11-01-v1")["traceable"]
    gov.make_adhoc_snapshot(data_dir, "2026-11-01", "2026-11-20-hotfix")
    assert main(["build-index", "--model", "v1", "--corpus", "2026-11-20-hotfix",
                 "--data-dir", str(data_dir)]) == 0
    verdict = gov.lineage(data_dir, "2026-11-20-hotfix-v1")
    assert not verdict["traceable"] and "not an approved snapshot" in verdict["reason"]
    assert "no manifest" in gov.lineage(data_dir, "nope")["reason"]


def test_tamper_and_restore_index_bytes(data_dir):
    vectors = data_dir / "indexes" / "2026-10-01-v2" / "vectors.npy"
    original = vectors.read_bytes()
    gov.tamper_index(data_dir, "2026-10-01-v2", "corrupt")
    assert vectors.read_bytes() != original
    assert gov.tamper_index(data_dir, "2026-10-01-v2", "restore")["restored"]
    assert vectors.read_bytes() == original


def test_cli_json_contracts(data_dir, capsys):
    assert main(["validate-corpus", "2026-11-15-poisoned", "--json", "--data-dir", str(data_dir)]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is False
    assert main(["validate-corpus", "2026-11-15-poisoned", "--data-dir", str(data_dir)]) == 1
    capsys.readouterr()
    assert main(["approve-snapshot", "2026-11-15-poisoned", "--json", "--data-dir", str(data_dir)]) == 0
    assert json.loads(capsys.readouterr().out)["approved"] is False
