"""The evidence ledger: what mentors, approvers and reviewers saw, append-only.

The gradebook holds what the sandbox and the rubric said. The ledger holds the evidence the
plan asks for beyond the sandbox: mentor sessions (and their structure), goals and their
outcome, SBI feedback, approvals of changes, production work, runbooks a mentor accepted,
escalation decisions scored against the rubric, and first hypotheses of reviewed incidents.

Every entry records who recorded it and when (``recorded_by``, ``recorded_at``), when the
thing happened (``at``), the trainee it is about, its ``kind`` and the kind's fields. Entries
are never changed or deleted: the table refuses ``UPDATE`` and ``DELETE`` (a trigger on SQLite
and PostgreSQL), and the API has no such operation. A correction is a new entry that names the
entry it ``supersedes``; readers see the newest entry of each chain (:meth:`Ledger.current`),
and a ``void`` correction withdraws one.

Storage: SQLite ``evidence.db`` beside the gradebook by default; the gradebook's own database
when the gradebook is on PostgreSQL (:func:`ledger_url`). SQLAlchemy Core, which nbgrader
already brings.

    from labkit.ledger import Ledger
    with Ledger.open("sqlite:///labs/evidence.db") as ledger:
        ledger.add("session", trainee="alice", recorded_by="maria", at="2027-01-12T10:00:00+00:00",
                   mentor="maria", structure="shadowing", minutes=45, topic="on-call shift")
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sandbox.errors import InfrastructureError, InvalidInput, UnknownChoice
from sandbox.faults.catalog import INCIDENT_CLASSES

from .plan import MENTORSHIP_STRUCTURES

TABLE = "labkit_evidence"
MODES = ("shadowed", "supervised", "owned")
"""Production work: watched the mentor do it, did it under a named supervisor, owned it."""
OUTCOMES = ("succeeded", "failed", "rolled-back")
GOAL_OUTCOMES = ("met", "partly-met", "missed", "dropped")
RUNBOOK_ACTIONS = ("new", "improved")


@dataclass(frozen=True)
class Kind:
    """One kind of ledger entry: its required and optional fields, and what it is for."""

    id: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    help: str = ""
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)


KINDS: dict[str, Kind] = {k.id: k for k in (
    Kind("session", ("mentor", "structure", "minutes"), ("topic", "notes"),
         "A mentor session; structure is one of the plan's five.", {"structure": MENTORSHIP_STRUCTURES}),
    Kind("goal", ("capability", "text", "due"), ("kpi", "level"),
         "A written goal tied to a capability (level, KPI) and a due date."),
    Kind("goal-outcome", ("goal", "outcome"), ("evidence",),
         "The outcome of a goal (goal = the goal entry's id).", {"outcome": GOAL_OUTCOMES}),
    Kind("feedback", ("situation", "behaviour", "impact"), ("follow_up",),
         "Situation-Behaviour-Impact feedback to the trainee."),
    Kind("approval", ("change_id", "approver"), ("notes",),
         "Approval of the trainee's change; the approver is never its author."),
    Kind("production", ("change_id", "what", "reviewer", "mode", "capability"),
         ("rollback_plan", "outcome", "incident_class", "service"),
         "Production work: a ticket or change, what was done, who reviewed it, and how owned.",
         {"mode": MODES, "outcome": OUTCOMES}),
    Kind("runbook", ("runbook", "action", "accepted_by"), ("capability", "review"),
         "A runbook the trainee wrote or improved and a mentor accepted.", {"action": RUNBOOK_ACTIONS}),
    Kind("escalation", ("source", "point", "escalate", "to", "severity", "rubric"), ("minutes", "notes"),
         "One escalation decision and the rubric it is scored against (escalate, to, severity,"
         " within_minutes)."),
    Kind("triage", ("source", "hypothesis_class"), ("hypothesis", "expected_class", "notes"),
         "The first hypothesis of a game-day or reviewed incident (source = incident id); it"
         " counts if stated before the incident's first mitigation."),
)}
RUBRIC_FIELDS = ("escalate", "to", "severity", "within_minutes")
BOOLEAN = {"yes": True, "true": True, "no": False, "false": False}


@dataclass(frozen=True)
class Entry:
    """One ledger entry as stored."""

    id: int
    kind: str
    trainee: str
    at: dt.datetime
    recorded_by: str
    recorded_at: dt.datetime
    data: dict[str, Any]
    supersedes: int | None = None
    void: bool = False

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "trainee": self.trainee, "at": self.at.isoformat(),
                "recorded_by": self.recorded_by, "recorded_at": self.recorded_at.isoformat(),
                "supersedes": self.supersedes, "void": self.void, **self.data}


class LedgerError(InfrastructureError):
    """The ledger's database cannot be used."""


