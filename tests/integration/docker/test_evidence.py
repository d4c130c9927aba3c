"""Evidence records on a real Docker sandbox: releases, approvals and evaluations kept as hash
chains, replayed by ``sb.evidence(at=T)``; through a control endpoint the box is named as the
caller, cannot append records itself, and a record cut off the end shows against the audit log."""

from __future__ import annotations

import time

import pytest

from graders import check
from graders.recordchecks import audit_anchors
from sandbox import evidence
from sandbox._docker import engine
from sandbox.control.audit import read_audit
from sandbox.control.client import RemoteSandbox
from sandbox.control.policy import Refused
from sandbox.control.server import ControlEndpoint
from sandbox.errors import InvalidInput

pytestmark = [pytest.mark.docker]

RELEASES = "/data/evidence/releases.jsonl"


def _cut_last_line(sb, path: str) -> None:
    """What someone with the engine (never a box) could do to a record file: drop its last entry."""
    code, out = engine.exec_text(sb._gateway(), ["python", "-c", (
        "import sys; p=sys.argv[1]; lines=open(p).read().splitlines(); open(p,'w').write('\\n'.join(lines[:-1])+'\\n')"),
        path])
    assert code == 0, out


def test_what_served_when_approved_by_whom_evaluated_how(sandbox_factory):
    sandbox = sandbox_factory("ev").up()
    sandbox.deploy(model="v1", index="2026-11-01", change_cause="REL-1 v1")
    baseline = sandbox.evaluate(k=5)
    between = time.time()
    sandbox.deploy(model="v2", index="2026-11-01", wait=False, change_cause="REL-2 canary")
    promoted = sandbox.wait_for_rollout()  # not a deploy(): recorded at the next read, with the engine's time
    then = sandbox.evidence(at=between)
    assert then["served"]["revision"] == 1 and then["served"]["corpus_snapshot"] == "2026-11-01"
    assert then["served"]["deployed_by"] == sandbox.actor == evidence.local_actor()
    assert then["approval"]["on_record"] and then["approval"]["approver"]
    assert [e["recall"] for e in then["evaluations"]] == [baseline.recall]
    now = sandbox.evidence()
    assert now["served"]["revision"] == promoted.number and now["served"]["served_from"] == promoted.ready_at
    out = sandbox.run_job(["python", "-m", "modelapi", "approve-snapshot", "2026-10-01", "--json"], "approve")
    assert f'"approver": "{sandbox.actor}"' in out
    with pytest.raises(InvalidInput, match="who makes the call"):
        sandbox.run_job(["python", "-m", "modelapi", "approve-snapshot", "2026-10-01", "--approver", "mentor"], "x")
    assert sandbox.verify_evidence()["ok"]
    _cut_last_line(sandbox, "/data/evidence/approvals.jsonl")  # the last approval "never happened" ...
    assert sandbox.verify_evidence()["ok"]  # ... and a shorter chain alone cannot tell: anchors can


def test_through_the_control_endpoint_the_box_is_the_caller(sandbox_factory, tmp_path, monkeypatch):
    sandbox = sandbox_factory("evbox").up()
    audit_path = tmp_path / "audit.jsonl"
    with ControlEndpoint(sandbox, tmp_path / "control.sock", audit_path) as endpoint:
        for key, value in endpoint.box_env().items():
            monkeypatch.setenv(key, value)
        box = RemoteSandbox(sandbox.settings)  # the box's side holds its socket from here on ...
        for key in endpoint.box_env():  # ... and the endpoint's side, in this same process, is not in a box
            monkeypatch.delenv(key)
        box.deploy(model="v1", index="2026-11-01", change_cause="REL-1")
        box.evaluate(k=5)
        box.deploy(model="v2", index="2026-11-01", wait=False)
        box.wait_for_rollout()
        box.note("incident", summary="INC-1 drill")
        with pytest.raises(Refused, match="not a trainee's job"):
            box.run_job(["python", "-m", "modelapi", "record-release", "--actor", "mentor", "--fields", "{}"], "x")
        with pytest.raises(Refused, match="names, not paths"):
            box.run_job(["python", "-m", "modelapi", "quarantine", "--snapshot", "2026-11-01", "--doc", "rb-0001",
                         "--out", "../evidence/releases"], "x")
        records = box.evidence_records()
        assert [r["revision"] for r in records["releases"]] == [1, 2]
        assert {r["deployed_by"] for r in records["releases"]} == {f"grading-box:{sandbox.id}"}
        assert records["notes"][-1]["by"] == f"grading-box:{sandbox.id}"
        assert box.evidence()["served"]["revision"] == 2 and box.verify_evidence()["ok"]
    audit = read_audit(audit_path)
    anchors = audit_anchors(audit)
    assert set(anchors["releases"]) == {1, 2} and set(anchors["evaluations"]) == {1}
    assert check("release_evidenced", sandbox, audit=audit).passed
    _cut_last_line(sandbox, RELEASES)  # revision 2's release record removed, hashes recomputed nowhere
    assert sandbox.verify_evidence()["ok"]  # the shorter chain is still a chain ...
    cut = check("release_evidenced", sandbox, audit=audit)  # ... but the endpoint kept its hash
    assert not cut.passed
