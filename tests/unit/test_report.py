"""Skills matrix and KPIs from a synthetic nbgrader gradebook, live checks and game days."""

from __future__ import annotations

import datetime as dt
import json

import nbformat
import pytest
from nbgrader import api as nbgrader_api
from nbgrader.api import Gradebook

from labkit import gamedays
from labkit.plan import load_plan
from labkit.report import build_report, level_for
from sandbox.errors import UnknownChoice

# lab -> notebook -> [(grade_id, max points, cell type, capability declared in the source)]
LABS = {
    "lab02-probes-slos": ("lab02", [("slo-failed-rollout", 2, "code", "slo-readiness"),
                                    ("change-record", 1, "code", "change-management")]),
    "lab04-incident-triage": ("lab04", [("triage-first-hypothesis", 2, "markdown", None),
                                        ("escalation-1", 1, "markdown", None),
                                        ("escalation-2", 1, "markdown", None)]),
    "lab05-bad-rollout": ("lab05", [("rollback-serving", 2, "code", "model-rollback"),
                                    ("rollback-recall", 2, "code", None),  # mapped by live_checks
                                    ("change-plan", 1, "code", "change-management"),
                                    ("rollback-runbook", 2, "markdown", "model-rollback")]),
}
# student -> lab -> (timestamp, {grade_id: (auto, manual)}); missing grade = ungraded
SUBMISSIONS = {
    "alice": {
        "lab02-probes-slos": ("2026-01-05T10:00:00", {"slo-failed-rollout": (2, None), "change-record": (0, None)}),
        "lab04-incident-triage": ("2026-01-20T09:00:00", {"triage-first-hypothesis": (None, 2),
                                                          "escalation-1": (None, 1), "escalation-2": (None, 0)}),
        "lab05-bad-rollout": ("2026-02-06T10:00:00", {"rollback-serving": (2, None), "rollback-recall": (2, None),
                                                      "change-plan": (1, None), "rollback-runbook": (None, 2)}),
    },
    "bob": {
        "lab02-probes-slos": ("2026-01-06T12:00:00", {"slo-failed-rollout": (1, None), "change-record": (1, None)}),
        "lab04-incident-triage": ("2026-01-21T09:00:00", {"triage-first-hypothesis": (None, 0),
                                                          "escalation-1": (None, 1)}),
    },
}


def _write_sources(root):
    for lab, (nb_name, cells) in LABS.items():
        nb = nbformat.v4.new_notebook()
        for gid, points, kind, cap in cells:
            cell = nbformat.v4.new_code_cell("pass") if kind == "code" else nbformat.v4.new_markdown_cell("x")
            cell.metadata["nbgrader"] = {"grade": True, "solution": kind == "markdown", "grade_id": gid,
                                         "points": points, "schema_version": 3}
            if cap:
                cell.metadata["labkit"] = {"capability": cap}
            nb.cells.append(cell)
        (root / "source" / lab).mkdir(parents=True)
        nbformat.write(nb, str(root / "source" / lab / f"{nb_name}.ipynb"))
    live = {"check": "recall_at_least", "capability": "model-rollback", "assignment": "lab05-bad-rollout",
            "notebook": "lab05", "grade_id": "rollback-recall", "student": "alice", "passed": True}
    (root / "reports").mkdir()
    (root / "reports" / "live_checks.jsonl").write_text(json.dumps(live) + "\n")


def _write_gradebook(db_url):
    with Gradebook(db_url) as gb:
        for lab, (nb_name, cells) in LABS.items():
            gb.add_assignment(lab)
            gb.add_notebook(nb_name, lab)
            for gid, points, kind, _ in cells:
                gb.add_grade_cell(gid, nb_name, lab, max_score=points, cell_type=kind)
                if kind == "markdown":
                    gb.add_solution_cell(gid, nb_name, lab)
        for student, labs in SUBMISSIONS.items():
            gb.add_student(student)
            for lab, (stamp, scores) in labs.items():
                gb.add_submission(lab, student, timestamp=stamp)
                for gid, (auto, manual) in scores.items():
                    grade = gb.find_grade(gid, LABS[lab][0], lab, student)
                    grade.auto_score, grade.manual_score = auto, manual
                gb.db.commit()


def _write_gamedays(root):
    at = lambda hm: f"2026-03-02T{hm}:00+00:00"  # noqa: E731
    for incident, event, hm in [("gd1", "injected", "10:00"), ("gd1", "detected", "10:04"),
                                ("gd1", "mitigated", "10:10"), ("gd1", "resolved", "10:20"),
                                ("gd2", "injected", "11:00"), ("gd2", "detected", "11:10"),
                                ("gd2", "detected", "11:02"), ("gd2", "resolved", "11:30"),
                                ("gd3", "injected", "12:00")]:
        gamedays.record(root, "alice", incident, event, at=at(hm))


