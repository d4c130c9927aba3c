"""A synthetic cohort: 12 trainees on three role paths, all 13 labs, game days and a ledger.

Built from explicit per-trainee parameters so every figure can be worked out by hand (the
unit tests do, in comments beside each expected value). Nothing here calls the report.

Trainees (q = share of points earned on every graded cell; cells are worth 5 points):

    t01 sre/maria q1.0 P4   t05 sysadmin/maria q1.0 P4   t09 hybrid/omar q1.0 P4
    t02 sre/maria q1.0 P3   t06 sysadmin/maria q0.8 P3   t10 hybrid/omar q0.6 -
    t03 sre/maria q0.8 P3   t07 sysadmin/omar  q0.8 P3   t11 hybrid/lena q0.8 P3
    t04 sre/maria q0.6 -    t08 sysadmin/omar  q0.4 -    t12 hybrid/lena q0.8 - (labs 1-9 only)

P4: production evidence on every capability (supervised day 40, owned day 70; t05 and t09
lack some), P3: supervised change-management / model-rollback / incident-response, one owned
change. The report is taken at NOW, day 90 of a cohort starting 2027-01-11.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml
from nbgrader import api as nbgrader_api
from nbgrader.api import Gradebook

from labkit import gamedays
from labkit.hypotheses import DOM_CLASS, MIMETYPE, WIDGET_STATE
from labkit.ledger import Ledger
from labkit.plan import load_plan

START = dt.datetime(2027, 1, 11, tzinfo=dt.UTC)
NOW = dt.datetime(2027, 4, 10, 18, 0, tzinfo=dt.UTC)  # day 90
PLAN = load_plan()
LABS = [w.lab for w in PLAN.weeks]
CAPS = [c.id for c in PLAN.capabilities]
TRAINEES = {  # id: (role path, mentor, q, group, last lab week)
    "t01": ("sre", "maria", 1.0, "P4", 13), "t02": ("sre", "maria", 1.0, "P3", 13),
    "t03": ("sre", "maria", 0.8, "P3", 13), "t04": ("sre", "maria", 0.6, "-", 13),
    "t05": ("sysadmin", "maria", 1.0, "P4", 13), "t06": ("sysadmin", "maria", 0.8, "P3", 13),
    "t07": ("sysadmin", "omar", 0.8, "P3", 13), "t08": ("sysadmin", "omar", 0.4, "-", 13),
    "t09": ("hybrid", "omar", 1.0, "P4", 13), "t10": ("hybrid", "omar", 0.6, "-", 13),
    "t11": ("hybrid", "lena", 0.8, "P3", 13), "t12": ("hybrid", "lena", 0.8, "-", 9),
}
P4_MISSING = {"t05": {"drift-detection", "prompt-policy-hardening"},
              "t09": {"drift-detection", "inference-capacity", "prompt-policy-hardening"}}
LAB04_RUBRIC = [{"point": "1", "escalate": False, "to": "incident-channel", "severity": "sev3"},
                {"point": "2", "escalate": False, "to": "change-author", "severity": "sev3"},
                {"point": "3", "escalate": True, "to": "service-owner", "severity": "sev2", "within_minutes": 15}]


def at(day: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    """Program day ``day`` (day 1 = START) at hh:mm UTC."""
    return START + dt.timedelta(days=day - 1, hours=hour, minutes=minute)


def week_end(week: int) -> int:
    return PLAN.week(week).days[1]


# --- sources and gradebook -------------------------------------------------------------------


def lab_cells(lab: str) -> list[dict[str, Any]]:
    """The synthetic lab's cells: one 5-point check per capability the week trains, plus markers."""
    week = LABS.index(lab) + 1
    cells = [{"gid": f"check-{t.id}", "points": 5, "cap": t.id} for t in PLAN.week(week).capabilities]
    extra = {
        1: [{"gid": "triage-evidence-log", "points": 5, "cap": "observability-triage", "md": True}],
        4: [{"gid": "triage-frame", "points": 5, "cap": "observability-triage", "md": True,
             "kpi": {"kpi": "triage-hypothesis", "incident_class": "config"}},
            {"gid": "escalation-decision", "points": 5, "cap": "incident-response", "md": True,
             "kpi": {"kpi": "escalation-decision", "rubric": LAB04_RUBRIC}}],
        5: [{"gid": "task-fix-forward", "kpi": {"kpi": "instructed-change"}}],
        6: [{"gid": "triage-lineage-record", "points": 5, "cap": "dataset-lineage", "md": True}],
        10: [{"gid": "task-size", "kpi": {"kpi": "load-test"}}],
        13: [{"gid": "triage-capstone", "points": 5, "cap": "observability-triage", "md": True,
              "kpi": {"kpi": "triage-hypothesis", "incident_class": "index"}}],
    }
    return cells + extra.get(week, [])


