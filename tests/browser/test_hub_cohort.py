"""A cohort on JupyterHub, end to end, in headless Chromium: the instructor releases the fixture
lab in the formgrader (inside JupyterLab's frame, which JupyterHub >= 4.1 would blank without
the CSP fix); two trainees log in, fetch it from the Assignment List, solve it (one right, one
wrong) against their own sandboxes and submit; the instructor collects and autogrades in the
formgrader (through the grading boxes); the scores match ``labkit course grade``; feedback is
released and each trainee fetches only their own. A trainee cannot open the other's server,
home, control socket, sandbox port or the Docker socket; a name off the roster cannot log in.

Runs as root (the hub makes Unix accounts); needs Docker and the images (``make test`` has them).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from waits import SERVER_WAIT_MS
from hubsession import LAB, HubSession, start, stop
from jlab import dismiss_dialogs, open_lab, steady_network, wait_kernel_idle

from labkit import course_grade
from sandbox import make_sandbox
from sandbox.settings import Settings

pytestmark = [pytest.mark.browser, pytest.mark.docker, pytest.mark.slow, pytest.mark.xdist_group("hub")]
RIGHT, WRONG = "sb.deploy(model='v1', index='2026-11-01')", "sb.deploy(model='v2', index='2026-11-01')"
LONG = SERVER_WAIT_MS


@pytest.fixture(scope="module")
def hub(tmp_path_factory, docker_client, images_built) -> Iterator[HubSession]:
    if os.geteuid() != 0:
        pytest.skip("the hub makes Unix accounts: run as root (CI does)")
    session = start(tmp_path_factory.mktemp("hub"))
    yield session
    stop(session)


def login(browser, hub: HubSession, user: str):
    context = steady_network(browser.new_context(viewport={"width": 1400, "height": 1000}), hub.url)
    page = context.new_page()
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", hub.secrets[user])
    page.click("#login_submit")
    return page


def done(page) -> None:
    """Close a user's browser context when their part is over: the test's pages are then not all
    polling their servers at once."""
    page.context.close()


def formgrader(page, hub: HubSession, tries: int = 3):
    """The formgrader as JupyterLab shows it: a frame in the formgrader service's Lab. A frame
    that shows no assignment row (its page loaded, its list did not) is reloaded, as an
    instructor would, at most ``tries`` times; then it fails with what the frame showed, every
    formgrader request that failed or was refused, and the hub log's formgrader lines, so a red
    run says why."""
    seen, refused = [], []

    def on_response(response) -> None:
        if "/formgrader" in response.url and response.status >= 400:
            refused.append(f"{response.status} {response.request.method} {response.url}")

    def on_failed(request) -> None:
        if "/services/" in request.url:  # the formgrader service's Lab and frame
            refused.append(f"failed ({request.failure}) {request.method} {request.url}")

    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    try:
        for attempt in range(tries):
            page.goto(f"{hub.url}/services/{hub.cfg.course_id}/lab?formgrader=true")
            open_lab(page)
            dismiss_dialogs(page)
            frame = page.frame_locator("#formgrader-iframe iframe")
            try:
                frame.locator("tr", has_text=LAB).first.wait_for(timeout=90_000)
                return frame
            except PlaywrightTimeout:
                shown = frame.locator("body").inner_text(timeout=5_000) if frame.locator("body").count() else "(no frame body)"
                seen.append(f"try {attempt + 1}: the formgrader frame showed: {shown[:300]!r}")
                print(seen[-1])
    finally:
        page.remove_listener("response", on_response)
        page.remove_listener("requestfailed", on_failed)
    log = hub.cfg.file("jupyterhub.log")
    lines = log.read_text(errors="replace").splitlines() if log.exists() else ["(no hub log)"]
    ours = [line for line in lines if "formgrader" in line or re.search(r"\] 5\d\d ", line)][-60:]
    raise AssertionError("\n".join(seen) + "\nformgrader requests that failed or were refused:\n"
                         + ("\n".join(refused[-30:]) or "(none)")
                         + f"\nformgrader lines of {log}:\n" + "\n".join(ours))


def click_and_confirm(frame, target, timeout: int = 120_000) -> str:
    target.click()
    modal = frame.locator(".modal-dialog").last
    modal.wait_for(timeout=timeout)
    text = modal.inner_text()
    modal.locator("button.close").first.click()
    frame.locator(".modal-dialog").last.wait_for(state="detached", timeout=30_000)
    return text


def assignment_list(page):
    dismiss_dialogs(page)
    page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").click()
    page.locator(".lm-Menu-itemLabel", has_text="Assignment List").click()
    return page.locator(".jp-Activity, #nbgrader-assignment-list, .nbgrader-assignment-list").last


def list_button(page, section: str, label: str):
    return page.locator(f"#{section}_assignments_list").locator("button", has_text=label).first


def work_on(page, hub: HubSession, user: str, solution: str) -> None:
    """Fetch, solve, run every cell, save and submit, all in the browser."""
    open_lab(page)
    assignment_list(page)
    list_button(page, "released", "Fetch").click()
    list_button(page, "fetched", "Submit").wait_for(timeout=LONG)
    page.goto(f"{hub.url}/user/{user}/lab/tree/{LAB}/{LAB}.ipynb")
    open_lab(page)
    page.locator(".jp-Notebook").wait_for(timeout=LONG)
    wait_kernel_idle(page, LONG, log=hub.cfg.file("jupyterhub.log"))
    editor = page.locator(".jp-Notebook .jp-Cell").nth(2).locator(".cm-content")
    dismiss_dialogs(page)
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(solution)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    # The first check cell runs for both: it passes for the right answer, and for the wrong one it
    # raises, which ends "Run All" there (JupyterLab stops at an error, as a trainee sees it).
    check = page.locator(".jp-Notebook .jp-Cell").nth(3)
    check.locator(".jp-InputPrompt", has_text=re.compile(r"\[\d+\]")).wait_for(timeout=LONG)
    wait_kernel_idle(page, LONG, repick=False, log=hub.cfg.file("jupyterhub.log"))  # the run is over
    page.keyboard.press("Control+s")
    # saved: the notebook's tab no longer shows unsaved changes (then a moment for the file write)
    page.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty").wait_for(state="detached", timeout=LONG)
    page.wait_for_timeout(1000)
    assignment_list(page)
    list_button(page, "fetched", "Submit").click()
    page.locator("#submitted_assignments_list").get_by_text(LAB).first.wait_for(timeout=LONG)


def test_a_cohort_releases_works_submits_is_graded_and_gets_its_own_feedback(browser, hub):
    ann, bob = hub.trainees
    instructor = login(browser, hub, hub.instructor)
    fg = formgrader(instructor, hub)
    text = click_and_confirm(fg, fg.locator("tr", has_text=LAB).first.locator("td.release a"))
    assert "Successfully released" in text
    assert (hub.cfg.exchange / hub.cfg.course_id / "outbound" / LAB).is_dir()

    for user, solution in ((ann, RIGHT), (bob, WRONG)):
        page = login(browser, hub, user)
        work_on(page, hub, user, solution)
        done(page)
    inbound = sorted(p.name.split("+")[0] for p in (hub.cfg.exchange / hub.cfg.course_id / "inbound").iterdir())
    assert inbound == [ann, bob]

    fg = formgrader(instructor, hub)
    assert "Successfully collected" in click_and_confirm(fg, fg.locator("tr", has_text=LAB).first.locator("td.collect a"))
    assert hub.course.submitted(LAB) == [ann, bob]
    fg.locator("tr", has_text=LAB).first.locator("a", has_text="2").click()  # -> manage submissions
    for user in (ann, bob):
        row = fg.locator("tr", has_text=user).first
        assert "Successfully autograded" in click_and_confirm(fg, row.locator("td.autograde a"), timeout=LONG)
    in_formgrader = _scores(hub)
    assert in_formgrader == {ann: (3.0, 3.0), bob: (1.0, 3.0)}
    logs = hub.course.root / "reports" / "grade-logs" / LAB
    assert sorted(p.stem for p in logs.glob("*.log")) == [ann, bob]  # the boxed path wrote them

    run = course_grade.grade(hub.course, LAB, jobs=2, timeout_s=300)
    assert run.scores() == in_formgrader  # the CLI path scores the same

    fg = formgrader(instructor, hub)
    row = fg.locator("tr", has_text=LAB).first
    assert "Success" in click_and_confirm(fg, row.locator("td.generate-feedback a"), timeout=LONG)
    assert "Success" in click_and_confirm(fg, fg.locator("tr", has_text=LAB).first.locator("td.release-feedback a"))

    for user, score in ((ann, "3.0 / 3.0"), (bob, "1.0 / 3.0")):  # nbgrader's "(Score: 3.0 / 3.0)"
        page = login(browser, hub, user)
        open_lab(page)
        assignment_list(page)
        list_button(page, "submitted", "Fetch Feedback").click()
        mine = sorted((hub.home(user) / LAB / "feedback").rglob("*.html"))
        page.wait_for_timeout(1000)
        mine = mine or sorted((hub.home(user) / LAB / "feedback").rglob("*.html"))
        assert mine, f"{user} fetched no feedback"
        html = mine[-1].read_text()
        assert re.search(r"Score:\s*" + re.escape(score).replace(r"\ ", r"\s*"), html), html[:400]
        done(page)
    listing = hub.as_user(ann, f"import os; print(os.listdir({str(hub.cfg.exchange / hub.cfg.course_id / 'feedback')!r}))")
    assert listing.returncode != 0 and "PermissionError" in listing.stderr  # no one else's by listing


def _scores(hub: HubSession) -> dict[str, tuple[float, float]]:
    out = {}
    with hub.course.gradebook() as gb:
        for sub in gb.assignment_submissions(LAB):
            out[sub.student_id] = (float(sub.score), float(sub.max_score))
    return out


def test_a_trainee_cannot_reach_another_trainees_server_files_sandbox_or_docker(browser, hub):
    ann, bob = hub.trainees
    hub.ensure_server(ann)
    page = login(browser, hub, bob)
    open_lab(page)
    answer = page.goto(f"{hub.url}/user/{ann}/lab")  # ann's server runs; its OAuth check refuses bob
    assert answer is not None and answer.status == 403
    assert "/lab" not in page.url or ann not in page.url or page.locator("#jp-main-dock-panel").count() == 0
    probe = f"""
