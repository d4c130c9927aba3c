"""The fault catalog is validated before anything runs, with every problem named."""

from __future__ import annotations

import copy

import pytest
import yaml

from sandbox.errors import UnknownChoice
from sandbox.faults import CatalogInvalid, load_catalog
from sandbox.faults.catalog import CATALOG_PATH, parse_catalog

REQUIRED_FAULTS = {
    "bad-rollout", "stale-index", "corrupt-index", "model-index-mismatch", "provider-outage",
    "saturation", "accelerator-shortfall", "query-drift", "poisoned-document", "config-drift", "lineage-break",
}


def raw():
    return yaml.safe_load(CATALOG_PATH.read_text())


def test_shipped_catalog_is_valid_and_complete():
    catalog = load_catalog()
    assert set(catalog.ids()) == REQUIRED_FAULTS
    for fault in catalog.faults:
        assert fault.signals and fault.steady_state and fault.remediation
        assert fault.breaks and "  " not in fault.breaks


def test_unknown_fault_names_the_valid_ones():
    with pytest.raises(UnknownChoice, match="valid: bad-rollout, stale-index"):
        load_catalog().get("disk-on-fire")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.pop("heal"), "missing field `heal`"),
        (lambda f: f.update(incident_class="weather"), "incident_class: 'weather' unknown; valid: rollout"),
        (lambda f: f.update(severity="p0"), "severity: 'p0' unknown; valid: sev1"),
        (lambda f: f.update(inject={"action": "deplo"}), "inject.action: 'deplo' is not a known action; valid:"),
        (lambda f: f.update(steady_state=[{"probe": "vibes"}]), "steady_state[0].probe: 'vibes' is not a known observation"),
        (lambda f: f.update(steady_state=[{"probe": "ready", "args": {"colour": 1}}]), "do not fit observation 'ready'"),
        (lambda f: f.update(signals=[{"kind": "smell", "what": "x"}]), "signals[0]: needs kind"),
        (lambda f: f.update(id="Bad_Id"), "id: must be kebab-case"),
        (lambda f: f.update(steady_state=[]), "steady_state: must list at least one probe"),
    ],
)
def test_each_problem_is_reported_in_plain_language(mutate, message):
    data = raw()
    mutate(data["faults"][1])
    with pytest.raises(CatalogInvalid) as info:
        parse_catalog(data)
    assert message in str(info.value)
    assert "faults[1] (stale-index)" in str(info.value) or "faults[1] (Bad_Id)" in str(info.value)  # its path


def test_all_problems_are_reported_at_once_and_duplicates_caught():
    data = raw()
    data["faults"][0]["severity"] = "urgent"
    data["faults"].append(copy.deepcopy(data["faults"][2]))
    with pytest.raises(CatalogInvalid) as info:
        parse_catalog(data)
    assert len(info.value.problems) == 2
    assert any("is used twice" in str(p) and p.path.endswith(".id") for p in info.value.problems)


def test_not_a_catalog_at_all():
    with pytest.raises(CatalogInvalid, match="list under `faults`"):
        parse_catalog(["nope"])
