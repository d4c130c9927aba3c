"""The cohort Role on a real API server: the trainee's ServiceAccount may do the lab's verbs in
its namespace and nothing else (``tests/unit/test_kube_rbac.py`` proves, on the fake cluster,
that these grants are exactly what the kit's operations send, plus its listed extras).

A namespace of its own gets the generated Role ``labkit-trainee``, the hub's ServiceAccount
``labkit-jupyter`` and the hub's RoleBinding (``k8s/hub/trainee``); a second namespace is
"elsewhere". Each (verb, resource) is asked twice: a SubjectAccessReview by the suite's own
(admin) account for the ServiceAccount, and a SelfSubjectAccessReview sent with the
ServiceAccount's own token (TokenRequest). Skipped with the reason when no cluster answers
(``conftest.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from labkit import cluster
from labkit.rbac import Attributes, Role
from sandbox import labels
from sandbox._kube.api import new_api_client

SA = "labkit-jupyter"
#: Asked and refused by design (see TOLERATED in the unit test), and what no trainee may do.
DENIED = [("get", "", "namespaces", ""), ("list", "", "nodes", ""), ("get", "", "secrets", ""),
          ("list", "", "secrets", ""), ("create", "", "serviceaccounts", "token"), ("get", "", "serviceaccounts", ""),
          ("create", "rbac.authorization.k8s.io", "roles", ""), ("patch", "rbac.authorization.k8s.io", "roles", ""),
          ("create", "rbac.authorization.k8s.io", "rolebindings", ""), ("escalate", "rbac.authorization.k8s.io", "roles", ""),
          ("bind", "rbac.authorization.k8s.io", "roles", ""), ("impersonate", "", "serviceaccounts", ""),
          ("create", "", "pods", ""), ("update", "apps", "deployments", ""), ("create", "apps", "replicasets", ""),
          ("update", "apps", "replicasets", ""), ("watch", "", "pods", ""), ("create", "", "pods", "portforward"),
          ("create", "", "pods", "attach"), ("deletecollection", "", "pods", ""), ("get", "", "resourcequotas", "")]


@pytest.fixture(scope="module")
def admin(cluster, kube_settings) -> client.ApiClient:
    return new_api_client(kube_settings, retries=0)


@pytest.fixture(scope="module")
def namespaces(admin) -> Iterator[tuple[str, str, Role]]:
    """(trainee namespace, another namespace, the Role as generated), removed at the end."""
    core, rbac = client.CoreV1Api(admin), client.RbacAuthorizationV1Api(admin)
    mine, other = f"labkit-rbac-{uuid.uuid4().hex[:6]}", f"labkit-rbac-{uuid.uuid4().hex[:6]}"
    out = Path("/nonexistent-rbac-e2e")
    text = cluster.cohort_files(["rbac"], out)[out / cluster.TENANT / "role.yaml"]
    doc = next(d for d in yaml.safe_load_all(text) if d and d["kind"] == "Role")
    made: list[str] = []
    try:
        for ns in (mine, other):
            core.create_namespace({"apiVersion": "v1", "kind": "Namespace",
                                   "metadata": {"name": ns, "labels": labels.for_sandbox("rbac-e2e", "namespace")}})
            made.append(ns)
        rbac.create_namespaced_role(mine, {**doc, "metadata": {**doc["metadata"], "namespace": mine}})
        sa = yaml.safe_load((cluster.HUB_TRAINEE_DIR / "serviceaccount.yaml").read_text())
        binding = yaml.safe_load((cluster.HUB_TRAINEE_DIR / "rolebinding.yaml").read_text())
        core.create_namespaced_service_account(mine, {**sa, "metadata": {**sa["metadata"], "namespace": mine}})
        rbac.create_namespaced_role_binding(mine, {**binding, "metadata": {**binding["metadata"], "namespace": mine}})
        yield mine, other, Role.from_manifest(doc, mine)
    finally:
        for ns in made:
            core.delete_namespace(ns)


def attributes(ns: str, verb: str, group: str, resource: str, sub: str) -> client.V1ResourceAttributes:
    return client.V1ResourceAttributes(namespace=ns, verb=verb, group=group, resource=resource,
                                       subresource=sub or None, name=None)


def review(admin: client.ApiClient, ns: str, sa_ns: str, item: tuple[str, str, str, str]) -> bool:
    """SubjectAccessReview for the ServiceAccount (with the groups its token carries)."""
    body = client.V1SubjectAccessReview(
        api_version="authorization.k8s.io/v1", kind="SubjectAccessReview",
        spec=client.V1SubjectAccessReviewSpec(
            user=f"system:serviceaccount:{sa_ns}:{SA}",
            groups=["system:serviceaccounts", f"system:serviceaccounts:{sa_ns}", "system:authenticated"],
            resource_attributes=attributes(ns, *item)))
    return bool(client.AuthorizationV1Api(admin).create_subject_access_review(body).status.allowed)


def as_service_account(admin: client.ApiClient, ns: str) -> client.ApiClient:
    """A client that authenticates with a short-lived token of the ServiceAccount only."""
    request = client.AuthenticationV1TokenRequest(
        api_version="authentication.k8s.io/v1", kind="TokenRequest",
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600))
    token = client.CoreV1Api(admin).create_namespaced_service_account_token(SA, ns, request).status.token
    base = admin.configuration
    cfg = client.Configuration()  # no client certificate: it would authenticate as the admin first
    cfg.host, cfg.ssl_ca_cert, cfg.verify_ssl = base.host, base.ssl_ca_cert, base.verify_ssl
    cfg.api_key, cfg.api_key_prefix = {"BearerToken": token}, {"BearerToken": "Bearer"}
    return client.ApiClient(cfg)


def self_review(sa_client: client.ApiClient, ns: str, item: tuple[str, str, str, str]) -> bool:
    body = client.V1SelfSubjectAccessReview(
        api_version="authorization.k8s.io/v1", kind="SelfSubjectAccessReview",
        spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes(ns, *item)))
    return bool(client.AuthorizationV1Api(sa_client).create_self_subject_access_review(body).status.allowed)


def granted(role: Role) -> list[tuple[str, str, str, str]]:
    """The Role's grants as (verb, group, resource, subresource)."""
    return sorted((g.verb, g.api_group, *(g.resource.split("/", 1) + [""])[:2]) for g in role.grants())


def test_the_trainee_account_may_do_the_labs_verbs_in_its_namespace_and_nothing_else(admin, namespaces):
    mine, other, role = namespaces
    sa_client = as_service_account(admin, mine)
    wrong: list[str] = []
    for item in granted(role):
        for ns, want in ((mine, True), (other, False), ("default", False)):
            if review(admin, ns, mine, item) != want or self_review(sa_client, ns, item) != want:
                wrong.append(f"{item} in {ns}: expected {'allowed' if want else 'denied'}")
    for item in DENIED:
        for ns in (mine, other):
            if review(admin, ns, mine, item) or self_review(sa_client, ns, item):
                wrong.append(f"{item} in {ns}: allowed, must be denied")
    assert not wrong, "\n".join(wrong)


def test_the_evaluator_agrees_with_the_api_server(admin, namespaces):
    mine, other, role = namespaces
    for verb, group, resource, sub in granted(role) + DENIED:
        for ns in (mine, other):
            mine_says = role.allows(Attributes(verb, resource, group, ns, "", sub))
            assert mine_says == review(admin, ns, mine, (verb, group, resource, sub)), (verb, group, resource, sub, ns)
