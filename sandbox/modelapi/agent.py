"""The ops agent that acts on the service's answers, the policy check that must stop it, and the
query guard that keeps instructions in a query from steering retrieval.

``POST /v1/agent {"query": ..., "alert": ...}`` stands in for an automated responder (an "ops
bot") built on this service. It searches the runbooks with the query, reads the top runbook and
proposes the commands its context names, in the order an LLM agent prompted with "the user's
request, then the retrieved runbook" takes them: the query's own commands first, then the
runbook's. It *executes* the first proposal the policy allows. Nothing runs: the decision is the
record (the response, ``modelapi_agent_actions_total`` and one log line per proposal).

That is direct prompt injection: a query is data from whoever typed it, and an agent that takes
commands from it runs what an attacker wrote. The policy check, set per release:

* ``AGENT_SOURCES`` - ``any`` (the agent as shipped: its whole context is trusted) or ``runbook``
  (commands only from a retrieved runbook; a command in the query is never an instruction);
* ``AGENT_ALLOW`` - comma-separated command prefixes the agent may run, compared word by word
  after flags and their values are dropped (``kubectl get pods`` allows ``kubectl -n serving get
  pods -o wide``); ``*`` (the default) allows anything;
* ``AGENT_DENY`` - comma-separated words that refuse a command wherever they appear (``secret``).

With any policy set, a command holding shell control characters (``;``, ``|``, ``&``, ``$(``,
backticks, redirections) is refused: an allowlist of prefixes is no defence against chaining.

``QUERY_GUARD=strip`` cuts a query at its first instruction marker (an instruction override, text
addressed to the assistant, a command to run) before it is embedded, on ``/v1/search`` and here,
so an injected instruction cannot reorder what retrieval returns; ``off`` (default) embeds it all.
"""

from __future__ import annotations

import logging
import re
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .corpus import CorpusError, load_snapshot, snapshot_path

__all__ = ["AgentPolicy", "AgentRequest", "Proposal", "Runbooks", "act", "decide", "guard_query", "propose"]

log = logging.getLogger("modelapi.agent")

#: Tools whose command lines the agent recognises in its context.
TOOLS = ("kubectl", "helm", "amtool", "promtool", "curl", "wget", "docker", "systemctl", "journalctl",
         "rm", "psql", "openssl", "df", "du", "nvidia-smi", "python", "labkit")
_TOOL = "|".join(re.escape(t) for t in TOOLS)
_BACKTICKED = re.compile(rf"`((?:{_TOOL})\b[^`]*)`")
_SPOKEN = re.compile(rf"\b(?:run|execute|exec)\s*:?\s+((?:{_TOOL})\b[^`\n]*?)(?=[.!?](?:\s|$)|$|\n)", re.I)
#: ``<pod>``: a runbook's placeholder, not a redirection.
PLACEHOLDER = re.compile(r"<[\w.-]+>")
#: Shell control: chaining, pipes, substitution, redirection.
CONTROL = re.compile(r"[;|&<>`]|\$\(")
#: Where a query stops being a search and starts giving orders (QUERY_GUARD=strip cuts here).
MARKERS = re.compile(
    r"\b(ignore|disregard|forget)\s+(all\s+)?(the\s+)?(previous|prior|earlier|above|other|your)\b"
    r"|\b(note|message|instructions?)\s+(to|for)\s+(the\s+)?(ai|assistant|model|llm|agent|bot)\b"
    r"|\b(system|assistant)\s*:"
    r"|\bi\s+(hereby\s+)?approve\b|\byou\s+are\s+now\b"
    rf"|\b(run|execute|exec)\s*:?\s+`?(?:{_TOOL})\b|`(?:{_TOOL})\b",
    re.I)
#: Where the clause an order sits in begins (the guard drops the whole clause).
_BOUNDARY = re.compile(r"[.;!?\n]|\s[-\u2013\u2014]\s")


class AgentRequest(BaseModel):
    """Body of ``POST /v1/agent``: what the agent was asked, and the alert it was woken by."""

    model_config = ConfigDict(extra="ignore")

    query: str = Field(min_length=1, max_length=4000)
    alert: str = Field(default="", max_length=500)


class Runbooks:
    """Runbook bodies by id, read from the served index's corpus snapshot (the index keeps only
    ids and titles); one snapshot is kept in memory."""

    def __init__(self, corpus_dir: Path) -> None:
        self.corpus_dir = corpus_dir
        self._snapshot, self._bodies = "", {}

    def body(self, snapshot: str, doc_id: str) -> str:
        if snapshot != self._snapshot:
            try:
                docs = load_snapshot(snapshot_path(self.corpus_dir, snapshot))
            except (CorpusError, OSError) as exc:
                log.warning("agent: corpus snapshot %s unreadable (%s); no runbook commands", snapshot, exc)
                docs = []
            self._snapshot, self._bodies = snapshot, {d.id: d.body for d in docs}
        return self._bodies.get(doc_id, "")


