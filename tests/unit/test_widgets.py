"""The trainee widgets without a front end: plain text, methods for every button, and the
hypothesis log saved in the notebook (widget state in its metadata, and the log's output)."""

from __future__ import annotations

import datetime as dt

import nbformat
import pytest
from nbclient import NotebookClient

from labkit.gamedays import GameDayEvent
from labkit.hypotheses import MIMETYPE, WIDGET_STATE, first_hypothesis, hypothesis_logs
from labkit.widgets import GameDayClock, HypothesisLog, SandboxPanel
from sandbox.api import DeploySpec, Revision, SandboxStatus
from sandbox.client import Readiness
from sandbox.errors import UnknownChoice


class FakeSandbox:
    """Only the four calls the panel may use; anything else fails the test."""

    def __init__(self) -> None:
        spec = DeploySpec("v1", "2026-11-01-v1", "labkit/modelapi:1.0.0")
        self.revs = [Revision(1, spec, "superseded", 1.0, "REL-1"), Revision(2, spec, "serving", 2.0, "tuning")]

    def status(self) -> SandboxStatus:
        return SandboxStatus("kpis-fake", "docker", True, "http://127.0.0.1:1", 2, len(self.revs), "complete", True,
                             faults=["config-drift"])

    def history(self) -> list[Revision]:
        return list(self.revs)

    def version(self) -> dict:
        return {"model": "v1", "index": "2026-11-01-v1"}

    def readiness(self) -> Readiness:
        return Readiness(True, "ok")

    def __getattr__(self, name: str):
        raise AssertionError(f"the panel called sb.{name}")


def test_sandbox_panel_uses_the_public_calls_and_reads_as_text():
    sb = FakeSandbox()
    panel = SandboxPanel(sb)
    text = panel._repr_mimebundle_()["text/plain"]
    assert "serving revision 2, rollout complete, ready True" in text and "rev 1 superseded" in text
    assert "config-drift" not in text + panel.summary.value + panel.table.value  # faults are never shown
    sb.revs.append(Revision(3, sb.revs[0].spec, "failed", 3.0, "bad"))
    assert panel.refresh()["history"][-1][:2] == (3, "failed")


def test_hypothesis_log_entries_are_validated_time_stamped_and_ordered():
    log = HypothesisLog("triage-frame", sb=FakeSandbox())
    with pytest.raises(UnknownChoice, match="valid: rollout, index, model-version"):
        log.add("hypothesis", "something broke", "gremlins")
    with pytest.raises(UnknownChoice, match="what-changed, reproducer, evidence, hypothesis, test"):
        log.add("guess", "x")
    log.add("what-changed", "rev 2 changed top_k", at=dt.datetime(2027, 2, 3, 9, 0, tzinfo=dt.UTC))
    log.add("hypothesis", "top_k=1 cuts results", "config", at=dt.datetime(2027, 2, 3, 9, 5, tzinfo=dt.UTC))
    assert first_hypothesis(log.entries)["incident_class"] == "config"
    assert log.entries[1]["revision"] == 2  # written while revision 2 was the latest
    bundle = log._repr_mimebundle_()
    assert bundle[MIMETYPE]["entries"] == log.entries
    assert "Hypothesis [config]: top_k=1 cuts results" in bundle["text/plain"]
    log.field.value, log.note.value = "test", "roll back rev 2; expect 5 results"
    log.button.click()
    assert log.entries[-1]["field"] == "test" and log.message.value == "added"


def test_game_day_clock_reads_the_event_log():
    t0 = "2027-03-30T10:00:00+00:00"
    events = [GameDayEvent("alice", "w12", "injected", t0, fault="provider-outage", timebox_min=60.0),
              GameDayEvent("alice", "w12", "detected", "2027-03-30T10:04:00+00:00", signal="metric")]
    clock = GameDayClock("alice", "w12", events=events)
    state = clock.tick(dt.datetime(2027, 3, 30, 10, 20, tzinfo=dt.UTC))
    assert (state["elapsed_min"], state["left_min"], state["ttd_min"], state["ttr_min"]) == (20.0, 40.0, 4.0, None)
    assert clock.text().startswith("game day w12: 20.0 min since injection, 40.0 min left; detected after 4.0 min")


def test_a_log_executed_headless_is_saved_in_the_notebook_and_reloaded(tmp_path, monkeypatch):
    """nbclient (nbval, the grader) stores the widget state in the notebook's metadata; the
    log's output holds the same entries; a new log in that notebook starts from them."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from labkit.widgets import HypothesisLog\n"
        "log = HypothesisLog('lab-x')\n"
        "log.add('hypothesis', 'the index is stale', 'index')\n"
        "log")])
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    assert any(m["state"].get("log_id") == "lab-x" for m in state.values())
    outputs = nb.cells[0].outputs
    assert any(MIMETYPE in o.get("data", {}) for o in outputs)
    assert "Hypothesis [index]: the index is stale" in outputs[-1]["data"]["text/plain"]
    logs = hypothesis_logs(nb)
    assert [e["incident_class"] for e in logs["lab-x"]] == ["index"]
    path = tmp_path / "lab.ipynb"
    nbformat.write(nb, str(path))
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    assert HypothesisLog("lab-x").entries == logs["lab-x"]
    assert HypothesisLog("another").entries == []
