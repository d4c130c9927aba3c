"""Command line of the modelapi image: ``python -m modelapi COMMAND``.

Commands:

* ``serve`` (default) - the model API (uvicorn on ``$PORT``, default 8080);
* ``gateway`` - the TCP front door (``$GATEWAY_PORT``, default 8000);
* ``provider`` - the reranker service (``$PORT``, default 8081);
* ``build-index --model v1 --corpus 2026-11-01 [--name N] [--overwrite]``;
* ``list-indexes [--json]`` and ``list-snapshots``;
* governance commands (validation gate, approvals, lineage, quarantine): see ``govcli``;
* ``seed --data-dir DIR`` - install the packaged corpora, eval and query sets
  into DIR and build every snapshot x model index with a fixed ``built_at``
  (the snapshot date at 00:00Z), so seeding is reproducible.

``--data-dir`` defaults to ``$DATA_DIR`` or ``/data``. Exit status: 0 on
success, 1 on a data error (message on stderr), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from . import configure_logging, govcli
from .corpus import CorpusError, list_snapshots, load_eval, snapshot_path
from .embedding import MODELS, UnknownModelError, get_model
from .index import IndexExists, IndexLoadError, build_index, list_indexes, verify_index

PACKAGE_DATA = Path(__file__).resolve().parent / "data"
log = logging.getLogger("modelapi")


def _default_data_dir() -> Path:
    """Return ``$DATA_DIR`` or ``/data``."""
    return Path(os.environ.get("DATA_DIR", "").strip() or "/data")


def _run_uvicorn(app: Any, port: int, log_level: str) -> None:
    """Serve an ASGI app on ``0.0.0.0:port`` (uvloop/httptools when installed)."""
    import uvicorn

    uvicorn.run(
        app,
        host="0.0.0.0",
        port=port,
        access_log=False,  # the app logs one JSON line per request itself
        log_config=None,  # keep the JSON logging set up by configure_logging
        log_level=log_level.lower(),
        timeout_graceful_shutdown=5,
    )


def _cmd_serve(args: argparse.Namespace) -> int:
    """Run the model API; ``MODELAPI_DEFECT=crash-on-start`` exits 3 instead."""
    from .app import AppConfig, create_app

    config = AppConfig.from_env()
    configure_logging(config.log_level)
    if config.defect == "crash-on-start":
        log.critical("crash-on-start defect enabled (MODELAPI_DEFECT); exiting with status 3")
        return 3
    _run_uvicorn(create_app(config), config.port, config.log_level)
    return 0


def _cmd_gateway(args: argparse.Namespace) -> int:
    """Run the TCP gateway."""
    from .gateway import serve

    serve()
    return 0


def _cmd_provider(args: argparse.Namespace) -> int:
    """Run the reranker provider."""
    from .provider import ProviderConfig, create_provider_app

    config = ProviderConfig.from_env()
    configure_logging(config.log_level)
    _run_uvicorn(create_provider_app(config), config.port, config.log_level)
    return 0


def _cmd_build_index(args: argparse.Namespace) -> int:
    """Build one index from ``$DATA_DIR/corpus/<snapshot>.jsonl``."""
    data_dir: Path = args.data_dir
    manifest = build_index(
        args.model,
        snapshot_path(data_dir / "corpus", args.corpus),
        data_dir / "indexes",
        name=args.name,
        built_at=args.built_at,
        overwrite=args.overwrite,
    )
    print(json.dumps(manifest.to_dict(), indent=2, sort_keys=True))
    return 0


def _cmd_list_indexes(args: argparse.Namespace) -> int:
    """Print the indexes under ``$DATA_DIR/indexes`` (table or JSON)."""
    entries = list_indexes(args.data_dir / "indexes")
    if args.json:
        print(json.dumps(entries, indent=2, sort_keys=True))
        return 0
    print(f"{'NAME':<24} {'MODEL':<6} {'DIM':>4} {'SNAPSHOT':<12} {'DOCS':>5} {'BUILT':<21} STATUS")
    for e in entries:
        if e["status"] == "ok":
            print(
                f"{e['name']:<24} {e['model_version']:<6} {e['dimension']:>4} "
                f"{e['corpus_snapshot']:<12} {e['doc_count']:>5} {e['built_at']:<21} ok"
            )
        else:
            blank = f"{'-':<6} {'-':>4} {'-':<12} {'-':>5} {'-':<21}"
            print(f"{e['name']:<24} {blank} {e['reason']}: {e['error']}")
    return 0


def eval_indexes(data_dir: Path, names: Sequence[str], k: int = 5) -> dict[str, dict[str, Any]]:
    """recall@k of each index on the eval set, searched with its own manifest's model.

    Offline (no service, no reranker), so candidate and baseline indexes are measured the same
    way. An index that does not verify gets ``recall: None`` and the reason.
    """
    cases = load_eval(data_dir / "eval.jsonl")
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            index = verify_index(data_dir / "indexes" / name)
        except IndexLoadError as exc:
            out[name] = {"recall": None, "reason": str(exc)[:200]}
            continue
        model = index.manifest.model_version
        vectors = get_model(model).embed([c.query for c in cases])
        hits = sum(any(doc.id in case.expected for doc, _ in index.search(vec, k))
                   for case, vec in zip(cases, vectors, strict=True))
        out[name] = {"recall": round(hits / len(cases), 4), "model": model, "k": k, "queries": len(cases)}
    return out


def _cmd_eval_index(args: argparse.Namespace) -> int:
    """Print recall@k of each named index as JSON."""
    print(json.dumps(eval_indexes(args.data_dir, args.names, args.k), sort_keys=True))
    return 0


def _cmd_list_snapshots(args: argparse.Namespace) -> int:
    """Print the snapshot names under ``$DATA_DIR/corpus``, oldest first."""
    for name in list_snapshots(args.data_dir / "corpus"):
        print(name)
    return 0


def _snapshot_midnight(name: str) -> datetime:
    """Return 00:00Z of the date a snapshot is named after."""
    try:
        day = date.fromisoformat(name)
    except ValueError:
        raise CorpusError(f"snapshot {name!r} is not named after a date (YYYY-MM-DD)") from None
    return datetime.combine(day, time(0, 0), tzinfo=UTC)


def _copy_package_data(src: Path, dest: Path) -> list[str]:
    """Copy corpora, eval set and query sets from ``src`` into ``dest``."""
    (dest / "corpus").mkdir(parents=True, exist_ok=True)
    snapshots = list_snapshots(src / "corpus")
    if not snapshots:
        raise CorpusError(f"no corpus snapshots found in {src / 'corpus'}")
    for name in snapshots:
        shutil.copyfile(snapshot_path(src / "corpus", name), snapshot_path(dest / "corpus", name))
    if (src / "eval.jsonl").is_file():
        shutil.copyfile(src / "eval.jsonl", dest / "eval.jsonl")
    if (src / "queries").is_dir():
        shutil.copytree(src / "queries", dest / "queries", dirs_exist_ok=True)
    return snapshots


def seed(data_dir: Path, source: Path = PACKAGE_DATA) -> list[str]:
    """Populate ``data_dir`` from packaged data and build all indexes; return their names."""
    snapshots = _copy_package_data(source, data_dir)
    built = []
    for snapshot in snapshots:
        for model in sorted(MODELS):
            manifest = build_index(
                model,
                snapshot_path(data_dir / "corpus", snapshot),
                data_dir / "indexes",
                built_at=_snapshot_midnight(snapshot),
                overwrite=True,
            )
            built.append(manifest.index_version)
    (data_dir / "state").mkdir(parents=True, exist_ok=True)
    govcli.approve_seeded(data_dir, snapshots)
    return built


def _cmd_seed(args: argparse.Namespace) -> int:
    """Seed a data directory (used by the image build)."""
    built = seed(args.data_dir, Path(args.source) if args.source else PACKAGE_DATA)
    print(json.dumps({"data_dir": str(args.data_dir), "indexes": built}, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m modelapi``."""
    parser = argparse.ArgumentParser(prog="modelapi", description="labkit toy model API")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    data_dir = argparse.ArgumentParser(add_help=False)
    data_dir.add_argument("--data-dir", type=Path, default=None, help="default: $DATA_DIR or /data")

    sub.add_parser("serve", help="run the model API (default)").set_defaults(func=_cmd_serve)
    sub.add_parser("gateway", help="run the TCP gateway").set_defaults(func=_cmd_gateway)
    sub.add_parser("provider", help="run the reranker provider").set_defaults(func=_cmd_provider)

    p = sub.add_parser("build-index", parents=[data_dir], help="build an index from a snapshot")
    p.add_argument("--model", required=True, choices=sorted(MODELS))
    p.add_argument("--corpus", required=True, metavar="SNAPSHOT", help="e.g. 2026-11-01")
    p.add_argument("--name", default=None, help="index name (default SNAPSHOT-MODEL)")
    p.add_argument("--built-at", default=None, help="ISO-8601 UTC timestamp (default now)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing index")
    p.set_defaults(func=_cmd_build_index)

    p = sub.add_parser("list-indexes", parents=[data_dir], help="list indexes and their health")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_list_indexes)

    p = sub.add_parser("eval-index", parents=[data_dir], help="recall@k of indexes on the eval set (JSON)")
    p.add_argument("names", nargs="+", metavar="INDEX")
    p.add_argument("--k", type=int, default=5)
    p.set_defaults(func=_cmd_eval_index)

    p = sub.add_parser("list-snapshots", parents=[data_dir], help="list corpus snapshots")
    p.set_defaults(func=_cmd_list_snapshots)

    p = sub.add_parser(
        "seed", parents=[data_dir], help="install packaged data and build all indexes"
    )
    p.add_argument("--source", default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_seed)
    govcli.register(sub, data_dir)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; return the exit status."""
    args = build_parser().parse_args(argv)
    if args.command is None:
        args = build_parser().parse_args(["serve"])
    if getattr(args, "data_dir", "unset") is None:
        args.data_dir = _default_data_dir()
    try:
        return int(args.func(args))
    except (CorpusError, UnknownModelError, IndexExists, ValueError) as exc:
        print(f"modelapi {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
