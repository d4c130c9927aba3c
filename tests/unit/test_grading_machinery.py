"""The grading workflow's own failures are classified by fact, not by the trainee's output."""

from __future__ import annotations

import shutil
from collections import namedtuple
from types import SimpleNamespace

import nbformat
import pytest
from traitlets.config import Config

from graders.preprocessor import LiveStateGrader, failed_setup
from graders.runreport import REPORT_ENV, SetupNotHeld, read_report
from labkit import course_grade
from labkit.course_grade import DISK_FULL_BYTES, disk_full
from sandbox.control.audit import AuditRecord, read_audit
from sandbox.control.server import ControlEndpoint

Usage = namedtuple("Usage", "total used free")


def test_a_disk_with_room_is_not_full(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda _: Usage(10**10, 10**9, DISK_FULL_BYTES))
    assert disk_full(tmp_path) == ""


def test_a_nearly_full_disk_is_named_with_what_is_free_and_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda _: Usage(10**10, 10**10, 3 * 10**6))
    text = disk_full(tmp_path)
    assert str(tmp_path) in text and "3.0 MB free" in text and "free space" in text and "\n" not in text


def test_an_unreadable_course_directory_counts_as_unusable(tmp_path):
    assert "cannot be read" in disk_full(tmp_path / "missing")


def test_signals_are_named():
    assert course_grade._signal_name(9) == "SIGKILL" and course_grade._signal_name(99) == "signal 99"


# --- a lab whose own fault never took is not graded ---------------------------------------------

class EngineDropsSandbox:
    """A sandbox whose engine fails mid-injection with an error outside the kit's tree."""

    id = "setup-fails"

    def _fault_records(self):
        return {}

    def status(self):
        raise RuntimeError("the engine dropped the connection")


class NothingDeployed(EngineDropsSandbox):
    def status(self):
        return SimpleNamespace(spec=None)


def _audited_inject(tmp_path, sb) -> list:
    endpoint = ControlEndpoint(sb, tmp_path / "c.sock", tmp_path / "audit.jsonl")
    with pytest.raises(Exception):
        endpoint.call("inject", {"fault": "provider-outage"})
    return read_audit(tmp_path / "audit.jsonl")


def test_an_injection_the_machinery_failed_is_audited_and_names_the_lab_setup(tmp_path):
    [record] = _audited_inject(tmp_path, EngineDropsSandbox())
    assert (record.op, record.outcome, record.result["error"]) == ("inject", "error", "RuntimeError")
    why = failed_setup([record])
    assert "'provider-outage'" in why and "RuntimeError" in why and "dropped the connection" in why


def test_an_injection_refused_by_the_trainees_own_state_stays_a_result(tmp_path):
    [record] = _audited_inject(tmp_path, NothingDeployed())
    assert record.result["error"] == "NoRevisionDeployed"  # a StateError: the trainee's to fix
    assert failed_setup([record]) == ""
    ok = AuditRecord(1, 0.0, "inject", {"fault": "stale-index"}, "ok", {"injected": True})
    timeout = AuditRecord(2, 1.0, "inject", {"fault": "saturation"}, "error", {"error": "WaitTimeout", "message": "m"})
    assert failed_setup([ok]) == "" and "'saturation'" in failed_setup([ok, timeout])


def test_the_live_grader_refuses_to_score_a_run_whose_fault_never_took(tmp_path, monkeypatch):
    course = tmp_path / "course"
    (course / "source" / "labx").mkdir(parents=True)
    cell = nbformat.v4.new_code_cell("print('graded')", metadata={
        "nbgrader": {"grade": True, "solution": False, "locked": True, "grade_id": "c1", "points": 2},
        "labkit": {"check": "rollback_named_target"}})
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), str(course / "source" / "labx" / "labx.ipynb"))
    _audited_inject(tmp_path, EngineDropsSandbox())
    monkeypatch.setenv("LABKIT_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.setenv(REPORT_ENV, str(tmp_path / "report.json"))
    config = Config()
    config.CourseDirectory.root = str(course)
    grader = LiveStateGrader(config=config)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("", metadata=cell.metadata)])
    with pytest.raises(SetupNotHeld, match="provider-outage"):
        grader.preprocess(nb, {"nbgrader": {"assignment": "labx", "notebook": "labx", "student": "s"}})
    report = read_report(tmp_path / "report.json")
    assert report is not None and not report.held and report.temporary and report.error == "SetupNotHeld"
