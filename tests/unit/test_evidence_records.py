"""The evidence records: hash-chained approvals, releases, evaluations and notes; replay; verify."""

from __future__ import annotations

import json

import pytest

from sandbox.control.policy import Refused, authorise_job
from sandbox.errors import InvalidInput
from sandbox.evidence import anchors_of, parse_moment, stamp_job
from sandbox.modelapi import chain, evidence
from sandbox.modelapi import governance as gov
from sandbox.modelapi.__main__ import main, seed
from sandbox.modelapi.corpus import CorpusError


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    d = tmp_path_factory.mktemp("seeded")
    seed(d)
    return d


@pytest.fixture
def data_dir(seeded, tmp_path):
    """A copy of the seeded directory per test (records are appended to)."""
    import shutil
    d = tmp_path / "data"
    shutil.copytree(seeded, d)
    return d


def _lines(path):
    return path.read_text().splitlines()


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")


# --- the chain --------------------------------------------------------------------------------


def test_append_links_each_entry_to_the_previous_and_verifies(tmp_path):
    log = tmp_path / "log.jsonl"
    first = chain.append(log, "approve", {"snapshot": "a"}, at=10.0)
    second = chain.append(log, "revoke", {"snapshot": "a"}, at=20.0)
    assert (first["seq"], first["prev"]) == (1, chain.GENESIS)
    assert (second["seq"], second["prev"]) == (2, first["hash"])
    assert second["hash"] == chain.entry_hash(second)
    assert chain.verify(chain.read(log)) | {"reason": ""} == {
        "ok": True, "entries": 2, "head": second["hash"], "broken_at": None, "reason": ""}


def test_append_refuses_the_chains_own_fields(tmp_path):
    with pytest.raises(chain.ChainError, match="hash"):
        chain.append(tmp_path / "log.jsonl", "note", {"hash": "x"})


@pytest.fixture
def three(tmp_path):
    log = tmp_path / "log.jsonl"
    for i in range(3):
        chain.append(log, "approve", {"snapshot": f"s{i}", "approver": "alice"}, at=float(i))
    return log


def test_verify_catches_an_edited_entry(three):
    lines = _lines(three)
    edited = json.loads(lines[1])
    edited["approver"] = "mallory"
    lines[1] = json.dumps(edited)
    _write(three, lines)
    verdict = chain.verify(chain.read(three))
    assert not verdict["ok"] and verdict["broken_at"] == 2 and "edited" in verdict["reason"]
    assert [e["snapshot"] for e in chain.trusted(chain.read(three))] == ["s0"]


def test_verify_catches_an_edited_entry_whose_hash_was_recomputed(three):
    lines = _lines(three)
    edited = json.loads(lines[1])
    edited["approver"] = "mallory"
    edited["hash"] = chain.entry_hash(edited)
    lines[1] = json.dumps(edited)
    _write(three, lines)
    verdict = chain.verify(chain.read(three))
    assert verdict["broken_at"] == 3 and "prev hash" in verdict["reason"]


def test_verify_catches_a_deleted_entry(three):
    lines = _lines(three)
    _write(three, [lines[0], lines[2]])
    verdict = chain.verify(chain.read(three))
    assert not verdict["ok"] and verdict["broken_at"] == 2 and "deleted or moved" in verdict["reason"]


def test_verify_catches_reordered_entries(three):
    lines = _lines(three)
    _write(three, [lines[0], lines[2], lines[1]])
    verdict = chain.verify(chain.read(three))
    assert not verdict["ok"] and verdict["broken_at"] == 2


def test_a_cut_off_tail_is_caught_by_anchors_kept_elsewhere(three):
    entries = chain.read(three)
    anchors = {e["seq"]: e["hash"] for e in entries}
    _write(three, _lines(three)[:2])
    cut = chain.read(three)
    assert chain.verify(cut)["ok"]  # a shorter chain is still a chain ...
    verdict = chain.verify(cut, anchors)
    assert not verdict["ok"] and verdict["broken_at"] == 3 and "cut off" in verdict["reason"]


