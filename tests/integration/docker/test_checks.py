"""Every check against a real sandbox: passes in the right state, fails with a hint in a wrong one."""

from __future__ import annotations

import json

import pytest

import graders
from sandbox.errors import CheckFailed
from sandbox.faults import probes
from sandbox.waiting import until

pytestmark = pytest.mark.docker


def test_serving_ready_rollout_and_rollback(sandbox):
    assert graders.check("ready", sandbox).passed
    assert graders.check("rollout_complete", sandbox).passed
    ok = graders.expect("serving", sandbox, model="v1", index="2026-11-01", corpus="2026-11-01", replicas=1,
                        image=sandbox.settings.images.default)
    assert "model v1 / index 2026-11-01-v1" in ok.observed and "1 replica" in ok.observed
    not_yet = graders.check("rolled_back", sandbox)
    assert not not_yet.passed and "not a rollback" in not_yet.observed and "sb.rollback()" in not_yet.hint

    sandbox.deploy(model="v2")
    with pytest.raises(CheckFailed) as info:
        graders.expect("serving", sandbox, model="v1")
    wrong = info.value.result
    assert wrong.observed.startswith("model v2 / index 2026-11-01-v2") and wrong.expected == "model v1"
    assert "roll back with sb.rollback() (revision 1 served model v1)" in wrong.hint
    assert str(info.value).startswith("✗ serving: observed model v2")

    sandbox.rollback()
    assert graders.check("serving", sandbox, model="v1").passed
    assert graders.check("rolled_back", sandbox).passed
    assert graders.check("rolled_back", sandbox, to_revision=1).passed
    other = graders.check("rolled_back", sandbox, to_revision=2)
    assert not other.passed and "sb.rollback(to_revision=2)" in other.hint


def test_failed_rollout_held_after_deploying_the_defect_image(sandbox):
    defect = sandbox.settings.images.defect
    before = graders.check("failed_rollout_held", sandbox, image=defect)
    assert not before.passed and f"sb.deploy(image={defect!r})" in before.hint
    with pytest.raises(Exception, match="rollout of revision 2 failed"):
        sandbox.deploy(image=defect)
    held = graders.expect("failed_rollout_held", sandbox, image=defect)
    assert "revision 2 failed" in held.observed and "revision 1 serves" in held.observed
    assert graders.check("ready", sandbox).passed
    stuck = graders.check("rollout_complete", sandbox)
    assert not stuck.passed and "rollout failed" in stuck.observed and "sb.rollback()" in stuck.hint
    assert not graders.check("failed_rollout_held", sandbox, image=sandbox.settings.images.default).passed


def test_recall_passes_on_the_new_index_and_fails_with_partial_credit_on_the_old(sandbox):
    good = graders.check("recall_at_least", sandbox, k=5, threshold=0.85, points=2)
    assert good.passed and good.points == 2 and good.details["recall"] >= 0.85
    sandbox.deploy(index="2026-10-01")
    bad = graders.check("recall_at_least", sandbox, k=5, threshold=0.85, points=2)
    assert not bad.passed and bad.details["recall"] < 0.85
    assert 0 <= bad.points < 2 and "served by v1/2026-10-01-v1" in bad.observed
    assert "sb.deploy(index='2026-11-01')" in bad.hint


def test_p95_within_slo_measured_by_the_grader(sandbox, monkeypatch):
    ok = graders.check("p95_within_slo", sandbox, slo_ms=5000, requests=60, concurrency=4)
    assert ok.passed, str(ok)
    assert ok.details["total"] == 60 and ok.details["errors"] == 0
    assert "p50" in ok.observed and "p95" in ok.observed and "0/60 errors" in ok.observed
    # A budget no search can meet, whatever this machine's speed: the calibrated allowance is
    # taken out (under a CPU hog it was 28.7 ms for a 0.001 ms SLO, above the real p95 of 19.9 ms,
    # and the "tight" verdict passed); the calibration has tests of its own.
    monkeypatch.setattr(probes, "budget_ms", lambda slo_ms: slo_ms)
    tight = graders.check("p95_within_slo", sandbox, slo_ms=0.001, requests=20)
    assert not tight.passed and "modelapi_request_latency_seconds" in tight.hint


