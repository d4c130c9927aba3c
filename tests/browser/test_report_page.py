"""The cohort page of the synthetic cohort, opened in Chromium: heatmap, red zones, KPI table."""

from __future__ import annotations

import os
import shutil

import pytest

from cohortfixture import NOW, build_course
from labkit.report import build_report
from labkit.report.html import write_html

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_report_page_renders_heatmap_red_zones_and_kpis(browser, tmp_path):
    report = build_report(build_course(tmp_path / "course"), now=NOW)
    page_path = write_html(report, tmp_path / "site")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("requestfailed", lambda r: errors.append(r.url))
    page.goto(page_path.as_uri())
    heatmap = page.locator("#heatmap")
    heatmap.wait_for()
    assert page.evaluate("document.getElementById('heatmap').naturalWidth") > 300  # the PNG loaded
    assert page.locator("#red-zones li b").all_inner_texts() == ["drift-detection", "prompt-policy-hardening"]
    rows = page.locator("#kpi-table tr[data-kpi]")
    assert rows.count() == 10
    ttfsc = page.locator('#kpi-table tr[data-kpi="time-to-first-safe-change"] td').all_inner_texts()
    assert ttfsc[:4] == ["Time to first safe change", "36 days", "6 of 12", "<= 37 days"]
    assert "Days from day 1" in ttfsc[4] and ttfsc[5].startswith("ledger:")
    broken = page.evaluate("[...document.images].filter(i => !i.complete || i.naturalWidth === 0).length")
    assert broken == 0 and errors == []
    assert page.locator('#gates tr[data-trainee="t12"] td > span').all_inner_texts() == ["missed", "missed", "open"]
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:4] == b"\x89PNG"
    if os.environ.get("LABKIT_REPORT_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["LABKIT_REPORT_SCREENSHOT"])
    page.close()
