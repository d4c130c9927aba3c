"""``labkit report --html DIR``: the cohort page an instructor opens in a browser.

Writes ``DIR/index.html`` (self-contained: inline style, no script, no remote resource), the
PNGs it shows and CSV files of every table:

* the trainee x capability heatmap of the latest week (and of every earlier week), red zones
  (capabilities where fewer than two trainees reach level 3) marked and listed;
* each KPI's trajectory against its target by program day, beside its definition and inputs;
* phase-gate status per trainee with what is missing, at-risk flags, mentor load.
"""

from __future__ import annotations

import csv
import html
import statistics
from pathlib import Path
from typing import Any

from . import figures
from .model import CourseReport
from .text import figure, target

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;max-width:1200px}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #ccc;padding:.25rem .45rem;vertical-align:top;text-align:left}
th{background:#f3f3f3}.bad{color:#c0392b;font-weight:600}.ok{color:#1a7f37}.open{color:#8a6d00}
.small{font-size:.75rem;color:#555}img{max-width:100%}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def write_csvs(report: CourseReport, out: Path) -> list[str]:
    _write_csv(out / "skills.csv", ["trainee", "role_path", "mentor", "capability", "level", "target", "share",
                                    "points_level", "still_needed"],
               [[t.trainee, t.role_path, t.mentor, s.capability, s.level, s.target, s.share, s.points_level,
                 "; ".join(s.missing)] for t in report.trainees for s in t.skills])
    _write_csv(out / "kpis.csv", ["trainee", "kpi", "value", "unit", "target", "meets", "counted"],
               [[t.trainee, k.id, k.value, k.unit, k.target, k.meets, k.note] for t in report.trainees for k in t.kpis])
    _write_csv(out / "gates.csv", ["trainee", "phase", "status", "missing"],
               [[t.trainee, g.phase, g.status, "; ".join(g.missing)] for t in report.trainees for g in t.gates])
    _write_csv(out / "red_zones.csv", ["capability", "trainees_at_level_3"],
               [[z.capability, " ".join(z.at_level_3)] for z in report.red_zones])
    weekly = report.weekly or {}
    rows = [[trainee, week, day, cap, level]
            for trainee, snaps in weekly.get("levels", {}).items()
            for week, day, snap in zip(weekly["weeks"], weekly["days"], snaps) for cap, level in snap.items()]
    _write_csv(out / "weekly_levels.csv", ["trainee", "week", "day", "capability", "level"], rows)
    _write_csv(out / "hints.csv", ["trainee", "lab", "hints_revealed"],
               [[t.trainee, lab, " ".join(map(str, numbers))] for t in report.trainees for lab, numbers in t.hints.items()])
    return ["skills.csv", "kpis.csv", "gates.csv", "red_zones.csv", "weekly_levels.csv", "hints.csv"]


def _plots(report: CourseReport, out: Path) -> dict[str, Any]:
    trainees = [t.trainee for t in report.trainees]
    caps = [s.capability for s in report.trainees[0].skills] if report.trainees else []
    red = {z.capability for z in report.red_zones}
    now = {t.trainee: {s.capability: s.level for s in t.skills} for t in report.trainees}
    made: dict[str, Any] = {"heatmap": figures.heatmap(out / "heatmap.png", trainees, caps, now,
                                                       f"Skills now (day {report.day or '-'})", red).name,
                            "weeks": [], "kpis": {}}
    weekly = report.weekly or {}
    for i, (week, day) in enumerate(zip(weekly.get("weeks", []), weekly.get("days", []))):
        snap = {t: weekly["levels"][t][i] for t in weekly["levels"]}
        name = f"heatmap-week{week:02d}.png"
        figures.heatmap(out / name, trainees, caps, snap, f"Skills at the end of week {week} (day {day})", red)
        made["weeks"].append((week, day, name))
    for k in report.kpi_summary:
        series = {t: [snap.get(k["id"]) for snap in snaps] for t, snaps in weekly.get("kpis", {}).items()}
        if not weekly.get("days"):
            continue
        median = []
        for i in range(len(weekly["days"])):
            vals = [s[i] for s in series.values() if s[i] is not None]
            median.append(statistics.median(vals) if vals else None)
        made["kpis"][k["id"]] = figures.trajectory(out / f"kpi-{k['id']}.png", k, weekly["days"], series,
                                                   median).name
    if report.mentors:
        made["mentors"] = figures.mentor_bars(out / "mentors.png", report.mentors).name
    return made


def _kpi_table(report: CourseReport, plots: dict[str, Any]) -> list[str]:
    out = ['<table id="kpi-table"><tr><th>KPI</th><th>cohort median</th><th>meeting target</th><th>target</th>'
           "<th>definition</th><th>inputs</th><th>trajectory</th></tr>"]
    for k in report.kpi_summary:
        img = plots["kpis"].get(k["id"])
        plot = f'<img src="{img}" width=320 alt="{_e(k["name"])} trajectory">' if img else "-"
        cls = "ok" if k["meeting"] * 2 >= k["trainees"] else "bad"
        out.append(f'<tr data-kpi="{_e(k["id"])}"><td><b>{_e(k["name"])}</b></td>'
                   f'<td>{_e(figure(k["median"], k["unit"]))}</td>'
                   f'<td class="{cls}">{k["meeting"]} of {k["trainees"]}</td><td>{_e(target(k))}</td>'
                   f'<td>{_e(k["definition"])}</td><td class="small">{_e(k["inputs"])}</td>'
                   f"<td>{plot}</td></tr>")
    return out + ["</table>"]


def _gates_table(report: CourseReport) -> list[str]:
    phases = [g.phase for g in report.trainees[0].gates] if report.trainees else []
    out = ['<table id="gates"><tr><th>trainee</th><th>role path</th><th>mentor</th>'
           + "".join(f"<th>{_e(p)} gate</th>" for p in phases) + "<th>at risk</th></tr>"]
    for t in report.trainees:
        cells = []
        for g in t.gates:
            cls = {"passed": "ok", "missed": "bad", "open": "open"}[g.status]
            missing = "".join(f"<li>{_e(m)}</li>" for m in g.missing)
            cells.append(f'<td><span class="{cls}">{g.status}</span>' + (f"<ul class=small>{missing}</ul>" if missing
                                                                          else "") + "</td>")
        flags = "".join(f"<li>{_e(f)}</li>" for f in t.flags)
        out.append(f'<tr data-trainee="{_e(t.trainee)}"><td>{_e(t.trainee)}</td><td>{_e(t.role_path)}</td>'
                   f"<td>{_e(t.mentor)}</td>{''.join(cells)}"
                   f'<td class="{"bad" if t.flags else "ok"}">{f"<ul class=small>{flags}</ul>" if flags else "no"}</td></tr>')
    return out + ["</table>"]


def _trainee_kpis(report: CourseReport) -> list[str]:
    kpis = report.trainees[0].kpis if report.trainees else []
    out = ['<table id="trainee-kpis"><tr><th>trainee</th>' + "".join(f"<th>{_e(k.name)}<br><span class=small>"
                                                                    f"target {_e(target(k))}</span></th>" for k in kpis)
           + "</tr>"]
    for t in report.trainees:
        cells = "".join(f'<td class="{ {True: "ok", False: "bad", None: ""}[k.meets] }" title="{_e(k.note)}">'
                        f"{_e(figure(k.value, k.unit))}</td>" for k in t.kpis)
        out.append(f"<tr><td>{_e(t.trainee)}</td>{cells}</tr>")
    return out + ["</table>"]


def _hints(report: CourseReport) -> list[str]:
    """Trainee by lab: the hints revealed in the latest graded run (brief-only labs)."""
    labs = sorted({lab for t in report.trainees for lab in t.hints})
    if not labs:
        return ["<p id=hints class=small>No hint revealed in a graded run.</p>"]
    out = ['<table id="hints"><tr><th>trainee</th>' + "".join(f"<th>{_e(lab)}</th>" for lab in labs) + "</tr>"]
    for t in report.trainees:
        cells = "".join(f"<td>{_e(', '.join(f'#{n}' for n in t.hints.get(lab, [])) or '-')}</td>" for lab in labs)
        out.append(f'<tr data-trainee="{_e(t.trainee)}"><td>{_e(t.trainee)}</td>{cells}</tr>')
    return out + ["</table>"]


def _mentors(report: CourseReport, plots: dict[str, Any]) -> list[str]:
    out = ['<table id="mentor-load"><tr><th>mentor</th><th>trainees</th><th>sessions (30 d)</th><th>hours</th>'
           "<th>by structure</th><th>reviews (30 d)</th><th>trainees at risk</th></tr>"]
    for m in report.mentors:
        structures = ", ".join(f"{k} {v}" for k, v in m.by_structure.items()) or "-"
        out.append(f"<tr><td>{_e(m.mentor)}</td><td>{_e(', '.join(m.trainees))}</td><td>{m.sessions_30d}</td>"
                   f"<td>{m.hours_30d:g}</td><td>{_e(structures)}</td><td>{m.reviews_30d}</td><td>{m.at_risk}</td></tr>")
    out.append("</table>")
    if plots.get("mentors"):
        out.append(f'<img src="{plots["mentors"]}" width=420 alt="mentor load">')
    return out


def page(report: CourseReport, plots: dict[str, Any], csvs: list[str]) -> str:
    """The HTML of the cohort page."""
    red = "".join(f"<li><b>{_e(z.capability)}</b>: {_e(', '.join(z.at_level_3) or 'nobody')} at level 3</li>"
                  for z in report.red_zones) or "<li>none</li>"
    weeks = "".join(f'<figure><img src="{name}" alt="week {w} heatmap"><figcaption>week {w} (day {d})'
                    "</figcaption></figure>" for w, d, name in plots["weeks"])
    head = (f"Cohort start {_e(report.cohort_start)}, program day {_e(report.day)}, " if report.cohort_start else "")
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>labkit cohort report</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Cohort report</h1><p>{head}{len(report.trainees)} trainees; generated {_e(report.generated_at)}.</p>",
        "<h2>KPIs against their targets</h2>", *_kpi_table(report, plots),
        "<h2>Skills heatmap</h2>",
        f'<img id="heatmap" src="{plots["heatmap"]}" alt="trainee by capability heatmap">',
        f'<h2>Red zones</h2><p class=small>Capabilities where fewer than two trainees reach level 3.</p>'
        f'<ul id="red-zones">{red}</ul>',
        "<h2>Phase gates and at-risk flags</h2>", *_gates_table(report),
        "<h2>KPIs per trainee</h2>", *_trainee_kpis(report),
        "<h2>Hints revealed</h2><p class=small>Per brief-only lab, from the latest graded run's audit log;"
        " a reveal costs no points.</p>", *_hints(report),
        "<h2>Mentor load</h2>", *_mentors(report, plots),
        f"<h2>Heatmap by week</h2><details><summary>{len(plots['weeks'])} weeks</summary>{weeks}</details>",
        "<h2>Data</h2><ul>" + "".join(f'<li><a href="{c}">{c}</a></li>' for c in csvs) + "</ul>",
        "</body></html>",
    ]
    return "\n".join(parts)


def write_html(report: CourseReport, out_dir: str | Path) -> Path:
    """Write the page, its PNGs and CSVs into ``out_dir``; returns the page's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = _plots(report, out)
    csvs = write_csvs(report, out)
    path = out / "index.html"
    path.write_text(page(report, plots, csvs), encoding="utf-8")
    return path