def test_anchors_come_from_audit_results():
    rows = [{"anchors": [["releases", 1, "aa"], ["evaluations", 1, "bb"]]}, {}, {"anchors": [["releases", 2, "cc"]]}]
    assert anchors_of(rows) == {"releases": {1: "aa", 2: "cc"}, "evaluations": {1: "bb"}}


# --- approvals --------------------------------------------------------------------------------


def test_seed_approvals_are_chain_entries_naming_their_approver(data_dir):
    log = gov.approval_log(data_dir)
    assert [(e["kind"], e["snapshot"]) for e in log] == [("approve", "2026-10-01"), ("approve", "2026-11-01")]
    assert all(e["approver"] for e in log)
    assert not (data_dir / "corpus" / "approved.json").exists()


def test_an_empty_approver_is_refused(data_dir):
    for nobody in ("", "   ", None):
        with pytest.raises(CorpusError, match="approver"):
            gov.approve(data_dir, "2026-11-01", nobody)
    assert main(["approve-snapshot", "2026-11-01", "--json", "--data-dir", str(data_dir)]) == 0
    assert len(gov.approval_log(data_dir)) == 2


def test_revoke_is_an_entry_and_the_registry_is_the_replay(data_dir):
    gov.revoke(data_dir, "2026-10-01", "data-owner", reason="superseded")
    assert sorted(gov.approved(data_dir)) == ["2026-11-01"]
    assert [e["kind"] for e in gov.approval_log(data_dir)] == ["approve", "approve", "revoke"]
    gov.approve(data_dir, "2026-10-01", "data-owner")
    assert sorted(gov.approved(data_dir)) == ["2026-10-01", "2026-11-01"]
    with pytest.raises(CorpusError, match="not approved"):
        gov.revoke(data_dir, "2026-11-20-hotfix", "data-owner")


def test_an_approval_forged_into_the_file_is_not_believed(data_dir):
    path = gov.approvals_path(data_dir)
    forged = {"seq": 3, "at": 1.0, "kind": "approve", "snapshot": "2026-11-20-hotfix",
              "sha256": "0" * 64, "approver": "mentor", "prev": "f" * 64, "hash": "e" * 64}
    path.write_text(path.read_text() + json.dumps(forged) + "\n")
    assert "2026-11-20-hotfix" not in gov.approved(data_dir)
    assert not evidence.verify(data_dir)["ok"]


def test_lineage_names_the_approval_it_rests_on(data_dir):
    verdict = gov.lineage(data_dir, "2026-11-01-v1")
    assert verdict["traceable"] and verdict["approval"]["seq"] == 2
    assert verdict["approval"]["approver"] in verdict["reason"]


# --- releases, evaluations, notes: the replay -------------------------------------------------


def _release(data_dir, revision, index, at, actor="alice"):
    return evidence.record_release(data_dir, {"revision": revision, "served_from": at, "model": index[-2:],
                                              "index": index}, actor, at=at)


def test_what_served_at_a_moment_with_its_snapshot_approval_and_evaluation(data_dir):
    _release(data_dir, 1, "2026-11-01-v1", 100.0)
    evidence.record_evaluation(data_dir, {"revision": 1, "k": 5, "recall": 0.922, "hits": 71, "total": 77},
                               "alice", at=150.0)
    _release(data_dir, 2, "2026-11-20-hotfix-v1", 200.0, actor="bob")
    then = evidence.served_at(data_dir, 160.0)
    assert then["served"]["revision"] == 1 and then["served"]["corpus_snapshot"] == "2026-11-01"
    assert then["served"]["deployed_by"] == "alice" and then["verified"]
    assert then["approval"]["seq"] == 2 and then["approval"]["on_record"]
    assert [e["recall"] for e in then["evaluations"]] == [0.922]
    later = evidence.served_at(data_dir, 250.0)
    assert later["served"]["revision"] == 2 and later["approval"] is None and "nobody" in later["reason"]
    assert evidence.served_at(data_dir, 50.0)["served"] is None


