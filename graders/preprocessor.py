"""nbgrader preprocessors that score grade cells from the live sandbox, not from the kernel.

Anything in the trainee's kernel can be patched (``graders``, the sandbox object, ``httpx``,
``subprocess``), so what a test cell printed while the notebook executed is feedback only.
``LiveStateGrader`` runs right after nbgrader's ``Execute``: for every grade cell whose
*instructor source* cell declares a check, it runs that check in nbgrader's own process
against the live sandbox and rewrites the cell's outputs, so ``SaveAutoGrades`` records the
live verdict. A course enables it with (``nbgrader_config.py``)::

    from graders.preprocessor import autograde_preprocessors
    c.Autograde.autograde_preprocessors = autograde_preprocessors()
    c.LiveStateGrader.source_root = "source"    # optional; default: the course's source dir

which is nbgrader's default pipeline with ``ForeignSnapshot`` before ``Execute``,
``LiveStateGrader`` right after it and ``LiveSuggestions`` after ``SaveAutoGrades``.

A grade cell declares its check in the source notebook's cell metadata::

    {"nbgrader": {"grade": true, "solution": false, "locked": true, "grade_id": "serving-v1",
                  "points": 2, "schema_version": 3},
     "labkit": {"check": "serving", "args": {"model": "v1"}, "capability": "model-rollback"}}

A cell may also name settings the lab argues against, ``"refuse": {"provider_timeout_min_s":
0.04}``: the arguments of ``settings_sound``; when the serving revision has them, the cell
scores 0 whatever its own check says (a p95 bought with a timeout that never lets the reranker
answer is not a fix).

Markdown answer cells (``nbgrader.solution`` and ``grade`` true) whose ``labkit.check`` is a
check of written text (``runbook_sections``, ``design_review``, ``adr_parts`` ... - any check
with a ``text`` argument) stay manually graded: the check runs on the cell's text, the
suggested score goes into the cell's ``labkit.suggested`` metadata and, with
``LiveSuggestions`` after ``SaveAutoGrades``, into the gradebook's automatic comment the
instructor sees in formgrader. A check with an ``evidence`` argument gets the graded student's
own records from the course root (``graders.evidence.trainee_evidence``: game-day events and
earlier live-check results), never anything the kernel wrote.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import os
from pathlib import Path
from typing import Any

import nbformat
from nbformat.notebooknode import NotebookNode
from nbgrader.api import Gradebook
from nbgrader.coursedir import CourseDirectory
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    IgnorePattern,
    LimitOutput,
    NbGraderPreprocessor,
    SaveAutoGrades,
)
from nbgrader.utils import determine_grade, is_grade, is_locked, is_solution
from traitlets import Bool, Unicode

from sandbox import make_sandbox
from sandbox.control.audit import AuditRecord, read_audit
from sandbox.errors import InfrastructureError, InvalidInput, LabkitError, StateError, error_class
from sandbox.observe import DefinitionInvalid, Problem
from sandbox.settings import Settings

from .changes import CHANGES_FILE, record_for
from .checks import CHECKS, check
from .datachecks import foreign_snapshot
from .evidence import trainee_evidence
from .execute import GraderExecute
from .result import CheckResult
from .runreport import EngineLost, SetupNotHeld, record_failure

RESOURCE_KEY = "labkit"
#: Where ``SourceSnapshot`` keeps the instructor source it read before the run.
SOURCE_KEY = "instructor_source"
#: Check arguments the grader supplies (placeholders for the declaration check): the foreign
#: objects' baseline, a markdown cell's own text, the graded student's recorded evidence.
SUPPLIED: dict[str, Any] = {"baseline": {}, "text": "", "evidence": {}, "audit": []}
AUDIT_ENV = "LABKIT_AUDIT_LOG"
#: A cell's ``labkit.refuse`` arguments go to this check; a refusal scores the cell 0.
REFUSE_CHECK = "settings_sound"


def declared_checks(source: Path | NotebookNode) -> dict[str, dict[str, Any]]:
    """``grade_id -> labkit metadata`` of the source notebook's cells that declare a check."""
    nb = source if isinstance(source, NotebookNode) else nbformat.read(str(source), as_version=4)
    out = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {})
        grade_id = meta.get("nbgrader", {}).get("grade_id")
        decl = meta.get("labkit") or {}
        if grade_id and decl.get("check"):
            out[grade_id] = {**dict(decl), "points": float(meta["nbgrader"].get("points", 1) or 0)}
    return out


