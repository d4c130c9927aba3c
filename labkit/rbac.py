"""A small, exact evaluator of Kubernetes RBAC for one namespaced Role.

Two halves, each as the API server does it:

* ``request_attributes(method, path, query)`` is the API server's ``RequestInfoFactory``:
  ``/api`` is the core group, ``/apis/<group>/<version>`` the others; ``namespaces/<ns>/``
  names the namespace (and ``GET /api/v1/namespaces/<ns>`` is a request *in* ``<ns>``); a
  subresource is the path segment after the name (``pods/<pod>/log``, ``services/<svc>/proxy/...``
  whatever follows ``proxy``); GET of a name is ``get``, of a collection ``list`` (``watch`` with
  ``?watch=true``; a ``fieldSelector=metadata.name=X`` names ``X``), POST ``create``, PUT
  ``update``, PATCH ``patch``, DELETE of a name ``delete``, of a collection ``deletecollection``.
  Anything else (``/version``, discovery) is a non-resource request, which no Role grants.
* ``Role.allows(attrs)`` is the RBAC authorizer's rule match: the request's namespace must be
  the Role's; a rule matches when its verbs, apiGroups and resources match (``*`` matches
  everything, including subresources; ``*/<sub>`` a subresource of any resource;
  ``resource/sub`` exactly that subresource) and its resourceNames, if any, hold the name.

``Role.grants()`` expands the rules into single (group, resource, verb) grants, so a caller can
compare what a Role gives with what a recorded set of requests needed (``Role.unused``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import yaml

ALL = "*"
METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete"}
NAMESPACE_SUBRESOURCES = ("status", "finalize")
SPECIAL_VERBS = ("proxy", "watch")  # the deprecated /api/v1/watch/... and /api/v1/proxy/... forms
TRUE = ("1", "t", "T", "TRUE", "true", "True")  # Go's strconv.ParseBool


@dataclass(frozen=True)
class Attributes:
    """What the authorizer sees of one request (``resource`` empty: a non-resource URL)."""

    verb: str
    resource: str = ""
    api_group: str = ""
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    path: str = ""

    @property
    def is_resource_request(self) -> bool:
        return bool(self.resource)

    @property
    def combined(self) -> str:
        """``pods/log`` for a subresource, else ``pods``: how a rule names it."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def __str__(self) -> str:
        if not self.is_resource_request:
            return f"{self.verb} {self.path}"
        group = f".{self.api_group}" if self.api_group else ""
        where = f" in {self.namespace}" if self.namespace else " (cluster-wide)"
        return f"{self.verb} {self.combined}{group}{' ' + self.name if self.name else ''}{where}"


def _query(query: Mapping[str, Any] | str | None) -> dict[str, str]:
    if isinstance(query, str):
        return dict(parse_qsl(query.lstrip("?"), keep_blank_values=True))
    return {str(k): str(v) for k, v in (query or {}).items()}


def _selected_name(field_selector: str) -> str:
    """The name a ``metadata.name=X`` (or ``==``) field selector requires exactly, else ''."""
    for term in field_selector.split(","):
        key, op, value = term.partition("==") if "==" in term else term.partition("=")
        if op and key.strip() == "metadata.name" and not key.endswith("!") and value.strip():
            return value.strip()
    return ""


def request_attributes(method: str, path: str, query: Mapping[str, Any] | str | None = None) -> Attributes:
    """The RBAC attributes of one HTTP request to the API server (``RequestInfoFactory``)."""
    method = method.upper()
    params = _query(query)
    path, _, inline = path.partition("?")
    params = {**_query(inline), **params}
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) >= 3 and parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    elif len(parts) >= 2 and parts[0] == "api":
        group, rest = "", parts[2:]
    else:
        return Attributes(verb=method.lower(), path="/" + "/".join(parts))
    if not rest:  # discovery of a group version
        return Attributes(verb=method.lower(), path="/" + "/".join(parts))
    verb = METHOD_VERBS.get(method, "")
    if rest[0] in SPECIAL_VERBS:
        if len(rest) < 2:
            return Attributes(verb=method.lower(), path="/" + "/".join(parts))
        verb, rest = rest[0], rest[1:]
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else ""
    subresource = rest[2] if len(rest) >= 3 and verb != "proxy" else ""
    if not name and verb == "get":
        verb = "watch" if params.get("watch") in TRUE else "list"
        name = _selected_name(params.get("fieldSelector", ""))
    if not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(verb, resource, group, namespace, name, subresource, "/" + "/".join(parts))


