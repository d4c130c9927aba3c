"""The facilitator's kit (``curriculum/facilitator/``): calibrated exemplars in their bands, a
facilitation plan for every week that matches the plan, and the scripts the plan relies on.

Every exemplar is scored with the real rubric check, so a change to a check that would move what
"strong", "borderline" or "weak" means fails here.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from offline_index import OfflineIndex

import graders
from labkit.plan import load_plan

KIT = Path(__file__).resolve().parents[2] / "curriculum" / "facilitator"
EXEMPLARS = KIT / "exemplars"
BANDS = {"strong": (0.9, 1.0), "borderline": (0.35, 0.8), "weak": (0.0, 0.25)}
EVIDENCE = json.loads((EXEMPLARS / "evidence-sample.json").read_text(encoding="utf-8"))
ALERT = "ModelAPIReadyzFailing /readyz 503 index-corrupt modelapi_ready 0 after restart"
PLAN = load_plan()


def _text_checks() -> list[str]:
    """Every registered check that judges a written answer."""
    return sorted(name for name in graders.CHECKS if "text" in inspect.signature(graders.CHECKS[name].fn).parameters)


def _score(check: str, text: str) -> graders.CheckResult:
    params = inspect.signature(graders.CHECKS[check].fn).parameters
    if check == "corpus_runbook":
        return graders.check(check, OfflineIndex(), text=text, alert=ALERT, incident_class="index")
    return graders.check(check, text=text, **({"evidence": EVIDENCE} if "evidence" in params else {}))


def test_every_rubric_check_has_its_three_exemplars():
    assert _text_checks() == sorted(p.name for p in EXEMPLARS.iterdir() if p.is_dir())
    for check in _text_checks():
        assert sorted(p.stem for p in (EXEMPLARS / check).glob("*.md")) == sorted(BANDS), check


@pytest.mark.parametrize("band", sorted(BANDS))
@pytest.mark.parametrize("check", _text_checks())
def test_each_exemplar_scores_in_its_band_with_the_real_check(check: str, band: str):
    result = _score(check, (EXEMPLARS / check / f"{band}.md").read_text(encoding="utf-8"))
    low, high = BANDS[band]
    share = result.points / result.max_points
    assert low <= share <= high, f"{check}/{band}.md scores {share:.2f}, outside {low}-{high}: {result.observed}"


def test_the_strong_exemplars_are_the_model_answers_the_track_labs_prove():
    import nbformat

    labs = Path(__file__).resolve().parents[2] / "labs" / "source"
    shared = {"lab12-feedback-retro": {"sbi-feedback": "sbi_feedback", "retro-css": "retro_css"},
              "lab13-roadmap": {"roadmap-proposal": "roadmap_framing"}}
    for lab, cells in shared.items():
        nb = nbformat.read(str(labs / lab / f"{lab}.ipynb"), as_version=4)
        by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}
        for grade_id, check in cells.items():
            assert by_id[grade_id].strip() == (EXEMPLARS / check / "strong.md").read_text().strip(), (lab, grade_id)


@pytest.mark.parametrize("week", PLAN.weeks, ids=lambda w: f"week{w.number:02d}")
def test_every_week_has_a_facilitation_plan_for_its_structure(week):
    text = (KIT / f"week{week.number:02d}.md").read_text(encoding="utf-8")
    assert text.startswith(f"# Week {week.number} facilitation plan - {week.title}")
    assert f"(`{week.mentorship.structure}`)" in text, "the plan names the week's mentoring structure"
    assert f"`{week.lab}`" in text and "## The session" in text and "## Evidence to record" in text
    for track in week.track_labs:
        assert f"## Track lab `{track.lab}`" in text and f"(`{track.mentorship.structure}`)" in text
        for c in track.checks:
            if c.kind == "rubric":
                assert f"`exemplars/{c.check}/`" in text, f"calibration pointer for {c.check}"


def test_the_scripts_cover_the_plans_game_days_roles_and_rotation():
    script = (KIT / "gameday-script.md").read_text(encoding="utf-8")
    for role in PLAN.game_days.roles:
        assert role["name"] in script, f"role {role['name']} missing from the game-day script"
    timed = [s["week"] for s in PLAN.game_days.schedule if s["timed"]]
    assert all(f"week {w}" in script for w in timed), "every timed game-day week has its row in the rotation"
    assert "labkit gameday start" in script and "--team" in (KIT / "README.md").read_text()
    for name in ("tabletop-week04.md", "tabletop-prioritisation.md", "hot-wash-template.md"):
        body = (KIT / name).read_text(encoding="utf-8")
        assert "## " in body and len(body) > 800, f"{name} is a script, not a stub"
    assert "rotat" in (KIT / "tabletop-prioritisation.md").read_text().lower()