def declaration_problems(declared: dict[str, dict[str, Any]],
                         capabilities: set[str] | None = None) -> list[Problem]:
    """Every problem of a source notebook's declarations, checked before anything runs."""
    problems = []
    for grade_id, decl in declared.items():
        path = f"cell {grade_id}.labkit"
        problems += CHECKS.problems(decl["check"], decl.get("args") or {}, f"{path}.check", bound=tuple(SUPPLIED))
        if decl.get("refuse") is not None:
            problems += CHECKS.problems(REFUSE_CHECK, decl["refuse"], f"{path}.refuse")
        cap = decl.get("capability")
        if capabilities is not None and cap and cap not in capabilities:
            problems.append(Problem(f"{path}.capability",
                                    f"unknown capability {cap!r}; valid: {', '.join(sorted(capabilities))}"))
    return problems


REGRADE = "grade the submission again (`labkit course grade LAB --student S`)"


def setup_windows(nb: NotebookNode, source: NotebookNode) -> list[tuple[float, float]]:
    """Grader-clock (start, end) of every run of the lab's locked setup cells in ``nb``.

    A setup cell is one the instructor source marks locked, neither graded nor a solution;
    nbgrader's ``OverwriteCells`` has put its source back before the run, so what ran in
    that window is the lab's code. The times are the stamps ``GraderExecute`` wrote (the
    kernel's own dates are dropped).
    """
    setup_ids = {c.metadata["nbgrader"].get("grade_id") for c in source.cells
                 if c.cell_type == "code" and is_locked(c) and not is_grade(c)} - {None}
    windows = []
    for cell in nb.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") not in setup_ids:
            continue
        timing = cell.metadata.get("execution", {})
        try:
            start = dt.datetime.fromisoformat(timing["iopub.execute_input"]).timestamp()
            end = dt.datetime.fromisoformat(timing["shell.execute_reply"]).timestamp()
        except (KeyError, TypeError, ValueError):
            continue  # never ran (an earlier cell timed out): nothing it did is in the audit
        windows.append((start, end))
    return windows


def failed_setup(audit: list[AuditRecord], windows: list[tuple[float, float]]) -> str:
    """The first fault injection of the lab's own setup that failed in the machinery, as one
    line; "" when none did.

    Only injections made while a locked setup cell ran count (``setup_windows``): one the
    trainee's own code made and broke is the trainee's result, so a submission cannot turn
    its zero into "not graded" by failing an injection on purpose. An injection refused by
    the trainee's state (nothing deployed: a ``StateError``) or given a bad fault name
    (``InvalidInput``) stays a result too; any other error (a wait that ran out, the engine
    refusing, an exception outside the kit's tree) means the lab's fault may never have taken.
    """
    for record in audit:
        if record.op != "inject" or record.outcome != "error":
            continue
        if not any(start <= record.at <= end for start, end in windows):
            continue
        name = str(record.result.get("error", ""))
        cls = error_class(name)
        if cls is not None and issubclass(cls, (StateError, InvalidInput)):
            continue
        fault = record.args.get("fault", "?")
        return f"the lab's injection of {fault!r} failed: {name}: {str(record.result.get('message', ''))[:200]}"
    return ""


def live_outputs(result: CheckResult) -> list[NotebookNode]:
    """Cell outputs from which nbgrader's ``determine_grade`` reads exactly ``result.points``.

    Passed: a stdout stream only (full points). Nothing earned: one ``error`` output. Partial:
    a stdout stream with the message, then an ``execute_result`` whose ``text/plain`` is the
    points (nbgrader's partial credit).
    """
    if result.passed:
        return [nbformat.v4.new_output("stream", name="stdout",
                                       text=f"live check passed: {result.headline()}\n")]
    if result.points <= 0:
        text = str(result)
        return [nbformat.v4.new_output("error", ename="CheckFailed", evalue=text,
                                       traceback=[f"CheckFailed: {line}" for line in text.splitlines()])]
    return [
        nbformat.v4.new_output("stream", name="stdout", text=f"live check: {result}\n"),
        nbformat.v4.new_output("execute_result", data={"text/plain": f"{result.points:g}"},
                               execution_count=None, metadata={}),
    ]


class ForeignSnapshot(NbGraderPreprocessor):
    """Before ``Execute``: record every object the kit did not make, for ``foreign_untouched``."""

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict]:
        baseline = foreign_snapshot(make_sandbox(Settings.from_env()))
        resources.setdefault(RESOURCE_KEY, {})["foreign_baseline"] = baseline
        return nb, resources


