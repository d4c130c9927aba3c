"""Levels 3 and 4 name the ledger evidence they need; the plan loader refuses one that does not."""

from __future__ import annotations

import copy

import pytest
import yaml

from labkit.plan import PLAN_PATH, PlanError, load_plan, parse_plan

RAW = yaml.safe_load(PLAN_PATH.read_text())


def _with(change) -> dict:
    raw = copy.deepcopy(RAW)
    change(raw)
    return raw


def test_every_level_3_and_4_of_the_plan_names_ledger_evidence():
    plan = load_plan()
    for cap in plan.capabilities:
        for level in (3, 4):
            assert any(r.ledger for r in cap.levels[level].requires), (cap.id, level)
        assert not cap.levels[1].requires and not cap.levels[2].requires
    assert plan.capability("change-management").levels[4].requires[1].kpi == "change-failure-rate"


def test_a_level_3_without_ledger_evidence_is_refused():
    raw = _with(lambda r: r["capabilities"][0]["levels"][3].pop("requires"))
    with pytest.raises(PlanError, match=r"capabilities\[0\]\.levels\.3\.requires: level 3 of 'observability-triage'"
                                         " names no ledger evidence"):
        parse_plan(raw)


def test_requirements_name_known_kpis_and_only_sandbox_free_levels():
    raw = _with(lambda r: r["capabilities"][1]["levels"][4]["requires"].append({"kpi": "happiness"}))
    with pytest.raises(PlanError, match="unknown KPI 'happiness'"):
        parse_plan(raw)
    raw = _with(lambda r: r["capabilities"][1]["levels"][2].update(requires=[{"ledger": "runbook"}]))
    with pytest.raises(PlanError, match="level 2 of 'slo-readiness' is a sandbox level"):
        parse_plan(raw)


def test_the_plan_defines_every_kpi_the_report_computes():
    from labkit.report import KPI_FUNCTIONS

    assert set(KPI_FUNCTIONS) == {k.id for k in load_plan().kpis}
