"""The evidence ledger: append-only, complete entries only, corrections supersede; the cohort."""

from __future__ import annotations

import sqlalchemy as sa
import pytest
from typer.testing import CliRunner

from labkit import cohort
from labkit.cli.main import app
from labkit.ledger import Ledger, check_context, current, ledger_url
from sandbox.errors import InvalidInput, UnknownChoice


@pytest.fixture
def ledger(tmp_path):
    with Ledger.open(f"sqlite:///{tmp_path / 'evidence.db'}") as led:
        yield led


def _session(led, **over):
    fields = {"mentor": "maria", "structure": "shadowing", "minutes": 45, **over}
    return led.add("session", "alice", "maria", at="2027-01-12T10:00:00+00:00", **fields)


def test_entries_record_who_and_when(ledger):
    e = _session(ledger)
    got = ledger.get(e.id)
    assert (got.kind, got.trainee, got.recorded_by, got.get("structure")) == ("session", "alice", "maria", "shadowing")
    assert got.at.isoformat() == "2027-01-12T10:00:00+00:00" and got.recorded_at.tzinfo is not None


def test_the_table_refuses_update_and_delete(ledger):
    e = _session(ledger)
    with ledger.engine.begin() as conn, pytest.raises(sa.exc.DatabaseError, match="append-only"):
        conn.execute(sa.text("UPDATE labkit_evidence SET trainee = 'bob' WHERE id = :id"), {"id": e.id})
    with ledger.engine.begin() as conn, pytest.raises(sa.exc.DatabaseError, match="append-only"):
        conn.execute(sa.text("DELETE FROM labkit_evidence"))
    assert not hasattr(ledger, "update") and not hasattr(ledger, "delete")


def test_a_correction_is_a_new_entry_that_supersedes(ledger):
    first = _session(ledger, minutes=30)
    fixed = ledger.add("session", "alice", "maria", supersedes=first.id, mentor="maria", structure="pairing",
                       minutes=30)
    assert [e.id for e in ledger.entries()] == [first.id, fixed.id]  # nothing rewritten
    assert [e.get("structure") for e in ledger.current()] == ["pairing"]
    gone = ledger.add("session", "alice", "maria", supersedes=fixed.id, void=True)
    assert ledger.current() == [] and len(ledger.entries()) == 3 and gone.void
    with pytest.raises(InvalidInput, match="keeps the kind and the trainee"):
        ledger.add("feedback", "alice", "maria", supersedes=first.id, situation="s", behaviour="b", impact="i")


def test_missing_fields_are_named(ledger):
    with pytest.raises(InvalidInput, match="missing required field 'structure'"):
        ledger.add("session", "alice", "maria", mentor="maria", minutes=45)
    with pytest.raises(InvalidInput, match="missing required field 'recorded_by'"):
        ledger.add("session", "alice", "", mentor="maria", structure="shadowing", minutes=45)
    with pytest.raises(InvalidInput, match="missing required field 'rubric.within_minutes'"):
        ledger.add("escalation", "alice", "maria", source="lab04", point="1", escalate=False, to="x",
                   severity="sev3", rubric={"escalate": False, "to": "x", "severity": "sev3"})
    with pytest.raises(InvalidInput, match="missing required field 'reviewer'"):
        ledger.add("production", "alice", "maria", change_id="CHG-1", what="x", mode="owned", capability="c")
    assert ledger.entries() == []


def test_bad_choices_name_the_valid_ones(ledger):
    with pytest.raises(UnknownChoice, match="goal-based-mentoring, shadowing, reverse-shadowing, pairing, office-hours"):
        _session(ledger, structure="coffee")
    with pytest.raises(UnknownChoice, match="valid: approval, escalation, feedback"):
        ledger.add("kudos", "alice", "maria")
    with pytest.raises(UnknownChoice, match="valid: shadowed, supervised, owned"):
        ledger.add("production", "alice", "maria", change_id="C", what="x", reviewer="r", mode="solo", capability="c")
    with pytest.raises(UnknownChoice, match="field of a 'session' entry 'colour'"):
        _session(ledger, colour="red")


