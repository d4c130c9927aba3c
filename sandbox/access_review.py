"""The access-review exercise: the real cohort overlay with one over-broad grant planted in it.

``render(seed)`` returns the cohort overlay exactly as ``labkit cluster cohort`` generates it
(``sandbox._kube.cohort.cohort_files``) for a few trainees, plus, in every trainee's folder, an
``access.yaml`` of extra Roles and RoleBindings: decoys that look odd but grant nothing beyond
what the subject already has (an unbound Role, a scary name on a harmless Role, a duplicate
binding, the hub's ServiceAccount), and in one folder the planted grant, one of ``VARIANTS``.
The seed picks the trainees, the variant, the folder and every name (planted and decoy names
come from the same pool, so a name says nothing). ``cluster/clusterroles.yaml`` holds the
built-in ClusterRoles the bindings may refer to (abridged, as ``kubectl get clusterrole`` shows).

Who gets which seed is the caller's: the control endpoint draws a secret one per grading box,
returns ``Review.files`` to the box and keeps ``Review.answer`` in its audit log only; a sandbox
outside a box renders a practice overlay with a random seed. Nothing here finds the planted
grant - the trainee's code does that, with ``labkit.rbac``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ._kube.cohort import GENERATED, cohort_files

RBAC = "rbac.authorization.k8s.io"
TRAINEE_ROLE = "labkit-trainee"
HUB_SA = "labkit-jupyter"
TRAINEES = ("alice", "bob", "chen", "dana", "emeka", "farah", "goran", "hana", "ines", "jonas")
#: Names of extra Roles and RoleBindings, planted and decoy alike.
NAMES = ("debug-access", "support-readonly", "oncall-debug", "legacy-trainee", "break-glass", "ops-helper",
         "migration-temp", "triage-access", "incident-debug", "sre-tools", "quota-check", "log-reader",
         "release-helper", "gameday-temp", "platform-support", "hotfix-access")
GROUPS = ("oncall", "support-contractors", "platform-team", "system:authenticated")
VARIANTS = ("clusterrole-edit", "clusterrole-admin", "secrets-to-serviceaccounts", "exec-to-group",
            "wrong-namespace", "wildcard-rule")
DECOYS = ("unbound-secrets-role", "harmless-subset", "duplicate-binding", "hub-serviceaccount")


@dataclass(frozen=True)
class Review:
    """A rendered exercise: the files the trainee reviews and the answer only the grader keeps."""

    files: dict[str, str]
    """Path inside the overlay (``alice/access.yaml``) -> YAML text."""

    answer: dict[str, Any] = field(default_factory=dict)
    """``variant``, ``namespace``, ``binding``, ``subject`` ({kind, name}), ``grants``, ``fix``."""


# --- documents ---------------------------------------------------------------------------------
def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": {"name": name}, "rules": rules}


def binding(name: str, ref_kind: str, ref_name: str, subject: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": RBAC, "kind": ref_kind, "name": ref_name}, "subjects": [subject]}


def user(name: str) -> dict[str, str]:
    return {"apiGroup": RBAC, "kind": "User", "name": name}


def group(name: str) -> dict[str, str]:
    return {"apiGroup": RBAC, "kind": "Group", "name": name}


def service_account(name: str, namespace: str) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]
_CORE = ["pods", "pods/log", "services", "configmaps", "endpoints", "persistentvolumeclaims", "events"]
_APPS = ["deployments", "deployments/scale", "replicasets", "statefulsets"]


def cluster_roles() -> list[dict[str, Any]]:
    """The built-in ``view``, ``edit`` and ``admin`` ClusterRoles (abridged to what matters here)."""
    view = [_rule([""], _CORE, _READ), _rule(["apps"], _APPS, _READ), _rule(["batch"], ["jobs", "cronjobs"], _READ)]
    edit = view + [
        _rule([""], ["pods", "pods/exec", "pods/attach", "pods/portforward", "services", "configmaps",
                     "persistentvolumeclaims", "secrets", "serviceaccounts"], [*_READ, *_WRITE]),
        _rule([""], ["serviceaccounts"], ["impersonate"]),
        _rule(["apps"], _APPS, _WRITE), _rule(["batch"], ["jobs", "cronjobs"], _WRITE)]
    admin = edit + [_rule([RBAC], ["roles", "rolebindings"], [*_READ, *_WRITE])]
    return [{"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}
            for name, rules in (("view", view), ("edit", edit), ("admin", admin))]


# --- the planted grant -------------------------------------------------------------------------
def _plant(variant: str, rng: random.Random, trainee: str, others: list[str], names: list[str]) -> tuple[
        list[dict[str, Any]], dict[str, Any]]:
    """The documents of one variant in ``trainee``'s folder, and the answer."""
    ns, name = f"labkit-{trainee}", names.pop()
    docs: list[dict[str, Any]] = []
    if variant in ("clusterrole-edit", "clusterrole-admin"):
        cr = variant.split("-")[1]
        subject = user(trainee)
        docs.append(binding(name, "ClusterRole", cr, subject))
        grants = (f"ClusterRole {cr} in {ns}: read and write Secrets, exec into pods, impersonate ServiceAccounts"
                  + (", and write Roles and RoleBindings (grant itself anything)" if cr == "admin" else ""))
        fix = f"delete RoleBinding {name}; debugging uses the labkit-trainee Role"
    elif variant == "secrets-to-serviceaccounts":
        role_name, subject = names.pop(), group("system:serviceaccounts")
        docs += [role(role_name, [_rule([""], ["secrets"], ["get", "list"])]),
                 binding(name, "Role", role_name, subject)]
        grants = f"get and list every Secret in {ns} to every ServiceAccount of every namespace"
        fix = f"delete RoleBinding {name} (and Role {role_name}); bind one named ServiceAccount if one needs a Secret"
    elif variant == "exec-to-group":
        role_name, subject = names.pop(), group(rng.choice(GROUPS))
        docs += [role(role_name, [_rule([""], ["pods"], ["get", "list"]),
                                  _rule([""], ["pods/exec"], ["get", "create"])]),
                 binding(name, "Role", role_name, subject)]
        grants = f"exec into any pod of {ns} (a shell as the model API, its data volume) to group {subject['name']}"
        fix = f"delete RoleBinding {name}; exec for support goes through a named, time-boxed binding"
    elif variant == "wrong-namespace":
        subject = user(rng.choice(others))
        docs.append(binding(name, "Role", TRAINEE_ROLE, subject))
        grants = f"the whole labkit-trainee Role in {ns} (deploy, delete, exec) to {subject['name']}, another trainee"
        fix = f"delete RoleBinding {name} from {ns}; {subject['name']}'s binding belongs in labkit-{subject['name']}"
    elif variant == "wildcard-rule":
        role_name, subject = names.pop(), user(trainee)
        docs += [role(role_name, [_rule(["*"], ["*"], ["*"])]), binding(name, "Role", role_name, subject)]
        grants = f"every verb on every resource of {ns}: Secrets, Roles and RoleBindings included"
        fix = f"delete RoleBinding {name} and Role {role_name}; labkit-trainee already covers the labs"
    else:
        raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    answer = {"variant": variant, "namespace": ns, "binding": name,
              "subject": {"kind": subject["kind"], "name": subject["name"]}, "grants": grants, "fix": fix}
    return docs, answer


