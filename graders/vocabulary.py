"""What this kit really has, for checks of written work: its commands, metrics and endpoints.

A runbook step "cites evidence" only when it names something a reader could run or look at in
*this* stack: a command line of a real tool (``kubectl rollout undo deploy/modelapi``), a call of
the sandbox API that exists (``sb.rollback(to_revision=2)``) or of a grader check that exists
(``expect("serving", ...)``), a metric the services export or a rule the kit ships
(``modelapi_requests_total``, ``slo:search_errors:ratio_rate5m``, ``SearchErrorBudgetBurnFast``),
an endpoint the services serve (``/readyz``), a job of the model API's command line
(``python -m modelapi lineage``, ``validate-corpus``), or the output to look for stated as a value
("expect HTTP 503", "shows recall@5 >= 0.85", "returns `ready: false`"). "Expect it works" and a
code span holding ``TBD`` cite nothing.

The names come from the kit itself, not from a list kept by hand: the services' metric
registries, routes and command line are built (nothing is served), the rule files are parsed, the sandbox API
and the check registry are introspected. Built once, on first use.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import yaml

#: Tools whose command line counts as a command when a word of arguments follows the tool.
TOOLS = ("kubectl", "docker", "curl", "labkit", "promtool", "amtool", "helm", "journalctl", "grep",
         "jq", "nbgrader", "python", "python3", "systemctl", "ss", "top", "wget", "http")

#: The verbs of the tools whose grammar is fixed (their real subcommands): ``kubectl frobnicate``
#: is not a command.
VERBS = {
    "kubectl": {"get", "describe", "logs", "rollout", "apply", "delete", "scale", "set", "edit", "patch",
                "exec", "port-forward", "top", "events", "label", "annotate", "diff", "create", "auth",
                "config", "cordon", "drain", "uncordon", "debug", "wait", "explain", "run", "expose",
                "autoscale", "replace", "cp", "proxy", "api-resources", "version", "taint"},
    "docker": {"ps", "logs", "inspect", "stats", "exec", "run", "stop", "start", "restart", "rm", "kill",
               "top", "events", "compose", "image", "images", "container", "network", "volume", "pull",
               "cp", "update", "info", "system", "pause", "unpause", "port", "diff", "build", "tag"},
    "promtool": {"check", "test", "query", "tsdb", "debug"},
    "amtool": {"alert", "silence", "check-config", "config", "cluster", "template"},
    "helm": {"rollback", "history", "status", "upgrade", "install", "get", "list", "diff", "template",
             "uninstall", "lint", "show"},
}

_WORD = r"(?<![\w:/.-])"  # a name starts at a word boundary that is not inside a path or URL
_COMMAND = re.compile(_WORD + r"(" + "|".join(TOOLS) + r")\s+[\w/@.:=-]{2,}", re.IGNORECASE)
_CALL = re.compile(r"\b(?:sb|sandbox)\.([a-z_][a-z0-9_]*)\s*\(")
_CHECK = re.compile(r"\b(?:expect|check)\(\s*['\"]([a-z0-9_-]+)['\"]")
#: A job of the model API's own command line (``python -m modelapi lineage``, ``validate-corpus``).
_JOB = re.compile(r"(?<![\w-])([a-z]+(?:-[a-z]+)+|lineage|quarantine|seed)(?![\w-])")
_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_PATH = re.compile(r"(?<![\w.-])(/[a-z][a-z0-9_/-]*)")
_OUTPUT_WORD = re.compile(
    r"\b(output|outputs|expect|expected|expecting|shows?|showing|look for|returns?|prints?|reads?|"
    r"says|reports?|should (?:see|read|return|print|show|be)|until|drops? to|falls? to|rises? to|"
    r"stays? (?:at|under|below|above))\b", re.IGNORECASE)
#: A value an output can be checked against: a number (a status code, a ratio, a duration), or a
#: quoted or code literal.
_VALUE = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:\s*(?:%|ms|s|m|min|minutes|seconds|x))?\b|`[^`\s][^`]*`|\"[^\"]+\"")


@dataclass(frozen=True)
class Vocabulary:
    """The names a written artifact may cite."""

    metrics: frozenset[str]
    rules: frozenset[str]
    endpoints: frozenset[str]
    api: frozenset[str]
    checks: frozenset[str]
    jobs: frozenset[str] = frozenset()


    def citations(self, text: str) -> list[str]:
        """The real things ``text`` cites, in the order found (empty: it cites nothing)."""
        found: list[str] = []
        found += [m.group(0).strip() for m in _COMMAND.finditer(text) if _real_command(m.group(0))]
        found += [f"sb.{m.group(1)}()" for m in _CALL.finditer(text) if m.group(1) in self.api]
        found += [f"check {m.group(1)}" for m in _CHECK.finditer(text) if m.group(1) in self.checks]
        found += [m.group(0) for m in _JOB.finditer(text) if m.group(1) in self.jobs]
        names = set(_NAME.findall(text))
        found += sorted(n for n in names if n in self.metrics or n in self.rules)
        found += sorted({m.group(1).rstrip("/") for m in _PATH.finditer(text)} & self.endpoints)
        if _OUTPUT_WORD.search(text) and _VALUE.search(_without_step_number(text)):
            found.append("output: " + _OUTPUT_WORD.search(text).group(0))
        return found

    def cites(self, text: str) -> bool:
        return bool(self.citations(text))


def _real_command(line: str) -> bool:
    """A tool followed by one of its real verbs (any argument, for tools whose verbs vary)."""
    tool, _, rest = line.strip().partition(" ")
    verbs = VERBS.get(tool.lower())
    return verbs is None or rest.strip().split()[0].lower() in verbs


def _without_step_number(text: str) -> str:
    """The text minus a leading list number ("3. Watch ..."), which is not a value to look for."""
    return re.sub(r"^\s*(?:\d+[.)]|[-*+])\s+", "", text, count=1)


@functools.cache
def kit() -> Vocabulary:
    """The kit's vocabulary, built from its services, rule files, sandbox API and checks."""
    from sandbox.api import Sandbox
    from sandbox.modelapi.__main__ import build_parser
    from sandbox.modelapi.app import create_app
    from sandbox.modelapi.gateway import GatewayMetrics
    from sandbox.modelapi.provider import create_provider_app
    from sandbox.monitoring import kit_rule_files

    from .checks import CHECKS

    apps = [create_app(), create_provider_app()]
    registries = [apps[0].state.service.metrics.registry, apps[1].state.metrics.registry,
                  GatewayMetrics().registry]
    metrics: set[str] = set()
    for registry in registries:
        for family in registry.collect():
            metrics.add(family.name)
            metrics.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ()))
            metrics.update(sample.name for sample in family.samples)
    rules: set[str] = set()
    for text in kit_rule_files().values():
        for group in (yaml.safe_load(text) or {}).get("groups", []):
            for rule in group.get("rules", []):
                rules.add(rule.get("record") or rule.get("alert") or "")
    endpoints = {route.path for app in apps for route in app.routes
                 if not route.path.startswith(("/docs", "/redoc", "/openapi"))}
    api = {name for name in dir(Sandbox) if not name.startswith("_")}
    jobs = {name for action in build_parser()._subparsers._group_actions
            for name in getattr(action, "choices", None) or ()}
    return Vocabulary(frozenset(metrics), frozenset(rules - {""}), frozenset(endpoints),
                      frozenset(api), frozenset(CHECKS), frozenset(jobs - {"serve", "gateway", "provider"}))


_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
             "summary": ("_sum", "_count")}


__all__ = ["TOOLS", "VERBS", "Vocabulary", "kit"]
