"""The rollout history of a kube sandbox, read off its Deployments and ReplicaSets (pure).

One ``RevisionFacts`` per revision number the ReplicaSets carry (``labkit.dev/revision``); a
revision has one ReplicaSet per Deployment that ran it: its canary's (``modelapi-canary-r<N>``,
gone once promoted) and/or the main Deployment's. The facts come from the objects only:

* number, spec, change cause, ``rollback-of``: the pod template's labels and annotations;
* created: the earliest ``creationTimestamp`` of its ReplicaSets (a promoted template keeps
  its canary's in ``labkit.dev/canary-created``);
* promoted (took user traffic): ``labkit.dev/promoted-at``, stamped on the main Deployment's
  ReplicaSet when the kit saw that rollout complete; without a stamp, the main Deployment's
  current ReplicaSet once its rollout settled (or while a ready canary is being promoted onto
  it), and any older ReplicaSet of the main Deployment that did not fail (it served once);
* failure: ``labkit.dev/failed-reason`` (the kit's record), or the owning Deployment's
  ``Progressing=False (ProgressDeadlineExceeded)`` while it is that Deployment's current one;
* finished: ``labkit.dev/finished-at``, stamped when the kit stopped or superseded it.

The states follow from these facts by ``sandbox.spec.revisions``, the rules of both tiers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..spec import RevisionFacts
from .rollout import (
    CANARY_CREATED,
    CAUSE,
    FAILED,
    FINISHED_AT,
    MAIN,
    PROMOTED_AT,
    ROLLBACK_OF,
    Obj,
    annotations,
    canary_name,
    condition,
    current_rs,
    meta,
    owner_of,
    parse_time,
    revision_of,
    rollout_status,
    settled,
    spec_from_template,
    template_of,
)


@dataclass
class Objects:
    """The model API's Deployments (main and canaries) and ReplicaSets of one sandbox."""

    deployments: list[Obj] = field(default_factory=list)
    replicasets: list[Obj] = field(default_factory=list)

    def deployment(self, name: str) -> Obj | None:
        return next((d for d in self.deployments if meta(d).get("name") == name), None)

    @property
    def main(self) -> Obj | None:
        return self.deployment(MAIN)

    def canary(self, number: int) -> Obj | None:
        return self.deployment(canary_name(number))

    def current(self, dep: Obj | None) -> Obj | None:
        return current_rs(dep, self.replicasets) if dep is not None else None

    def rss_of(self, number: int, dep: Obj | None = None) -> list[Obj]:
        """ReplicaSets of revision ``number`` (of ``dep`` only, if given) whose owner exists."""
        owners = [dep] if dep is not None else self.deployments
        return [rs for rs in self.replicasets if revision_of(rs) == number and owner_of(rs, owners) is not None]

    def main_rs(self, number: int) -> Obj | None:
        """The main Deployment's ReplicaSet of ``number``: its current one if that runs it (a
        template changed behind the kit's back, ``kubectl set image``, keeps the number), else
        the newest."""
        main = self.main
        found = self.rss_of(number, main) if main is not None else []
        current = self.current(main)
        if current is not None and any(rs is current for rs in found):
            return current
        return max(found, key=lambda rs: meta(rs).get("creationTimestamp") or "", default=None)

    def numbers(self) -> list[int]:
        """Every revision number the objects know (ReplicaSets and Deployment templates)."""
        known = {n for rs in self.replicasets if (n := revision_of(rs)) is not None}
        known |= {n for d in self.deployments if (n := revision_of(d)) is not None}
        return sorted(known)

    def next_number(self) -> int:
        return max(self.numbers(), default=0) + 1


def revision_facts(objs: Objects, resolve: Callable[[str], str] = str) -> list[RevisionFacts]:
    """One ``RevisionFacts`` per revision that still has a ReplicaSet, oldest first."""
    numbers = sorted({n for rs in objs.replicasets if (n := revision_of(rs)) is not None})
    out = []
    for number in numbers:
        rss = objs.rss_of(number)
        if rss:
            out.append(_facts(objs, number, rss, resolve))
    return out


def _facts(objs: Objects, number: int, rss: list[Obj], resolve: Callable[[str], str]) -> RevisionFacts:
    main = objs.main
    main_rs = objs.main_rs(number)
    source = main_rs or rss[0]
    template = template_of(source)
    ann = annotations(template)
    is_main_current = main_rs is not None and main_rs is objs.current(main)
    replicas = (main.get("spec") or {}).get("replicas") if is_main_current and main is not None else None
    created = [t for rs in rss if (t := parse_time(meta(rs).get("creationTimestamp"))) is not None]
    if parse_time(ann.get(CANARY_CREATED)) is not None:
        created.append(parse_time(ann[CANARY_CREATED]) or 0.0)
    failed = next((annotations(rs)[FAILED] for rs in rss if annotations(rs).get(FAILED)), "")
    finished = [t for rs in rss if (t := parse_time(annotations(rs).get(FINISHED_AT))) is not None]
    back = ann.get(ROLLBACK_OF, "")
    return RevisionFacts(
        number=number,
        spec=spec_from_template(template, replicas, resolve),
        created_at=min(created, default=0.0),
        change_cause=ann.get(CAUSE, ""),
        rollback_of=int(back) if back.isdigit() else None,
        promoted_at=_promoted_at(objs, number, main_rs, is_main_current, bool(failed)),
        finished_at=max(finished, default=None),
        failure=failed or _deadline_failure(objs, rss),
        ready=not failed and _owner_rolled_out(objs, rss),
    )


def _promoted_at(objs: Objects, number: int, main_rs: Obj | None, is_current: bool, failed: bool) -> float | None:
    if main_rs is None:
        return None
    stamps = [t for rs in objs.rss_of(number, objs.main) if (t := parse_time(annotations(rs).get(PROMOTED_AT)))]
    if stamps:
        return min(stamps)
    if failed:
        return None
    created = parse_time(meta(main_rs).get("creationTimestamp")) or 0.0
    main = objs.main or {}
    if not is_current:
        return created  # an older ReplicaSet of the main Deployment that did not fail: it served
    if settled(main):
        return parse_time((condition(main, "Progressing") or {}).get("lastUpdateTime")) or created
    promoting = CANARY_CREATED in annotations(template_of(main_rs)) and rollout_status(main).state != "failed"
    return created if promoting else None


def _owner_rolled_out(objs: Objects, rss: list[Obj]) -> bool:
    """The owning Deployment finished rolling this ReplicaSet out (every replica available)."""
    for rs in rss:
        owner = owner_of(rs, objs.deployments)
        if owner is not None and objs.current(owner) is rs and rollout_status(owner).state == "complete":
            return True
    return False


def _deadline_failure(objs: Objects, rss: list[Obj]) -> str:
    """The owning Deployment's progress-deadline verdict on its current ReplicaSet."""
    for rs in rss:
        owner = owner_of(rs, objs.deployments)
        if owner is not None and objs.current(owner) is rs:
            status = rollout_status(owner)
            if status.state == "failed":
                return status.message
    return ""