class LiveStateGrader(NbGraderPreprocessor):
    """After ``Execute``: re-run each grade cell's declared check against the live sandbox."""

    source_root = Unicode(
        "", help="Directory holding <assignment>/<notebook>.ipynb instructor sources;"
        " empty = the course's source directory."
    ).tag(config=True)
    checks_enabled = Bool(True, help="Run live checks (False leaves the kernel's outputs).").tag(config=True)
    report_path = Unicode(
        "", help="JSON lines file of per-cell results; empty = <course root>/reports/live_checks.jsonl."
    ).tag(config=True)

    def _coursedir(self) -> CourseDirectory:
        return CourseDirectory(config=self.config)

    def _source(self, assignment: str, notebook: str) -> Path:
        if self.source_root:
            return Path(self.source_root) / assignment / f"{notebook}.ipynb"
        cd = self._coursedir()
        return Path(cd.format_path(cd.source_directory, ".", assignment)) / f"{notebook}.ipynb"

    @staticmethod
    def _read_source(source: Path) -> NotebookNode | None:
        return nbformat.read(str(source), as_version=4) if source.is_file() else None

    def _report(self) -> Path:
        if self.report_path:
            return Path(self.report_path)
        return Path(self._coursedir().root) / "reports" / "live_checks.jsonl"

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict]:
        if not self.checks_enabled:
            return nb, resources
        ids = resources["nbgrader"]
        source = self._source(ids["assignment"], ids["notebook"])
        state = resources.setdefault(RESOURCE_KEY, {})
        if SOURCE_KEY in state:  # SourceSnapshot read it before the submission ran
            source_nb = state[SOURCE_KEY]
        else:
            self.log.warning("labkit: no SourceSnapshot before Execute; reading %s after the run", source)
            source_nb = self._read_source(source)
        if source_nb is None:
            self.log.warning("labkit: no instructor source %s; live checks skipped", source)
            return nb, resources
        declared = declared_checks(source_nb)
        problems = declaration_problems(declared)
        if problems:
            raise DefinitionInvalid(f"the checks {source} declares", problems)
        records = state.setdefault("live_checks", [])
        sb = self._sandbox() if any(CHECKS.get(d["check"]).needs_sandbox for d in declared.values()) else None
        try:
            broke = sb.held() if sb is not None else ""
            if broke:  # the machinery failed under the trainee: no score may be recorded
                raise EngineLost(broke, fix=REGRADE)
            state["audit"] = read_audit(os.environ.get(AUDIT_ENV))  # once: the kernel is done, it grows no more
            failed = failed_setup(state["audit"], setup_windows(nb, source_nb))
            if failed:  # the lab's fault never took: a "healed" state would be the trainee's for nothing
                raise SetupNotHeld(failed, fix=REGRADE)
            for cell in nb.cells:
                grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                if not is_grade(cell) or grade_id not in declared:
                    continue
                record = self._grade_cell(cell, declared[grade_id], sb, state, ids)
                records.append({**record, "grade_id": grade_id, **_ids(ids)})
        except InfrastructureError as e:
            record_failure(e)
            raise
        self._append(records)
        if sb is not None:
            self._record_changes(nb, sb, ids)
        return nb, resources

    def _record_changes(self, nb: NotebookNode, sb: Any, ids: dict[str, Any]) -> None:
        """Keep the run's rollout history, attributed (``graders.changes``), for the KPIs."""
        try:
            record = record_for(sb, nb)
        except (LabkitError, ValueError) as e:  # the KPIs lose one run; the grades stand
            self.log.warning("labkit: could not read the run's changes: %s", e)
            record = {"kind": "changes", "error": str(e)[:300]}
        self._append([{**record, **_ids(ids)}], self._report().with_name(CHANGES_FILE))

    def _sandbox(self) -> Any:
        return make_sandbox(Settings.from_env())

    def _grade_cell(self, cell: NotebookNode, decl: dict[str, Any], sb: Any,
                    state: dict[str, Any], ids: dict[str, Any]) -> dict[str, Any]:
        """Run the declared check for one cell, rewrite it, return the record to keep."""
        args = dict(decl.get("args") or {})
        args.pop("points", None)
        takes = inspect.signature(CHECKS.get(decl["check"]).fn).parameters
        if decl["check"] == "foreign_untouched":
            args["baseline"] = state.get("foreign_baseline")
        manual = cell.cell_type == "markdown" or is_solution(cell)
        if "text" in takes and cell.cell_type == "markdown":
            args["text"] = cell.source
        if "evidence" in takes:
            args["evidence"] = trainee_evidence(self._coursedir().root, ids["student"])
        if "audit" in takes:
            args["audit"] = state.get("audit", [])
        # the hint that hands over the fix belongs to the kernel's self-check, not to a grade
        result = check(decl["check"], sb, points=decl["points"], **args).without_hint()
        if decl.get("refuse") and not manual:  # settings the lab argues against score nothing
            refused = check(REFUSE_CHECK, sb, points=decl["points"], **decl["refuse"]).without_hint()
            result = result if refused.passed else refused
        kernel_points = None
        if manual:
            cell.metadata.setdefault("labkit", {})["suggested"] = {
                "points": result.points, "max_points": result.max_points, "message": str(result)}
        else:
            kernel_points = _kernel_points(cell, self.log)
            cell.outputs = live_outputs(result)
            if kernel_points is not None and kernel_points != result.points:
                self.log.warning("labkit: %s: the kernel's output says %g points, the live state %g"
                                 " (state changed after the cell ran, or the kernel was tampered with)",
                                 decl["check"], kernel_points, result.points)
        self.log.info("labkit live check %s: %s", decl["check"], result.headline())
        return {"check": decl["check"], "capability": decl.get("capability", ""),
                "kind": "suggestion" if manual else "score", "kernel_points": kernel_points,
                **{k: v for k, v in result.to_dict().items() if k != "name"}}

    def _append(self, records: list[dict[str, Any]], path: Path | None = None) -> None:
        if not records:
            return
        path = path or self._report()
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in records)
        with path.open("a", encoding="utf-8") as fh:  # one append: parallel graders do not interleave
            fh.write(text)


