"""Rollouts of the kube tier against a live Deployment: write, wait, fail with evidence.

``Rollouts`` patches the ``modelapi`` Deployment (JSON patch, guarded by resourceVersion,
retried once on a 409), waits like ``kubectl rollout status`` (observedGeneration, updated,
ready and available replicas, the Progressing condition and its deadline, plus a deadline
of its own), and raises ``RolloutFailed`` with the conditions, pod states, recent events
and logs. The decisions themselves are the pure functions of ``sandbox._kube.rollout``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from .. import labels
from ..api import DeploySpec, Revision
from ..errors import InfrastructureError, InvalidInput, NoRevisionDeployed, RolloutFailed, SandboxNotUp
from ..settings import Settings
from . import rollout as ro
from . import waits
from .api import JSON_PATCH, MERGE_PATCH, KubeApi, KubeApiError, ensure_ours

DEPLOYMENT = "modelapi"
Obj = dict[str, Any]


class Rollouts:
    """The revisions of one sandbox's ``modelapi`` Deployment."""

    def __init__(self, api: KubeApi, settings: Settings, image: Callable[[str], str],
                 base_deployment: Callable[[], Obj], poll_s: float = 0.5) -> None:
        self.api = api
        self.settings = settings
        self.sandbox_id = settings.sandbox_id
        self.image = image
        self.base_deployment = base_deployment
        self.poll_s = poll_s

    def objects(self) -> tuple[Obj | None, list[Obj]]:
        """The Deployment (None before the first deploy) and its labelled ReplicaSets."""
        dep = self.api.read("Deployment", DEPLOYMENT)
        if dep is None:
            return None, []
        ensure_ours(dep, self.sandbox_id, f"Deployment {DEPLOYMENT}")
        rss = [rs for rs in self.api.list("ReplicaSet", labels.kube_selector(self.sandbox_id, DEPLOYMENT))
               if labels.is_ours(rs["metadata"].get("labels"), self.sandbox_id)]
        return dep, rss

    def history(self) -> list[Revision]:
        dep, rss = self.objects()
        return ro.history(dep, rss, self.image)

    def pod_selector(self, rs: Obj | None) -> str:
        pod_hash = ((rs or {}).get("metadata", {}).get("labels") or {}).get(ro.HASH_LABEL, "none")
        return f"{labels.kube_selector(self.sandbox_id, DEPLOYMENT)},{ro.HASH_LABEL}={pod_hash}"

    # --- rolling out ---------------------------------------------------------------------
    def roll_out(self, spec: DeploySpec, cause: str, rollback_of: int | None = None, wait: bool = True,
                 source: Obj | None = None) -> Revision:
        """Patch (or create) the Deployment, then wait. ``source`` is a ReplicaSet whose
        template to restore (undo); otherwise the new template runs ``spec``."""
        for attempt in (1, 2):  # one retry when someone else changed it in between (409)
            before, rss = self.objects()
            self._retire_stuck(before, rss)
            try:
                dep = self._write(before, spec, cause, rollback_of, source)
                break
            except KubeApiError as e:
                if e.code != 409 or attempt == 2:
                    raise
        generation = dep["metadata"].get("generation") or 0
        unchanged = before is not None and generation == (before["metadata"].get("generation") or 0)
        rev = self._revision_after(generation, spec, cause, rollback_of)
        return self._wait(rev, unchanged) if wait else rev

    def wait_current(self) -> Revision:
        """``kubectl rollout status``: finish the rollout of the Deployment's current revision."""
        dep, rss = self.objects()
        cur = ro.current(dep, rss) if dep else None
        if dep is None or cur is None:
            raise NoRevisionDeployed(self.sandbox_id)
        rev = next(r for r in ro.history(dep, rss, self.image) if r.number == ro.revision_number(cur))
        if rev.state == "failed":
            serve = ro.serving(dep, rss)
            raise RolloutFailed(rev.number, rev.reason, ro.revision_number(serve) if serve else None)
        return self._wait(rev)

    def rollback(self, to_revision: int | None = None) -> Revision:
        """``kubectl rollout undo [--to-revision]``: restore a ReplicaSet's template."""
        dep, rss = self.objects()
        if dep is None:
            raise InvalidInput("no previous revision to roll back to; see `labkit rollout history`")
        rs, number = ro.undo_target(dep, rss, to_revision, self.image)
        cur = ro.current(dep, rss)
        if rs is cur and cur is ro.serving(dep, rss):  # kubectl: "skipped rollback"
            return next(r for r in ro.history(dep, rss, self.image) if r.number == ro.revision_number(cur))
        spec = ro.spec_from_template(rs["spec"]["template"], None, self.image)
        return self.roll_out(spec, f"rollback to revision {number}", number, True, source=rs)

    def _write(self, dep: Obj | None, spec: DeploySpec, cause: str, rollback_of: int | None,
               source: Obj | None) -> Obj:
        deadline = max(1, math.ceil(self.settings.rollout.progress_deadline_s))
        limit = self.settings.rollout.revision_history_limit
        if dep is None:
            obj = self.base_deployment()
            obj["spec"].update(template=ro.template_for(obj["spec"]["template"], spec, self.image(spec.image)),
                               replicas=spec.replicas, progressDeadlineSeconds=deadline, revisionHistoryLimit=limit)
            obj["metadata"]["annotations"] = {ro.CHANGE_CAUSE: cause, ro.ROLLBACK_OF: ""}
            return self.api.create(obj)
        if (dep.get("spec") or {}).get("paused"):
            raise InvalidInput(f"Deployment {DEPLOYMENT} is paused; resume it with `kubectl rollout resume"
                               f" deployment/{DEPLOYMENT} -n {self.api.namespace}`")
        if source is not None:
            patch = ro.undo_patch(dep, source, cause, rollback_of or 0, self.image)
        else:
            template = ro.template_for(dep["spec"]["template"], spec, self.image(spec.image))
            patch = ro.deploy_patch(dep, template, spec.replicas, cause, deadline, limit)
        return self.api.patch("Deployment", DEPLOYMENT, patch, JSON_PATCH)

    def _retire_stuck(self, dep: Obj | None, rss: list[Obj]) -> None:
        """Mark the current revision failed before a new rollout supersedes it unfinished."""
        cur = ro.current(dep, rss) if dep else None
        if dep is None or cur is None or cur is ro.serving(dep, rss) or ro.annotations(cur).get(ro.FAILED):
            return
        status = ro.rollout_status(dep)
        self.mark(cur, status.message if status.state == "failed" else "superseded before it became ready")

    def mark(self, rs: Obj, reason: str | None) -> None:
        """Record (or clear, with None) a revision's failure on its ReplicaSet."""
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) if reason else None
        ann = {ro.FAILED: reason[:500] if reason else None, ro.FINISHED_AT: when}
        self.api.patch("ReplicaSet", rs["metadata"]["name"], {"metadata": {"annotations": ann}}, MERGE_PATCH)

    # --- waiting ------------------------------------------------------------------------------
    def _observed(self, generation: int) -> tuple[Obj, Obj | None, list[Obj]] | None:
        dep, rss = self.objects()
        if dep is None:
            raise SandboxNotUp(self.sandbox_id)
        if ((dep.get("status") or {}).get("observedGeneration") or 0) < generation:
            return None
        return dep, ro.current(dep, rss), rss

    def _revision_after(self, generation: int, spec: DeploySpec, cause: str, rollback_of: int | None) -> Revision:
        """The revision the controller made (or re-used) for ``generation``."""
        def late() -> Exception:
            dep = self.api.read("Deployment", DEPLOYMENT) or {}
            return InfrastructureError(f"the Deployment controller did not pick up the change within 30s (namespace"
                                       f" {self.api.namespace}): {ro.describe_conditions(dep)}")

        dep, cur, rss = waits.poll(lambda: self._observed(generation), 30, self.poll_s, late)
        if cur is not None and ro.annotations(cur).get(ro.FAILED) and cur is not ro.serving(dep, rss):
            self.mark(cur, None)  # a template that failed before is being tried again
            dep, rss = self.objects()
        number = ro.revision_number(cur) if cur else 0
        return next((r for r in ro.history(dep, rss, self.image) if r.number == number),
                    Revision(number, spec, "progressing", time.time(), cause, rollback_of))

    def _wait(self, rev: Revision, unchanged: bool = False) -> Revision:
        """Until complete; a progress deadline, the kit's own deadline or an image the node
        can never get is a failed rollout. ``unchanged``: the spec already served (no new
        generation), so a serving revision is done even while its pods restart."""
        deadline = time.monotonic() + self.settings.rollout.progress_deadline_s + 15
        while True:
            dep, rss = self.objects()
            status = ro.rollout_status(dep or {})
            cur = ro.current(dep, rss) if dep else None
            if status.state == "complete" or (unchanged and cur is not None and cur is ro.serving(dep, rss)):
                return next(r for r in ro.history(dep, rss, self.image) if r.number == rev.number)
            pods = waits.pods_of(self.api, self.pod_selector(cur)) if dep else []
            if status.state == "failed" or time.monotonic() > deadline or \
                    waits.image_problem(pods, waits.PERMANENT_IMAGE_ERRORS):
                raise self._failed(dep or {}, rss, rev.number, status)
            time.sleep(self.poll_s)

    def _failed(self, dep: Obj, rss: list[Obj], number: int, status: ro.RolloutStatus) -> RolloutFailed:
        cur = ro.current(dep, rss)
        pods = waits.pods_of(self.api, self.pod_selector(cur))
        reason, logs = waits.diagnose(self.api, dep, pods)
        image = waits.image_problem(pods)
        if status.state != "failed" and not image:
            reason = (f"not ready within {self.settings.rollout.progress_deadline_s:.0f}s (progress deadline"
                      f" exceeded; {status.message}); {reason}")
        problem = f"{image}: {waits.IMAGE_FIX}" if image else waits.readyz_of(self.api, pods)
        if problem:
            reason = f"{problem}; {reason}"
        if cur is not None and cur is not ro.serving(dep, rss):
            self.mark(cur, reason)
        serve = ro.serving(dep, rss)
        return RolloutFailed(number, reason[:800], ro.revision_number(serve) if serve else None, logs)