def write_sources(root: Path) -> None:
    for lab in LABS:
        nb = nbformat.v4.new_notebook()
        for c in lab_cells(lab):
            cell = nbformat.v4.new_markdown_cell("x") if c.get("md") else nbformat.v4.new_code_cell("pass")
            graded = "points" in c
            cell.metadata["nbgrader"] = {"grade": graded, "solution": bool(c.get("md")) or not graded,
                                         "grade_id": c["gid"], "points": c.get("points", 0), "schema_version": 3}
            meta = {"capability": c["cap"]} if c.get("cap") else {}
            meta.update(c.get("kpi") or {})
            if meta:
                cell.metadata["labkit"] = meta
            nb.cells.append(cell)
        (root / "source" / lab).mkdir(parents=True)
        nbformat.write(nb, str(root / "source" / lab / f"{lab}.ipynb"))


def labs_of(trainee: str) -> list[str]:
    return LABS[:TRAINEES[trainee][4]]


def write_gradebook(db_url: str) -> None:
    with Gradebook(db_url) as gb:
        for lab in LABS:
            gb.add_assignment(lab)
            gb.add_notebook(lab, lab)
            for c in lab_cells(lab):
                if "points" in c:
                    gb.add_grade_cell(c["gid"], lab, lab, max_score=c["points"], cell_type="markdown" if c.get("md")
                                      else "code")
                    if c.get("md"):
                        gb.add_solution_cell(c["gid"], lab, lab)
        for t, (_, _, q, _, _) in TRAINEES.items():
            gb.add_student(t)
            for lab in labs_of(t):
                week = LABS.index(lab) + 1
                gb.add_submission(lab, t, timestamp=at(week_end(week)).replace(tzinfo=None))
                for c in lab_cells(lab):
                    if "points" in c:
                        grade = gb.find_grade(c["gid"], lab, lab, t)
                        if c.get("md"):
                            grade.manual_score = q * c["points"]
                        else:
                            grade.auto_score = q * c["points"]
                gb.db.commit()


