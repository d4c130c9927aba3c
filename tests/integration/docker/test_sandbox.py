"""Every sandbox operation against the real Docker engine."""

from __future__ import annotations

import socket

import pytest

from sandbox import labels
from sandbox.errors import (
    InvalidReplicas,
    NoRevisionDeployed,
    PortInUse,
    RolloutFailed,
    UnknownChoice,
)

pytestmark = pytest.mark.docker


def _objects(client, sandbox_id):
    f = labels.docker_filters(sandbox_id)
    return (
        client.containers.list(all=True, filters=f),
        client.networks.list(filters=f),
        client.volumes.list(filters=f),
    )


def test_up_twice_is_idempotent_labelled_and_local_only(sandbox_factory, docker_client):
    sb = sandbox_factory().up()
    first = {c.name for c in _objects(docker_client, sb.id)[0]}
    sb.up()
    containers, networks, volumes = _objects(docker_client, sb.id)
    assert {c.name for c in containers} == first == {f"labkit-{sb.id}-{c}" for c in (
        "gateway", "provider", "prometheus", "alertmanager")}
    assert len(networks) == 2 and len(volumes) == 2  # data, and the monitoring stack's
    for obj in [*containers, *networks]:
        assert labels.is_ours(obj.attrs.get("Labels") or obj.labels, sb.id)
    for c in containers:
        for bindings in (c.attrs["HostConfig"]["PortBindings"] or {}).values():
            assert all(b["HostIp"] == "127.0.0.1" for b in bindings)
        assert c.attrs["HostConfig"]["ReadonlyRootfs"] is True
        assert c.attrs["Config"]["User"] == "10001:10001"
    assert sb.endpoint.startswith("http://127.0.0.1:")


def test_nothing_deployed_is_a_clear_error(sandbox_factory):
    sb = sandbox_factory().up()
    st = sb.status()
    assert st.up and st.serving_revision is None and st.rollout == "none"
    with pytest.raises(NoRevisionDeployed, match="no revision deployed"):
        sb.current()


def test_deploy_search_version_metrics_logs(sandbox):
    st = sandbox.status()
    assert st.ready and st.serving_revision == 1 and st.rollout == "complete"
    assert st.spec.model == "v1" and st.spec.index == "2026-11-01-v1"
    body = sandbox.search("vector index checksum mismatch on load", k=3)
    assert len(body["results"]) == 3 and body["model"] == "v1"
    assert sandbox.version()["index"] == "2026-11-01-v1"
    samples = sandbox.metrics()
    assert samples["modelapi_ready"][0][1] == 1.0
    assert any(lbl.get("route") == "/v1/search" for lbl, _ in samples["modelapi_requests_total"])
    assert "2026-11-01-v1" in sandbox.logs()


def test_rollout_history_and_rollback(sandbox):
    sandbox.deploy(model="v2")
    assert sandbox.version()["model"] == "v2"
    revs = sandbox.history()
    assert [(r.number, r.state) for r in revs] == [(1, "superseded"), (2, "serving")]
    assert revs[1].spec.index == "2026-11-01-v2"
    back = sandbox.rollback()
    assert back.rollback_of == 1 and back.number == 3
    assert sandbox.version()["model"] == "v1"
    named = sandbox.rollback(to_revision=2)
    assert named.rollback_of == 2 and sandbox.version()["model"] == "v2"


def test_crashing_revision_is_a_failed_rollout_and_never_serves(sandbox):
    defect = sandbox.settings.images.defect
    with pytest.raises(RolloutFailed) as info:
        sandbox.deploy(image=defect)
    assert info.value.revision == 2 and info.value.serving == 1
    assert "exited with code" in info.value.reason
    st = sandbox.status()
    assert st.serving_revision == 1 and st.rollout == "failed" and st.ready
    assert sandbox.version()["image_revision"] == sandbox.settings.images.tag
    undo = sandbox.rollback()
    assert undo.rollback_of == 1 and sandbox.status().rollout == "complete"


