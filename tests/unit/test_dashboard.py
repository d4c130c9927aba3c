"""The instructor dashboard notebook runs headless against the synthetic cohort and its filters
narrow what it shows; the evidence form writes the ledger."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from cohortfixture import NOW, build_course
from labkit.ledger import Ledger
from labkit.report import build_report
from labkit.report.dashboard import ALL, Dashboard, view_text
from labkit.widgets import EvidenceForm
from sandbox.errors import InvalidInput, UnknownChoice

NOTEBOOK = Path(__file__).resolve().parents[2] / "curriculum" / "instructor-dashboard.ipynb"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return build_course(tmp_path_factory.mktemp("dash"))


def test_notebook_runs_on_the_course_it_is_pointed_at(course, monkeypatch):
    monkeypatch.setenv("LABKIT_COURSE_ROOT", str(course))
    monkeypatch.setenv("LABKIT_REPORT_AS_OF", NOW.isoformat())
    monkeypatch.delenv("LABKIT_GRADEBOOK_URL", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(c.get("id") for c in nb.cells) and not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    text = "\n".join(o.get("text", "") or o.get("data", {}).get("text/plain", "")
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "12 trainees, cohort start 2027-01-11, program day 90" in text
    assert "Time to first safe change: median 36 days, 6 of 12 at target <= 37 days" in text
    assert "red zones: drift-detection (t01 at level 3), prompt-policy-hardening (t01 at level 3)" in text
    assert "mentor maria: 6 trainees, 24 sessions (16.5 h)" in text


def test_filters_narrow_the_view(course):
    report = build_report(course, now=NOW)
    dash = Dashboard(report)
    dash.trainee.value, dash.capability.value = "t09", "inference-capacity"
    text = dash.update()
    assert "t09 (hybrid, omar): inference-capacity=2" in text and "t01" not in text
    assert "gate supervised: missed - missing drift-detection level 3 (has 2)" in text
    dash.week.value = 4  # end of week 4: nothing trains inference capacity yet
    assert "inference-capacity=-" in dash.update()
    assert dash.image.value[:4] == b"\x89PNG"
    assert view_text(report, ALL, "drift-detection").count("drift-detection=") == 12


def test_evidence_form_records_and_refuses(tmp_path):
    url = f"sqlite:///{tmp_path / 'evidence.db'}"
    form = EvidenceForm(url, "maria", ["alice"], ["model-rollback"])
    form.kind.value, form.trainee.value = "session", "alice"
    form.fields.value = "mentor=maria\nstructure=office-hours\nminutes=30"
    form.button.click()
    assert form.message.value == "recorded entry 1"
    with pytest.raises(UnknownChoice, match="valid: alice"):
        form.record("session", "bob", {"mentor": "maria", "structure": "pairing", "minutes": "30"})
    form.fields.value = "situation=standup"
    form.kind.value = "feedback"
    form.button.click()
    assert "missing required field &#x27;behaviour&#x27;" in form.message.value
    with pytest.raises(InvalidInput):
        form.record("feedback", "alice", {"situation": "s"})
    with Ledger.open(url) as led:
        assert [e.get("structure") for e in led.entries()] == ["office-hours"]
