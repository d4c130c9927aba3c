"""``labkit report``: skills matrix, KPIs as the plan defines them, phase gates and the cohort view.

Modules, one step each: ``inputs`` reads everything once, ``kpis`` computes each KPI of one
trainee as of one moment, ``levels`` the skills, phase gates and at-risk flags, ``build`` the
whole cohort (red zones, mentor load, week-by-week), ``text`` the Markdown, ``html`` and
``figures`` the static cohort page (``labkit report --html DIR``).
"""

from .build import RED_ZONE_MIN, build_report, read_ledger, trainee_report
from .inputs import Inputs, gather, read_changes, read_gradebook, read_sources
from .kpis import KPI_FUNCTIONS, View, kpis
from .levels import LEVEL_THRESHOLDS, level_for, skills, weeks_completed
from .model import CellGrade, CourseReport, GateStatus, KPIValue, MentorLoad, RedZone, SkillLevel, TraineeReport
from .text import report_markdown

__all__ = [
    "KPI_FUNCTIONS", "LEVEL_THRESHOLDS", "RED_ZONE_MIN", "CellGrade", "CourseReport", "GateStatus", "Inputs",
    "KPIValue", "MentorLoad", "RedZone", "SkillLevel", "TraineeReport", "View", "build_report", "gather", "kpis",
    "level_for", "read_changes", "read_gradebook", "read_ledger", "read_sources", "report_markdown", "skills",
    "trainee_report", "weeks_completed",
]
