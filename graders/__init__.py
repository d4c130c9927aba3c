"""Checks of a sandbox's live state, for notebooks (feedback) and for grading (scores).

In a notebook::

    from graders import expect
    expect("serving", model="v1")          # raises CheckFailed with a hint unless it holds

``check(name, sb=None, **args)`` returns a ``CheckResult`` without raising. ``CHECKS`` is the
registry (name -> ``CheckSpec``); ``register(name)`` adds one. The score of a graded lab does
not come from the kernel (anything in it can be patched) but from
``graders.preprocessor.LiveStateGrader``, which re-runs each grade cell's declared check in
nbgrader's own process.

Written artifacts (design reviews, ADRs, feedback, proposals, vendor reviews, classification
tables) have rubric checks too (``graders.artifacts``, ``graders.govchecks``): they score a
markdown answer part by part and, in a lab, suggest the score of a manually graded cell.
"""

from __future__ import annotations

from . import accesschecks, alerting, artifacts, govchecks, process, recordchecks  # noqa: F401 - they register their checks
from .checks import CHECKS, check, expect, register
from .datachecks import foreign_snapshot
from .evidence import find_evidence, trainee_evidence
from .hints import hint
from .result import CheckResult

__all__ = ["check", "expect", "CheckResult", "CHECKS", "register", "foreign_snapshot",
           "find_evidence", "trainee_evidence", "hint"]
