"""Governance sub-commands of ``python -m modelapi`` (run as jobs on the data volume).

* ``validate-corpus SNAPSHOT [--json]`` - the validation gate (exit 1 on violations unless --json)
* ``approve-snapshot SNAPSHOT --approver NAME [--note TEXT] [--json]`` - an ``approve`` entry of the
  approval chain (refused if the gate fails or no approver is named; the kit names who made the call)
* ``revoke-snapshot SNAPSHOT --approver NAME [--reason TEXT] [--json]`` - a ``revoke`` entry
* ``approvals [--json]`` - the approval chain, replayed, and whether it verifies
* ``lineage --index NAME [--json]`` - can the index be traced to an approved snapshot?
* ``quarantine --snapshot S --doc ID [--doc ID ...] [--out NAME] [--json]``
* ``quarantine-list [--json]``
* ``add-snapshot --name NAME``, ``make-adhoc-snapshot --base S --name NAME``,
  ``tamper-index --name N --mode corrupt|restore``,
  ``remove-artifacts [--snapshot S ...] [--index I ...]`` - used by the fault catalog
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from . import chain, evidcli
from . import governance as gov


def _print(payload: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(payload, indent=1))
    elif isinstance(payload, dict):
        for key, value in payload.items():
            print(f"{key}: {value}")
    else:
        for item in payload:
            print(item)


def _validate(args: argparse.Namespace) -> int:
    report = gov.validate_snapshot(args.data_dir, args.snapshot)
    _print(report.to_dict(), args.json)
    return 0 if (report.ok or args.json) else 1


def _approve(args: argparse.Namespace) -> int:
    try:
        if args.command == "revoke-snapshot":
            out = gov.revoke(args.data_dir, args.snapshot, args.approver, args.reason)
        else:
            out = gov.approve(args.data_dir, args.snapshot, args.approver, args.note)
    except gov.CorpusError as e:
        if not args.json:
            raise
        key = "revoked" if args.command == "revoke-snapshot" else "approved"
        out = {"snapshot": args.snapshot, key: False, "reason": str(e)}
    _print(out, args.json)
    return 0


def _approvals(args: argparse.Namespace) -> int:
    entries = gov.approval_log(args.data_dir)
    out = {"entries": entries, "in_force": gov.approved(args.data_dir), "verify": chain.verify(entries)}
    _print(out if args.json else [f"{e['seq']} {e['kind']} {e.get('snapshot')} by {e.get('approver')}"
                                  for e in entries], args.json)
    return 0


def _lineage(args: argparse.Namespace) -> int:
    _print(gov.lineage(args.data_dir, args.index), args.json)
    return 0


def _quarantine(args: argparse.Namespace) -> int:
    _print(gov.quarantine(args.data_dir, args.snapshot, args.doc, args.out, args.reason), args.json)
    return 0


def _quarantine_list(args: argparse.Namespace) -> int:
    records = gov.quarantine_list(args.data_dir)
    _print(records if args.json else [f"{r['doc_id']} from {r['snapshot']}: {r['reason']}" for r in records],
           args.json)
    return 0


def register(sub: argparse._SubParsersAction, data_dir: argparse.ArgumentParser) -> None:
    """Add the governance commands to ``python -m modelapi``."""
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON")
    parents = [data_dir, as_json]

    p = sub.add_parser("validate-corpus", parents=parents, help="run the validation gate")
    p.add_argument("snapshot")
    p.set_defaults(func=_validate)
    p = sub.add_parser("approve-snapshot", parents=parents, help="approve a snapshot that passes the gate")
    p.add_argument("snapshot")
    p.add_argument("--approver", default="", help="who approves (the kit passes who made the call)")
    p.add_argument("--note", default="")
    p.set_defaults(func=_approve)
    p = sub.add_parser("revoke-snapshot", parents=parents, help="withdraw a snapshot's approval")
    p.add_argument("snapshot")
    p.add_argument("--approver", default="", help="who revokes (the kit passes who made the call)")
    p.add_argument("--reason", default="")
    p.set_defaults(func=_approve)
    p = sub.add_parser("approvals", parents=parents, help="the approval chain and whether it verifies")
    p.set_defaults(func=_approvals)
    p = sub.add_parser("lineage", parents=parents, help="trace an index to an approved snapshot")
    p.add_argument("--index", required=True)
    p.set_defaults(func=_lineage)
    p = sub.add_parser("quarantine", parents=parents, help="remove documents into quarantine")
    p.add_argument("--snapshot", required=True)
    p.add_argument("--doc", action="append", required=True)
    p.add_argument("--out", default=None)
    p.add_argument("--reason", default="failed the validation gate")
    p.set_defaults(func=_quarantine)
    p = sub.add_parser("quarantine-list", parents=parents, help="list quarantined documents")
    p.set_defaults(func=_quarantine_list)
    _register_fault_ops(sub, parents)
    evidcli.register(sub, parents, _print)


def _register_fault_ops(sub: argparse._SubParsersAction, parents: list) -> None:
    p = sub.add_parser("add-snapshot", parents=parents, help="install a packaged draft snapshot")
    p.add_argument("--name", required=True)
    p.set_defaults(func=lambda a: _print(gov.add_packaged_snapshot(a.data_dir, a.name), True) or 0)
    p = sub.add_parser("make-adhoc-snapshot", parents=parents, help="an unapproved hotfix copy")
    p.add_argument("--base", required=True)
    p.add_argument("--name", required=True)
    p.set_defaults(func=lambda a: _print(gov.make_adhoc_snapshot(a.data_dir, a.base, a.name), True) or 0)
    p = sub.add_parser("tamper-index", parents=parents, help="corrupt or restore an index's vectors")
    p.add_argument("--name", required=True)
    p.add_argument("--mode", required=True, choices=["corrupt", "restore"])
    p.set_defaults(func=lambda a: _print(gov.tamper_index(a.data_dir, a.name, a.mode), True) or 0)
    p = sub.add_parser("remove-artifacts", parents=parents, help="remove drill snapshots and indexes")
    p.add_argument("--snapshot", action="append", default=[])
    p.add_argument("--index", action="append", default=[])
    p.set_defaults(func=lambda a: _print(gov.remove_artifacts(a.data_dir, a.snapshot, a.index), True) or 0)


#: Who approves what the image ships: its build (the kit's release of the image), on record.
SEED_APPROVER = "labkit image build (packaged snapshot)"


def approve_seeded(data_dir, snapshots: list[str]) -> None:
    """The image's seed approves the snapshots it ships (they pass the gate)."""
    for snapshot in snapshots:
        gov.approve(data_dir, snapshot, approver=SEED_APPROVER, note="shipped with the model API image")