def ledger_url(gradebook_url: str) -> str:
    """Where the ledger lives: the gradebook's database if PostgreSQL, else ``evidence.db``
    beside a SQLite gradebook."""
    url = sa.engine.make_url(gradebook_url)
    if url.get_backend_name() == "postgresql":
        return gradebook_url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return f"sqlite:///{Path(url.database).with_name('evidence.db')}"
    return "sqlite:///evidence.db"


def _metadata() -> tuple[sa.MetaData, sa.Table]:
    md = sa.MetaData()
    table = sa.Table(
        TABLE, md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False, index=True),
        sa.Column("trainee", sa.String(128), nullable=False, index=True),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_at", sa.String(40), nullable=False),
        sa.Column("supersedes", sa.Integer, sa.ForeignKey(f"{TABLE}.id"), nullable=True),
        sa.Column("void", sa.Boolean, nullable=False, default=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    return md, table


_GUARDS = {
    "sqlite": [f"CREATE TRIGGER IF NOT EXISTS {TABLE}_no_{op.lower()} BEFORE {op} ON {TABLE} "
               f"BEGIN SELECT RAISE(ABORT, 'the evidence ledger is append-only'); END"
               for op in ("UPDATE", "DELETE")],
    "postgresql": [
        f"CREATE OR REPLACE FUNCTION {TABLE}_append_only() RETURNS trigger AS $$ BEGIN "
        f"RAISE EXCEPTION 'the evidence ledger is append-only'; END; $$ LANGUAGE plpgsql",
        f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}",
        f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
        f"FOR EACH ROW EXECUTE FUNCTION {TABLE}_append_only()",
    ],
}


def _when(value: str | dt.datetime | dt.date | None, what: str) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, dt.date):
        when = dt.datetime(value.year, value.month, value.day)
    else:
        try:
            when = dt.datetime.fromisoformat(str(value))
        except ValueError as e:
            raise InvalidInput(f"{what} {value!r} is not an ISO date or time (e.g. 2027-01-12T10:00:00+00:00)") from e
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def validate(kind: str, trainee: str, recorded_by: str, data: dict[str, Any]) -> dict[str, Any]:
    """The entry's fields, checked: every required field present, choices valid, approver
    and acceptor not the trainee. Raises naming the missing field or the valid choices."""
    spec = KINDS.get(kind)
    if spec is None:
        raise UnknownChoice("ledger entry kind", kind, sorted(KINDS))
    for name, value in (("trainee", trainee), ("recorded_by", recorded_by)):
        if not str(value or "").strip():
            raise InvalidInput(f"ledger entry {kind!r} refused: missing required field {name!r}")
    clean = {k: v for k, v in data.items() if v is not None and v != ""}
    for name in spec.required:
        if name not in clean:
            raise InvalidInput(f"ledger entry {kind!r} refused: missing required field {name!r} "
                               f"(required: {', '.join(spec.required)})")
    unknown = sorted(set(clean) - set(spec.required) - set(spec.optional))
    if unknown:
        raise UnknownChoice(f"field of a {kind!r} entry", unknown[0], spec.required + spec.optional)
    for name, valid in spec.choices.items():
        if name in clean and clean[name] not in valid:
            raise UnknownChoice(name.replace("_", " "), clean[name], valid)
    for role in ("approver", "accepted_by", "reviewer"):
        if role in clean and str(clean[role]) == trainee:
            raise InvalidInput(f"ledger entry {kind!r} refused: {role} {trainee!r} is the trainee"
                               " (approval and review come from someone else)")
    if kind == "escalation":
        missing = [f for f in RUBRIC_FIELDS if f not in (clean["rubric"] or {})]
        if missing:
            raise InvalidInput(f"ledger entry 'escalation' refused: missing required field 'rubric.{missing[0]}'")
    if kind == "session":
        clean["minutes"] = float(clean["minutes"])
    return clean