def test_a_release_record_is_written_once_per_revision(data_dir):
    first = _release(data_dir, 1, "2026-11-01-v1", 100.0)
    again = _release(data_dir, 1, "2026-11-01-v1", 100.0, actor="someone-else")
    assert again == first and len(evidence.records(data_dir)["releases"]) == 1


def test_a_revoked_approval_shows_who_revoked_it_by_then(data_dir):
    _release(data_dir, 1, "2026-11-01-v1", 100.0)
    gov.revoke(data_dir, "2026-11-01", "data-owner")
    now = evidence.served_at(data_dir, 1e12)
    assert now["approval"]["revoked_by"] == "data-owner"


def test_notes_need_an_actor_and_are_not_kit_records(data_dir):
    entry = evidence.record_note(data_dir, "incident", {"summary": "INC-1077 hotfix"}, "alice", at=120.0)
    assert entry["fields"]["summary"] == "INC-1077 hotfix" and entry["by"] == "alice"
    with pytest.raises(CorpusError, match="who made the call"):
        evidence.record_note(data_dir, "incident", {}, "")
    with pytest.raises(CorpusError, match="kit's own"):
        evidence.record_note(data_dir, "release", {}, "alice")


def test_cli_evidence_and_verify(data_dir, capsys):
    _release(data_dir, 1, "2026-11-01-v1", 100.0)
    assert main(["evidence", "--at", "101", "--json", "--data-dir", str(data_dir)]) == 0
    assert json.loads(capsys.readouterr().out)["served"]["revision"] == 1
    path = evidence.log_path(data_dir, "releases")
    path.write_text(path.read_text().replace('"deployed_by": "alice"', '"deployed_by": "mallory"'))
    assert main(["evidence-verify", "--json", "--data-dir", str(data_dir)]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert not verdict["ok"] and verdict["logs"]["releases"]["broken_at"] == 1


# --- the kit: who made the call ---------------------------------------------------------------


def test_the_kit_stamps_the_caller_as_approver_and_refuses_a_typed_one():
    cmd = ["python", "-m", "modelapi", "approve-snapshot", "2026-11-01", "--json"]
    assert stamp_job(cmd, "alice")[-2:] == ["--approver", "alice"]
    assert stamp_job(["python", "-m", "modelapi", "lineage", "--index", "x"], "alice")[-1] == "x"
    with pytest.raises(InvalidInput, match="who makes the call"):
        stamp_job(cmd + ["--approver", "mentor"], "alice")
    with pytest.raises(InvalidInput, match="no identity"):
        stamp_job(cmd, "")


def test_a_box_cannot_append_records_or_write_through_paths():
    for job in ("record-release", "record-evaluation", "record-note"):
        with pytest.raises(Refused, match="not a trainee's job"):
            authorise_job(["python", "-m", "modelapi", job, "--fields", "{}"])
    with pytest.raises(Refused, match="names, not paths"):
        authorise_job(["python", "-m", "modelapi", "quarantine", "--snapshot", "2026-11-01", "--doc", "rb-1",
                       "--out", "../evidence/releases"])
    authorise_job(["python", "-m", "modelapi", "quarantine", "--snapshot", "s", "--doc", "d",
                   "--reason", "gate: injection / exfiltration"])
    authorise_job(["python", "-m", "modelapi", "evidence", "--at", "1796160000.5", "--json"])


def test_moments_parse_from_numbers_and_iso():
    assert parse_moment(5) == 5.0
    assert parse_moment("1970-01-01T00:01:00Z") == 60.0
    assert parse_moment("1970-01-01T00:01:00") == 60.0
    with pytest.raises(InvalidInput):
        parse_moment("yesterday")