def _decoy(kind: str, trainee: str, names: list[str]) -> list[dict[str, Any]]:
    """Odd-looking documents that give no subject anything it does not already have."""
    ns = f"labkit-{trainee}"
    if kind == "unbound-secrets-role":  # scary rules, bound to nobody
        return [role(names.pop(), [_rule([""], ["secrets"], ["get", "list", "watch"])])]
    if kind == "harmless-subset":  # a scary name, rules the trainee's Role already grants
        role_name = names.pop()
        return [role(role_name, [_rule([""], ["pods", "pods/log"], ["get"]), _rule([""], ["events"], ["list"])]),
                binding(names.pop(), "Role", role_name, user(trainee))]
    if kind == "duplicate-binding":  # the trainee's own Role again, under another name
        return [binding(names.pop(), "Role", TRAINEE_ROLE, user(trainee))]
    if kind == "hub-serviceaccount":  # what the hub's component binds: the JupyterLab pod's account
        return [binding(names.pop(), "Role", TRAINEE_ROLE, service_account(HUB_SA, ns))]
    raise ValueError(f"unknown decoy {kind!r}; valid: {', '.join(DECOYS)}")


# --- the overlay -------------------------------------------------------------------------------
def _dump(docs: list[dict[str, Any]]) -> str:
    return GENERATED + "\n" + yaml.safe_dump_all(docs, sort_keys=False)


def _with_access(kustomization: str) -> str:
    doc = yaml.safe_load(kustomization)
    doc["resources"] = [*doc["resources"][:2], "access.yaml", *doc["resources"][2:]]
    return GENERATED + "\n" + yaml.safe_dump(doc, sort_keys=False)


def render(seed: int, variant: str | None = None) -> Review:
    """The overlay of ``seed`` (``variant`` forces one, for tests) and its planted answer."""
    rng = random.Random(seed)
    trainees = sorted(rng.sample(TRAINEES, 3))
    chosen = variant or rng.choice(VARIANTS)
    names = list(NAMES)
    rng.shuffle(names)
    target = rng.choice(trainees)
    root = Path("cohort")
    files = {str(p.relative_to(root)): text for p, text in cohort_files(trainees, root, base_dir=root / "base").items()}
    answer: dict[str, Any] = {}
    for trainee in trainees:
        kinds = rng.sample(DECOYS, rng.choice((1, 2)) if trainee == target else rng.choice((2, 3)))
        docs = [d for kind in kinds for d in _decoy(kind, trainee, names)]
        if trainee == target:
            planted, answer = _plant(chosen, rng, trainee, [t for t in trainees if t != trainee], names)
            docs += planted
        rng.shuffle(docs)
        files[f"{trainee}/access.yaml"] = _dump(docs)
        files[f"{trainee}/kustomization.yaml"] = _with_access(files[f"{trainee}/kustomization.yaml"])
    files["cluster/clusterroles.yaml"] = _dump(cluster_roles())
    return Review(dict(sorted(files.items())), answer)


def _name(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("name", ""))
    return str(value or "").strip()


def matches(answer: dict[str, Any], binding_name: Any, subject: Any) -> tuple[bool, bool]:
    """Whether a finding names the planted binding (``name`` or ``namespace/name``) and its subject
    (``name``, ``Kind:name``, ``Kind/name`` or a {kind, name} mapping)."""
    want_b, want_s = str(answer.get("binding", "")), _name(answer.get("subject"))
    got_b, got_s = _name(binding_name), _name(subject)
    b_ok = bool(want_b) and got_b in (want_b, f"{answer.get('namespace')}/{want_b}")
    s_ok = bool(want_s) and (got_s == want_s or got_s.endswith((f":{want_s}", f"/{want_s}", f" {want_s}")))
    return b_ok, s_ok


__all__ = ["DECOYS", "VARIANTS", "Review", "cluster_roles", "matches", "render"]