def test_mismatched_index_is_held_back_with_its_reason(sandbox_factory):
    # the kit's own progress deadline: a shorter one fails on a loaded machine before the replica
    # has answered at all ("unreachable" instead of its reason)
    sb = sandbox_factory().up()
    sb.deploy(model="v1")
    with pytest.raises(RolloutFailed, match="model-mismatch"):
        sb.deploy(model="v2", index="2026-11-01-v1")
    assert sb.version()["model"] == "v1"
    assert sb.history()[-1].state == "failed"


def test_two_sandboxes_side_by_side(sandbox_factory):
    a = sandbox_factory("a").up()
    b = sandbox_factory("b").up()
    a.deploy(model="v1")
    b.deploy(model="v2")
    assert a.endpoint != b.endpoint
    assert a.version()["model"] == "v1" and b.version()["model"] == "v2"
    a.down()
    assert b.status().ready


@pytest.mark.xdist_group("foreign-objects")  # makes a stranger: never beside a grader that compares them
def test_down_spares_what_it_did_not_make(sandbox_factory, docker_client):
    sb = sandbox_factory().up()
    image = sb.settings.images.default
    stranger = docker_client.containers.run(image, ["sleep", "60"], detach=True, name=f"stranger-{sb.id}")
    other = docker_client.containers.run(
        image, ["sleep", "60"], detach=True, name=f"other-{sb.id}",
        labels=labels.for_sandbox("someone-else"),
    )
    try:
        removed = sb.down()
        assert f"container/labkit-{sb.id}-gateway" in removed
        for c in (stranger, other):
            c.reload()
            assert c.status == "running"
        assert sb.down() == []  # down on nothing is fine
    finally:
        stranger.remove(force=True)
        other.remove(force=True)


def test_interrupted_up_is_repaired(sandbox_factory, docker_client):
    sb = sandbox_factory().up()
    docker_client.containers.get(f"labkit-{sb.id}-gateway").stop(timeout=1)
    docker_client.containers.get(f"labkit-{sb.id}-provider").remove(force=True)
    assert not sb.status().up
    sb.up()
    assert sb.status().up


def test_replicas_and_reset(sandbox):
    sandbox.deploy(replicas=2)
    running = [c for c in sandbox.containers("modelapi") if c.status == "running"]
    assert len(running) == 2 and sandbox.status().spec.replicas == 2
    sandbox.reset()
    assert sandbox.history() == [] and sandbox.status().up


def test_build_and_ship_a_new_index(sandbox):
    manifest = sandbox.build_index("v2", "2026-10-01", name="old-v2")
    assert manifest["model_version"] == "v2" and manifest["corpus_snapshot"] == "2026-10-01"
    assert "old-v2" in [m["index_version"] for m in sandbox.indexes()]
    sandbox.deploy(model="v2", index="old-v2")
    assert sandbox.version()["index"] == "old-v2"


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"model": "v9"}, UnknownChoice, "v1, v2"),
        ({"index": "1999-01-01"}, UnknownChoice, "2026-11-01-v1"),
        ({"replicas": 0}, InvalidReplicas, "1 to 4"),
        ({"replicas": 99}, InvalidReplicas, "1 to 4"),
        ({"colour": "blue"}, UnknownChoice, "top_k"),
    ],
)
def test_bad_input_names_the_valid_choices(sandbox, kwargs, error, names):
    with pytest.raises(error, match=names):
        sandbox.deploy(**kwargs)
    assert len(sandbox.history()) == 1  # nothing was rolled out


def test_unknown_revision_names_the_valid_ones(sandbox):
    with pytest.raises(UnknownChoice, match="valid: 1"):
        sandbox.rollback(to_revision=42)


def test_port_in_use_is_one_clear_error(sandbox_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        sb = sandbox_factory(port=port)
        with pytest.raises(PortInUse, match=f"port {port}"):
            sb.up()
