"""The rules both tiers share, written once: what a deploy means and how a rollout goes.

* **Spec resolution** (``resolve_spec``): the fields a deploy leaves out keep the serving
  revision's; the default index is the newest *dated* corpus snapshot's (``2026-11-01``;
  drafts, hotfixes, poisoned and quarantined snapshots are never a default); everything is
  validated, ``cpus`` included, before any tier creates anything.
* **Rollout rules** (``revisions``): a tier reads, off its engine, one ``RevisionFacts`` per
  revision; the states follow from those facts the way a Deployment controller decides them.
  The newest revision that ever took traffic serves and the older ones that took traffic are
  superseded; a revision that never did is failed when its replicas crashed, when a newer
  revision replaced it, or when its progress deadline passed, and progressing otherwise.
* **Undo** (``undo_target``): ``kubectl rollout undo`` semantics: a stuck or failed rollout goes
  back to what serves; otherwise the newest superseded revision with another spec; failed
  revisions are never targets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .records import CONFIG_KEYS, MODELS, DeploySpec, Revision, RolloutState
from .errors import ForeignImage, InvalidInput, InvalidReplicas, UnknownChoice

_DATED = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CPU_RANGE = (0.001, 64.0)


def is_dated(snapshot: str) -> bool:
    """Release snapshots are plain dates (``2026-11-01``); others are drafts, hotfixes,
    quarantined copies (``-q``) or poisoned."""
    return bool(_DATED.match(snapshot))


def newest_dated(snapshots: Iterable[str]) -> str:
    dated = sorted(s for s in snapshots if is_dated(s))
    if not dated:
        raise InvalidInput("no dated corpus snapshot in the sandbox; run `labkit sandbox reset`")
    return dated[-1]


def parse_cpus(value: Any) -> float:
    """Cores from ``0.5``, ``"0.5"`` or a Kubernetes quantity (``"500m"``), range-checked."""
    from kubernetes.utils.quantity import parse_quantity  # the kubernetes package costs ~0.6 s to import

    try:
        cores = float(parse_quantity(str(value).strip()))
    except (ValueError, TypeError) as e:
        raise InvalidInput(f"cpus must be a number of cores such as 0.5 or 500m, got {value!r}") from e
    low, high = CPU_RANGE
    if not low <= cores <= high:
        raise InvalidInput(f"cpus must be between {low:g} and {high:g} cores, got {value}")
    return cores


def cpu_quantity(cores: float) -> str:
    """``0.05`` -> ``50m``; ``2`` -> ``2`` (the Kubernetes form of a CPU limit)."""
    return str(int(cores)) if cores == int(cores) else f"{round(cores * 1000)}m"


def resolve_index(index: str, model: str, available: Iterable[str]) -> str:
    """``2026-11-01`` means the index of that snapshot built by ``model``."""
    names = sorted(available)
    if index in names:
        return index
    if f"{index}-{model}" in names:
        return f"{index}-{model}"
    raise UnknownChoice("index", index, names)


POOL_SLOT_QUOTA = 8
"""The most accelerator slots the provider account allows a sandbox (``Sandbox.provider_pool``)."""


def _count_in(value: Any, low: int, high: int) -> bool:
    """``value`` is an integer (not a bool) from ``low`` to ``high``."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def validate_pool_slots(slots: Any) -> int:
    """A pool size a caller may ask for: an integer from 1 to :data:`POOL_SLOT_QUOTA`."""
    if not _count_in(slots, 1, POOL_SLOT_QUOTA):
        raise InvalidInput(f"slots={slots!r}: the provider account allows 1 to {POOL_SLOT_QUOTA} slots",
                           fix="ask for an integer number of slots, e.g. sb.provider_pool(slots=4)")
    return slots


def validate_replicas(replicas: Any, high: int) -> int:
    if not _count_in(replicas, 1, high):
        raise InvalidReplicas(replicas, 1, high)
    return replicas


def is_image_of(image: str, repository: str) -> bool:
    """Whether ``image`` is a tag (or digest) of ``repository``, as it is built: a spec names the
    kit's image so, and the kube tier maps it to the cohort's registry (``manifests.registry_image``)."""
    ref = image.split("@")[0]
    return (ref.rsplit(":", 1)[0] if ":" in ref.split("/")[-1] else ref) == repository


def validate_image(image: str, repository: str) -> str:
    """``image`` if it is of ``repository`` (``is_image_of``), else ``ForeignImage``."""
    if not is_image_of(image, repository):
        raise ForeignImage(image, repository)
    return image


def validate_model(model: str) -> str:
    if model not in MODELS:
        raise UnknownChoice("model", model, MODELS)
    return model


@dataclass(frozen=True)
class SpecRequest:
    """What a ``deploy()`` call asked for; ``None`` keeps the serving revision's value."""

    model: str | None = None
    index: str | None = None
    image: str | None = None
    replicas: int | None = None
    config: tuple[tuple[str, Any], ...] = ()


