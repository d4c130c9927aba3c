"""The grading workflow's own failures are classified by fact, not by the trainee's output."""

from __future__ import annotations

import datetime as dt
import shutil
from collections import namedtuple
from types import SimpleNamespace

import nbformat
import pytest
from traitlets.config import Config

from graders.preprocessor import LiveStateGrader, failed_setup, setup_windows
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


ALWAYS = [(0.0, float("inf"))]  # as if every record were made by the lab's setup


def _audited_inject(tmp_path, sb) -> list:
    endpoint = ControlEndpoint(sb, tmp_path / "c.sock", tmp_path / "audit.jsonl")
    with pytest.raises(Exception):
        endpoint.call("inject", {"fault": "provider-outage"})
    return read_audit(tmp_path / "audit.jsonl")


def test_an_injection_the_machinery_failed_is_audited_and_names_the_lab_setup(tmp_path):
    [record] = _audited_inject(tmp_path, EngineDropsSandbox())
    assert (record.op, record.outcome, record.result["error"]) == ("inject", "error", "RuntimeError")
    why = failed_setup([record], ALWAYS)
    assert "'provider-outage'" in why and "RuntimeError" in why and "dropped the connection" in why


def test_an_injection_refused_by_the_trainees_own_state_stays_a_result(tmp_path):
    [record] = _audited_inject(tmp_path, NothingDeployed())
    assert record.result["error"] == "NoRevisionDeployed"  # a StateError: the trainee's to fix
    assert failed_setup([record], ALWAYS) == ""
    ok = AuditRecord(1, 0.0, "inject", {"fault": "stale-index"}, "ok", {"injected": True})
    timeout = AuditRecord(2, 1.0, "inject", {"fault": "saturation"}, "error", {"error": "WaitTimeout", "message": "m"})
    assert failed_setup([ok], ALWAYS) == "" and "'saturation'" in failed_setup([ok, timeout], ALWAYS)


def _ran(cell, start: str, end: str):
    cell.metadata["execution"] = {"iopub.execute_input": start, "shell.execute_reply": end}
    return cell


def test_only_an_injection_of_the_labs_locked_setup_can_leave_a_run_not_graded():
    # A trainee who breaks an injection in their own cell (on purpose: to turn a zero into
    # "not graded") gets the result of what they did; the same failure inside the locked setup
    # cell's run is the machinery's. The windows are the grader's stamps, matched by grade_id.
    setup = {"nbgrader": {"grade": False, "solution": False, "locked": True, "grade_id": "setup"}}
    answer = {"nbgrader": {"grade": False, "solution": True, "locked": False, "grade_id": "t1"}}
    source = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("inject(sb, 'saturation')", metadata=setup),
                                             nbformat.v4.new_code_cell("", metadata=answer)])
    forged = {"nbgrader": {"grade": False, "solution": False, "locked": True, "grade_id": "mine"}}
    ran = nbformat.v4.new_notebook(cells=[
        _ran(nbformat.v4.new_code_cell("", metadata=setup), "2026-12-01T10:00:00+00:00", "2026-12-01T10:00:05+00:00"),
        _ran(nbformat.v4.new_code_cell("", metadata=answer), "2026-12-01T10:01:00+00:00", "2026-12-01T10:01:30+00:00"),
        _ran(nbformat.v4.new_code_cell("", metadata=forged), "2026-12-01T10:02:00+00:00", "2026-12-01T10:02:30+00:00"),
        nbformat.v4.new_code_cell("", metadata=setup)])  # a copy of the setup cell that never ran
    windows = setup_windows(ran, source)
    t0 = dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC).timestamp()
    assert windows == [(t0, t0 + 5)]

    def failed_at(at: float) -> AuditRecord:
        return AuditRecord(1, at, "inject", {"fault": "saturation"}, "error", {"error": "WaitTimeout", "message": "m"})

    assert "'saturation'" in failed_setup([failed_at(t0 + 2)], windows)
    assert failed_setup([failed_at(t0 + 75)], windows) == ""   # the trainee's answer cell
    assert failed_setup([failed_at(t0 + 140)], windows) == ""  # a cell that calls itself locked
    assert failed_setup([failed_at(t0 + 2)], []) == ""         # the setup never ran


