"""Jupyter server extension of the formgrader service: its autograde button grades the way
``labkit course grade`` does.

nbgrader's formgrader autogrades a submission in its own process (``NbGraderAPI.autograde``),
on whatever sandbox ``LABKIT_SANDBOX_ID`` names and without tearing anything down. This
extension answers the same URL (``/formgrader/api/submission/<lab>/<student>/autograde``) with
``labkit.course_grade.grade``: preflight, the reaper, a grading box and a fresh sandbox for the
submission, torn down afterwards, zeros with the cause when the machinery failed. The answer
keeps nbgrader's shape (``success``, ``log``, ``error``), so the formgrader page is unchanged.
It runs in a worker thread, so the formgrader stays responsive while a submission is graded.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from jupyter_server.utils import url_path_join
from nbgrader.server_extensions.formgrader.base import BaseApiHandler, check_notebook_dir, check_xsrf
from tornado import web

from sandbox.errors import LabkitError

from .. import course_grade
from ..course import Course
from .config import HubConfig

AUTOGRADE = r"/formgrader/api/submission/([^/]+)/([^/]+)/autograde"


def autograde(lab: str, student: str, timeout_s: float) -> dict[str, Any]:
    """Grade one submission through the boxed path; nbgrader's answer shape."""
    course = Course.locate(Path.cwd())
    try:
        run = course_grade.grade(course, lab, [student], jobs=1, timeout_s=timeout_s)
    except LabkitError as e:
        return {"success": False, "error": e.message + (f" (fix: {e.fix})" if e.fix else ""), "log": ""}
    outcome = run.outcomes[0]
    log = Path(outcome.log).read_text(encoding="utf-8", errors="replace")[-20_000:] if outcome.log else ""
    if outcome.status != "graded":
        return {"success": False, "error": f"{outcome.status}: {outcome.cause}", "log": log}
    return {"success": True, "log": log}


class BoxedAutograde(BaseApiHandler):  # type: ignore[misc]
    """POST: autograde one submission in a grading box, on a sandbox of its own."""

    @web.authenticated
    @check_xsrf
    @check_notebook_dir
    async def post(self, lab: str, student: str) -> None:
        state = os.environ.get("LABKIT_HUB_STATE")
        timeout_s = HubConfig.load(state).grade_timeout_s if state else 600.0
        answer = await asyncio.to_thread(autograde, lab, student, timeout_s)
        self.write(json.dumps(answer))


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "labkit.hub.formgrade"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    web_app = serverapp.web_app
    pattern = url_path_join(web_app.settings["base_url"], AUTOGRADE)
    web_app.add_handlers(".*$", [(pattern, BoxedAutograde)])
    # Tornado tries host rules in order; nbgrader's formgrader (loaded in any order relative to
    # this) adds the same pattern, so put this rule first.
    rules = web_app.default_router.rules
    mine = next(r for r in rules if any(getattr(h, "target", None) is BoxedAutograde
                                        for h in getattr(r.target, "rules", [])))
    rules.remove(mine)
    rules.insert(0, mine)
    serverapp.log.info("labkit: formgrader autograde goes through grading boxes (%s)", pattern)
