"""The rules both tiers share (``sandbox.spec``): spec resolution, rollout states, undo."""

from __future__ import annotations

import pytest

from sandbox.errors import ForeignImage, InvalidInput, InvalidReplicas, UnknownChoice
from sandbox.records import DeploySpec
from sandbox.spec import (
    STOPPED_EARLY,
    SUPERSEDED_EARLY,
    RevisionFacts,
    SpecRequest,
    newest_dated,
    parse_cpus,
    resolve_spec,
    retired_beyond_limit,
    revisions,
    rollout_state,
    undo_target,
)

SNAPSHOTS = ["2026-10-01", "2026-11-01", "2026-11-01-q", "2026-11-15-poisoned", "2026-11-20-hotfix"]
INDEXES = [f"{s}-{m}" for s in SNAPSHOTS for m in ("v1", "v2")]
IMAGE = "labkit/modelapi:1.0.0"
V1 = DeploySpec("v1", "2026-11-01-v1", IMAGE)


def resolve(base=None, **asked):
    config = tuple((k, asked.pop(k)) for k in list(asked) if k not in ("model", "index", "image", "replicas"))
    return resolve_spec(SpecRequest(config=config, **asked), base, indexes=INDEXES, snapshots=SNAPSHOTS,
                        default_image=IMAGE, max_replicas=4, image_repository="labkit/modelapi")


def test_a_sandbox_runs_the_model_api_images_only():
    assert resolve(image="labkit/modelapi:1.1.0-rc1").image == "labkit/modelapi:1.1.0-rc1"
    assert resolve(image="labkit/modelapi@sha256:" + "0" * 64).image.startswith("labkit/modelapi@")
    assert resolve(V1).image == IMAGE  # no image asked: the serving revision's
    for foreign in ("labkit/box:1.0.0", "labkit/monitoring:2.42.0-1", "debian:bookworm", "alpine",
                    "ghcr.io/someone/labkit/modelapi:1.0.0", "labkit/modelapi-dev:1.0.0"):
        with pytest.raises(ForeignImage, match="not a model API image"):
            resolve(image=foreign)


def test_the_default_index_is_the_newest_dated_snapshot_never_a_poisoned_or_hotfix_one():
    assert newest_dated(SNAPSHOTS) == "2026-11-01"
    assert sorted(SNAPSHOTS)[-1] == "2026-11-20-hotfix"  # what "snapshots[-1]" used to pick
    assert resolve().index == "2026-11-01-v1"
    assert resolve(model="v2").index == "2026-11-01-v2"
    with pytest.raises(InvalidInput, match="no dated corpus snapshot"):
        newest_dated(["2026-11-15-poisoned"])


def test_unspecified_fields_keep_the_serving_spec_and_a_new_model_takes_the_newest_index():
    base = DeploySpec("v1", "2026-10-01-v1", IMAGE, 2, {"top_k": "3"})
    assert resolve(base) == base
    assert resolve(base, model="v2").index == "2026-11-01-v2"  # not v1's stale index
    assert resolve(base, index="2026-11-01").index == "2026-11-01-v1"
    assert resolve(base, top_k=None).config == {"top_k": "3"}
    assert resolve(base, cpus="0.5").config == {"top_k": "3", "cpus": "0.5"}


@pytest.mark.parametrize("bad", ["abc", "0", "-1", "100", "", "1e9"])
def test_cpus_is_validated_before_anything_happens(bad):
    with pytest.raises(InvalidInput, match="cpus"):
        parse_cpus(bad)
    if bad:
        with pytest.raises(InvalidInput, match="cpus"):
            resolve(cpus=bad)


def test_cpus_accepts_cores_and_kubernetes_quantities():
    assert parse_cpus("0.5") == parse_cpus("500m") == 0.5
    assert parse_cpus(2) == 2.0


@pytest.mark.parametrize("kwargs, error, names", [
    ({"model": "v9"}, UnknownChoice, "v1, v2"),
    ({"index": "1999-01-01"}, UnknownChoice, "2026-11-01-v1"),
    ({"replicas": 9}, InvalidReplicas, "from 1 to 4"),
    ({"replicas": True}, InvalidReplicas, "from 1 to 4"),
    ({"colour": "red"}, UnknownChoice, "cpus"),
])
def test_bad_input_names_the_valid_choices(kwargs, error, names):
    with pytest.raises(error, match=names):
        resolve(**kwargs)


def facts(n, promoted=None, finished=None, crashed="", failure="", created=None, spec=V1):
    return RevisionFacts(n, spec, created if created is not None else 100.0 * n, f"r{n}", None,
                         promoted, finished, crashed, failure)


def states(*fs, now=1_000.0, deadline=45.0):
    return [(r.number, r.state, r.reason) for r in revisions(fs, now, deadline)]


def test_rollout_states_follow_from_the_facts():
    assert states(facts(1, promoted=110), facts(2, promoted=210)) == [
        (1, "superseded", ""), (2, "serving", "")]
    assert states(facts(1, promoted=110), facts(2, crashed="exited with code 3")) == [
        (1, "serving", ""), (2, "failed", "exited with code 3")]
    assert states(facts(1, promoted=110), facts(2), now=230) == [(1, "serving", ""), (2, "progressing", "")]
    assert states(facts(1, promoted=110), facts(2), now=260)[1][1:] == (
        "failed", "progress deadline exceeded (not ready within 45s)")
    assert states(facts(1, promoted=110), facts(2), facts(3, promoted=320))[1] == (2, "failed", SUPERSEDED_EARLY)
    assert states(facts(1, promoted=110), facts(2, finished=205), now=210)[1] == (2, "failed", STOPPED_EARLY)
    # a crash wins over "superseded": the revision's own behaviour is the reason
    assert states(facts(1, promoted=110), facts(2, crashed="boom"), facts(3, promoted=320))[1][2] == "boom"


def test_a_ready_canary_waits_for_promotion_past_its_deadline():
    import dataclasses

    waiting = dataclasses.replace(facts(2), ready=True)
    assert states(facts(1, promoted=110), waiting, now=1000)[1] == (2, "progressing", "")
    assert states(facts(1, promoted=110), facts(2), now=1000)[1][1] == "failed"  # not ready: the deadline holds


def test_rollout_state_and_undo_target():
    hist = revisions([facts(1, promoted=110), facts(2, promoted=210), facts(3, crashed="boom")], 1000, 45)
    assert rollout_state(hist) == "failed"
    assert undo_target(hist).number == 2  # a failed rollout goes back to what serves
    assert undo_target(hist, 1).number == 1
    with pytest.raises(UnknownChoice, match="valid: 1, 2"):
        undo_target(hist, 3)  # failed revisions are never targets
    v2 = DeploySpec("v2", "2026-11-01-v2", IMAGE)
    done = revisions([facts(1, promoted=110), facts(2, promoted=210, spec=v2)], 1000, 45)
    assert rollout_state(done) == "complete" and undo_target(done).number == 1
    same = revisions([facts(1, promoted=110), facts(2, promoted=210)], 1000, 45)
    with pytest.raises(InvalidInput, match="no previous revision"):
        undo_target(same)  # the only older revision runs what serves: nothing to undo to
    with pytest.raises(InvalidInput, match="no previous revision"):
        undo_target(revisions([facts(1, promoted=110)], 1000, 45))
    assert rollout_state([]) == "none"


def test_history_limit_keeps_the_newest_finished_revisions():
    hist = revisions([facts(n, promoted=100.0 * n + 10) for n in range(1, 8)], 1000, 45)
    assert [r.number for r in retired_beyond_limit(hist, 3)] == [1, 2, 3]
