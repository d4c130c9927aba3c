"""The report's figures measure what the plan defines (the five figures the old report got
wrong), its text, JSON and HTML, and the ``labkit report`` command. Built on the synthetic
cohort of ``tests/cohortfixture.py``; see test_kpis.py for every figure of every trainee."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from cohortfixture import NOW, build_course
from labkit.cli.main import app
from labkit.report import build_report, level_for
from labkit.report.html import write_html


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return build_course(tmp_path_factory.mktemp("course"))


@pytest.fixture(scope="module")
def report(course):
    return build_report(course, now=NOW)


def test_levels_follow_the_documented_thresholds():
    assert [level_for(s) for s in (0.0, 0.49, 0.5, 0.74, 0.75, 0.89, 0.9, 1.0)] == [1, 1, 2, 2, 3, 3, 4, 4]


def test_time_to_first_safe_change_counts_from_the_cohort_start_on_ledger_production_evidence(report):
    # t01 earned full change-management points in lab 02 (day 14) and lab 03; that is sandbox practice.
    # Its first approved production change with a rollback plan is on day 33 of the cohort.
    t01 = report.trainee("t01")
    assert t01.skill("change-management").share == 1.0
    assert t01.kpi("time-to-first-safe-change").value == 33
    assert "CHG-t01-1 on day 33, approved by maria" in t01.kpi("time-to-first-safe-change").note
    # t04 has lab points but no production change at all: no value, however good lab 2 went
    assert report.trainee("t04").kpi("time-to-first-safe-change").value is None


def test_time_to_first_safe_change_needs_a_cohort(course):
    no_cohort = build_report(course, now=NOW, cohort=None)
    k = no_cohort.trainee("t01").kpi("time-to-first-safe-change")
    assert k.value is None and "no cohort start date" in k.note


def test_triage_accuracy_counts_only_cells_marked_as_triage_hypotheses(report):
    # Lab 01's triage-evidence-log and lab 06's triage-lineage-record are graded "triage-" cells without the
    # marker: they are not hypotheses. t04 earned 60 % of every triage- cell's points, but its first hypotheses
    # were right in 2 of the 4 incidents (lab 04 provider vs config, w12 capacity vs provider).
    t04 = report.trainee("t04").kpi("triage-accuracy")
    assert (t04.value, t04.note) == (0.5, "2 of 4 incidents' first hypothesis named the right class")


def test_recall_regressions_caught_include_the_ones_the_labs_inject(report):
    # Labs 05, 06 and 08 serve a regression from a locked cell; a perfect trainee takes each out of traffic.
    t01 = report.trainee("t01").kpi("recall-regressions-caught")
    assert t01.value == 1.0 and t01.note == "4 of 4 regressions kept from serving (3 injected by labs)"
    t08 = report.trainee("t08").kpi("recall-regressions-caught")  # never rolled lab 05 back
    assert t08.value == 0.5 and t08.note.startswith("2 of 4")


def test_change_failure_rate_leaves_out_lab05s_instructed_rc1_and_lab10s_load_tests(report):
    # Lab changes: 06, 08, 10 (the ship; two task-size load tests left out), 11 (the held-back candidate failed,
    # then the release), 13; lab 05's rc1 attempt (failed by design) is the lab's. Plus two production changes.
    t01 = report.trainee("t01").kpi("change-failure-rate")
    assert (t01.value, t01.note) == (0.125, "1 of 8 changes failed or were rolled back (1 of 6 in labs 05-13)")


def test_escalation_accuracy_is_a_field_by_field_match_not_rubric_points(report):
    # t04 earned 60 % of the escalation cells' points; of its 4 decisions of the last 30 days one escalated
    # after the rubric's 15 minutes: 3 of 4 match on all four fields.
    t04 = report.trainee("t04").kpi("escalation-accuracy")
    assert t04.value == 0.75 and t04.note.startswith("3 of 4 decisions")


def test_every_kpi_is_printed_with_its_definition_inputs_and_target(report):
    md = report.to_markdown()
    assert "| KPI | value | target | meets | counted | definition | inputs |" in md
    for k in report.trainee("t01").kpis:
        assert k.definition and k.inputs and k.target is not None
    row = next(line for line in md.splitlines() if line.startswith("| Time to first safe change | 33 days"))
    assert "<= 37 days" in row and "Days from day 1" in row and "ledger:" in row
    assert "## Red zones (fewer than two trainees at level 3)" in md and "- drift-detection: t01 at level 3" in md
    data = json.loads(report.to_json())
    assert len(data["trainees"]) == 12 and data["red_zones"][0]["capability"] == "drift-detection"


def test_html_page_is_self_contained_with_plots_and_csv(report, tmp_path):
    page = write_html(report, tmp_path / "site")
    text = page.read_text()
    assert 'id="heatmap"' in text and 'id="red-zones"' in text and 'id="kpi-table"' in text
    assert not re.search(r'(src|href)="(https?:)?//', text), "the page must not load anything remote"
    for name in re.findall(r'(?:src|href)="([^"]+)"', text):
        assert (tmp_path / "site" / name).is_file(), name
    assert (tmp_path / "site" / "heatmap-week13.png").is_file()
    assert (tmp_path / "site" / "kpi-change-failure-rate.png").read_bytes()[:4] == b"\x89PNG"
    skills = (tmp_path / "site" / "skills.csv").read_text().splitlines()
    assert skills[0].startswith("trainee,role_path,mentor,capability,level") and len(skills) == 1 + 12 * 14


def test_cli_report_json_and_html(course, tmp_path, monkeypatch):
    monkeypatch.delenv("LABKIT_GRADEBOOK_URL", raising=False)
    out = CliRunner().invoke(app, ["report", "--root", str(course), "--json", "--as-of", NOW.isoformat(),
                                   "--html", str(tmp_path / "page")])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["day"] == 90 and {k["id"] for k in data["trainees"][0]["kpis"]} >= {"shadow-to-own-ratio"}
    assert (tmp_path / "page" / "index.html").is_file()
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "nbgrader_config.py").write_text("c = get_config()  # noqa: F821\n")
    empty = CliRunner().invoke(app, ["report", "--root", str(tmp_path / "empty")])
    assert empty.exit_code == 2 and "no gradebook" in empty.output
