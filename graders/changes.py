"""The trainee's changes in one graded run, read off the live sandbox's rollout history.

Two KPIs of the plan need to know which rollouts the trainee made and how they went:
*change failure rate* and *recall@k regressions caught before production*. The grader's own
process (``LiveStateGrader``, after the notebook ran) reads them from live state:

* **Who made a revision.** nbclient stamps every executed cell with ``iopub.execute_input`` and
  ``shell.execute_reply``. A revision created while a solution cell ran is the trainee's; one
  created while a locked cell ran (setup, fault injection) is the lab's; anything else is
  ``unknown`` and counts for nobody. Notebook variables are never read.
* **How it went.** ``failed`` from the history; *rolled back* when a later rollback revision
  restored an older one (``kubectl rollout undo`` semantics: every change between the target
  and the undo is undone); *took traffic* when the revision became ready and served.
* **Regressions.** recall@5 of every index in the history, computed offline on the eval set by
  one job on the sandbox's data volume (``python -m modelapi eval-index``). The *baseline* is the
  best recall@5 among the revisions that took traffic before the trainee's first change (the
  last known-good release; with no trainee change, among every revision that took traffic). Two
  kinds of regression (more than ``tolerance`` below the baseline):

  - one the trainee made: caught when it never took traffic;
  - one the lab injected (labs 05, 06, 08: a lab revision that served): caught when the run
    ends on a revision the trainee made (a rollback counts) whose index is within ``tolerance``
    of the baseline.

Each revision also keeps the grade id of the cell that made it (``cell``) and its creation time,
so the report can apply the instructor source's ``labkit.kpi`` markers (an instructed attempt
or a load test is not the trainee's change) and compare hypotheses with the first mitigation.

Rollbacks are remediations, not changes: they are listed but left out of both KPIs. An SLO
breach within an hour of a change (the plan's third failure kind) is not observable in a graded
run and is not counted.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import Any

from nbformat.notebooknode import NotebookNode
from nbgrader.utils import is_solution

TOLERANCE = 0.02
RECALL_K = 5
CHANGES_FILE = "changes.jsonl"
"""Next to ``live_checks.jsonl`` in the course's ``reports/``: one ``changes`` record per graded run."""


@dataclass
class Change:
    """One revision of the graded run and what became of it."""

    revision: int
    made_by: str
    """``trainee``, ``lab`` or ``unknown``."""
    state: str
    cause: str
    index: str
    rollback_of: int | None = None
    took_traffic: bool = False
    rolled_back: bool = False
    recall: float | None = None
    cell: str = ""
    """grade id of the cell that was running when the revision was created ("" if none)."""
    created_at: float | None = None

    @property
    def is_rollback(self) -> bool:
        return self.rollback_of is not None

    @property
    def failed(self) -> bool:
        return self.state == "failed" or self.rolled_back


def _stamp(value: str | None) -> float | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def cell_windows(nb: NotebookNode) -> list[tuple[float, float, str, str]]:
    """(start, end, who, grade id) of every executed code cell: ``trainee`` for solution cells."""
    out = []
    for cell in nb.cells:
        timing = cell.get("metadata", {}).get("execution", {})
        start, end = _stamp(timing.get("iopub.execute_input")), _stamp(timing.get("shell.execute_reply"))
        if cell.cell_type == "code" and start is not None and end is not None:
            gid = str(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", ""))
            out.append((start, end, "trainee" if is_solution(cell) else "lab", gid))
    return out


def attribute(history: list[Any], nb: NotebookNode) -> list[Change]:
    """Each revision of ``history`` (``sandbox.api.Revision``) with who made it and its fate."""
    windows = cell_windows(nb)
    changes = []
    for rev in sorted(history, key=lambda r: r.number):
        who, cell = next(((w, g) for start, end, w, g in windows if start <= rev.created_at <= end),
                         ("unknown", ""))
        changes.append(Change(rev.number, who, rev.state, rev.change_cause, rev.spec.index, rev.rollback_of,
                              took_traffic=rev.ready_at is not None and rev.state in ("serving", "superseded"),
                              cell=cell, created_at=rev.created_at))
    for undo in (c for c in changes if c.is_rollback):
        for c in changes:
            if undo.rollback_of < c.revision < undo.revision and not c.is_rollback and c.state != "failed":
                c.rolled_back = True
    return changes


def _before_trainee(changes: list[Change]) -> list[Change]:
    first = next((c.revision for c in changes if c.made_by == "trainee"), None)
    return [c for c in changes if first is None or c.revision < first]


def baseline_index(changes: list[Change]) -> str | None:
    """The index of the known-good release: the best recall@5 among the revisions that took
    traffic before the trainee's first change (the last one that served, before recall is known)."""
    served = [c for c in _before_trainee(changes) if c.took_traffic]
    if not served:
        return None
    scored = [c for c in served if c.recall is not None]
    return max(scored, key=lambda c: c.recall).index if scored else served[-1].index


def measure_recall(sb: Any, changes: list[Change]) -> None:
    """Fill ``recall`` of every index in the history, with one job (none without a trainee change
    and without a served revision)."""
    wanted = {c.index for c in changes}
    if not any(c.made_by == "trainee" for c in changes) or baseline_index(changes) is None:
        return
    out = sb.run_job(["python", "-m", "modelapi", "eval-index", "--k", str(RECALL_K), *sorted(wanted)],
                     "evaluating the indexes of the trainee's changes")
    recalls = json.loads(out.strip().splitlines()[-1])
    for c in changes:
        c.recall = (recalls.get(c.index) or {}).get("recall")


def summary(changes: list[Change], tolerance: float = TOLERANCE) -> dict[str, Any]:
    """What the report needs of one run: the trainee's changes, failures, regressions."""
    mine = [c for c in changes if c.made_by == "trainee" and not c.is_rollback]
    base = baseline_index(changes)
    base_recall = next((c.recall for c in changes if c.index == base and c.recall is not None), None)

    def regressed(c: Change) -> bool:
        return c.recall is not None and base_recall is not None and c.recall < base_recall - tolerance

    regressions = [c for c in mine if regressed(c)]
    injected = [c for c in changes if c.made_by == "lab" and c.took_traffic and regressed(c)]
    final = next((c for c in reversed(changes) if c.state == "serving"), None)
    recovered = (final is not None and final.made_by == "trainee" and final.recall is not None
                 and not regressed(final))
    return {
        "changes": len(mine),
        "failed": sum(c.failed for c in mine),
        "baseline_index": base,
        "baseline_recall": base_recall,
        "regressions": len(regressions),
        "regressions_caught": sum(not c.took_traffic for c in regressions),
        "injected_regressions": len(injected),
        "injected_caught": len(injected) if recovered else 0,
        "revisions": [asdict(c) for c in changes],
    }


def from_record(record: dict[str, Any]) -> list[Change]:
    """The revisions of a ``changes`` record as :class:`Change` objects (older records lack
    ``cell`` and ``created_at``; they default)."""
    fields = set(Change.__dataclass_fields__)
    return [Change(**{k: v for k, v in r.items() if k in fields}) for r in record.get("revisions", [])]


def record_for(sb: Any, nb: NotebookNode) -> dict[str, Any]:
    """The ``kind: changes`` record the grader keeps for one graded notebook."""
    changes = attribute(sb.history(), nb)
    measure_recall(sb, changes)
    return {"kind": "changes", **summary(changes)}
