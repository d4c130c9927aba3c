"""The trainee widgets in JupyterLab 4 (headless Chromium): each renders, and a hypothesis entry
typed into the log survives saving and reloading the notebook."""

from __future__ import annotations

import json

import nbformat
import pytest
from jlab import steady_network, wait_kernel_idle
from waits import SERVER_WAIT_MS

from labkit.hypotheses import hypothesis_logs

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

SETUP = '''\
from labkit.gamedays import GameDayEvent
from labkit.widgets import GameDayClock, HypothesisLog, SandboxPanel
from sandbox.api import DeploySpec, Revision, SandboxStatus
from sandbox.client import Readiness


class Offline:  # the four calls the panel uses, without a sandbox
    spec = DeploySpec("v1", "2026-11-01-v1", "labkit/modelapi:1.0.0")
    def status(self):
        return SandboxStatus("browser-test", "docker", True, "http://127.0.0.1:9", 2, 2, "complete", True)
    def history(self):
        return [Revision(1, self.spec, "superseded", 1.0, "REL-1"), Revision(2, self.spec, "serving", 2.0, "CHG-7")]
    def version(self):
        return {"model": "v1", "index": "2026-11-01-v1"}
    def readiness(self):
        return Readiness(True, "ok")

sb = Offline()
'''
CELLS = [SETUP, "SandboxPanel(sb)", "frame = HypothesisLog('triage-frame', sb)\nframe",
         "import datetime as dt\n"
         "t0 = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat()\n"
         "GameDayClock('alice', 'w12', events=[GameDayEvent('alice', 'w12', 'injected', t0,"
         " fault='provider-outage', timebox_min=60.0)])"]
ENTRY = "rev 3 set TOP_K=1 - the default search returns one runbook"


def _open(page, lab, name):
    page.goto(f"{lab['url']}/lab/tree/{name}?token={lab['token']}")
    page.locator(".jp-Notebook").wait_for(timeout=SERVER_WAIT_MS)
    wait_kernel_idle(page, SERVER_WAIT_MS)


def test_widgets_render_and_a_hypothesis_survives_save_and_reload(browser, jupyter_lab):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = jupyter_lab["root"] / "widgets.ipynb"
    nbformat.write(nb, str(path))
    page = steady_network(browser.new_context(viewport={"width": 1400, "height": 1000}), jupyter_lab["url"]).new_page()
    _open(page, jupyter_lab, "widgets.ipynb")
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    panel = page.locator(".labkit-sandbox-panel")
    panel.wait_for(timeout=SERVER_WAIT_MS)
    assert "serving revision 2" in panel.inner_text() and "CHG-7" in panel.inner_text()
    clock = page.locator(".labkit-gameday-clock")
    clock.wait_for(timeout=SERVER_WAIT_MS)
    assert "min since injection" in clock.inner_text() and "min left" in clock.inner_text()
    log = page.locator(".labkit-hypothesis-log")
    log.wait_for(timeout=SERVER_WAIT_MS)
    log.locator("select").first.select_option(label="Hypothesis")
    log.locator("select").nth(1).select_option(label="config")
    log.locator("textarea").fill(ENTRY)
    log.get_by_role("button", name="Add entry").click()
    page.locator(".labkit-log-entries", has_text=ENTRY).wait_for(timeout=SERVER_WAIT_MS)
    page.keyboard.press("Control+s")
    saved = None
    for _ in range(60):  # the save is asynchronous
        page.wait_for_timeout(500)
        saved = hypothesis_logs(json.loads(path.read_text())).get("triage-frame")
        if saved:
            break
    assert saved and saved[-1]["text"] == ENTRY and saved[-1]["incident_class"] == "config"
    assert saved[-1]["revision"] == 2
    on_disk = json.loads(path.read_text())
    widget_state = on_disk["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert any(m["state"].get("log_id") == "triage-frame" and m["state"]["entries"] for m in widget_state.values())
    page.reload()
    _open(page, jupyter_lab, "widgets.ipynb")
    page.get_by_text(ENTRY).first.wait_for(timeout=SERVER_WAIT_MS)  # restored from the notebook, no cell re-run
    page.close()