import os, socket
def tries(what, fn):
    try:
        fn(); print(what, "OPEN")
    except OSError as e:
        print(what, "refused", type(e).__name__)
tries("home", lambda: os.listdir({str(hub.home(ann))!r}))
tries("socket", lambda: socket.socket(socket.AF_UNIX).connect({str(hub.cfg.socket(ann))!r}))
tries("docker", lambda: socket.socket(socket.AF_UNIX).connect("/var/run/docker.sock"))
tries("hub-proxy", lambda: socket.create_connection(("127.0.0.1", {hub.cfg.port}), timeout=5))
tries("sandbox-port", lambda: socket.create_connection(("127.0.0.1", {_port(hub, ann)}), timeout=5))
tries("own-socket", lambda: socket.socket(socket.AF_UNIX).connect({str(hub.cfg.socket(bob))!r}))
"""
    lines = dict(line.split(" ", 1) for line in hub.as_user(bob, probe).stdout.splitlines())
    assert lines["home"].startswith("refused") and lines["socket"].startswith("refused")
    assert lines["docker"].startswith("refused") and lines["hub-proxy"].startswith("refused")
    assert lines["sandbox-port"].startswith("refused")
    assert lines["own-socket"] == "OPEN"  # the one channel a trainee has: their own endpoint


def _port(hub: HubSession, user: str) -> int:
    """The host port of ``user``'s sandbox front door (brought up if it is not)."""
    sb = make_sandbox(Settings.from_env(sandbox_id=user)).up()
    return int(sb.endpoint.rsplit(":", 1)[1].split("/")[0])


def test_a_name_off_the_roster_cannot_log_in(browser, hub):
    context = steady_network(browser.new_context(), hub.url)
    page = context.new_page()
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", "mallory")
    page.fill("#password_input", hub.secrets[hub.trainees[0]])
    page.click("#login_submit")
    page.get_by_text("Invalid username or password").wait_for(timeout=30_000)
    assert "/hub/login" in page.url
    context.close()