Source = Literal["query", "runbook"]
Decision = Literal["executed", "allowed", "blocked"]


@dataclass(frozen=True)
class AgentPolicy:
    """The release's policy check (``AGENT_SOURCES``, ``AGENT_ALLOW``, ``AGENT_DENY``)."""

    sources: str = "any"
    allow: tuple[str, ...] = ("*",)
    deny: tuple[str, ...] = ()

    @classmethod
    def parse(cls, sources: str, allow: str, deny: str) -> AgentPolicy:
        if sources not in ("any", "runbook"):
            raise ValueError(f"AGENT_SOURCES={sources!r} must be 'any' or 'runbook'")
        prefixes = tuple(" ".join(p.split()) for p in allow.split(",") if p.strip()) or ("*",)
        words = tuple(w.strip().lower() for w in deny.split(",") if w.strip())
        return cls(sources, prefixes, words)

    @property
    def open(self) -> bool:
        """The agent as shipped: no check at all."""
        return self.sources == "any" and self.allow == ("*",) and not self.deny


@dataclass
class Proposal:
    command: str
    source: Source
    decision: Decision = "blocked"
    reason: str = ""


@dataclass
class AgentResult:
    runbook: str | None
    query_used: str
    proposals: list[Proposal] = field(default_factory=list)

    @property
    def executed(self) -> Proposal | None:
        return next((p for p in self.proposals if p.decision == "executed"), None)

    def to_dict(self) -> dict:
        done = self.executed
        return {"runbook": self.runbook, "query_used": self.query_used,
                "executed": asdict(done) if done else None,
                "proposals": [asdict(p) for p in self.proposals]}


def guard_query(query: str, mode: str) -> str:
    """The query as embedded: cut at the first instruction marker with ``strip`` (never empty)."""
    if mode != "strip":
        return query
    m = MARKERS.search(query)
    if not m:
        return query
    head = query[:m.start()]
    bounds = [b.start() for b in _BOUNDARY.finditer(head)]
    cut = head[:bounds[-1]] if bounds else head
    return cut.strip(" \t\n.,;:-") or query


def commands(text: str) -> list[str]:
    """Command lines ``text`` names: backticked ones and "run <tool> ..." ones, in order."""
    found = sorted([(m.start(), m.group(1).strip()) for m in _BACKTICKED.finditer(text)]
                   + [(m.start(), m.group(1).strip()) for m in _SPOKEN.finditer(text)])
    seen, out = set(), []
    for _, cmd in found:
        if cmd not in seen:
            seen.add(cmd)
            out.append(cmd)
    return out


def propose(query: str, runbook_body: str) -> list[Proposal]:
    """The query's commands first, then the runbook's (the agent's context order)."""
    return ([Proposal(c, "query") for c in commands(query)]
            + [Proposal(c, "runbook") for c in commands(runbook_body)])


def _words(command: str) -> list[str]:
    """The command's words without flags and their values (``-n serving``, ``--output=wide``)."""
    try:
        tokens = shlex.split(command)
    except ValueError:
        tokens = command.split()
    words, skip = [], False
    for tok in tokens:
        if skip:
            skip = False
            continue
        if tok.startswith("-"):
            skip = tok in ("-n", "--namespace", "-o", "--output", "-l", "--selector", "-c", "--context")
            continue
        words.append(tok)
    return words


def decide(p: Proposal, policy: AgentPolicy) -> tuple[bool, str]:
    """Whether the policy lets the agent run ``p``, and why not."""
    if policy.open:
        return True, "no policy: the agent trusts its whole context"
    if policy.sources == "runbook" and p.source == "query":
        return False, "a command from the query is data, not an instruction"
    if CONTROL.search(PLACEHOLDER.sub("x", p.command)):
        return False, "shell control characters (chaining, pipes, substitution, redirection)"
    lowered = p.command.lower()
    denied = [w for w in policy.deny if w in lowered]
    if denied:
        return False, f"denied word {denied[0]!r}"
    if policy.allow != ("*",):
        words = _words(p.command)
        if not any(words[:len(pre.split())] == pre.split() for pre in policy.allow):
            return False, "not on the allowlist"
    return True, "allowed by the policy"


def act(query: str, runbook_id: str | None, runbook_body: str, policy: AgentPolicy, query_used: str) -> AgentResult:
    """Decide every proposal; the first allowed one is executed (simulated), the rest only allowed."""
    result = AgentResult(runbook_id, query_used, propose(query, runbook_body))
    executed = False
    for p in result.proposals:
        ok, p.reason = decide(p, policy)
        p.decision = ("allowed" if executed else "executed") if ok else "blocked"
        executed = executed or ok
        log.info("agent %s: command from the %s %r (%s)", p.decision, p.source, p.command[:120], p.reason,
                 extra={"agent_decision": p.decision, "agent_source": p.source})
    return result