# --- rules ---------------------------------------------------------------------------------
def _resource_matches(rule_resources: Iterable[str], attrs: Attributes) -> bool:
    for r in rule_resources:
        if r == ALL or r == attrs.combined:
            return True
        if attrs.subresource and r == f"*/{attrs.subresource}":
            return True
    return False


def rule_allows(rule: Mapping[str, Any], attrs: Attributes) -> bool:
    """Whether one PolicyRule matches a resource request (Kubernetes' ``RuleAllows``)."""
    if not attrs.is_resource_request:
        return False  # non-resource URLs: only a ClusterRole's nonResourceURLs grant them
    verbs, groups = rule.get("verbs") or [], rule.get("apiGroups") or []
    names = rule.get("resourceNames") or []
    return ((ALL in verbs or attrs.verb in verbs) and (ALL in groups or attrs.api_group in groups)
            and _resource_matches(rule.get("resources") or [], attrs)
            and (not names or attrs.name in names))


@dataclass(frozen=True)
class Grant:
    """One thing a rule gives: a verb on a (sub)resource of a group, maybe only some names."""

    api_group: str
    resource: str
    verb: str
    names: tuple[str, ...] = ()

    def covers(self, attrs: Attributes) -> bool:
        rule = {"apiGroups": [self.api_group], "resources": [self.resource], "verbs": [self.verb],
                "resourceNames": list(self.names)}
        return rule_allows(rule, attrs)

    def __str__(self) -> str:
        group = f".{self.api_group}" if self.api_group else ""
        names = f" {','.join(self.names)}" if self.names else ""
        return f"{self.verb} {self.resource}{group}{names}"


@dataclass(frozen=True)
class Role:
    """A namespaced Role: its rules, effective in its namespace only."""

    namespace: str
    rules: tuple[Mapping[str, Any], ...]
    name: str = ""

    @classmethod
    def from_manifest(cls, doc: Mapping[str, Any], namespace: str = "") -> Role:
        """From a ``Role`` document (its namespace, or ``namespace`` where kustomize sets it)."""
        if doc.get("kind") != "Role":
            raise ValueError(f"not a Role: {doc.get('kind')!r}")
        meta = doc.get("metadata") or {}
        ns = namespace or meta.get("namespace") or ""
        if not ns:
            raise ValueError(f"Role {meta.get('name')!r} has no namespace: give one")
        return cls(ns, tuple(doc.get("rules") or ()), meta.get("name") or "")

    @classmethod
    def from_yaml(cls, text: str, namespace: str = "", name: str = "") -> Role:
        """The (named, or only) Role of a YAML stream."""
        roles = [d for d in yaml.safe_load_all(text) if d and d.get("kind") == "Role"
                 and (not name or (d.get("metadata") or {}).get("name") == name)]
        if len(roles) != 1:
            raise ValueError(f"expected one Role{' ' + name if name else ''}, found {len(roles)}")
        return cls.from_manifest(roles[0], namespace)

    def allows(self, attrs: Attributes) -> bool:
        """Whether a subject bound to this Role (in its namespace) may make the request."""
        if not attrs.is_resource_request or attrs.namespace != self.namespace:
            return False
        return any(rule_allows(rule, attrs) for rule in self.rules)

    def why_denied(self, attrs: Attributes, user: str = "the trainee") -> str:
        """The API server's words for a refusal ('' when allowed)."""
        if self.allows(attrs):
            return ""
        if not attrs.is_resource_request:
            return f'{user} cannot {attrs.verb} path "{attrs.path}"'
        scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
        return (f'{attrs.resource} "{attrs.name}" is forbidden: {user} cannot {attrs.verb} resource'
                f' "{attrs.combined}" in API group "{attrs.api_group}" {scope}')

    def grants(self) -> set[Grant]:
        """Every (group, resource, verb[, names]) the rules spell out (``*`` stays ``*``)."""
        return {Grant(g, r, v, tuple(rule.get("resourceNames") or ()))
                for rule in self.rules for g in rule.get("apiGroups") or []
                for r in rule.get("resources") or [] for v in rule.get("verbs") or []}

    def unused(self, needed: Iterable[Attributes]) -> set[Grant]:
        """Grants no request of ``needed`` (in this namespace) exercised."""
        here = [a for a in needed if a.is_resource_request and a.namespace == self.namespace]
        return {g for g in self.grants() if not any(g.covers(a) for a in here)}


__all__ = ["Attributes", "Grant", "Role", "request_attributes", "rule_allows"]