def test_approval_and_review_come_from_someone_else(ledger):
    with pytest.raises(InvalidInput, match="approver 'alice' is the trainee"):
        ledger.add("approval", "alice", "alice", change_id="CHG-1", approver="alice")
    with pytest.raises(InvalidInput, match="accepted_by 'alice' is the trainee"):
        ledger.add("runbook", "alice", "alice", runbook="r.md", action="new", accepted_by="alice")


def test_context_checks_roster_capability_and_incident_class():
    with pytest.raises(UnknownChoice, match="unknown trainee 'zed'; valid: alice, bob"):
        check_context("session", "zed", {}, ["alice", "bob"])
    with pytest.raises(UnknownChoice, match="unknown capability 'juggling'; valid: model-rollback"):
        check_context("production", "alice", {"capability": "juggling"}, None, ["model-rollback"])
    with pytest.raises(UnknownChoice, match="hypothesis class"):
        check_context("triage", "alice", {"hypothesis_class": "gremlins"})


def test_ledger_lives_beside_the_gradebook_or_in_its_postgres_database():
    assert ledger_url("sqlite:////srv/course/gradebook.db") == "sqlite:////srv/course/evidence.db"
    pg = "postgresql://grader@db:5432/gradebook"
    assert ledger_url(pg) == pg
    assert current([]) == []


def test_cohort_file_and_roster_lookups(tmp_path):
    c = cohort.make_cohort("2027-01-11", [cohort.parse_trainee("alice:sre:maria"),
                                          cohort.parse_trainee("bob:hybrid:omar")])
    cohort.save(tmp_path, c)
    back = cohort.load(tmp_path)
    assert back == c and back.day(c.start_at()) == 1 and back.mentors == ["maria", "omar"]
    with pytest.raises(UnknownChoice, match="unknown trainee 'carol'; valid: alice, bob"):
        back.trainee("carol")
    with pytest.raises(UnknownChoice, match="unknown role path 'dba'; valid: sre, sysadmin, hybrid"):
        cohort.parse_trainee("carol:dba:maria")
    with pytest.raises(InvalidInput, match="exists; pass --force"):
        cohort.save(tmp_path, c)


def test_cli_cohort_and_evidence(tmp_path, monkeypatch):
    monkeypatch.delenv("LABKIT_GRADEBOOK_URL", raising=False)
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()  # noqa: F821\n")
    root = ["--root", str(tmp_path)]
    run = lambda *args: CliRunner().invoke(app, [*args])  # noqa: E731
    out = run("cohort", "init", "--start", "2027-01-11", "--trainee", "alice:sre:maria",
              "--trainee", "bob:sysadmin:maria", *root)
    assert out.exit_code == 0, out.output
    assert "alice" in run("cohort", "show", *root).output
    ok = run("evidence", "add", "session", "--trainee", "alice", "--by", "maria", "mentor=maria",
             "structure=pairing", "minutes=60", "--at", "2027-01-20T10:00:00+00:00", *root)
    assert ok.exit_code == 0 and "ledger entry 1" in ok.output, ok.output
    unknown = run("evidence", "add", "session", "--trainee", "zed", "--by", "maria", "mentor=maria",
                  "structure=pairing", "minutes=60", *root)
    assert unknown.exit_code == 2 and "valid: alice, bob" in unknown.output
    missing = run("evidence", "add", "feedback", "--trainee", "alice", "--by", "maria", "situation=s", *root)
    assert missing.exit_code == 2 and "missing required field 'behaviour'" in missing.output
    listed = run("evidence", "list", "--json", *root)
    assert '"structure": "pairing"' in listed.output and (tmp_path / "evidence.db").is_file()
