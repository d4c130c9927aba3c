"""The rollout history is the engine's, not a document: what forging through the kit can and
cannot do, canaries that take no traffic until promoted, and a failed ``up()`` that leaves
nothing behind."""

from __future__ import annotations

import json

import pytest

import graders
from sandbox import labels
from sandbox._docker import engine
from sandbox.client import ServiceClient
from sandbox.errors import EngineFailure, InvalidInput

pytestmark = pytest.mark.docker

PUBLIC_WRITES = ("deploy", "rollback", "build_index", "wait_for_rollout", "run_job", "reset")


def test_history_survives_the_data_volume_being_rewritten(sandbox):
    """A kernel that writes whatever it likes into the data volume (where the old tier kept its
    history) changes nothing a check trusts."""
    before = [r.to_dict() for r in sandbox.history()]
    forged = {"version": 1, "revisions": [dict(before[-1], rollback_of=1, state="serving")],
              "faults": {}}
    gateway = sandbox._gateway()
    for path in ("/data/state/sandbox.json", "/data/state/history.json"):
        engine.put_file(gateway, path, json.dumps(forged).encode())
    assert [r.to_dict() for r in sandbox.history()] == before
    assert not graders.check("rolled_back", sandbox).passed
    assert not graders.check("failed_rollout_held", sandbox).passed


def test_no_public_method_forges_a_rollback_or_a_held_rollout(sandbox):
    """Everything a notebook can call on ``sb`` without a real rollback / a real failed rollout
    of the release candidate leaves both checks failing."""
    public = [m for m in dir(sandbox) if not m.startswith("_") and callable(getattr(sandbox, m))]
    assert "save_state" not in public and "state" not in public
    sandbox.deploy(change_cause="rollback to revision 1")  # the words are not the fact
    sandbox.deploy(replicas=1, wait=False)
    sandbox.deploy(image=sandbox.settings.images.default)  # supersedes the waiting canary
    history = sandbox.history()
    assert history[-2].state == "failed" and "superseded" in history[-2].reason
    assert all(r.rollback_of is None for r in history)
    assert not graders.check("rolled_back", sandbox).passed
    assert not graders.check("failed_rollout_held", sandbox, image=sandbox.settings.images.defect).passed
    assert not graders.check("failed_rollout_held", sandbox).passed  # superseded is not "held"
    sandbox.rollback(to_revision=1)
    assert graders.check("rolled_back", sandbox, to_revision=1).passed


def test_history_facts_come_from_container_labels_and_engine_timestamps(sandbox):
    sandbox.deploy(model="v2", index="2026-11-01")
    sandbox.rollback()
    history = sandbox.history()
    assert [r.state for r in history] == ["superseded", "superseded", "serving"]
    assert history[-1].rollback_of == 1 and history[-1].spec == history[0].spec
    assert history[0].created_at < history[0].ready_at <= history[1].created_at < history[1].ready_at
    assert history[0].finished_at is not None and history[-1].finished_at == history[-1].ready_at
    retired = sandbox._replicas()[1]  # kept, stopped, as a Deployment keeps old ReplicaSets
    assert all(c.status == "exited" for c in retired)
    assert retired[0].labels[labels.REVISION] == "1"


def test_a_canary_takes_no_traffic_until_promoted(sandbox):
    canary = sandbox.deploy(model="v2", index="2026-11-01", wait=False)
    assert canary.state == "progressing" and sandbox.status().serving_revision == 1
    urls = sandbox.revision_endpoints(canary.number)
    assert urls and ServiceClient(urls[0]).wait_ready(30).ready
    answered = {sandbox.search("disk full on node")["model"] for _ in range(20)}
    assert answered == {"v1"}  # the front door never reaches the canary
    assert ServiceClient(urls[0]).search("disk full on node")["model"] == "v2"
    promoted = sandbox.wait_for_rollout()
    assert promoted.number == canary.number and promoted.state == "serving"
    assert {sandbox.search("disk full on node")["model"] for _ in range(5)} == {"v2"}


def test_bad_cpus_is_refused_before_anything_changes(sandbox):
    before = sandbox.history()
    for bad in ("abc", "0", "-1", "100"):
        with pytest.raises(InvalidInput, match="cpus"):
            sandbox.deploy(cpus=bad)
    assert sandbox.history() == before
    assert sandbox.deploy(cpus="500m").spec.config["cpus"] == "500m"
    [replica] = sandbox.status().replicas()
    assert replica.cpus == pytest.approx(0.5)


def test_a_failed_up_leaves_nothing_behind(sandbox_factory, docker_client, monkeypatch):
    sb = sandbox_factory("up-fails")

    def provider_fails(image: str):
        raise EngineFailure("the provider could not start (injected by the test)")

    monkeypatch.setattr(sb, "_ensure_provider", provider_fails)
    with pytest.raises(EngineFailure, match="injected by the test"):
        with sb:
            pytest.fail("the body must not run")
    left = (docker_client.containers.list(all=True, filters=labels.docker_filters(sb.id))
            + docker_client.networks.list(filters=labels.docker_filters(sb.id))
            + docker_client.volumes.list(filters=labels.docker_filters(sb.id)))
    assert left == []
