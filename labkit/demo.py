"""``make demo``: a scripted incident, end to end, headless.

1. bring up a sandbox of its own (id ``demo``) and deploy v1 with the newest index;
2. roll out a release candidate that crashes on start, while traffic flows: it must not
   take a single request;
3. roll out model v2 over an index built by v1, detect the mismatch from the new revision's
   ``/readyz`` and its recall@k on the eval set, and roll back;
4. confirm recovery and print a scorecard. Exit status 0 only if every step held.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from sandbox import make_sandbox
from sandbox._docker.engine import connect_engine
from sandbox.api import Sandbox
from sandbox.client import ServiceClient
from sandbox.errors import RolloutFailed, ServiceError, WaitTimeout
from sandbox.images import build_images
from sandbox.settings import Settings
from sandbox.waiting import until

DEMO_ID = "demo"
K = 5
GOOD_INDEX = "2026-11-01"


@dataclass
class Scorecard:
    steps: list[tuple[str, bool, str]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def check(self, name: str, ok: bool, evidence: str) -> bool:
        self.steps.append((name, ok, evidence))
        return ok

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(ok for _, ok, _ in self.steps)


class TrafficProbe:
    """Background searches through the front door; records which image revision answered."""

    def __init__(self, endpoint: str) -> None:
        self.client = ServiceClient(endpoint, timeout_s=3)
        self.revisions: dict[str, int] = {}
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rev = str(self.client.search("pods crash looping after deploy", k=3).get("revision"))
                self.revisions[rev] = self.revisions.get(rev, 0) + 1
            except ServiceError:
                self.errors += 1
            time.sleep(0.05)

    def __enter__(self) -> TrafficProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def run_demo(settings: Settings, console: Console) -> int:
    """Run the scripted incident; returns the process exit status."""

    settings = settings.with_(sandbox_id=DEMO_ID)
    card = Scorecard()
    _ensure_images(settings, console)
    sb = make_sandbox(settings)
    console.rule("1. bring up a clean sandbox and deploy v1")
    sb.down()
    t0 = time.monotonic()
    sb.up()
    sb.deploy(model="v1", index=GOOD_INDEX, change_cause="demo: baseline v1")
    card.figures["up_to_ready_s"] = time.monotonic() - t0
    before = sb.evaluate(K)
    card.figures["recall_before"] = before.recall
    card.check("baseline serves and is accurate", sb.readiness().ready and before.recall >= 0.8,
               f"{before.summary()} at {sb.endpoint}")
    _bad_image_step(sb, settings, card, console)
    _mismatch_step(sb, card, console)
    _print_scorecard(card, console, sb)
    return 0 if card.passed else 1


def _ensure_images(settings: Settings, console: Console) -> None:
    client = connect_engine(settings.docker_host)
    try:
        for image in (settings.images.default, settings.images.defect, settings.monitoring.image):
            client.images.get(image)
    except Exception:  # noqa: BLE001 - any miss means: build

        console.print("images missing: building them first")
        build_images(settings, progress=lambda line: console.print(line, highlight=False))
    finally:
        client.close()


def _bad_image_step(sb: Sandbox, settings: Settings, card: Scorecard, console: Console) -> None:
    console.rule("2. roll out a release candidate that crashes on start")
    good_revision = str(sb.version().get("image_revision"))
    with TrafficProbe(sb.endpoint) as probe:
        try:
            sb.deploy(image=settings.images.defect, change_cause="demo: rc1 that crashes")
            held = False
            detail = "the crashing revision became ready?!"
        except RolloutFailed as e:
            held = True
            detail = e.reason
        time.sleep(0.3)
    served = dict(probe.revisions)
    card.check("crashing rollout is reported as failed", held, detail)
    card.check(
        "the failed revision never took traffic",
        set(served) == {good_revision} and probe.errors == 0,
        f"{sum(served.values())} requests during the rollout, answered by {served}, {probe.errors} errors",
    )
    card.figures["requests_during_bad_rollout"] = sum(served.values())
    _alert_step(sb, card, "ModelAPIReplicaDown")
    sb.rollback()  # clear the stuck rollout, as `kubectl rollout undo` would


def _alert_step(sb: Sandbox, card: Scorecard, name: str, deadline_s: float = 60.0) -> None:
    """The alert that detected the incident: wait (bounded) for it in Alertmanager."""
    if not sb.settings.monitoring.enabled:
        return
    end = time.monotonic() + deadline_s
    alerts = sb.alerts(name)
    while not alerts and time.monotonic() < end:
        time.sleep(0.5)
        alerts = sb.alerts(name)
    card.figures["detected_by"] = alerts[0].name if alerts else ""
    evidence = (f"{alerts[0].name} ({alerts[0].labels.get('severity')}) firing since {alerts[0].starts_at}:"
                f" {alerts[0].annotations.get('summary', '')}" if alerts
                else f"{name} did not fire within {deadline_s:.0f}s")
    card.check("the alert that detected it fired in Alertmanager", bool(alerts), evidence)


def _mismatch_step(sb: Sandbox, card: Scorecard, console: Console) -> None:
    console.rule("3. roll out model v2 over an index built by v1; detect; roll back")
    t0 = time.monotonic()
    rev = sb.deploy(model="v2", index=f"{GOOD_INDEX}-v1", wait=False,
                    change_cause="demo: v2 model with a v1 index")
    canary = sb.revision_endpoints(rev.number)
    detected, reason = _detect(canary, deadline_s=30)
    ttd = time.monotonic() - t0
    canary_recall = ServiceClient(canary[0]).evaluate(K).recall if canary else 0.0
    card.figures.update(time_to_detect_s=ttd, canary_recall=canary_recall)
    card.check("mismatch detected from the new revision's /readyz", detected,
               f"{reason} after {ttd:.1f}s; canary recall@{K} = {canary_recall:.2f}")
    t1 = time.monotonic()
    sb.rollback()
    status = sb.status()
    ttr = time.monotonic() - t1  # until the front door is ready on the rolled-back revision
    after = sb.evaluate(K)
    card.figures.update(time_to_recover_s=ttr, recall_after=after.recall)
    card.check(
        "rolled back and recovered",
        status.ready and status.rollout == "complete" and after.recall >= card.figures["recall_before"] - 1e-9,
        f"revision {status.serving_revision} serves {status.spec.model if status.spec else '?'}"
        f"/{status.spec.index if status.spec else '?'}; {after.summary()}",
    )


def _detect(canary: list[str], deadline_s: float) -> tuple[bool, str]:
    """Watch the canary's /readyz until it names a reason (or becomes ready)."""
    def verdict() -> tuple[bool, str] | None:
        for url in canary:
            r = ServiceClient(url, timeout_s=2).readiness()
            if r.reason and r.reason != "unreachable":
                return r.reason == "model-mismatch", f"/readyz {r.status_code} {r.reason}: {r.detail}"
            if r.ready:
                return False, "the mismatched revision reported ready"
        return None

    try:
        return until(verdict, timeout_s=deadline_s, interval_s=0.1, what="the canary's readiness verdict")
    except WaitTimeout:
        return False, f"no readiness verdict within {deadline_s:.0f}s"


def _print_scorecard(card: Scorecard, console: Console, sb: Sandbox) -> None:
    console.rule("scorecard")
    table = Table("step", "held", "evidence")
    for name, ok, evidence in card.steps:
        table.add_row(name, "[green]yes[/]" if ok else "[red]NO[/]", evidence)
    console.print(table)
    f = card.figures
    console.print(
        f"recall@{K}: before {f.get('recall_before', 0):.3f} | canary during incident "
        f"{f.get('canary_recall', 0):.3f} | after {f.get('recall_after', 0):.3f}\n"
        f"time to detect: {f.get('time_to_detect_s', 0):.2f}s   time to recover: "
        f"{f.get('time_to_recover_s', 0):.2f}s   up to ready: {f.get('up_to_ready_s', 0):.1f}s"
    )
    console.print(f"[bold]{'PASS' if card.passed else 'FAIL'}[/]: sandbox '{sb.id}' left up for you to"
                  f" explore (LABKIT_SANDBOX_ID={sb.id} labkit sandbox status); remove it with"
                  f" LABKIT_SANDBOX_ID={sb.id} labkit sandbox down")