def resolve_spec(request: SpecRequest, base: DeploySpec | None, *, indexes: Iterable[str],
                 snapshots: Iterable[str], default_image: str, max_replicas: int,
                 image_repository: str) -> DeploySpec:
    """The full spec of a new revision, validated (raises ``InvalidInput`` naming the choices).
    An asked-for image must be of ``image_repository``."""
    config = dict(request.config)
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise UnknownChoice("deploy setting", unknown[0], sorted(CONFIG_KEYS))
    model = validate_model(request.model or (base.model if base else "v1"))
    index = request.index
    if index is None:
        index = base.index if base and base.model == model else newest_dated(snapshots)
    index = resolve_index(index, model, indexes)
    replicas = request.replicas if request.replicas is not None else (base.replicas if base else 1)
    merged = dict(base.config) if base else {}
    merged.update({k: str(v) for k, v in config.items() if v is not None})
    merged = {k: v for k, v in merged.items() if v != ""}  # cpus="" lifts a limit
    if "cpus" in merged:
        parse_cpus(merged["cpus"])  # bad input fails before anything changes
    image = request.image or (base.image if base else default_image)
    if request.image:
        validate_image(request.image, image_repository)
    return DeploySpec(model, index, image,
                      validate_replicas(replicas, max_replicas), merged)


# --- rollout rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RevisionFacts:
    """What a tier's engine records of one revision (never a document anyone can write)."""

    number: int
    spec: DeploySpec
    created_at: float
    change_cause: str = ""
    rollback_of: int | None = None
    promoted_at: float | None = None
    """When the revision took user traffic (it was promoted / its rollout completed)."""
    finished_at: float | None = None
    """When its replicas stopped (retired, crashed, given up), if they did."""
    crashed: str = ""
    """Why its replicas died on their own before it took traffic (exit code, OOM kill)."""
    failure: str = ""
    """A failure the tier's controller recorded (a progress-deadline condition, say)."""
    ready: bool = False
    """Every replica is ready now, though it took no traffic (a canary awaiting promotion): the
    progress deadline no longer applies to it."""


SUPERSEDED_EARLY = "superseded before it became ready"
STOPPED_EARLY = "stopped before it became ready"


def revisions(facts: Iterable[RevisionFacts], now: float, deadline_s: float) -> list[Revision]:
    """The rollout history with each revision's state, oldest first."""
    ordered = sorted(facts, key=lambda f: f.number)
    promoted = [f for f in ordered if f.promoted_at is not None]
    serving = promoted[-1].number if promoted else None
    newest = ordered[-1].number if ordered else None
    out = []
    for f in ordered:
        state, reason = _state(f, serving, newest, now, deadline_s)
        out.append(Revision(f.number, f.spec, state, f.created_at, f.change_cause, f.rollback_of,
                            ready_at=f.promoted_at,
                            finished_at=f.promoted_at if state == "serving" else f.finished_at,
                            reason=reason))
    return out


def _state(f: RevisionFacts, serving: int | None, newest: int | None, now: float,
           deadline_s: float) -> tuple[str, str]:
    if f.number == serving:
        return "serving", ""
    if f.promoted_at is not None:
        return "superseded", ""
    if f.crashed or f.failure:
        return "failed", f.crashed or f.failure
    if newest is not None and f.number < newest:
        return "failed", SUPERSEDED_EARLY
    if f.finished_at is not None:  # its replicas were stopped before it took traffic
        return "failed", STOPPED_EARLY
    if f.ready:
        return "progressing", ""
    if now > f.created_at + deadline_s:
        return "failed", f"progress deadline exceeded (not ready within {deadline_s:g}s)"
    return "progressing", ""


def serving_revision(history: list[Revision]) -> Revision | None:
    live = [r for r in history if r.state == "serving"]
    return live[-1] if live else None


def rollout_state(history: list[Revision]) -> RolloutState:
    """``kubectl rollout status`` of the latest revision."""
    if not history:
        return "none"
    return {"serving": "complete", "failed": "failed"}.get(history[-1].state, "progressing")  # type: ignore[return-value]


def undo_target(history: list[Revision], to_revision: int | None = None) -> Revision:
    """The revision ``rollout undo [--to-revision N]`` returns to."""
    if to_revision is not None:
        ok = [r for r in history if r.number == to_revision and r.state != "failed"]
        if not ok:
            raise UnknownChoice("revision", to_revision, [r.number for r in history if r.state != "failed"])
        return ok[0]
    live = serving_revision(history)
    if history and history[-1].state in ("failed", "progressing") and live is not None:
        return live  # undo a stuck rollout: back to what serves
    older = [r for r in history if r.state == "superseded" and (live is None or r.spec != live.spec)]
    if not older:
        raise InvalidInput("no previous revision to roll back to; see `labkit rollout history`")
    return older[-1]


def retired_beyond_limit(history: list[Revision], limit: int) -> list[Revision]:
    """Finished revisions older than the newest ``limit`` of them (``revisionHistoryLimit``)."""
    finished = [r for r in history if r.state in ("superseded", "failed")]
    return finished[:-limit] if limit > 0 else finished