class Ledger:
    """An append-only store of evidence entries (see the module docstring)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._md, self.table = _metadata()

    @classmethod
    def open(cls, url: str) -> Ledger:
        """Open (creating the table and its append-only guard if needed) the ledger at ``url``."""
        try:
            engine = sa.create_engine(url)
            ledger = cls(engine)
            ledger._md.create_all(engine)
            with engine.begin() as conn:
                for stmt in _GUARDS.get(engine.dialect.name, []):
                    conn.execute(sa.text(stmt))
        except sa.exc.SQLAlchemyError as e:
            raise LedgerError(f"cannot open the evidence ledger at {url}: {e.__class__.__name__}: {e}",
                              fix="check the database URL and that the database server answers") from e
        return ledger

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.engine.dispose()

    def add(self, kind: str, trainee: str, recorded_by: str, at: str | dt.datetime | None = None,
            supersedes: int | None = None, void: bool = False, **data: Any) -> Entry:
        """Append one entry; returns it with its id. ``supersedes`` names the entry it corrects."""
        if void and supersedes is None:
            raise InvalidInput("a void entry withdraws another one: name it with supersedes")
        if supersedes is not None:
            old = self.get(int(supersedes))
            if old.kind != kind or old.trainee != trainee:
                raise InvalidInput(f"entry {supersedes} is a {old.kind!r} entry of {old.trainee!r}; a correction"
                                   " keeps the kind and the trainee of the entry it supersedes")
        clean = validate(kind, trainee, recorded_by, data) if not void else {
            k: v for k, v in data.items() if v not in (None, "")}
        if void and not str(recorded_by or "").strip():
            raise InvalidInput("ledger entry refused: missing required field 'recorded_by'")
        when = _when(at, "at")
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        row = {"kind": kind, "trainee": trainee, "at": when.isoformat(), "recorded_by": recorded_by,
               "recorded_at": now.isoformat(), "supersedes": supersedes, "void": bool(void),
               "data": json.dumps(clean, sort_keys=True, default=str)}
        with self.engine.begin() as conn:
            new_id = conn.execute(self.table.insert().values(**row)).inserted_primary_key[0]
        return Entry(int(new_id), kind, trainee, when, recorded_by, now, clean, supersedes, bool(void))

    def get(self, entry_id: int) -> Entry:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.table).where(self.table.c.id == entry_id)).first()
        if row is None:
            raise InvalidInput(f"no ledger entry {entry_id}")
        return _entry(row)

    def entries(self, kind: str | None = None, trainee: str | None = None) -> list[Entry]:
        """Every entry (superseded ones included), oldest first."""
        query = sa.select(self.table).order_by(self.table.c.id)
        if kind is not None:
            query = query.where(self.table.c.kind == kind)
        if trainee is not None:
            query = query.where(self.table.c.trainee == trainee)
        with self.engine.connect() as conn:
            return [_entry(r) for r in conn.execute(query)]

    def current(self, kind: str | None = None, trainee: str | None = None) -> list[Entry]:
        """The entries in force: the newest of each correction chain, withdrawn ones left out."""
        return current(self.entries(kind, trainee))


def current(entries: Iterable[Entry]) -> list[Entry]:
    """Entries not superseded by a later one, without voided ones (order kept)."""
    entries = list(entries)
    replaced = {e.supersedes for e in entries if e.supersedes is not None}
    return [e for e in entries if e.id not in replaced and not e.void]


def _entry(row: Any) -> Entry:
    return Entry(int(row.id), row.kind, row.trainee, _when(row.at, "at"), row.recorded_by,
                 _when(row.recorded_at, "recorded_at"), json.loads(row.data), row.supersedes, bool(row.void))


def check_context(kind: str, trainee: str, data: dict[str, Any], roster: Iterable[str] | None = None,
                  capabilities: Iterable[str] | None = None) -> None:
    """Names that must exist elsewhere: the trainee on the cohort's roster, the capability in
    the plan, incident classes in the fault catalog. Each unknown one names the valid ones."""
    if roster is not None and trainee not in set(roster):
        raise UnknownChoice("trainee", trainee, list(roster))
    if capabilities is not None and data.get("capability") and data["capability"] not in set(capabilities):
        raise UnknownChoice("capability", data["capability"], list(capabilities))
    for name in ("incident_class", "hypothesis_class", "expected_class"):
        if data.get(name) and data[name] not in INCIDENT_CLASSES:
            raise UnknownChoice(name.replace("_", " "), data[name], INCIDENT_CLASSES)


def parse_fields(pairs: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs as a dict (``a.b=c`` nests; yes/no become booleans for escalate)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise InvalidInput(f"field {pair!r}: write NAME=VALUE, e.g. structure=shadowing")
        parsed: Any = BOOLEAN.get(value.lower(), value) if name.split(".")[-1] == "escalate" else value
        if name.split(".")[-1] in ("minutes", "within_minutes"):
            try:
                parsed = float(value)
            except ValueError as e:
                raise InvalidInput(f"field {name}: {value!r} is not a number of minutes") from e
        target = out
        *parents, leaf = name.split(".")
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = parsed
    return out