def _alembic_head() -> str:
    """What nbgrader asks a subprocess (`alembic heads`, needs PATH, ~10 s) on a new gradebook."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import _temp_alembic_ini

    with _temp_alembic_ini("sqlite:////tmp/unused.db") as ini:
        return ScriptDirectory.from_config(Config(ini)).get_current_head()


# --- graded runs (changes.jsonl) and hypothesis logs ----------------------------------------------


def rev(n: int, who: str, state: str, index: str, recall: float | None, traffic: bool, created: dt.datetime,
        cell: str = "", rollback_of: int | None = None) -> dict[str, Any]:
    return {"revision": n, "made_by": who, "state": state, "cause": f"r{n}", "index": index,
            "rollback_of": rollback_of, "took_traffic": traffic, "rolled_back": False, "recall": recall,
            "cell": cell, "created_at": created.timestamp()}


GOOD, STALE = ("2026-11-01-v1", 0.922), ("2026-10-01-v2", 0.72)


def runs_of(t: str) -> dict[str, list[dict[str, Any]]]:
    """The revisions of each graded run the trainee has (labs 03, 04, 05, 06, 08, 10, 11, 13)."""
    d = lambda week, minute: at(week_end(week), 9, minute)  # noqa: E731
    out: dict[str, list[dict[str, Any]]] = {
        "lab03-new-index": [rev(1, "lab", "superseded", "2026-10-01-v1", 0.72, True, d(3, 0)),
                            rev(2, "trainee", "serving", "2026-11-01-v2-chg0342", 0.922, True, d(3, 30), "task-canary")],
        "lab04-incident-triage": [rev(1, "lab", "superseded", *GOOD, True, d(4, 0)),
                                  rev(2, "lab", "superseded", *GOOD, True, d(4, 1)),
                                  rev(3, "lab", "superseded", *GOOD, True, d(4, 2)),
                                  rev(4, "trainee", "serving", *GOOD, True, d(4, 30), "task-mitigate", rollback_of=2)],
        "lab05-bad-rollout": [rev(1, "lab", "superseded", *GOOD, True, d(5, 0)),
                              rev(2, "lab", "serving" if t == "t08" else "superseded", *STALE, True, d(5, 1)),
                              rev(3, "trainee", "failed", *STALE, False, d(5, 20), "task-fix-forward")],
        "lab06-stale-index-lineage": [rev(1, "lab", "superseded", *GOOD, True, d(6, 0)),
                                      rev(2, "lab", "superseded", *STALE, True, d(6, 1)),
                                      rev(3, "lab", "superseded", "hotfix", 0.92, True, d(6, 2)),
                                      rev(4, "trainee", "serving", *(STALE if t == "t04" else GOOD), True, d(6, 40),
                                          "task-redeploy")],
        "lab08-poisoned-corpus": [rev(1, "lab", "superseded", *GOOD, True, d(8, 0)),
                                  rev(2, "lab", "superseded", "2026-11-15-poisoned-v1", 0.88, True, d(8, 1)),
                                  rev(3, "trainee", "superseded", *GOOD, True, d(8, 20), "task-contain", rollback_of=1),
                                  rev(4, "trainee", "serving", "clean-q", 0.93, True, d(8, 40), "task-release")],
        "lab10-capacity": [rev(1, "lab", "superseded", *GOOD, True, d(10, 0)),
                           rev(2, "lab", "superseded", *GOOD, True, d(10, 1)),
                           rev(3, "trainee", "superseded", *GOOD, True, d(10, 10), "task-size"),
                           rev(4, "trainee", "superseded", *GOOD, True, d(10, 15), "task-size"),
                           rev(5, "trainee", "serving", *GOOD, True, d(10, 30), "task-ship")],
        "lab11-governed-release": [rev(1, "lab", "superseded" if t != "t08" else "superseded", *GOOD, True, d(11, 0)),
                                   rev(2, "trainee", "serving" if t == "t08" else "failed", "cand-v2", 0.70,
                                       t == "t08", d(11, 20), "task-release")],
        "lab13-capstone": [rev(1, "lab", "superseded", *GOOD, True, d(13, 0)),
                           rev(2, "lab", "superseded", "corrupt", None, True, d(13, 1)),
                           rev(3, "trainee", "serving", *GOOD, True, d(13, 30), "task-mitigate")],
    }
    if t != "t08":  # everyone but t08 rolls lab 5's bad release back to revision 1
        out["lab05-bad-rollout"].append(rev(4, "trainee", "serving", *GOOD, True, d(5, 30), "task-rollback",
                                            rollback_of=1))
    if t != "t08":  # the good candidate of lab 11, after the bad one was held back
        out["lab11-governed-release"].append(rev(3, "trainee", "serving", "rel-v2", 0.93, True, d(11, 40),
                                                 "task-release"))
    return {lab: revs for lab, revs in out.items() if lab in labs_of(t)}


def write_runs(root: Path) -> None:
    from graders.changes import from_record, summary

    lines = []
    for t in TRAINEES:
        for lab, revs in runs_of(t).items():
            record = {"kind": "changes", "student": t, "assignment": lab, "notebook": lab,
                      "timestamp": at(week_end(LABS.index(lab) + 1), 11).isoformat(), "revisions": revs}
            # the grader's own summary (without the source's markers), as LiveStateGrader writes it
            lines.append(json.dumps({**record, **summary(from_record(record))}))
    (root / "reports").mkdir(exist_ok=True)
    (root / "reports" / "changes.jsonl").write_text("\n".join(lines) + "\n")


def hypotheses_of(t: str) -> dict[str, list[dict[str, Any]]]:
    """lab -> the lab's hypothesis log entries (times on the lab's day)."""
    d4, d13 = week_end(4), week_end(13)
    h = lambda day, minute, cls, field="hypothesis", **kw: {  # noqa: E731
        "at": at(day, 9, minute).isoformat(), "field": field, "text": f"{field} {cls}",
        **({"incident_class": cls} if field == "hypothesis" else {}), **kw}
    # lab 04's run: the lab makes revisions 1-3 (setup), the trainee's rollback is revision 4 at 09:30
    lab04 = {"t04": [h(d4, 10, "x", "what-changed"), h(d4, 15, "provider", revision=3), h(d4, 25, "config")],
             "t08": [h(d4, 10, "x", "what-changed")],
             # t10's clock says 09:25, but the log stamped revision 4: written after the rollback
             "t10": [h(d4, 10, "x", "evidence"), h(d4, 25, "config", revision=4)],
             "t12": [h(d4, 12, "x", "what-changed"), h(d4, 20, "config")]}.get(t, [h(d4, 12, "x", "what-changed"),
                                                                                  h(d4, 20, "config", revision=3)])
    lab13 = [h(d13, 20, "rollout" if t == "t08" else "index")]  # before the trainee's fix at 09:30
    return {"lab04-incident-triage": lab04, "lab13-capstone": lab13}


def write_submissions(root: Path) -> None:
    """The submitted notebooks' hypothesis logs: lab 04 in the widget state (notebook metadata),
    lab 13 in the log's output (what a front end without widget state saves)."""
    for t in TRAINEES:
        for lab, entries in hypotheses_of(t).items():
            if lab not in labs_of(t):
                continue
            nb = nbformat.v4.new_notebook()
            log_id = "triage-frame" if lab.startswith("lab04") else "triage-capstone"
            if lab.startswith("lab04"):
                nb.metadata["widgets"] = {WIDGET_STATE: {"version_major": 2, "version_minor": 0, "state": {
                    "m1": {"model_name": "VBoxModel", "model_module": "@jupyter-widgets/controls",
                           "model_module_version": "2.0.0",
                           "state": {"_dom_classes": [DOM_CLASS], "log_id": log_id, "entries": entries}}}}}
            else:
                cell = nbformat.v4.new_code_cell("log")
                cell.outputs = [nbformat.v4.new_output("display_data", data={
                    MIMETYPE: {"log_id": log_id, "entries": entries}, "text/plain": "log"})]
                nb.cells.append(cell)
            folder = root / "submitted" / t / lab
            folder.mkdir(parents=True)
            nbformat.write(nb, str(folder / f"{lab}.ipynb"))


