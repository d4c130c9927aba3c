"""The course plan: the shipped plan is valid, and a broken plan is rejected by path.

Each rejection test breaks one thing in a fresh copy of the shipped plan and asserts the
problem is reported at the right path with a message a curriculum author can act on.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import jsonschema
import pytest
import typer
import yaml
from rich.console import Console
from typer.testing import CliRunner

from labkit import plan as plan_mod
from labkit.plan import (
    CATEGORIES,
    MENTORSHIP_STRUCTURES,
    PLAN_PATH,
    REQUIRED_CAPABILITIES,
    REQUIRED_KPIS,
    SCHEMA_PATH,
    PlanError,
    calendar,
    describe_week,
    load_plan,
    parse_plan,
)
from labkit.cli.plan import plan as plan_command
from sandbox.errors import InvalidInput, LabkitError, UnknownChoice

LAB_IDS = [
    "lab01-first-deploy", "lab02-probes-slos", "lab03-new-index", "lab04-incident-triage",
    "lab05-bad-rollout", "lab06-stale-index-lineage", "lab07-drift-alerting", "lab08-poisoned-corpus",
    "lab09-provider-outage", "lab10-capacity", "lab11-governed-release", "lab12-game-day", "lab13-capstone",
]


@cache
def _shipped_yaml() -> Any:
    return yaml.safe_load(PLAN_PATH.read_text(encoding="utf-8"))


@pytest.fixture
def raw() -> Any:
    """A fresh, mutable copy of the shipped plan as YAML data."""
    return copy.deepcopy(_shipped_yaml())


@pytest.fixture(scope="module")
def shipped():
    return load_plan()


def problems(data: Any) -> list[str]:
    with pytest.raises(PlanError) as info:
        parse_plan(data, source="test-plan.yaml")
    assert info.value.problems, "a PlanError must list its problems"
    return [str(p) for p in info.value.problems]


def assert_problem(data: Any, path: str, *fragments: str) -> str:
    """The plan is rejected with a problem at ``path`` whose message has every fragment."""
    found = problems(data)
    at_path = [p for p in found if p.startswith(f"{path}: ")]
    assert at_path, f"no problem at {path!r}; got:\n" + "\n".join(found)
    matching = [p for p in at_path if all(f in p for f in fragments)]
    assert matching, f"problems at {path!r} lack {fragments!r}:\n" + "\n".join(at_path)
    return matching[0]


def week_index(data: Any, number: int) -> int:
    return next(i for i, w in enumerate(data["weeks"]) if w["number"] == number)


def cap_index(week: dict[str, Any], cap_id: str) -> int:
    return next(j for j, t in enumerate(week["capabilities"]) if t["id"] == cap_id)


# --- the shipped plan ---------------------------------------------------------------------


def test_schema_is_a_valid_draft_2020_12_schema():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_shipped_plan_matches_the_schema(raw):
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(plan_mod._jsonable(raw)))
    assert errors == [], [e.message for e in errors]


def test_shipped_plan_passes_the_cross_checks(shipped):
    assert plan_mod.cross_check(shipped) == []


def test_labs_are_exactly_the_thirteen_of_the_issue_one_per_week(shipped):
    assert shipped.lab_ids() == LAB_IDS
    assert [w.number for w in shipped.weeks] == list(range(1, 14))


def test_lessons_are_week_numbered_notebooks_named_after_their_lab(shipped):
    for w in shipped.weeks:
        assert w.lesson == f"week{w.number:02d}-{w.lab.split('-', 1)[1]}.ipynb"


def test_three_phases_with_the_issue_s_days_and_tightening_guardrails(shipped):
    assert [(p.id, p.days) for p in shipped.phases] == [
        ("literacy", (1, 30)), ("supervised", (31, 60)), ("ownership", (61, 90))]
    assert [p.guardrails.production_access for p in shipped.phases] == [
        "read-only", "supervised-change", "owned-change-with-gate"]
    assert [p.max_level for p in shipped.phases] == [2, 3, 4]
    for p in shipped.phases:
        assert p.goals and p.exit_criteria and p.guardrails.may and p.guardrails.may_not


def test_skills_matrix_covers_the_issue_s_capabilities_with_four_observable_levels(shipped):
    ids = [c.id for c in shipped.capabilities]
    assert set(REQUIRED_CAPABILITIES) <= set(ids)
    assert list(shipped.capabilities_by_category()) == list(CATEGORIES)
    assert all(shipped.capabilities_by_category().values())
    for c in shipped.capabilities:
        assert sorted(c.levels) == [1, 2, 3, 4], c.id
        for n, level in c.levels.items():
            assert level.level == n and level.descriptor.strip() and level.evidence.strip(), (c.id, n)


def test_every_capability_reaches_at_least_supervised_production_by_day_90(shipped):
    low = {c.id: shipped.level_after(c.id, 90) for c in shipped.capabilities}
    assert {cid: lvl for cid, lvl in low.items() if lvl < 3} == {}


def test_kpis_carry_what_the_report_needs(shipped):
    assert set(REQUIRED_KPIS) <= {k.id for k in shipped.kpis}
    units = {k.id: (k.unit, k.direction) for k in shipped.kpis}
    assert units["time-to-first-safe-change"] == ("days", "lower-is-better")
    assert units["mttd"] == units["mttr"] == ("minutes", "lower-is-better")
    assert units["escalation-accuracy"] == units["triage-accuracy"] == ("ratio", "higher-is-better")
    assert shipped.kpi("mttr").meets(18) and not shipped.kpi("mttr").meets(25)
    assert shipped.kpi("triage-accuracy").meets(0.85) and not shipped.kpi("triage-accuracy").meets(0.5)


def test_the_final_gate_requires_the_program_targets(shipped):
    final = [t for e in shipped.phase("ownership").exit_criteria for t in e.kpis]
    assert {t.id for t in final} >= {"mttd", "mttr", "escalation-accuracy", "triage-accuracy"}
    for t in final:
        assert t.threshold == shipped.kpi(t.id).target, t.id


def test_each_mentorship_structure_is_described_and_used(shipped):
    assert sorted(s.id for s in shipped.mentorship_structures) == sorted(MENTORSHIP_STRUCTURES)
    assert {w.mentorship.structure for w in shipped.weeks} == set(MENTORSHIP_STRUCTURES)


def test_game_days_time_mttd_and_mttr_in_timed_scenarios(shipped):
    gd = shipped.game_days
    assert {"mttd", "mttr"} <= set(gd.kpis)
    assert [s["week"] for s in gd.schedule if s["timed"]] == [8, 10, 12, 13]
    assert {"incident-commander", "scribe", "game-master"} <= {r["id"] for r in gd.roles}
    assert "injected" in gd.timing["mttd"].lower() and "injected" in gd.timing["mttr"].lower()


# --- public API ---------------------------------------------------------------------------------


def test_lookups_return_the_named_item(shipped):
    assert shipped.week(5).lab == "lab05-bad-rollout"
    assert shipped.week(13).phase == "ownership"
    assert shipped.capability("model-rollback").category == "operational"
    assert shipped.capability("change-management").levels[4].descriptor


def test_unknown_week_and_capability_name_the_valid_choices(shipped):
    with pytest.raises(UnknownChoice, match=r"unknown week 14; valid: 1, 2, .*13"):
        shipped.week(14)
    with pytest.raises(UnknownChoice, match=r"unknown capability 'rollbacks'; valid: .*model-rollback"):
        shipped.capability("rollbacks")


def test_to_dict_is_json_with_levels_as_string_keys(shipped):
    data = json.loads(json.dumps(shipped.to_dict()))
    assert [w["lab"] for w in data["weeks"]] == LAB_IDS
    assert sorted(data["capabilities"][0]["levels"]) == ["1", "2", "3", "4"]


def test_calendar_has_one_row_per_week_with_lab_phase_mentorship_and_kpi(shipped):
    console = Console(record=True, width=220)
    console.print(calendar(shipped))
    text = console.export_text()
    assert calendar(shipped).row_count == 13
    for w in shipped.weeks:
        line = next(ln for ln in text.splitlines() if f" {w.lab} " in ln)
        assert f" {w.days[0]}-{w.days[1]} " in line and w.phase in line and w.kpi in line
        assert w.mentorship.structure in line and f"{w.capabilities[0].id}={w.capabilities[0].level}" in line


def test_calendar_of_one_week(shipped):
    table = calendar(shipped, week=3)
    console = Console(record=True, width=220)
    console.print(table)
    assert table.row_count == 1 and "lab03-new-index" in console.export_text()


def test_describe_week_quotes_the_descriptor_of_the_target_level(shipped):
    text = describe_week(shipped, 5)
    assert text.startswith("Week 5: ")
    assert shipped.capability("model-rollback").levels[3].descriptor in text
    assert "runbooks/model-rollback.md" in text and "mttr" in text


# --- rejected plans -----------------------------------------------------------------------------


def test_unknown_capability_in_a_week(raw):
    raw["weeks"][3]["capabilities"][1]["id"] = "foo"
    msg = assert_problem(raw, "weeks[3].capabilities[1]", "unknown capability 'foo'; valid:")
    assert "model-rollback" in msg


def test_gap_in_week_numbers(raw):
    raw["weeks"][4]["number"] = 6
    assert_problem(raw, "weeks[4].number", "expected week 5, got week 6")


def test_missing_week(raw):
    del raw["weeks"][7]
    assert_problem(raw, "weeks", "needs at least 13 item(s), has 12")


def test_gap_in_days_between_weeks(raw):
    raw["weeks"][5]["days"] = [39, 44]
    assert_problem(raw, "weeks[5].days", "starts on day 39; expected day 38")


def test_week_outside_its_phase(raw):
    raw["weeks"][3]["days"] = [22, 31]
    raw["weeks"][4]["days"] = [32, 37]
    assert_problem(raw, "weeks[3].days", "days 22-31 of week 4 fall outside phase 'literacy' (days 1-30)")


def test_last_week_must_end_on_the_last_day(raw):
    raw["weeks"][12]["days"] = [85, 89]
    assert_problem(raw, "weeks[12].days", "ends on day 89; the program runs to day 90")


def test_level_descriptor_missing(raw):
    del raw["capabilities"][2]["levels"][3]
    assert_problem(raw, "capabilities[2].levels", "level 3 descriptor is missing")


def test_level_evidence_blank(raw):
    raw["capabilities"][0]["levels"][2]["evidence"] = "   "
    assert_problem(raw, "capabilities[0].levels.2.evidence", "must not be empty")


def test_unknown_kpi_in_a_week(raw):
    raw["weeks"][0]["kpi"] = "uptime"
    assert_problem(raw, "weeks[0].kpi", "unknown KPI 'uptime'; valid:", "mttr")


def test_unknown_kpi_in_an_exit_criterion(raw):
    raw["phases"][2]["exit_criteria"][0]["kpis"][0]["id"] = "mtbf"
    assert_problem(raw, "phases[2].exit_criteria[0].kpis[0]", "unknown KPI 'mtbf'")


def test_duplicate_lab_id(raw):
    raw["weeks"][1]["lab"] = raw["weeks"][0]["lab"]
    assert_problem(raw, "weeks[1].lab", "duplicate lab id 'lab01-first-deploy' (first at weeks[0].lab)")


def test_lab_number_must_match_the_week(raw):
    raw["weeks"][2]["lab"] = "lab04-new-index"
    assert_problem(raw, "weeks[2].lab", "must start with 'lab03-'")


def test_lab_id_form(raw):
    raw["weeks"][2]["lab"] = "Lab 3"
    assert_problem(raw, "weeks[2].lab", "'Lab 3' does not have the expected form", "labNN-<slug>")


# --- graded checks and track labs -------------------------------------------------------------


def test_a_week_whose_evidence_names_a_check_that_does_not_exist(raw):
    w5 = week_index(raw, 5)
    raw["weeks"][w5]["checks"][1]["check"] = "rollback_within_10_minutes"
    found = assert_problem(raw, f"weeks[{w5}].checks[1].check", "no check 'rollback_within_10_minutes' exists",
                           "valid: access_review_finding, access_review_memo, adr_parts")
    assert "rolled_back" in found


def test_a_track_labs_check_that_does_not_exist(raw):
    w11 = week_index(raw, 11)
    raw["weeks"][w11]["track_labs"][0]["checks"][0]["check"] = "auto_rollback_fired"
    assert_problem(raw, f"weeks[{w11}].track_labs[0].checks[0].check", "no check 'auto_rollback_fired' exists")


def test_the_kind_of_a_graded_check_must_match_what_it_reads(raw):
    w5 = week_index(raw, 5)
    raw["weeks"][w5]["checks"][0]["kind"] = "rubric"
    raw["weeks"][w5]["checks"][3]["kind"] = "live"
    assert_problem(raw, f"weeks[{w5}].checks[0].kind", "reads live state, not a written answer")
    assert_problem(raw, f"weeks[{w5}].checks[3].kind", "'runbook_sections' judges a written answer")


def test_a_week_lists_each_grade_cell_once(raw):
    w5 = week_index(raw, 5)
    raw["weeks"][w5]["checks"].append(dict(raw["weeks"][w5]["checks"][0]))
    assert_problem(raw, f"weeks[{w5}].checks[4].grade_id", "grade cell 'check-held' is listed twice")


def test_the_first_evidence_line_is_rendered_from_the_checks(shipped):
    w5 = shipped.week(5)
    assert w5.evidence[0].startswith("Lab 05 checks: the 1.1.0-rc1 fix-forward failed")
    assert "rubric-checked, mentor decides: the rollback runbook" in w5.evidence[0]
    assert "10 minutes" not in " ".join(w5.evidence[0:1])
    assert all(w.checks and w.lab_timebox_minutes >= 15 for w in shipped.weeks)


def test_track_labs_carry_their_weeks_number_and_unique_ids(raw):
    w9, w10 = week_index(raw, 9), week_index(raw, 10)
    raw["weeks"][w9]["track_labs"][0]["lab"] = "lab08-vendor-risk"
    raw["weeks"][w10]["track_labs"][0]["lesson"] = raw["weeks"][w10]["lesson"]
    assert_problem(raw, f"weeks[{w9}].track_labs[0].lab", "must start with 'lab09-'")
    assert_problem(raw, f"weeks[{w10}].track_labs[0].lesson", "duplicate lesson 'week10-capacity.ipynb'",
                   f"first at weeks[{w10}].lesson")


def test_track_labs_use_known_capabilities_and_their_phases_structures(raw):
    w6, w13 = week_index(raw, 6), week_index(raw, 13)
    raw["weeks"][w6]["track_labs"][0]["capabilities"][0]["level"] = 4
    raw["weeks"][w13]["track_labs"][0]["mentorship"]["structure"] = "shadowing"
    raw["weeks"][w13]["track_labs"][0]["capabilities"][0]["id"] = "mentoring"
    assert_problem(raw, f"weeks[{w6}].track_labs[0].capabilities[0]", "above what phase 'supervised' allows")
    assert_problem(raw, f"weeks[{w13}].track_labs[0].mentorship.structure", "'shadowing' is not used in phase 'ownership'")
    assert_problem(raw, f"weeks[{w13}].track_labs[0].capabilities[0]", "unknown capability 'mentoring'")


def test_the_tracks_train_every_item_of_the_leadership_and_governance_issue(shipped):
    """Each item maps to a lab, a rubric check, a capability and an artifact."""
    by_check = {c.check: (w.number, t) for w in shipped.weeks for t in w.track_labs for c in t.checks}
    wanted = {"design_review": "leadership", "adr_parts": "leadership", "sbi_feedback": "leadership",
              "retro_css": "leadership", "roadmap_framing": "leadership", "prioritisation_decision": "leadership",
              "vendor_risk": "governance", "data_classification": "governance",
              "access_review_memo": "governance"}
    for check, track in wanted.items():
        assert check in by_check, f"no track lab is graded with {check}"
        _, lab = by_check[check]
        assert lab.track == track and lab.capabilities and lab.artifact_file
    assert by_check["sbi_feedback"][0] == 12, "feedback follows the game day"
    assert shipped.all_lab_ids()[:2] == ["lab01-first-deploy", "lab02-probes-slos"]
    ids = shipped.all_lab_ids()
    in_course = sorted(p.name for p in (PLAN_PATH.parents[1] / "labs" / "source").iterdir() if p.is_dir())
    assert len(ids) == len(set(ids)) and sorted(ids) == in_course, "every lab once, and only the course's"
    assert shipped.week_of_lab("lab11-design-review").number == 11
    assert [c.check for c in shipped.checks_of("lab12-feedback-retro")] == ["sbi_feedback", "retro_css"]


def test_the_accelerator_simulation_is_an_operations_track_lab_graded_live(shipped):
    by_check = {c.check: (w.number, t) for w in shipped.weeks for t in w.track_labs for c in t.checks}
    week, lab = by_check["pool_holds_slo"]
    assert (week, lab.track, lab.lab) == (10, "operations", "lab10-accelerator-pool")
    assert {c.check for c in lab.checks} == {"pool_holds_slo", "pool_within_budget", "runbook_sections"}


def test_all_five_mentoring_structures_are_placed_with_office_hours_among_them(shipped):
    placed = {w.mentorship.structure for w in shipped.weeks} | \
             {t.mentorship.structure for w in shipped.weeks for t in w.track_labs}
    assert placed == set(MENTORSHIP_STRUCTURES)
    office = [w.number for w in shipped.weeks if w.mentorship.structure == "office-hours"]
    assert office and all(shipped.week(n).phase == "ownership" for n in office)


def test_level_above_what_the_phase_allows(raw):
    raw["weeks"][0]["capabilities"][0]["level"] = 3
    assert_problem(raw, "weeks[0].capabilities[0]", "level 3", "above what phase 'literacy' allows", "read-only")


def test_target_level_going_down(raw):
    w7, w10 = week_index(raw, 7), week_index(raw, 10)
    assert raw["weeks"][w7]["capabilities"][cap_index(raw["weeks"][w7], "observability-triage")]["level"] == 3
    j = cap_index(raw["weeks"][w10], "observability-triage")
    raw["weeks"][w10]["capabilities"][j]["level"] = 2
    assert_problem(raw, f"weeks[{w10}].capabilities[{j}]", "below level 3 already reached in week 7")


def test_exit_criterion_requiring_a_level_no_week_reaches_in_time(raw):
    raw["phases"][1]["exit_criteria"][0]["capabilities"].append({"id": "inference-capacity", "level": 3})
    assert_problem(raw, "phases[1].exit_criteria[0].capabilities[1]",
                   "requires 'inference-capacity' at level 3, but the weeks up to day 60 train it only to level 0")


def test_exit_criterion_tied_to_nothing(raw):
    criterion = raw["phases"][0]["exit_criteria"][0]
    criterion.pop("capabilities")
    criterion.pop("kpis")
    assert_problem(raw, "phases[0].exit_criteria[0]", "names no capability level and no KPI")


def test_mentorship_structure_outside_its_phases(raw):
    raw["weeks"][0]["mentorship"]["structure"] = "office-hours"
    assert_problem(raw, "weeks[0].mentorship.structure", "'office-hours' is not used in phase 'literacy'")


def test_unknown_mentorship_structure(raw):
    raw["weeks"][0]["mentorship"]["structure"] = "lunch"
    assert_problem(raw, "weeks[0].mentorship.structure", "'lunch' is not allowed; valid:", "reverse-shadowing")


def test_missing_required_capability(raw):
    raw["capabilities"] = [c for c in raw["capabilities"] if c["id"] != "drift-detection"]
    assert_problem(raw, "capabilities", "missing required capability 'drift-detection'")


def test_capability_no_week_trains(raw):
    extra = copy.deepcopy(raw["capabilities"][0])
    extra["id"] = "vector-db-tuning"
    raw["capabilities"].append(extra)
    n = len(raw["capabilities"]) - 1
    assert_problem(raw, f"capabilities[{n}]", "'vector-db-tuning' is not trained in any week")


def test_missing_required_field(raw):
    del raw["weeks"][2]["runbook_artifact"]
    assert_problem(raw, "weeks[2]", "missing required field 'runbook_artifact'")


def test_unknown_field(raw):
    raw["weeks"][0]["labs"] = ["lab01-first-deploy"]
    assert_problem(raw, "weeks[0]", "unknown field 'labs'; valid:", "lab")


def test_ratio_target_above_one(raw):
    i = next(i for i, k in enumerate(raw["kpis"]) if k["id"] == "triage-accuracy")
    raw["kpis"][i]["target"] = 80
    assert_problem(raw, f"kpis[{i}].target", "80 is not a ratio from 0 to 1")


def test_runbook_extended_before_it_is_written(raw):
    w = week_index(raw, 12)
    assert raw["weeks"][w]["runbook_artifact"]["action"] == "extend"
    raw["weeks"][w]["runbook_artifact"]["file"] = "runbooks/never-written.md"
    assert_problem(raw, f"weeks[{w}].runbook_artifact.action",
                   "extends runbooks/never-written.md, which no earlier week writes")


def test_gap_between_phases(raw):
    raw["phases"][1]["days"] = [32, 60]
    assert_problem(raw, "phases[1].days", "phase 'supervised' starts on day 32; expected day 31")


def test_missing_required_kpi(raw):
    raw["kpis"] = [k for k in raw["kpis"] if k["id"] != "escalation-accuracy"]
    assert_problem(raw, "kpis", "missing required KPI 'escalation-accuracy'")


def test_kpi_no_week_moves(raw):
    w = week_index(raw, 1)
    assert [x["kpi"] for x in raw["weeks"]].count(raw["weeks"][w]["kpi"]) == 1
    raw["weeks"][w]["kpi"] = "mttd"
    i = next(i for i, k in enumerate(raw["kpis"]) if k["id"] == "time-to-first-safe-change")
    assert_problem(raw, f"kpis[{i}]", "no week names KPI 'time-to-first-safe-change' as the one it moves")


def test_game_days_must_measure_mttr_with_known_kpis(raw):
    raw["game_days"]["kpis"] = ["mttd", "uptime"]
    assert_problem(raw, "game_days.kpis[1]", "unknown KPI 'uptime'")
    assert_problem(raw, "game_days.kpis", "must include 'mttr'")


def test_game_days_need_a_timed_scenario(raw):
    for s in raw["game_days"]["schedule"]:
        s["timed"] = False
    assert_problem(raw, "game_days.schedule", "no timed game day")


def test_every_problem_is_reported_at_once(raw):
    raw["weeks"][3]["capabilities"][1]["id"] = "foo"
    raw["weeks"][0]["kpi"] = "uptime"
    raw["weeks"][5]["days"] = [39, 44]
    found = problems(raw)
    assert {p.split(": ", 1)[0] for p in found} >= {"weeks[3].capabilities[1]", "weeks[0].kpi", "weeks[5].days"}


# --- the file edge and the CLI -------------------------------------------------------------------


def test_load_plan_names_the_file_and_counts_problems(raw, tmp_path):
    assert raw["weeks"][1]["kpi"] == raw["weeks"][6]["kpi"] == "mttd"  # so only one problem
    raw["weeks"][1]["kpi"] = "uptime"
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(PlanError) as info:
        load_plan(path)
    assert isinstance(info.value, InvalidInput) and isinstance(info.value, LabkitError)
    assert info.value.exit_code == 2
    assert str(info.value).startswith(f"{path} is not a valid course plan (1 problem):")
    assert "\n  weeks[1].kpi: unknown KPI 'uptime'" in str(info.value)


def test_load_plan_reports_yaml_syntax_with_line_and_column(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("title: ok\nweeks: [1, 2\nphases: []\n", encoding="utf-8")
    with pytest.raises(PlanError, match=r"line \d+, column \d+: not valid YAML"):
        load_plan(path)


def test_load_plan_reports_a_missing_file(tmp_path):
    with pytest.raises(PlanError, match="file not found"):
        load_plan(tmp_path / "nope.yaml")


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(plan_command)
    return app


def test_cli_prints_the_calendar():
    result = CliRunner().invoke(_cli(), [])
    assert result.exit_code == 0, result.output
    for lab in LAB_IDS:
        assert lab in result.output


def test_cli_prints_json_and_one_week():
    result = CliRunner().invoke(_cli(), ["--json"])
    assert result.exit_code == 0, result.output
    assert [w["lab"] for w in json.loads(result.output)["weeks"]] == LAB_IDS
    result = CliRunner().invoke(_cli(), ["--json", "--week", "9"])
    assert json.loads(result.output)["lab"] == "lab09-provider-outage"
    result = CliRunner().invoke(_cli(), ["--week", "9"])
    assert result.exit_code == 0 and result.output.startswith("Week 9: ")


def test_cli_rejects_an_unknown_week_with_the_valid_ones():
    result = CliRunner().invoke(_cli(), ["--week", "14"])
    assert result.exit_code == 2
    assert "unknown week 14; valid: 1, 2" in result.output
    assert "Traceback" not in result.output


def test_cli_reports_a_broken_plan_by_path(raw, tmp_path, monkeypatch):
    raw["weeks"][4]["number"] = 6
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.setattr(plan_mod, "PLAN_PATH", path)
    result = CliRunner().invoke(_cli(), [])
    assert result.exit_code == 2
    assert "weeks[4].number: expected week 5, got week 6" in result.output
