"""nbgrader configuration of the labkit course (this folder is the course root).

nbgrader reads ``nbgrader_config.py`` from the current directory only: run ``nbgrader``
from this folder, or use ``labkit course ...``, which does. Every path below is computed from
this file's location, so a copy of the course in another folder (tests, a cohort's server)
works unchanged.

Environment:

* ``LABKIT_GRADEBOOK_URL``: SQLAlchemy URL of the gradebook. Unset = SQLite file
  ``gradebook.db`` in this folder (one grader). For a cohort with several graders use
  PostgreSQL, e.g. ``postgresql+psycopg2://labkit:SECRET@db.example.edu/labkit``.
* ``LABKIT_EXCHANGE_ROOT``: nbgrader's exchange. Unset = ``exchange/`` in this folder.
* ``LABKIT_EXECUTE_TIMEOUT_S``: seconds one notebook cell may run while autograding
  (default 180: a lab deploys revisions and waits for readiness in one cell).
"""

import os
from pathlib import Path

c = get_config()  # noqa: F821 - provided by traitlets when it loads this file

try:
    ROOT = Path(__file__).resolve().parent  # noqa: F821 - traitlets defines __file__
except NameError:  # loaded by something that does not define __file__
    ROOT = Path.cwd().resolve()

# --- the course ---------------------------------------------------------------------------
c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.course_id = "labkit"
c.CourseDirectory.db_url = os.environ.get("LABKIT_GRADEBOOK_URL") or f"sqlite:///{ROOT / 'gradebook.db'}"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".pytest_cache"]

# release/collect through an exchange inside the course root: works locally, no /srv needed.
# On a hub (``labkit hub up``) the exchange is the hub's, shared with the trainees' accounts:
# LABKIT_EXCHANGE_ROOT names it (the formgrader service has it set; export it for the CLI).
c.Exchange.root = os.environ.get("LABKIT_EXCHANGE_ROOT") or str(ROOT / "exchange")

# Timestamps on nbgrader's log lines (per-submission grading logs show where time went).
c.NbGrader.log_format = "%(asctime)s [%(name)s | %(levelname)s] %(message)s"
c.NbGrader.log_datefmt = "%H:%M:%S"

# --- generating the student version -------------------------------------------------------
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# --- executing a submission --------------------------------------------------------------
c.Execute.timeout = int(os.environ.get("LABKIT_EXECUTE_TIMEOUT_S", "180"))
c.Execute.startup_timeout = 120
c.Execute.interrupt_on_timeout = True

# --- the grading box ------------------------------------------------------------------------
# Each submission's kernel runs in a container of its own with no network (graders.box): the
# kernelspec "labkit-box" names the BoxProvisioner, and kernels talk ZeroMQ over unix sockets.
# LABKIT_BOX=0 runs kernels on this machine instead (only for measuring what the box costs).
if os.environ.get("LABKIT_BOX", "1") != "0":
    import importlib.util

    _graders = importlib.util.find_spec("graders")
    if _graders is not None and _graders.origin:
        _kernels = Path(_graders.origin).parent / "box"
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(_kernels), os.environ.get("JUPYTER_PATH")]))
        c.Execute.kernel_name = "labkit-box"
        c.KernelManager.transport = "ipc"

# --- autograding: nbgrader's default pipeline with live-state grading around Execute -----
# The classes are named by string so this file loads even when ``graders`` is broken; only
# ``nbgrader autograde`` imports them. ForeignSnapshot records the Docker objects the kit did
# not make before the submission runs, SourceSnapshot reads the instructor source's check
# declarations then (the grade never rests on a file the run could change); LiveStateGrader
# re-runs each grade cell's declared check against the live sandbox (``LABKIT_SANDBOX_ID``)
# in nbgrader's own process, right after Execute and before SaveAutoGrades reads the scores.
# LiveSuggestions, after SaveAutoGrades, puts the suggested score of manually graded runbook
# cells into the gradebook's automatic comment (formgrader shows it; the instructor still decides).
c.Autograde.autograde_preprocessors = [
    "graders.preprocessor.ForeignSnapshot",
    "graders.preprocessor.SourceSnapshot",
    "graders.execute.GraderExecute",
    "graders.preprocessor.LiveStateGrader",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "graders.preprocessor.LiveSuggestions",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.LiveStateGrader.source_root = str(ROOT / "source")
c.LiveStateGrader.checks_enabled = True