# --- game days --------------------------------------------------------------------------------------


GAME_DAYS = {"w04": (29, "config-drift", False, 60), "w08": (56, "stale-index", True, 45),
             "w10": (71, "saturation", True, 45), "w12": (83, "provider-outage", True, 60)}
#: minutes after injection: (detected, mitigated, resolved) per timed scenario and trainee kind
TIMES = {1.0: {"w08": (3, 8, 15), "w10": (4, 10, 18), "w12": (2, 6, 12)},
         0.8: {"w08": (4, 10, 20), "w10": (5, 11, 19), "w12": (6, 12, 25)},
         0.6: {"w08": (8, 15, 30), "w10": (6, 12, 24), "w12": (7, 14, 26)},
         0.4: {"w08": (12, 20, 40), "w10": (9, 18, 35), "w12": (10, 20, None)}}


def write_gamedays(root: Path) -> None:
    for t, (_, _, q, _, last) in TRAINEES.items():
        for name, (day, fault, timed, box) in GAME_DAYS.items():
            week = int(name[1:])
            if week > last:
                continue
            inc = f"{name}-{fault}"
            t0 = at(day, 10)
            rec = lambda event, minutes, **kw: gamedays.record(  # noqa: E731
                root, t, inc, event, at=t0 + dt.timedelta(minutes=minutes), **kw)
            rec("injected", 0, fault=fault, timebox_min=float(box), timed=timed)
            if not timed:
                rec("detected", 3, signal="endpoint")
                rec("resolved", 30)
                continue
            times = TIMES[0.8 if t == "t12" else q][name]
            detected, mitigated, resolved = (5, 10, 22) if t == "t12" else times
            if t == "t08" and name == "w08":
                rec("detected", 2, signal="log", counts=False)  # a wrong symptom: the clock runs on
            rec("detected", detected, signal="metric")
            rec("mitigated", mitigated)
            if (t in ("t04", "t10") and name == "w10") or (t == "t08" and name in ("w10", "w12")):
                rec("detected", mitigated + 5, signal="metric", note="symptom back after the mitigation")
            if resolved is not None:
                rec("resolved", resolved)


