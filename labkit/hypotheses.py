"""The hypothesis log's records: the triage frame, and where a log is kept in a notebook.

An entry is one step of the triage frame with the time it was written::

    {"at": "2027-02-03T09:51:12+00:00", "field": "hypothesis", "text": "TOP_K=1 since rev 3",
     "incident_class": "config"}

``field`` is one of :data:`FRAME_FIELDS` (what changed, smallest reproducer, evidence,
hypothesis, test); a hypothesis names an incident class of the fault catalog. A log given the
sandbox also stamps ``revision``, the sandbox's latest revision when the entry was written: a
hypothesis written before the trainee changed anything carries a revision the lab made. The order of the
entries is the order of the trainee's reasoning, which the report reads (triage accuracy: the
first hypothesis, and whether it came before the first mitigation).

A log (``labkit.widgets.HypothesisLog``) is saved with the notebook in two places, and
:func:`hypothesis_logs` reads either:

* the notebook's metadata: the widget's state (``metadata.widgets``, saved by JupyterLab with
  "save widget state" on, and by nbclient when a notebook is executed headless), whose model
  carries ``log_id`` and ``entries``;
* the cell output the log keeps up to date (mimetype :data:`MIMETYPE`), so a front end without
  widget state, or none at all, still saves and shows the entries as text.

This module imports no widget library: the report reads logs without ipywidgets installed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sandbox.errors import InvalidInput, UnknownChoice
from sandbox.faults.catalog import INCIDENT_CLASSES

FRAME_FIELDS = ("what-changed", "reproducer", "evidence", "hypothesis", "test")
FRAME_LABELS = {"what-changed": "What changed?", "reproducer": "Smallest reproducer", "evidence": "Evidence",
                "hypothesis": "Hypothesis", "test": "Test"}
MIMETYPE = "application/vnd.labkit.hypothesis-log+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
DOM_CLASS = "labkit-hypothesis-log"


def make_entry(field: str, text: str, incident_class: str = "", at: dt.datetime | None = None,
               revision: int | None = None) -> dict[str, Any]:
    """A validated entry stamped ``at`` (default: now, UTC)."""
    if field not in FRAME_FIELDS:
        raise UnknownChoice("triage frame field", field, FRAME_FIELDS)
    if not text.strip():
        raise InvalidInput(f"a {FRAME_LABELS[field]!r} entry needs text")
    if field == "hypothesis" and incident_class not in INCIDENT_CLASSES:
        raise UnknownChoice("incident class of the hypothesis", incident_class, INCIDENT_CLASSES)
    when = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    entry = {"at": when.isoformat(), "field": field, "text": text.strip()}
    if field == "hypothesis":
        entry["incident_class"] = incident_class
    if revision is not None:
        entry["revision"] = int(revision)
    return entry


def render_text(log_id: str, entries: list[dict[str, Any]]) -> str:
    """The log as plain text (what a front end without widgets shows)."""
    lines = [f"Hypothesis log {log_id}: {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}"]
    for e in entries:
        cls = f" [{e['incident_class']}]" if e.get("incident_class") else ""
        lines.append(f"  {e['at']}  {FRAME_LABELS.get(e['field'], e['field'])}{cls}: {e['text']}")
    return "\n".join(lines)


def hypothesis_logs(nb: Any) -> dict[str, list[dict[str, Any]]]:
    """log id -> entries of every hypothesis log saved in notebook ``nb`` (the longer copy wins
    when both the widget state and the output hold one)."""
    found: dict[str, list[dict[str, Any]]] = {}

    def keep(log_id: Any, entries: Any) -> None:
        if isinstance(log_id, str) and isinstance(entries, list) and len(entries) >= len(found.get(log_id, [])):
            found[log_id] = [dict(e) for e in entries if isinstance(e, dict) and "field" in e and "at" in e]

    state = (nb.get("metadata", {}).get("widgets", {}) or {}).get(WIDGET_STATE, {}).get("state", {})
    for model in state.values():
        st = model.get("state", {}) if isinstance(model, dict) else {}
        if DOM_CLASS in (st.get("_dom_classes") or []):
            keep(st.get("log_id"), st.get("entries"))
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            data = (out.get("data") or {}).get(MIMETYPE)
            if isinstance(data, dict):
                keep(data.get("log_id"), data.get("entries"))
    return found


def first_hypothesis(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The earliest hypothesis entry (by its time stamp), or None."""
    hyps = [e for e in entries if e.get("field") == "hypothesis"]
    return min(hyps, key=lambda e: dt.datetime.fromisoformat(e["at"])) if hyps else None
