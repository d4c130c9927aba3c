"""Who made each revision of a graded run, how it went, and the two KPIs built on that."""

from __future__ import annotations

import datetime as dt
import json

import nbformat

from graders import changes
from sandbox.api import DeploySpec, Revision

T0 = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC).timestamp()


def _cell(start: float, end: float, solution: bool) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("pass")
    iso = lambda t: dt.datetime.fromtimestamp(T0 + t, dt.UTC).isoformat().replace("+00:00", "Z")  # noqa: E731
    cell.metadata["execution"] = {"iopub.execute_input": iso(start), "shell.execute_reply": iso(end)}
    if solution:
        cell.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": f"t{start}", "locked": False}
    else:
        cell.metadata["nbgrader"] = {"solution": False, "grade": False, "grade_id": f"s{start}", "locked": True}
    return cell


def _rev(n: int, at: float, state: str, index: str = "2026-11-01-v1", rollback_of: int | None = None,
         ready: bool = True) -> Revision:
    return Revision(n, DeploySpec("v1", index, "labkit/modelapi:1.0.0", 1), state, T0 + at,
                    f"change {n}", rollback_of, T0 + at + 1 if ready else None)


# setup cell 0-10 s, solution cell 20-60 s, a locked check cell 70-80 s
NB = nbformat.v4.new_notebook(cells=[_cell(0, 10, False), _cell(20, 60, True), _cell(70, 80, False)])
HISTORY = [
    _rev(1, 2, "superseded"),                                   # lab setup: the baseline
    _rev(2, 25, "failed", ready=False),                         # trainee: crashes, never ready
    _rev(3, 30, "superseded", index="2026-10-01-v1"),           # trainee: a stale index that served
    _rev(4, 40, "superseded", rollback_of=1),                   # trainee: undo to 1 (a remediation)
    _rev(5, 45, "failed", index="2026-10-01-v1", ready=False),  # trainee: the regression again, held back
    _rev(6, 50, "serving", index="2026-11-01-v1-r"),            # trainee: a good one
    _rev(7, 90, "superseded"),                                  # nobody's cell: unknown
]


def test_attribution_follows_the_cell_that_was_running():
    got = {c.revision: c.made_by for c in changes.attribute(HISTORY, NB)}
    assert got == {1: "lab", 2: "trainee", 3: "trainee", 4: "trainee", 5: "trainee", 6: "trainee", 7: "unknown"}


def test_undo_marks_every_change_between_its_target_and_itself_rolled_back():
    by = {c.revision: c for c in changes.attribute(HISTORY, NB)}
    assert by[3].rolled_back and by[3].failed and by[3].took_traffic
    assert not by[2].rolled_back and by[2].failed  # failed already; not double-counted as rolled back
    assert by[4].is_rollback and not by[6].rolled_back and not by[6].failed
    assert not by[5].took_traffic and by[6].took_traffic


def test_summary_counts_changes_failures_and_regressions():
    class FakeSandbox:
        jobs: list = []

        def run_job(self, cmd, what):
            self.jobs.append(cmd)
            recall = {"2026-11-01-v1": 0.922, "2026-10-01-v1": 0.727, "2026-11-01-v1-r": 0.91}
            return json.dumps({name: {"recall": recall[name]} for name in cmd[6:]}) + "\n"

    sb = FakeSandbox()
    revs = changes.attribute(HISTORY, NB)
    changes.measure_recall(sb, revs)
    assert len(sb.jobs) == 1 and sb.jobs[0][:5] == ["python", "-m", "modelapi", "eval-index", "--k"]
    s = changes.summary(revs)
    assert (s["changes"], s["failed"]) == (4, 3)  # 2 failed, 3 rolled back, 5 failed; 4 is an undo
    assert (s["baseline_index"], s["baseline_recall"]) == ("2026-11-01-v1", 0.922)
    assert (s["regressions"], s["regressions_caught"]) == (2, 1)  # 3 served, 5 was held back
    # 0.91 is within the 0.02 tolerance of 0.922: not a regression


def test_no_trainee_change_means_no_job():
    class NoJobs:
        def run_job(self, cmd, what):
            raise AssertionError("no job expected")

    revs = changes.attribute(HISTORY[:1], NB)
    changes.measure_recall(NoJobs(), revs)
    assert changes.summary(revs)["changes"] == 0


def test_revisions_keep_their_cell_and_creation_time():
    by = {c.revision: c for c in changes.attribute(HISTORY, NB)}
    assert (by[1].cell, by[2].cell, by[7].cell) == ("s0", "t20", "")
    assert by[3].created_at == T0 + 30


def _lab05(trainee_undo: bool) -> list[Revision]:
    """Lab 05: the lab serves the good release, then the stale bundle; the trainee may roll back."""
    revs = [_rev(1, 2, "superseded"), _rev(2, 5, "serving" if not trainee_undo else "superseded",
                                          index="2026-10-01-v1")]
    if trainee_undo:
        revs.append(_rev(3, 40, "serving", rollback_of=1))
    return revs


class _Recalls:
    def run_job(self, cmd, what):
        recall = {"2026-11-01-v1": 0.922, "2026-10-01-v1": 0.727}
        return json.dumps({name: {"recall": recall[name]} for name in cmd[6:]}) + "\n"


def test_a_regression_the_lab_injects_is_caught_when_the_trainee_takes_it_out_of_traffic():
    revs = changes.attribute(_lab05(trainee_undo=True), NB)
    changes.measure_recall(_Recalls(), revs)
    s = changes.summary(revs)
    assert (s["baseline_index"], s["baseline_recall"]) == ("2026-11-01-v1", 0.922)  # the best that served
    assert (s["injected_regressions"], s["injected_caught"]) == (1, 1)
    assert (s["regressions"], s["changes"]) == (0, 0)  # the undo is a remediation, not a change


def test_an_injected_regression_left_serving_is_not_caught():
    revs = changes.attribute(_lab05(trainee_undo=False) + [_rev(3, 25, "superseded", index="2026-11-01-v1-r",
                                                                ready=False)], NB)
    changes.measure_recall(type("S", (), {"run_job": lambda self, cmd, what: json.dumps(
        {n: {"recall": {"2026-11-01-v1": 0.922, "2026-10-01-v1": 0.727, "2026-11-01-v1-r": 0.92}[n]}
         for n in cmd[6:]})})(), revs)
    s = changes.summary(revs)
    assert (s["injected_regressions"], s["injected_caught"]) == (1, 0)


def test_records_round_trip_into_changes():
    revs = changes.attribute(HISTORY, NB)
    back = changes.from_record({"revisions": changes.summary(revs)["revisions"]})
    assert back == revs
    old = changes.from_record({"revisions": [{"revision": 1, "made_by": "lab", "state": "serving", "cause": "",
                                              "index": "i"}]})
    assert old[0].cell == "" and old[0].created_at is None