# --- the ledger --------------------------------------------------------------------------------------


SESSIONS = [(1, "goal-based-mentoring", 45), (10, "shadowing", 60), (25, "shadowing", 60), (40, "pairing", 90),
            (55, "reverse-shadowing", 60), (66, "office-hours", 30), (73, "goal-based-mentoring", 45),
            (80, "office-hours", 30), (86, "reverse-shadowing", 60)]


def _production(led: Ledger, t: str, mentor: str, day: int, cap: str, mode: str, hour: int = 11, **extra: Any) -> None:
    led.add("production", t, mentor, at=at(day, hour), change_id=extra.pop("change_id", f"WRK-{t}-{day}-{cap}"),
            what=f"{mode} work on {cap}", reviewer=mentor, mode=mode, capability=cap, **extra)


def write_ledger(url: str) -> None:
    with Ledger.open(url) as led:
        for t, (_, mentor, q, group, last) in TRAINEES.items():
            for day, structure, minutes in SESSIONS:
                if t == "t08" and day > 55 or t == "t12" and day > 66:
                    continue
                led.add("session", t, mentor, at=at(day, 15), mentor=mentor, structure=structure, minutes=minutes)
            _write_escalations(led, t, mentor, q)
            _write_triage(led, t, last)
            if group == "P4":
                _p4(led, t, mentor)
            elif group == "P3":
                _p3(led, t, mentor)
        _others(led)


def _p4(led: Ledger, t: str, mentor: str) -> None:
    _production(led, t, mentor, 20, "observability-triage", "shadowed")
    led.add("approval", t, mentor, at=at(32, 16), change_id=f"CHG-{t}-1", approver=mentor)
    _production(led, t, mentor, 33, "change-management", "supervised", change_id=f"CHG-{t}-1",
                rollback_plan="undo to the previous revision; verify /readyz and recall@5", outcome="succeeded")
    for cap in CAPS:
        if cap in P4_MISSING.get(t, set()):
            continue
        _production(led, t, mentor, 40, cap, "supervised")
        if cap == "observability-triage":
            _production(led, t, mentor, 41, cap, "supervised")
        extra = {"outcome": "succeeded"} if cap == "change-management" else {}
        if t == "t05" and cap == "incident-response":
            extra = {"incident_class": "config", "service": "search-api"}
        _production(led, t, mentor, 70, cap, "owned", **extra)
    _production(led, t, mentor, 71, "change-management", "owned", outcome="succeeded")
    extra = {"incident_class": "config", "service": "gateway"} if t == "t05" else {}
    _production(led, t, mentor, 75, "model-rollback", "supervised", **extra)
    for day, cap in ((38, "model-rollback"), (60, "incident-response"), (84, "postmortem-learning"),
                     (88, "postmortem-learning")):
        led.add("runbook", t, mentor, at=at(day, 12), runbook=f"runbooks/{cap}-{day}.md", action="new",
                accepted_by=mentor, capability=cap)


def _p3(led: Ledger, t: str, mentor: str) -> None:
    _production(led, t, mentor, 20, "observability-triage", "shadowed")
    approval_day = 37 if t == "t03" else 35  # t03: approved after the change - not safe
    led.add("approval", t, mentor, at=at(approval_day, 16), change_id=f"CHG-{t}-1", approver=mentor)
    plan = {} if t == "t06" else {"rollback_plan": "undo to revision N; verify"}  # t06: no rollback plan
    _production(led, t, mentor, 36, "change-management", "supervised", change_id=f"CHG-{t}-1", outcome="succeeded",
                **plan)
    _production(led, t, mentor, 45, "model-rollback", "supervised")
    _production(led, t, mentor, 46, "incident-response", "supervised")
    led.add("approval", t, mentor, at=at(79, 16), change_id=f"CHG-{t}-2", approver=mentor)
    _production(led, t, mentor, 80, "change-management", "owned", change_id=f"CHG-{t}-2",
                rollback_plan="undo; verify", outcome="succeeded")
    extra = {"incident_class": "index", "service": "search-api"} if t == "t02" else {}
    _production(led, t, mentor, 82, "change-management", "supervised", outcome="rolled-back", **extra)
    if t == "t02":  # the same fault class on the same service three days later: the day-82 fix is a repeat
        _production(led, t, mentor, 85, "retrieval-evaluation", "owned", incident_class="index", service="search-api")
    for day, cap in ((50, "model-rollback"), (85, "postmortem-learning")):
        led.add("runbook", t, mentor, at=at(day, 12), runbook=f"runbooks/{cap}.md", action="improved",
                accepted_by=mentor, capability=cap)


