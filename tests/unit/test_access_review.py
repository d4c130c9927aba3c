"""The access-review exercise: the planted overlay, an RBAC review of it with ``labkit.rbac``,
the control endpoint's operation (the box gets the files, only the audit log the answer) and the
grader's checks."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from graders import check
from sandbox import access_review
from sandbox.access_review import DECOYS, NAMES, VARIANTS, matches, render
from sandbox.control.audit import read_audit
from sandbox.control.policy import OPERATIONS, Refused, authorise
from sandbox.control.server import ControlEndpoint
from labkit.cluster import cohort_files
from labkit.rbac import Attributes, Role

SEEDS = range(40)


# --- a reviewer, as a trainee writes one (never kit code) ---------------------------------------
def _attrs(grant, namespace: str) -> Attributes:
    resource, _, sub = grant.resource.partition("/")
    return Attributes(grant.verb, resource, grant.api_group, namespace, "", sub)


def review(files: dict[str, str]) -> list[dict]:
    """Every (binding, subject) whose subject gets more in that namespace than it is entitled to."""
    docs = {p: [d for d in yaml.safe_load_all(t) if d] for p, t in files.items()}
    trainee_role = docs["tenant/role.yaml"][0]
    cluster = {d["metadata"]["name"]: d for d in docs["cluster/clusterroles.yaml"]}
    found = []
    for folder in sorted({p.split("/")[0] for p in files if p.endswith("/namespace.yaml")}):
        ns = f"labkit-{folder}"
        mine = [d for p, ds in docs.items() if p.startswith(folder + "/") for d in ds]
        roles = {d["metadata"]["name"]: d for d in mine if d["kind"] == "Role"} | {"labkit-trainee": trainee_role}
        baseline = Role.from_manifest(trainee_role, ns)
        for b in (d for d in mine if d["kind"] == "RoleBinding"):
            ref = b["roleRef"]
            bound = Role(ns, tuple((cluster if ref["kind"] == "ClusterRole" else roles)[ref["name"]]["rules"]))
            for s in b["subjects"]:
                entitled = ((s["kind"] == "User" and s["name"] == folder)
                            or (s["kind"] == "ServiceAccount" and s["name"] == "labkit-jupyter"))
                extra = [g for g in bound.grants() if not (entitled and baseline.allows(_attrs(g, ns)))]
                if extra:
                    found.append({"namespace": ns, "binding": b["metadata"]["name"], "subject": s,
                                  "extra": sorted(map(str, extra))})
    return found


# --- the generator ------------------------------------------------------------------------------
def test_a_seed_renders_the_same_overlay_and_another_seed_another():
    assert render(11) == render(11)
    assert len({render(s).answer["binding"] for s in SEEDS}) > 5
    assert {render(s).answer["variant"] for s in SEEDS} == set(VARIANTS)


def test_the_overlay_is_the_generated_cohort_overlay_plus_access_files():
    r = render(5)
    trainees = sorted(p.split("/")[0] for p in r.files if p.endswith("/namespace.yaml"))
    real = {str(p.relative_to(Path("cohort"))): t
            for p, t in cohort_files(trainees, Path("cohort"), base_dir=Path("cohort/base")).items()}
    assert {p: t for p, t in r.files.items() if p in real and not p.endswith("kustomization.yaml")} == \
        {p: t for p, t in real.items() if not p.endswith("kustomization.yaml")}
    assert set(r.files) - set(real) == {*(f"{t}/access.yaml" for t in trainees), "cluster/clusterroles.yaml"}
    for t in trainees:
        kust = yaml.safe_load(r.files[f"{t}/kustomization.yaml"])
        assert "access.yaml" in kust["resources"] and kust["namespace"] == f"labkit-{t}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_review_with_labkit_rbac_finds_exactly_the_planted_grant(variant):
    for seed in SEEDS:
        r = render(seed, variant)
        found = review(r.files)
        assert len(found) == 1, (seed, found)
        assert matches(r.answer, found[0]["binding"], found[0]["subject"]) == (True, True)
        assert found[0]["namespace"] == r.answer["namespace"]


def test_the_verdicts_name_what_each_variant_gives():
    extra = {v: review(render(3, v).files)[0]["extra"] for v in VARIANTS}
    assert {"get secrets", "impersonate serviceaccounts"} <= set(extra["clusterrole-edit"])
    assert "create pods/exec" not in extra["clusterrole-edit"]  # the trainee Role has it already
    assert "create rolebindings.rbac.authorization.k8s.io" in extra["clusterrole-admin"]
    assert extra["secrets-to-serviceaccounts"] == ["get secrets", "list secrets"]
    assert "create pods/exec" in extra["exec-to-group"]
    assert "create deployments.apps" in extra["wrong-namespace"]  # the whole Role, to another trainee
    assert extra["wildcard-rule"] == ["* *.*"]


@pytest.mark.parametrize("decoy", DECOYS)
def test_decoys_grant_nothing_new(decoy):
    docs = access_review._decoy(decoy, "alice", list(NAMES))
    r = render(1)
    files = {**r.files, "alice/access.yaml": yaml.safe_dump_all(docs)}
    assert [f for f in review(files) if f["namespace"] == "labkit-alice"] == []


def test_names_say_nothing_planted_and_decoy_names_share_one_pool():
    for seed in SEEDS:
        r = render(seed)
        extra = [d["metadata"]["name"] for p, t in r.files.items() if p.endswith("access.yaml")
                 for d in yaml.safe_load_all(t) if d]
        assert set(extra) <= set(NAMES) and len(extra) == len(set(extra)) and r.answer["binding"] in extra
        assert not any(word in t for t in r.files.values() for word in ("variant", "planted", "decoy"))


def test_matches_accepts_the_usual_spellings():
    answer = {"binding": "break-glass", "namespace": "labkit-bob",
              "subject": {"kind": "Group", "name": "system:serviceaccounts"}}
    assert matches(answer, "labkit-bob/break-glass", "Group:system:serviceaccounts") == (True, True)
    assert matches(answer, "break-glass", {"kind": "Group", "name": "system:serviceaccounts"}) == (True, True)
    assert matches(answer, "labkit-trainee", "system:serviceaccounts") == (False, True)
    assert matches(answer, "break-glass", "bob") == (True, False)
    assert matches({}, "", "") == (False, False)


# --- the control endpoint: the box gets the files, never the answer ------------------------------
def test_a_box_may_ask_for_the_overlay_and_the_answer_stays_in_the_audit_log(tmp_path):
    authorise("access_review")
    assert OPERATIONS["access_review"] is True
    with pytest.raises(Refused):
        authorise("access_review_answer")
    endpoint = ControlEndpoint(SimpleNamespace(id="t1"), tmp_path / "s.sock", tmp_path / "audit.jsonl")
    first = endpoint.call("access_review", {})
    assert set(first) == {"files"} and first == endpoint.call("access_review", {})  # one seed per run
    text = yaml.safe_dump(first)
    (record, *_) = read_audit(tmp_path / "audit.jsonl")
    answer = record.result["answer"]
    assert record.op == "access_review" and answer["binding"] and "variant" not in text
    assert review(first["files"])[0]["binding"] == answer["binding"]
    other = ControlEndpoint(SimpleNamespace(id="t2"), tmp_path / "o.sock", tmp_path / "o.jsonl")
    assert other._review_seed != endpoint._review_seed


# --- the grader's checks ------------------------------------------------------------------------
class NotedSandbox:
    def __init__(self, **fields):
        self.fields = fields

    def evidence_records(self):
        return {"notes": [{"kind": "access-review", "fields": self.fields}] if self.fields else []}


def _audit(tmp_path, seed=9):
    endpoint = ControlEndpoint(SimpleNamespace(id="g"), tmp_path / "g.sock", tmp_path / "g.jsonl")
    endpoint._review_seed = seed
    endpoint.call("access_review", {})
    return read_audit(tmp_path / "g.jsonl"), render(seed).answer


def test_the_finding_scores_binding_and_subject_against_the_audit_log(tmp_path):
    audit, answer = _audit(tmp_path)
    right = NotedSandbox(binding=answer["binding"], subject=answer["subject"]["name"], grants="x", fix="y")
    assert check("access_review_finding", right, audit=audit, points=4).points == 4
    half = NotedSandbox(binding="labkit-trainee", subject=answer["subject"]["name"])
    assert check("access_review_finding", half, audit=audit, points=4).points == 2
    assert check("access_review_finding", NotedSandbox(binding="x", subject="y"), audit=audit, points=4).points == 0
    assert check("access_review_finding", NotedSandbox(), audit=audit, points=4).points == 0


def test_without_an_audit_log_only_this_sandboxs_practice_counts(tmp_path):
    answer = render(4).answer
    sb = NotedSandbox(binding=answer["binding"], subject=answer["subject"]["name"])
    assert check("access_review_finding", sb, audit=[], points=4).points == 0
    sb.__dict__["_practice_review"] = render(4)
    assert check("access_review_finding", sb, audit=[], points=4).points == 4
    audit, _ = _audit(tmp_path, seed=5)  # graded: the audit's answer, never the practice one
    assert check("access_review_finding", sb, audit=audit, points=4).points < 4


def test_the_memo_rubric_reads_every_part():
    exemplars = Path(__file__).resolve().parents[2] / "curriculum/facilitator/exemplars/access_review_memo"
    shares = {k: check("access_review_memo", None, text=(exemplars / f"{k}.md").read_text()).points
              for k in ("strong", "borderline", "weak")}
    assert shares["strong"] >= 0.9 and 0.35 <= shares["borderline"] <= 0.8 and shares["weak"] <= 0.25