def test_the_live_grader_refuses_to_score_a_run_whose_fault_never_took(tmp_path, monkeypatch):
    course = tmp_path / "course"
    (course / "source" / "labx").mkdir(parents=True)
    cell = nbformat.v4.new_code_cell("print('graded')", metadata={
        "nbgrader": {"grade": True, "solution": False, "locked": True, "grade_id": "c1", "points": 2},
        "labkit": {"check": "rollback_named_target"}})
    setup = nbformat.v4.new_code_cell("inject(sb, 'provider-outage')", metadata={
        "nbgrader": {"grade": False, "solution": False, "locked": True, "grade_id": "setup"}})
    nbformat.write(nbformat.v4.new_notebook(cells=[setup, cell]), str(course / "source" / "labx" / "labx.ipynb"))
    started = dt.datetime.now(dt.UTC).isoformat()
    _audited_inject(tmp_path, EngineDropsSandbox())  # while the setup cell runs
    setup = _ran(nbformat.v4.new_code_cell("", metadata=setup.metadata), started, dt.datetime.now(dt.UTC).isoformat())
    monkeypatch.setenv("LABKIT_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.setenv(REPORT_ENV, str(tmp_path / "report.json"))
    config = Config()
    config.CourseDirectory.root = str(course)
    grader = LiveStateGrader(config=config)
    nb = nbformat.v4.new_notebook(cells=[setup, nbformat.v4.new_code_cell("", metadata=cell.metadata)])
    with pytest.raises(SetupNotHeld, match="provider-outage"):
        grader.preprocess(nb, {"nbgrader": {"assignment": "labx", "notebook": "labx", "student": "s"}})
    report = read_report(tmp_path / "report.json")
    assert report is not None and not report.held and report.temporary and report.error == "SetupNotHeld"


def test_the_live_grader_grades_by_the_source_as_it_was_before_the_submission_ran(tmp_path, monkeypatch):
    # An unboxed run (LABKIT_BOX=0) could rewrite the instructor source while it executes, e.g.
    # drop a cell's check so the kernel's own "passed" output would stand. SourceSnapshot reads
    # the declarations before Execute; what the file says afterwards does not matter.
    from graders.preprocessor import SourceSnapshot

    course = tmp_path / "course"
    (course / "source" / "labx").mkdir(parents=True)
    meta = {"nbgrader": {"grade": True, "solution": False, "locked": True, "grade_id": "c1", "points": 2},
            "labkit": {"check": "rollback_named_target"}}
    path = course / "source" / "labx" / "labx.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('graded')", metadata=meta)]), str(path))
    monkeypatch.setenv("LABKIT_AUDIT_LOG", str(tmp_path / "audit.jsonl"))  # no operation at all
    monkeypatch.setenv(REPORT_ENV, str(tmp_path / "report.json"))
    config = Config()
    config.CourseDirectory.root = str(course)
    resources = {"nbgrader": {"assignment": "labx", "notebook": "labx", "student": "s"}}
    submitted = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("", metadata=meta)])
    SourceSnapshot(config=config).preprocess(submitted, resources)

    forged = nbformat.v4.new_code_cell("print('graded')", metadata={"nbgrader": meta["nbgrader"]})
    nbformat.write(nbformat.v4.new_notebook(cells=[forged]), str(path))  # "the run" drops the check
    submitted.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="passed\n")]
    config.LiveStateGrader.report_path = str(tmp_path / "live.jsonl")
    nb, _ = LiveStateGrader(config=config).preprocess(submitted, resources)
    [record] = resources["labkit"]["live_checks"]
    assert (record["check"], record["passed"]) == ("rollback_named_target", False)
    assert [o.output_type for o in nb.cells[0].outputs] == ["error"]  # the kernel's "passed" is gone


def test_a_box_reads_the_latency_budget_where_the_grader_takes_its_verdict(tmp_path):
    # The box's own interpreter and CPU quota read another speed than the grader's process does
    # (measured: 0.85 ms for the reference work in the box under a CPU hog, 2.5 ms in the grader's
    # Python), so a lab's "within the SLO on this machine" comes from the endpoint's side.
    asked = []
    sb = SimpleNamespace(id="lb", latency_budget_ms=lambda slo: asked.append(slo) or slo + 42.0)
    endpoint = ControlEndpoint(sb, tmp_path / "c.sock", tmp_path / "audit.jsonl")
    assert endpoint.call("latency_budget", {"slo_ms": 300}) == {"ms": 342.0} and asked == [300.0]
    [record] = read_audit(tmp_path / "audit.jsonl")
    assert (record.op, record.outcome) == ("latency_budget", "ok")
