"""JupyterLab as a user drives it, for the browser tests: its requests steady while Docker adds
and removes networks, its shell loaded, the dialogs a busy machine raises dismissed, a notebook's
kernel started and idle.

A loaded machine drops requests of the browser (a stylesheet, a file, the POST that starts a
notebook's session); JupyterLab then raises a modal dialog or leaves a notebook with no kernel.
A user reloads, closes the dialog or picks the kernel again; these helpers do the same and say so,
and a wait that gives up says what it saw (the status bar, the dialogs, the server's log lines).
"""

from __future__ import annotations

import time
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

#: how long a notebook may show no idle kernel before the helper picks its kernel again, as a user
#: who waited would (Kernel > Change Kernel..., the notebook's own kernel preselected)
REPICK_AFTER_S = 90.0


def steady_network(context, base_url: str):
    """Send the context's requests to ``base_url`` through Playwright's own HTTP client instead of
    Chromium's network stack, and return the context.

    Chromium aborts every request in flight with ``net::ERR_NETWORK_CHANGED`` when the machine's
    network interfaces change, and Docker adds and removes a bridge and veth pairs for every
    sandbox the other tests start: in CI that failed the formgrader's scripts (three reloads in a
    row), a notebook's file ("Failed to fetch") and a theme's stylesheet. The same requests made
    by Playwright (cookies shared with the context, redirects left to the browser, a reset
    connection retried) do not care. Navigations stay Chromium's: the cookies their responses
    set (the hub's login, a token's) must land in its own jar, or the kernels' WebSockets, which
    are not routed either, are refused (measured: every kernel "Disconnected" when documents were
    routed too). Proven with a bridge network added and removed every 2 s beside the tests."""

    def through_playwright(route) -> None:
        if route.request.resource_type == "document":  # navigations keep Chromium's own cookie handling
            route.continue_()
            return
        try:
            response = route.fetch(max_redirects=0, max_retries=3, timeout=120_000)
        except PlaywrightError:  # the page went away meanwhile, or the server did
            try:
                route.abort()
            except PlaywrightError:
                pass
            return
        try:
            route.fulfill(response=response)
        except PlaywrightError:  # the page went away meanwhile
            pass

    context.route(f"{base_url.rstrip('/')}/**", through_playwright)
    return context


def open_lab(page, tries: int = 3) -> None:
    """Wait for JupyterLab's shell. A stylesheet the browser gave up on while the machine was
    busy shows as a modal "Error Loading Theme" that blocks every click: reload, as a user would
    (and say so), at most ``tries`` times."""
    for attempt in range(tries):
        page.locator("#jp-main-dock-panel").wait_for(timeout=180_000)
        page.wait_for_load_state("load", timeout=120_000)
        dialog = page.locator(".jp-Dialog", has_text="Error Loading Theme")
        page.wait_for_timeout(500)
        if dialog.count() == 0:
            return
        print(f"JupyterLab at {page.url} showed 'Error Loading Theme' (try {attempt + 1}); reloading")
        page.reload()
    raise AssertionError(f"JupyterLab at {page.url} kept failing to load its theme")


def dismiss_dialogs(page) -> list[str]:
    """Close the modal dialogs JupyterLab raises when a request of a busy machine failed (e.g.
    "File Load Error ... Failed to fetch" while it restored the last open notebook) by their
    default (last) button, as a user would, and say so: they block every click but say nothing
    about what the test checks. Returns what each dialog said."""
    dialogs = page.locator(".jp-Dialog")
    closed: list[str] = []
    for _ in range(5):
        if dialogs.count() == 0:
            return closed
        dialog = dialogs.last
        text = " ".join(dialog.inner_text(timeout=5_000).split())
        if "Error Loading Theme" in text:
            open_lab(page)
            continue
        print(f"JupyterLab at {page.url} showed a dialog {text[:200]!r}; dismissing it")
        closed.append(text)
        dialog.locator(".jp-Dialog-button").last.click(timeout=10_000)
        dialog.wait_for(state="detached", timeout=30_000)
    raise AssertionError(f"JupyterLab at {page.url} kept raising dialogs: {closed}")


def kernel_status(page) -> str:
    """The notebook's kernel as the status bar shows it (e.g. "Python 3 (ipykernel) | Idle")."""
    widgets = page.locator(".jp-StatusBar-Widget", has_text="|")
    texts = [" ".join(t.split()) for t in widgets.all_inner_texts()]
    return next((t for t in texts if "Kernel" in t or "ipykernel" in t or "Python" in t), " / ".join(texts))


def wait_kernel_idle(page, timeout_ms: int, *, repick: bool = True,
                     log: Path | None = None) -> None:
    """Wait until the open notebook's kernel is idle. Dialogs are dismissed as they come; with
    ``repick`` a notebook that shows no idle kernel after ``REPICK_AFTER_S`` gets its kernel picked
    again (once per period), as a user would when the session's start was lost. On timeout the
    error says what the status bar showed, every dialog closed, and the tail of ``log``."""
    idle = page.locator(".jp-StatusBar-Widget", has_text="Idle").first
    start = time.monotonic()
    deadline = start + timeout_ms / 1000
    last_pick, seen, picks = start, [], 0
    while True:
        try:
            idle.wait_for(timeout=5_000)
            return
        except PlaywrightTimeout:
            pass
        seen += dismiss_dialogs(page)
        now = time.monotonic()
        if now >= deadline:
            break
        if repick and now - last_pick >= REPICK_AFTER_S:
            status = kernel_status(page)
            print(f"JupyterLab at {page.url}: no idle kernel after {now - start:.0f} s ({status!r}); picking it again")
            _repick_kernel(page)
            last_pick, picks = time.monotonic(), picks + 1
    tail = ""
    if log is not None:
        text = log.read_text(errors="replace") if log.exists() else "(no log)"
        tail = "\n".join(line for line in text.splitlines() if "ernel" in line or "session" in line.lower())
        tail = "\nkernel lines of the server's log:\n" + "\n".join(tail.splitlines()[-40:])
    raise AssertionError(f"JupyterLab at {page.url}: no idle kernel in {timeout_ms / 1000:.0f} s; the status bar "
                         f"shows {kernel_status(page)!r}; kernel picked again {picks} time(s); dialogs "
                         f"dismissed: {seen or 'none'}{tail}")


def _repick_kernel(page) -> None:
    """Kernel > Change Kernel..., then accept the preselected kernel (the notebook's own)."""
    try:
        page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").first.click(timeout=10_000)
        page.locator(".lm-Menu-itemLabel", has_text="Change Kernel").first.click(timeout=10_000)
        dialog = page.locator(".jp-Dialog").last
        dialog.wait_for(timeout=30_000)
        dialog.locator(".jp-Dialog-button").last.click(timeout=10_000)
        dialog.wait_for(state="detached", timeout=30_000)
    except PlaywrightTimeout as e:
        page.keyboard.press("Escape")
        print(f"JupyterLab at {page.url}: could not pick the kernel again ({str(e).splitlines()[0]})")