def _alembic_head() -> str:
    """What nbgrader asks a subprocess (`alembic heads`, needs PATH, ~10 s) on a new gradebook."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import _temp_alembic_ini

    with _temp_alembic_ini("sqlite:////tmp/unused.db") as ini:
        return ScriptDirectory.from_config(Config(ini)).get_current_head()


@pytest.fixture(scope="module")
def course_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    _write_sources(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nbgrader_api, "get_alembic_version", _alembic_head)
        _write_gradebook(f"sqlite:///{root / 'gradebook.db'}")
    _write_gamedays(root)
    return root


@pytest.fixture(scope="module")
def report(course_root):
    return build_report(course_root, plan=load_plan(), now=dt.datetime(2026, 3, 3, tzinfo=dt.UTC))


def test_cli_reads_the_course_it_is_pointed_at(course_root, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from labkit.cli.main import app

    monkeypatch.delenv("LABKIT_GRADEBOOK_URL", raising=False)
    (course_root / "nbgrader_config.py").write_text("c = get_config()  # noqa: F821\n")
    out = CliRunner().invoke(app, ["report", "--root", str(course_root), "--json"])
    assert out.exit_code == 0, out.output
    kpis = {k["id"]: k for k in json.loads(out.output)["trainees"][0]["kpis"]}
    assert {"change-failure-rate", "recall-regressions-caught", "mttr"} <= set(kpis)
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()  # noqa: F821\n")
    empty = CliRunner().invoke(app, ["report", "--root", str(tmp_path)])
    assert empty.exit_code == 2 and "no gradebook" in empty.output


def test_levels_follow_the_documented_thresholds():
    assert [level_for(s) for s in (0.0, 0.49, 0.5, 0.74, 0.75, 0.89, 0.9, 1.0)] == [1, 1, 2, 2, 3, 3, 4, 4]


def test_skills_matrix_shares_and_plan_caps(report):
    alice = report.trainee("alice")
    assert alice.weeks_completed == 5
    rollback = alice.skill("model-rollback")  # 6/6 points, but week 5 trains it to level 3
    assert (rollback.earned, rollback.possible, rollback.share) == (6, 6, 1.0)
    assert (rollback.level, rollback.target) == (3, 3)
    assert (alice.skill("slo-readiness").level, alice.skill("slo-readiness").target) == (2, 2)
    change = alice.skill("change-management")  # 0/1 in lab02 + 1/1 in lab05
    assert (change.share, change.level, change.target) == (0.5, 2, 3)
    assert alice.skill("incident-response").share == 0.5  # escalation-* cells, by prefix
    assert alice.skill("observability-triage").level == 2  # triage 2/2, capped by week 4's level 2
    assert alice.skill("drift-detection").level is None  # never assessed


def test_skills_matrix_of_a_trainee_behind_schedule(report):
    bob = report.trainee("bob")
    assert bob.weeks_completed == 4
    assert bob.skill("slo-readiness").share == 0.5 and bob.skill("slo-readiness").level == 2
    assert bob.skill("change-management").level == 2  # 1/1 -> 4, capped at week 3's level 2
    assert bob.skill("incident-response").possible == 1  # ungraded escalation-2 left out
    assert bob.skill("model-rollback").level is None and bob.skill("model-rollback").target == 0


def test_kpis(report):
    alice, bob = report.trainee("alice"), report.trainee("bob")
    assert alice.kpi("time-to-first-safe-change").value == 32.0  # Jan 5 10:00 -> Feb 6 10:00
    assert alice.kpi("time-to-first-safe-change").meets is True  # target 37 days
    assert bob.kpi("time-to-first-safe-change").value == 0.0  # his first lab was already safe
    assert alice.kpi("escalation-accuracy").value == 0.5 and alice.kpi("triage-accuracy").value == 1.0
    assert bob.kpi("escalation-accuracy").value == 1.0 and bob.kpi("triage-accuracy").value == 0.0
    assert bob.kpi("triage-accuracy").meets is False
    assert alice.kpi("mttd").value == 3.0  # median of 4 and 2 (the earliest detection counts)
    assert alice.kpi("mttr").value == 25.0 and alice.kpi("mttr").meets is False  # target 20
    assert bob.kpi("mttd").value is None and bob.kpi("mttd").meets is None


def test_markdown_and_json(report):
    md = report.to_markdown()
    assert "## alice" in md and "| model-rollback | 3 | 3 | 100% | 6/6 |" in md
    assert "| Time to first safe change | 32 days | 37 | yes |" in md
    data = json.loads(report.to_json())
    assert [t["trainee"] for t in data["trainees"]] == ["alice", "bob"]


def test_gamedays_validate_events(tmp_path):
    with pytest.raises(UnknownChoice, match="injected, detected, mitigated, resolved"):
        gamedays.record(tmp_path, "alice", "gd1", "fixed")
    gamedays.record(tmp_path, "alice", "gd1", "injected", at="2026-03-02T10:00:00+00:00")
    gamedays.record(tmp_path, "alice", "gd1", "resolved", at="2026-03-02T10:45:00+00:00")
    assert gamedays.mttd_mttr(gamedays.load(tmp_path)) == (None, 45.0)