class LiveSuggestions(NbGraderPreprocessor):
    """After ``SaveAutoGrades``: put the suggestions of written answers into the gradebook's auto comment.

    ``SaveAutoGrades`` resets the automatic comment of solution cells, so this must run after
    it. The instructor still grades the cell; formgrader shows the suggestion as its comment.
    """

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict]:
        records = [r for r in resources.get(RESOURCE_KEY, {}).get("live_checks", [])
                   if r.get("kind") == "suggestion"]
        if not records:
            return nb, resources
        ids = resources["nbgrader"]
        with Gradebook(ids["db_url"]) as gb:
            for r in records:
                comment = gb.find_comment(r["grade_id"], ids["notebook"], ids["assignment"], ids["student"])
                comment.auto_comment = (f"labkit suggests {r['points']:g}/{r['max_points']:g}: "
                                        f"{r['observed']}" + (f". Hint: {r['hint']}" if r["hint"] else ""))
            gb.db.commit()
        return nb, resources


class SourceSnapshot(LiveStateGrader):
    """Before ``Execute``: read the instructor source's check declarations and setup cells into
    the run's resources, so ``LiveStateGrader`` grades by the source as it was before the
    submission ran (whatever the submission's code did to files while it ran). It shares
    ``LiveStateGrader``'s settings (``source_root``, ``checks_enabled``)."""

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict]:
        if self.checks_enabled:
            ids = resources["nbgrader"]
            source_nb = self._read_source(self._source(ids["assignment"], ids["notebook"]))
            if source_nb is not None:
                resources.setdefault(RESOURCE_KEY, {})[SOURCE_KEY] = source_nb
        return nb, resources


def _kernel_points(cell: NotebookNode, log: Any) -> float | None:
    """What nbgrader would have scored from the kernel's own outputs (kept for the record)."""
    try:
        score, _ = determine_grade(cell, log)
    except (ValueError, KeyError):
        return None
    return None if score is None else float(score)


def autograde_preprocessors() -> list[type]:
    """nbgrader's default autograde pipeline with the kit's steps in place: the two snapshots
    before Execute, the grader's clock on it, the live checks after it, the suggestions after
    SaveAutoGrades."""
    return [ForeignSnapshot, SourceSnapshot, GraderExecute, LiveStateGrader, IgnorePattern,
            ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades, LiveSuggestions, AssignLatePenalties,
            CheckCellMetadata]


def _ids(ids: dict[str, Any]) -> dict[str, Any]:
    return {"student": ids["student"], "assignment": ids["assignment"], "notebook": ids["notebook"],
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
