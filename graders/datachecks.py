"""Checks of faults, data and foreign objects (registered into ``graders.checks.CHECKS``).

* ``fault_healed`` asks the fault catalog's steady-state probes (``sandbox.faults``);
* ``poison_quarantined`` runs the model API's own data jobs in the sandbox (``sb.run_job``) and
  searches through the front door (``lineage_traceable`` is a shared observer of
  ``sandbox.faults.probes``);
* ``foreign_untouched`` compares the objects in the sandbox's reach that the kit did not make
  (``Sandbox.foreign_objects``) with a baseline taken before the trainee's work ran.
"""

from __future__ import annotations

from typing import Any

from sandbox.client import ServiceClient, load_eval_set, load_queries
from sandbox.errors import InvalidInput
from sandbox.faults import probe_steady_state
from sandbox.faults.probes import json_job
from sandbox.observe import Observation, broken, holds

from .checks import register

POISONED_SNAPSHOT = "2026-11-15-poisoned"


@register("fault_healed")
def fault_healed(sb: Any, fault: str) -> Observation:
    """Every steady-state probe of ``fault`` (from the fault catalog) passes."""
    probes = list(probe_steady_state(sb, fault))
    bad = [p for p in probes if not p.ok]
    expected = f"all {len(probes)} steady-state probes of {fault} pass"
    details = {"probes": [{"name": p.name, "ok": p.ok, "observed": p.observed} for p in probes]}
    if not bad:
        return holds("fault_healed", f"{len(probes)}/{len(probes)} probes pass", expected, **details)
    observed = "; ".join(f"{p.name}: {p.observed} (want {p.expected})" for p in bad)
    hint = "; ".join(dict.fromkeys(p.hint for p in bad if p.hint)) or f"see `labkit fault describe {fault}`"
    return broken("fault_healed", observed, expected, hint, **details)


def _probe_queries(limit: int) -> list[str]:
    """Common on-call questions: the eval set's queries, then the baseline traffic."""
    seen = dict.fromkeys([i.query for i in load_eval_set()] + load_queries("baseline"))
    return list(seen)[:limit]


def _poison_served(sb: Any, doc_id: str, probes: int) -> tuple[bool, str]:
    client = ServiceClient(sb.endpoint)
    queries = _probe_queries(probes)
    hits = [q for q in queries if doc_id in [r["id"] for r in client.search(q, k=10).get("results", [])]]
    if hits:
        return False, (f"{doc_id} returned for {len(hits)}/{len(queries)} probe queries"
                       f" (e.g. '{hits[0][:50]}')")
    return True, f"{doc_id} returned for 0/{len(queries)} probe queries"


def _quarantine_recorded(sb: Any, doc_id: str) -> tuple[bool, str]:
    records, why = json_job(sb, ["quarantine-list", "--json"], "quarantine-list")
    if records is None:
        return False, f"quarantine list unreadable: {why}"
    ids = [r.get("doc_id") for r in records if isinstance(r, dict)]
    if doc_id in ids:
        return True, f"{doc_id} quarantined"
    return False, f"{doc_id} not in the quarantine list ({len(ids)} records)"


def _clean_copy_passes(sb: Any, doc_id: str) -> tuple[bool, str]:
    """The clean snapshot the quarantine wrote (without ``doc_id``) passes the gate."""
    records, why = json_job(sb, ["quarantine-list", "--json"], "quarantine-list")
    clean = [r.get("clean_snapshot") for r in records or [] if isinstance(r, dict) and r.get("doc_id") == doc_id]
    if not clean:
        return False, f"no clean snapshot recorded for {doc_id}" + (f" ({why})" if why else "")
    verdict, why = json_job(sb, ["validate-corpus", str(clean[-1]), "--json"], "validate-corpus")
    if verdict is None:
        return False, f"validate-corpus {clean[-1]} failed: {why}"
    if verdict.get("ok"):
        return True, f"clean snapshot {clean[-1]} passes the gate"
    return False, f"clean snapshot {clean[-1]} still fails the gate ({len(verdict.get('violations') or [])} violations)"


@register("poison_quarantined")
def poison_quarantined(sb: Any, doc_id: str = "rb-9001", snapshot: str = POISONED_SNAPSHOT,
                       probes: int = 60) -> Observation:
    """The poisoned document is never served, is quarantined, and the clean copy passes the gate.

    Partial credit: a third for each of the three.
    """
    parts = [_poison_served(sb, doc_id, probes), _quarantine_recorded(sb, doc_id),
             _clean_copy_passes(sb, doc_id)]
    observed = "; ".join(text for _, text in parts)
    expected = f"{doc_id} never served, quarantined, and the clean copy of {snapshot} passes validate-corpus"
    ok = [good for good, _ in parts]
    if all(ok):
        return holds("poison_quarantined", observed, expected)
    hints = [
        "rebuild the index from a clean snapshot and deploy it (sb.build_index(...), sb.deploy(index=...))",
        f"quarantine it: sb.run_job(['python', '-m', 'modelapi', 'quarantine', '--snapshot',"
        f" '{snapshot}', '--doc', '{doc_id}'], 'quarantine')",
        "run the gate on the clean copy the quarantine wrote: `python -m modelapi validate-corpus"
        f" {snapshot}-q --json` must print ok: true (quarantine every flagged document)",
    ]
    hint = "; ".join(h for h, good in zip(hints, ok, strict=True) if not good)
    return broken("poison_quarantined", observed, expected, hint, sum(ok) / len(ok),
                  served=ok[0], quarantined=ok[1], clean_copy_passes=ok[2])


# --- foreign objects ---------------------------------------------------------------------------


def foreign_snapshot(sb: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """Every object in the sandbox's reach that the kit did NOT make (``Sandbox.foreign_objects``):
    JSON-serialisable, so it can travel in nbgrader's ``resources``."""
    return sb.foreign_objects()


def foreign_changes(baseline: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What happened to foreign objects since ``baseline``: removed, stopped, restarted."""
    changes = []
    for kind in sorted(baseline):
        for oid, before in (baseline.get(kind) or {}).items():
            after = (now.get(kind) or {}).get(oid)
            what = f"{kind[:-1]} {before.get('name', oid[:12])}"
            if after is None:
                changes.append(f"{what} removed")
            elif kind == "containers" and before["status"] == "running" and after["status"] != "running":
                changes.append(f"{what} stopped ({after['status']})")
            elif kind == "containers" and (after.get("started") != before.get("started")
                                           or after.get("restarts", 0) > before.get("restarts", 0)):
                changes.append(f"{what} restarted")
    return changes


@register("foreign_untouched")
def foreign_untouched(sb: Any, baseline: dict[str, Any] | None = None) -> Observation:
    """No container, network or volume the kit did not make was removed, stopped or restarted."""
    if baseline is None:
        raise InvalidInput("foreign_untouched needs baseline=graders.foreign_snapshot(sb) taken"
                           " before the work (in grading: the ForeignSnapshot preprocessor)")
    expected = "every object not labelled managed-by=labkit as it was"
    changes = foreign_changes(baseline, foreign_snapshot(sb))
    total = sum(len(objs or {}) for objs in baseline.values())
    if not changes:
        return holds("foreign_untouched", f"{total} foreign objects untouched", expected)
    return broken("foreign_untouched", "; ".join(changes[:5]), expected,
                  "never remove, stop or restart what the kit did not label: clean up with"
                  " `labkit sandbox down` (selects by label) instead of docker rm/prune",
                  changes=changes)