def _others(led: Ledger) -> None:
    _production(led, "t04", "maria", 20, "observability-triage", "shadowed")
    _production(led, "t04", "maria", 50, "observability-triage", "shadowed")
    led.add("runbook", "t04", "maria", at=at(40, 12), runbook="runbooks/a.md", action="new", accepted_by="maria")
    led.add("approval", "t10", "omar", at=at(39, 16), change_id="CHG-t10-1", approver="omar")
    _production(led, "t10", "omar", 40, "change-management", "supervised", change_id="CHG-t10-1",
                rollback_plan="undo", outcome="rolled-back")
    led.add("runbook", "t10", "omar", at=at(70, 12), runbook="runbooks/b.md", action="new", accepted_by="omar")
    _production(led, "t12", "lena", 20, "observability-triage", "shadowed")


def _write_escalations(led: Ledger, t: str, mentor: str, q: float) -> None:
    """Lab 04 (day 30, three points), lab 09 (day 66, two), game day w12 (day 83, two)."""
    right = {p["point"]: p for p in LAB04_RUBRIC}
    lab04_right = {1.0: 3, 0.8: 3, 0.6: 2, 0.4: 1}[q]
    for i, point in enumerate(("1", "2", "3")):
        r = right[point]
        decided = {"escalate": r["escalate"], "to": r["to"], "severity": r["severity"], "minutes": 10}
        if i >= lab04_right:
            decided["severity"] = "sev1"
        led.add("escalation", t, mentor, at=at(30, 11, i), source="lab04-incident-triage", point=point,
                rubric={**{"within_minutes": None}, **{k: r.get(k) for k in ("escalate", "to", "severity",
                                                                              "within_minutes")}}, **decided)
    rubric = {"escalate": True, "to": "provider", "severity": "sev2", "within_minutes": 15}
    late = {"t04": {"w12-b"}, "t10": {"w12-b"}, "t08": {"w12-a", "w12-b"}, "t12": {"lab09-2"}}.get(t, set())
    points = [("lab09-provider-outage", "lab09-1", 66), ("lab09-provider-outage", "lab09-2", 66)]
    if t != "t12":
        points += [("w12-provider-outage", "w12-a", 83), ("w12-provider-outage", "w12-b", 83)]
    for source, point, day in points:
        led.add("escalation", t, mentor, at=at(day, 12), source=source, point=point, rubric=rubric,
                escalate=True, to="provider", severity="sev2", minutes=20 if point in late else 8)


def _write_triage(led: Ledger, t: str, last: int) -> None:
    """Game-day first hypotheses: w08 (stale-index -> index), w12 (provider-outage -> provider)."""
    wrong = {"t04": {"w12"}, "t08": {"w08", "w12"}}.get(t, set())
    for name, cls, day in (("w08-stale-index", "index", 56), ("w12-provider-outage", "provider", 83)):
        if int(name[1:3]) > last:
            continue
        led.add("triage", t, "gm", at=at(day, 10, 1), source=name,
                hypothesis_class="capacity" if name[:3] in wrong else cls)


# --- the course ---------------------------------------------------------------------------------------


def build_course(root: Path) -> Path:
    """Write the whole synthetic course into ``root``; returns it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text("c = get_config()  # noqa: F821\n")
    write_sources(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nbgrader_api, "get_alembic_version", _alembic_head)
        write_gradebook(f"sqlite:///{root / 'gradebook.db'}")
    write_runs(root)
    write_submissions(root)
    write_gamedays(root)
    write_ledger(f"sqlite:///{root / 'evidence.db'}")
    (root / "cohort.yaml").write_text(yaml.safe_dump({"start": "2027-01-11", "trainees": [
        {"id": t, "role_path": r, "mentor": m} for t, (r, m, *_rest) in TRAINEES.items()]}, sort_keys=False))
    return root