def test_p95_fails_when_the_cpu_limit_starves_the_service(sandbox):
    # The saturation fault's mechanism: the ready replicas are resized in place to 2 ms of CPU per
    # 100 ms (a replica deployed that small would first have to start under that limit, and how long
    # that takes depends on the machine). The spec does not change; the check says what runs.
    sandbox.throttle_serving(0.02)
    starved = graders.check("p95_within_slo", sandbox, slo_ms=300, requests=96, concurrency=12)
    assert not starved.passed, str(starved)
    assert "cpus=unlimited, live CPU limit 0.02)" in starved.observed, starved.observed
    assert "CPU limit" in starved.hint or "failed" in starved.hint
    limit = until(lambda: next((s.value for s in sandbox.query("modelapi_cpu_limit_cores") if s.value == s.value), None),
                  timeout_s=60, interval_s=1, what="the service's own gauge to show the live CPU limit")
    assert limit == pytest.approx(0.02)  # what the replica reads from its cgroup at each scrape
    sandbox.throttle_serving(None)
    assert "live CPU limit" not in graders.check("p95_within_slo", sandbox, slo_ms=5000, requests=8).observed


@pytest.mark.xdist_group("foreign-objects")  # never beside a grader that compares foreign objects
def test_foreign_untouched_notices_a_stopped_unlabelled_container(sandbox_factory, docker_client):
    sb = sandbox_factory("fg").up()
    image = sb.settings.images.default
    foreign = docker_client.containers.run(  # the image's own labels say labkit: override them
        image, ["python", "-c", "import time; time.sleep(300)"], detach=True, name=f"not-labkit-{sb.id}",
        labels={"app.kubernetes.io/managed-by": "another-team"})
    try:
        baseline = graders.foreign_snapshot(sb)
        assert foreign.id in baseline["containers"]
        names = {c["name"] for c in baseline["containers"].values()}
        assert f"labkit-{sb.id}-gateway" not in names  # the kit's own objects are not foreign
        assert graders.check("foreign_untouched", sb, baseline=baseline).passed
        foreign.stop(timeout=1)
        touched = graders.check("foreign_untouched", sb, baseline=baseline)
        assert not touched.passed and f"container not-labkit-{sb.id} stopped" in touched.observed
        assert "labkit sandbox down" in touched.hint
    finally:
        foreign.remove(force=True)
    gone = graders.check("foreign_untouched", sb, baseline=baseline)
    assert f"container not-labkit-{sb.id} removed" in gone.observed


def test_fault_healed_follows_the_fault_catalog(sandbox):
    faults = pytest.importorskip("sandbox.faults")
    assert graders.check("fault_healed", sandbox, fault="config-drift").passed
    faults.inject(sandbox, "config-drift")
    broken = graders.check("fault_healed", sandbox, fault="config-drift")
    assert not broken.passed and "default_k" in broken.observed and broken.hint
    sandbox.rollback()
    assert graders.expect("fault_healed", sandbox, fault="config-drift").passed


def test_poison_quarantined_and_lineage(sandbox):
    faults = pytest.importorskip("sandbox.faults")
    assert graders.check("lineage_traceable", sandbox).passed
    faults.inject(sandbox, "poisoned-document")
    poisoned = graders.check("poison_quarantined", sandbox, points=3)
    assert not poisoned.passed and "rb-9001 returned for" in poisoned.observed
    assert not poisoned.details["served"] and not poisoned.details["quarantined"]
    assert not poisoned.details["clean_copy_passes"] and poisoned.points == 0  # nothing done yet
    out = sandbox.run_job(["python", "-m", "modelapi", "quarantine", "--snapshot", "2026-11-15-poisoned",
                           "--doc", "rb-9001", "--json"], "quarantine")
    assert "rb-9001" in json.loads(out)["quarantined"]
    sandbox.deploy(index="2026-11-01")
    clean = graders.expect("poison_quarantined", sandbox)
    assert "rb-9001 returned for 0/" in clean.observed


def test_lineage_break_is_not_traceable(sandbox):
    faults = pytest.importorskip("sandbox.faults")
    faults.inject(sandbox, "lineage-break")
    broken = graders.check("lineage_traceable", sandbox)
    assert not broken.passed and "traceable=False" in broken.observed and "sb.build_index" in broken.hint
    faults.heal(sandbox, "lineage-break")
    assert graders.check("lineage_traceable", sandbox).passed
