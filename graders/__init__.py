"""Checks of a sandbox's live state, for notebooks (feedback) and for grading (scores).

In a notebook::

    from graders import expect
    expect("serving", model="v1")          # raises CheckFailed with a hint unless it holds

``check(name, sb=None, **args)`` returns a ``CheckResult`` without raising. ``CHECKS`` is the
registry (name -> ``CheckSpec``); ``register(name)`` adds one. The score of a graded lab does
not come from the kernel (anything in it can be patched) but from
``graders.preprocessor.LiveStateGrader``, which re-runs each grade cell's declared check in
nbgrader's own process.
"""

from __future__ import annotations

from . import alerting  # noqa: F401  (registers the rule checks)
from .checks import CHECKS, CheckSpec, check, expect, register
from .datachecks import foreign_snapshot
from .result import CheckResult

__all__ = ["check", "expect", "CheckResult", "CHECKS", "CheckSpec", "register", "foreign_snapshot"]
