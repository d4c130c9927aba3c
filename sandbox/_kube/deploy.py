"""Rollouts of the kube tier: write, watch, promote, retire, prune, with evidence.

* ``deploy(wait=True)`` rolls the main Deployment ``modelapi`` to the new revision's template
  (a JSON patch guarded by the resourceVersion, one retry on a 409) and watches it like
  ``kubectl rollout status``. Once complete, its ReplicaSet is stamped promoted and the one
  that served before finished. If it fails (progress deadline, the kit's own deadline), its
  ReplicaSet is marked failed with its last log lines and the Deployment goes back to the
  template that serves, so the failed pods stop and the revision stays as history.
* ``deploy(wait=False)`` starts a canary Deployment ``modelapi-canary-r<N>`` (``track:
  canary``) that the front-door Service does not select. ``wait_for_rollout()`` watches it by
  its progress deadline and promotes it: the main Deployment rolls to the canary's template
  on ``track: stable`` (the same revision N) and the canary Deployment goes. A canary that
  never gets ready is marked failed and scaled to 0, kept as history.
* A new rollout first retires what never took traffic (a waiting canary, an interrupted main
  rollout), as the Docker tier does. Finished revisions beyond the history limit are pruned.
* An image the nodes can never get (``ErrImageNeverPull``, ``InvalidImageName``) raises
  ``ImageNotInCluster``; the revision is removed, as if it never started (Docker's rule).

``RolloutFailed`` carries the conditions, pod states, the pods' own ``/readyz`` reason, recent
events and logs. The rollout rules themselves are ``sandbox.spec``'s.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable

from .. import labels
from ..errors import (
    ImageMissing,
    InfrastructureError,
    InvalidInput,
    KubeConflict,
    KubeForbidden,
    NoRevisionDeployed,
    RolloutFailed,
)
from ..records import DeploySpec, Revision
from ..settings import Settings
from ..spec import SUPERSEDED_EARLY, retired_beyond_limit, revisions, serving_revision
from ..waiting import until
from . import rollout as ro
from . import waits
from .api import FORBIDDEN_FIX, JSON_PATCH, MERGE_PATCH, KubeApi, ensure_ours
from .history import Objects, revision_facts
from .rollout import Obj

GRACE_S = 15.0
"""The kit's own deadline beyond the progress deadline (the controller's verdict comes first)."""
OBSERVE_S = 30.0
"""How long the Deployment controller may take to pick up a write."""
STOPPED_EARLY = "stopped before it became ready"
NEVER_STARTED = (ImageMissing, KubeForbidden)
"""The cluster could not start the revision's pods (no image, no quota): infrastructure, and
the revision is removed, as one whose containers could not start is on the Docker tier."""
LOG_KEEP = 4000


class Rollouts:
    """The model API revisions of one sandbox: main Deployment, canaries, ReplicaSets."""

    def __init__(self, api: KubeApi, settings: Settings, image: Callable[[str], str],
                 base_deployment: Callable[[], Obj], poll_s: float = 0.5) -> None:
        self.api = api
        self.settings = settings
        self.sandbox_id = settings.sandbox_id
        self.image = image
        self.base_deployment = base_deployment
        self.poll_s = poll_s
        self.selector = labels.kube_selector(self.sandbox_id, "modelapi")

    @property
    def deadline_s(self) -> float:
        return self.settings.rollout.progress_deadline_s

    # --- reading ---------------------------------------------------------------------------
    def objects(self) -> Objects:
        def ours(objs: list[Obj]) -> list[Obj]:
            return [o for o in objs if labels.is_ours(ro.meta(o).get("labels"), self.sandbox_id)]

        return Objects(ours(self.api.list("Deployment", self.selector)), ours(self.api.list("ReplicaSet", self.selector)))

    def facts(self, objs: Objects | None = None) -> list:
        return revision_facts(objs if objs is not None else self.objects(), self.image)

    def history(self, objs: Objects | None = None) -> list[Revision]:
        return revisions(self.facts(objs), time.time(), self.deadline_s)

    def revision(self, number: int) -> Revision:
        found = [r for r in self.history() if r.number == number]
        if not found:
            raise InfrastructureError(f"revision {number} has no ReplicaSet (namespace {self.api.namespace})",
                                      fix="run `labkit rollout history`; if it persists, `labkit sandbox reset`")
        return found[0]

    def pod_selector(self, number: int, track: str | None = None) -> str:
        selector = f"{self.selector},{labels.REVISION}={number}"
        return selector + (f",{ro.TRACK}={track}" if track else "")

    def pods(self, number: int, track: str | None = None) -> list[Obj]:
        return [p for p in waits.pods_of(self.api, self.pod_selector(number, track))
                if not ro.meta(p).get("deletionTimestamp")]

    def _serving_number(self) -> int | None:
        live = serving_revision(self.history())
        return live.number if live else None

    # --- rolling out -------------------------------------------------------------------------
    def roll_out(self, spec: DeploySpec, cause: str, rollback_of: int | None, wait: bool) -> Revision:
        """Revision ``max + 1`` running ``spec``: a canary (``wait=False``) or the main
        Deployment's next template, watched until it serves."""
        self._retire_unpromoted(self.objects())
        number = self.objects().next_number()
        base = self.base_deployment()
        track = ro.STABLE if wait else ro.CANARY
        template = ro.template_for(ro.template_of(base), spec, self.image(spec.image), number, cause,
                                   rollback_of, track)
        if not wait:
            self._start_canary(base, template, spec.replicas, number, cause)
            return self.revision(number)
        self._write_main(template, spec.replicas, cause)
        rev = self._follow_main(number)
        self._prune()
        return rev

    def wait_current(self) -> Revision:
        """``kubectl rollout status`` of the latest revision: promote a ready canary, finish
        an interrupted rollout, or say why it failed."""
        objs = self.objects()
        history = self.history(objs)
        if not history:
            raise NoRevisionDeployed(self.sandbox_id)
        latest = history[-1]
        if latest.state == "progressing":
            if objs.canary(latest.number) is not None:
                return self._finish_canary(latest.number)
            rev = self._follow_main(latest.number)
            self._prune()
            return rev
        if latest.state == "failed":
            self._retire_unpromoted(objs)
            self._prune()
            raise RolloutFailed(latest.number, latest.reason, self._serving_number())
        canary = objs.canary(latest.number)
        if canary is not None:  # a promotion that was interrupted: finish it
            self._follow_main(latest.number)
            self.api.delete("Deployment", ro.canary_name(latest.number))
            self._prune()
            return self.revision(latest.number)
        return latest  # serving: nothing to wait for

    # --- the main Deployment -------------------------------------------------------------------
    def _write_main(self, template: Obj, replicas: int, cause: str) -> Obj:
        """Create the main Deployment or roll it to ``template`` (one retry on a conflict)."""
        deadline, limit = max(1, math.ceil(self.deadline_s)), self.settings.rollout.revision_history_limit
        for attempt in (1, 2):
            main = self.api.read("Deployment", ro.MAIN)
            ensure_ours(main, self.sandbox_id, f"Deployment {ro.MAIN}")
            try:
                if main is None:
                    base = self.base_deployment()
                    return self.api.create(ro.deployment(base, ro.MAIN, template, replicas,
                                                         dict(base["spec"]["selector"]["matchLabels"]),
                                                         deadline, limit, cause, {}))
                if (main.get("spec") or {}).get("paused"):
                    raise InvalidInput(f"Deployment {ro.MAIN} is paused; resume it with `kubectl rollout resume"
                                       f" deployment/{ro.MAIN} -n {self.api.namespace}`")
                patch = ro.rollout_patch(main, template, replicas, cause, deadline, limit)
                return self.api.patch("Deployment", ro.MAIN, patch, JSON_PATCH)
            except KubeConflict:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _follow_main(self, number: int) -> Revision:
        """Watch the main Deployment's rollout of ``number``; stamp it, or fail it."""
        try:
            self._watch(ro.MAIN, number, ro.STABLE)
        except RolloutFailed as e:
            self._fail_main(number, e.reason, e.logs)
            raise
        except NEVER_STARTED:
            self._fail_main(number, None, "")  # it never started: no history entry
            raise
        except BaseException:
            with contextlib.suppress(Exception):  # never leave a half rollout running
                self._fail_main(number, STOPPED_EARLY, "")
            raise
        self._stamp_promoted(number)
        return self.revision(number)

    def _fail_main(self, number: int, reason: str | None, logs: str) -> None:
        """Record the failure of ``number`` on its ReplicaSet (or, with None, remove it) and put
        the main Deployment back on the template that serves (scaled to 0 if none does)."""
        objs = self.objects()
        main, rs = objs.main, objs.main_rs(number)
        if rs is not None and reason is not None:
            self._mark(rs, reason, logs or waits.tail_logs(self.api, self.pods(number, ro.STABLE)))
        live = next((r for r in reversed(self.history(self.objects()))  # what served before ``number``
                     if r.state in ("serving", "superseded") and r.number != number), None)
        live_rs = objs.main_rs(live.number) if live else None
        if main is not None and ro.revision_of(main) == number:
            if live_rs is not None:
                self.api.patch("Deployment", ro.MAIN, ro.restore_patch(main, live_rs), JSON_PATCH)
            elif reason is None:  # nothing served and nothing started: as if never deployed
                self.api.delete("Deployment", ro.MAIN)
                return
            else:
                self.api.scale(ro.MAIN, 0)
        if rs is not None and reason is None:
            self.api.delete("ReplicaSet", ro.meta(rs)["name"])

    def _stamp_promoted(self, number: int) -> None:
        """The kit saw the rollout of ``number`` complete: stamp its ReplicaSet promoted and
        the ones of the main Deployment that served before finished."""
        objs, now = self.objects(), ro.stamp()
        for rs in objs.rss_of(number, objs.main) if objs.main else []:
            ann = ro.annotations(rs)
            if not ann.get(ro.PROMOTED_AT):
                self._annotate(rs, {ro.PROMOTED_AT: now})
        for rs in self._main_rss(objs):
            ann = ro.annotations(rs)
            if ro.revision_of(rs) != number and not ann.get(ro.FAILED) and not ann.get(ro.FINISHED_AT):
                self._annotate(rs, {ro.FINISHED_AT: now})

    # --- canaries ------------------------------------------------------------------------------------
    def _start_canary(self, base: Obj, template: Obj, replicas: int, number: int, cause: str) -> None:
        name = ro.canary_name(number)
        pin = {ro.TRACK: ro.CANARY, labels.REVISION: str(number)}
        selector = {**base["spec"]["selector"]["matchLabels"], **pin}
        deadline = max(1, math.ceil(self.deadline_s))
        self.api.create(ro.deployment(base, name, template, replicas, selector, deadline, 1, cause, pin))
        self._await_rs(name, number)

    def _finish_canary(self, number: int) -> Revision:
        name = ro.canary_name(number)
        try:
            canary = self._watch(name, number, ro.CANARY)
        except RolloutFailed as e:
            self._stop_canary(number, e.reason, e.logs)
            self._prune()
            raise
        except NEVER_STARTED:
            self.api.delete("Deployment", name)  # it never started: no history entry
            raise
        except BaseException:
            with contextlib.suppress(Exception):
                self._stop_canary(number, STOPPED_EARLY, "")
            raise
        return self._promote(canary, number)

    def _promote(self, canary: Obj, number: int) -> Revision:
        """Roll the main Deployment to the canary's template on the stable track (same
        revision), then remove the canary Deployment."""
        objs = self.objects()
        crs = objs.current(canary)
        since = ro.meta(crs or canary).get("creationTimestamp") or ro.stamp()
        template = ro.on_track(ro.template_of(canary), ro.STABLE, **{ro.CANARY_CREATED: since})
        cause = ro.annotations(template).get(ro.CAUSE, "")
        self._write_main(template, (canary.get("spec") or {}).get("replicas") or 1, cause)  # refused: it waits on
        try:
            self._follow_main(number)
        except BaseException as e:
            why = e.reason if isinstance(e, RolloutFailed) else f"promotion failed: {e}" if isinstance(
                e, Exception) else STOPPED_EARLY
            with contextlib.suppress(Exception):
                self._stop_canary(number, why, getattr(e, "logs", ""))
            raise
        self.api.delete("Deployment", ro.canary_name(number))
        self._prune()
        return self.revision(number)

    def _stop_canary(self, number: int, reason: str, logs: str) -> None:
        """Mark a canary failed (with its last log lines) and scale it to 0; it stays as history."""
        objs = self.objects()
        canary = objs.canary(number)
        if canary is None:
            return
        rs = objs.current(canary)
        if rs is not None:
            self._mark(rs, reason, logs or waits.tail_logs(self.api, self.pods(number, ro.CANARY)))
        if (canary.get("spec") or {}).get("replicas"):
            self.api.scale(ro.canary_name(number), 0)

    # --- retiring and pruning ---------------------------------------------------------------------
    def _retire_unpromoted(self, objs: Objects) -> None:
        """Before a new rollout: stop what never took traffic (a waiting or failed canary, an
        interrupted main rollout), as the Docker tier does."""
        for r in self.history(objs):
            if r.state not in ("progressing", "failed"):
                continue
            reason = r.reason if r.state == "failed" else SUPERSEDED_EARLY
            canary = objs.canary(r.number)
            if canary is not None and (canary.get("spec") or {}).get("replicas"):
                self._stop_canary(r.number, reason, "")
            rs = objs.main_rs(r.number)
            if rs is not None and rs is objs.current(objs.main):
                self._fail_main(r.number, reason, "")

    def _prune(self) -> None:
        """Keep the newest ``revision_history_limit`` finished revisions; delete the canary
        Deployments and main ReplicaSets of older ones (as the Deployment controller prunes)."""
        objs = self.objects()
        current = objs.current(objs.main)
        history = self.history(objs)
        for r in history:  # a canary left behind by a promotion that was interrupted
            if r.state == "superseded" and objs.canary(r.number) is not None:
                self.api.delete("Deployment", ro.canary_name(r.number))
        for r in retired_beyond_limit(history, self.settings.rollout.revision_history_limit):
            if objs.canary(r.number) is not None and r.state != "superseded":
                self.api.delete("Deployment", ro.canary_name(r.number))
            for rs in objs.rss_of(r.number, objs.main) if objs.main else []:
                if rs is not current:
                    self.api.delete("ReplicaSet", ro.meta(rs)["name"])

    # --- watching --------------------------------------------------------------------------------
    def _await_rs(self, name: str, number: int) -> Objects:
        """Until the controller has observed Deployment ``name`` and made revision
        ``number``'s ReplicaSet."""
        def observed() -> Objects | None:
            objs = self.objects()
            dep = objs.deployment(name)
            if dep is None:
                raise InfrastructureError(f"Deployment {name} disappeared while it rolled out")
            seen = ((dep.get("status") or {}).get("observedGeneration") or 0) >= (ro.meta(dep).get("generation") or 0)
            return objs if seen and objs.rss_of(number, dep) else None

        def late() -> InfrastructureError:
            dep = self.api.read("Deployment", name) or {}
            return InfrastructureError(f"the Deployment controller did not pick up {name} within {OBSERVE_S:g}s"
                                       f" (namespace {self.api.namespace}): {ro.describe_conditions(dep)}",
                                       fix="check the cluster's controller manager (`kubectl get events`)")

        return until(observed, timeout_s=OBSERVE_S, interval_s=self.poll_s, what=f"Deployment {name}", on_timeout=late)

    def _watch(self, name: str, number: int, track: str) -> Obj:
        """``kubectl rollout status`` of Deployment ``name`` running revision ``number``; a
        progress deadline, the kit's own deadline or an image the nodes can never get ends it."""
        objs = self._await_rs(name, number)
        rs = objs.rss_of(number, objs.deployment(name))[0]
        created = ro.parse_time(ro.meta(rs).get("creationTimestamp")) or time.time()
        remaining = max(GRACE_S, created + self.deadline_s + GRACE_S - time.time())
        selector = self.pod_selector(number, track)

        def complete() -> Obj | None:
            dep = self.api.read("Deployment", name)
            if dep is None:
                raise RolloutFailed(number, f"Deployment {name} was deleted during its rollout", self._serving_number())
            status = ro.rollout_status(dep)
            if status.state == "complete":
                return dep
            refused = ro.condition(dep, "ReplicaFailure") or {}
            if refused.get("status") == "True" and "forbidden" in (refused.get("message") or ""):
                raise KubeForbidden(403, f"the cluster refused the pods of revision {number}: {refused['message']}",
                                    FORBIDDEN_FIX)
            pods = waits.pods_of(self.api, selector)
            problem = waits.image_problem(pods, waits.PERMANENT_IMAGE_ERRORS)
            if problem:
                raise waits.ImageNotInCluster(ro.spec_from_template(ro.template_of(dep), None, self.image).image, problem)
            if status.state == "failed":
                raise self._failure(dep, number, track, status)
            return None

        return until(complete, timeout_s=remaining, interval_s=self.poll_s, what=f"rollout of revision {number}",
                     on_timeout=lambda: self._failure(self.api.read("Deployment", name) or {}, number, track, None))

    def _failure(self, dep: Obj, number: int, track: str, status: ro.RolloutStatus | None) -> RolloutFailed:
        pods = waits.pods_of(self.api, self.pod_selector(number, track))
        reason, logs = waits.diagnose(self.api, dep, pods)
        image = waits.image_problem(pods)
        if (status is None or status.state != "failed") and not image:
            seen = (status or ro.rollout_status(dep)).message
            reason = (f"not ready within {self.deadline_s:.0f}s (progress deadline exceeded; {seen}); {reason}")
        problem = f"{image}: {waits.IMAGE_FIX}" if image else waits.readyz_of(self.api, pods)
        if problem:
            reason = f"{problem}; {reason}"
        return RolloutFailed(number, reason[:800], self._serving_number(), logs)

    # --- small writes -----------------------------------------------------------------------------
    def _main_rss(self, objs: Objects) -> list[Obj]:
        main = objs.main
        return [rs for rs in objs.replicasets if main is not None and ro.owner_of(rs, [main]) is not None]

    def _annotate(self, rs: Obj, ann: dict[str, str | None]) -> None:
        self.api.patch("ReplicaSet", ro.meta(rs)["name"], {"metadata": {"annotations": ann}}, MERGE_PATCH)

    def _mark(self, rs: Obj, reason: str, logs: str) -> None:
        """Record a revision's failure (first reason wins) and its last log lines."""
        if ro.annotations(rs).get(ro.FAILED):
            return
        ann: dict[str, str | None] = {ro.FAILED: reason[:500], ro.FINISHED_AT: ro.stamp()}
        if logs.strip():
            ann[ro.LAST_LOGS] = logs[-LOG_KEEP:]
        self._annotate(rs, ann)
