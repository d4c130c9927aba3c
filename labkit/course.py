"""The instructor workflow over nbgrader: generate, release, collect, feedback, export.

``labkit course ...`` calls these. Each step runs nbgrader as a subprocess in the course root
(nbgrader reads ``nbgrader_config.py`` from the current directory only), so the course's
configuration, and nothing else, decides how nbgrader behaves. Grading lives in
``labkit.course_grade``: it runs every submission against a sandbox of its own, in parallel.

A course is located by ``Course.locate``: an explicit root, ``LABKIT_COURSE_ROOT``, the current
directory if it holds ``nbgrader_config.py``, ``./labs``, or the ``labs/`` folder of the
checkout this package was installed from.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traitlets.config.loader import PyFileConfigLoader

from sandbox.errors import InfrastructureError, InvalidInput, ToolMissing, UnknownChoice

CONFIG_FILE = "nbgrader_config.py"
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f UTC"
_ERROR_RE = re.compile(r"error processing assignment '([^']+)'")


class NbgraderFailed(InfrastructureError):
    """An nbgrader command exited with an error; the message carries its last lines."""

    def __init__(self, command: str, returncode: int, tail: str) -> None:
        super().__init__(
            f"`nbgrader {command}` failed (exit {returncode}): {tail}",
            fix="read the full log above; `nbgrader db upgrade` if the gradebook is from an"
            " older nbgrader",
        )
        self.returncode = returncode


@dataclass
class Run:
    """One finished nbgrader subprocess."""

    args: list[str]
    returncode: int
    output: str
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 6) -> str:
        """The last lines that say something (errors first), for one-line messages."""
        text = [ln.strip() for ln in self.output.splitlines() if ln.strip()]
        errors = [ln for ln in text if "ERROR" in ln or "Error" in ln]
        return " | ".join((errors or text)[-lines:])[-800:]


def nbgrader_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment nbgrader runs in: ours, the venv's ``bin`` first on PATH (nbgrader
    calls ``alembic`` by name), plus ``extra``."""
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra or {})
    return env


def boxed() -> bool:
    """Whether graded kernels run in grading boxes (the default; ``LABKIT_BOX=0`` turns it off)."""
    return os.environ.get("LABKIT_BOX", "1") != "0"


def nbgrader_binary() -> str:
    """The ``nbgrader`` next to this interpreter, else the one on PATH."""
    local = Path(sys.executable).parent / "nbgrader"
    if local.exists():
        return str(local)
    found = shutil.which("nbgrader")
    if not found:
        raise ToolMissing("nbgrader", "pip install -e '.[test,lab]' (nbgrader is a dependency of labkit)")
    return found


@dataclass(frozen=True)
class Course:
    """An nbgrader course root: ``nbgrader_config.py``, ``source/<lab>/<lab>.ipynb``, ..."""

    root: Path

    # --- locating ---------------------------------------------------------------------------
    @classmethod
    def locate(cls, root: str | Path | None = None) -> Course:
        """The course at ``root``, or found as the module docstring says."""
        candidates: list[Path] = []
        if root:
            candidates.append(Path(root))
        elif os.environ.get("LABKIT_COURSE_ROOT"):
            candidates.append(Path(os.environ["LABKIT_COURSE_ROOT"]))
        else:
            candidates += [Path.cwd(), Path.cwd() / "labs", Path(__file__).resolve().parents[1] / "labs"]
        for path in candidates:
            if (path / CONFIG_FILE).is_file():
                return cls(path.resolve())
        tried = ", ".join(str(p) for p in candidates)
        raise InvalidInput(f"no nbgrader course (a folder with {CONFIG_FILE}) at {tried};"
                           " pass --root or set LABKIT_COURSE_ROOT")

    # --- configuration ---------------------------------------------------------------------
    def config(self) -> Any:
        """The course's nbgrader configuration, loaded as nbgrader loads it."""
        return PyFileConfigLoader(CONFIG_FILE, path=str(self.root)).load_config()

    @property
    def db_url(self) -> str:
        """The gradebook URL nbgrader uses for this course."""
        url = self.config().CourseDirectory.get("db_url")
        return str(url) if url else f"sqlite:///{self.root / 'gradebook.db'}"

    @property
    def course_id(self) -> str:
        return str(self.config().CourseDirectory.get("course_id") or "default_course")

    def gradebook(self) -> Any:
        """An ``nbgrader.api.Gradebook`` on this course's database (use it with ``with``)."""
        from nbgrader.api import Gradebook  # ~2.5 s to import: only where a gradebook is opened

        bindir = str(Path(sys.executable).parent)  # a new gradebook asks `alembic` its version
        if bindir not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
        return Gradebook(self.db_url, self.course_id)

    # --- what is in it ----------------------------------------------------------------------
    def labs(self) -> list[str]:
        """Lab ids: folders of ``source/`` that hold at least one notebook."""
        source = self.root / "source"
        if not source.is_dir():
            return []
        return sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))

    def require_lab(self, lab: str) -> str:
        if lab not in self.labs():
            raise UnknownChoice("lab", lab, self.labs())
        return lab

    def notebooks(self, lab: str) -> list[str]:
        """Notebook names (without ``.ipynb``) of one lab's source."""
        folder = self.root / "source" / self.require_lab(lab)
        return sorted(p.stem for p in folder.glob("*.ipynb"))

    def submitted(self, lab: str) -> list[str]:
        """Students with a submission of ``lab`` in ``submitted/<student>/<lab>/``."""
        base = self.root / "submitted"
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / lab).is_dir())

    def require_students(self, lab: str, students: str | list[str] | None = None) -> list[str]:
        """The students to grade: all submitters of ``lab``, or the ones named (each must
        have a submission; ``UnknownChoice`` names those who do)."""
        found = self.submitted(self.require_lab(lab))
        if not students:
            if not found:
                raise InvalidInput(f"no submissions of {lab} in {self.root / 'submitted'};"
                                   f" run `labkit course collect {lab}` or `labkit course submit`")
            return found
        wanted = [students] if isinstance(students, str) else list(students)
        for student in wanted:
            if student not in found:
                raise UnknownChoice(f"student (with a submission of {lab})", student, found)
        return list(dict.fromkeys(wanted))

    # --- running nbgrader ------------------------------------------------------------------
    def nbgrader(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> Run:
        """Run ``nbgrader ARGS --CourseDirectory.root=<root>`` in the course root."""
        cmd = [nbgrader_binary(), *args, f"--CourseDirectory.root={self.root}"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=self.root, env=nbgrader_env(env), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        run = Run(list(args), proc.returncode, proc.stdout, time.perf_counter() - t0)
        if check and not run.ok:
            raise NbgraderFailed(" ".join(args[:2]), run.returncode, run.tail())
        return run


# --- the workflow steps --------------------------------------------------------------------


def generate(course: Course, lab: str | None = None) -> list[str]:
    """``nbgrader generate_assignment`` for one lab or all of them (one nbgrader process);
    returns the labs generated. Labs are added to the gradebook as they are generated."""
    labs = [course.require_lab(lab)] if lab else course.labs()
    if not labs:
        raise InvalidInput(f"no labs in {course.root / 'source'}; a lab is source/<lab>/<lab>.ipynb")
    run = course.nbgrader("generate_assignment", lab or "*", "--create", "--force", check=False)
    failed = sorted(set(_ERROR_RE.findall(run.output)) & set(labs))
    missing = [x for x in labs if not (course.root / "release" / x).is_dir()]
    bad = sorted(set(failed) | set(missing))
    if bad or not run.ok:
        raise NbgraderFailed(f"generate_assignment {lab or '*'}", run.returncode or 1,
                             f"labs not generated: {', '.join(bad) or '?'}; {run.tail()}")
    return labs


def release(course: Course, lab: str) -> Run:
    """Copy the generated lab into the course's exchange, where trainees fetch it."""
    return course.nbgrader("release_assignment", course.require_lab(lab), "--force")


def collect(course: Course, lab: str) -> list[str]:
    """Move trainees' submissions from the exchange to ``submitted/``; returns who submitted."""
    course.nbgrader("collect", course.require_lab(lab), "--update")
    return course.submitted(lab)


def feedback(course: Course, lab: str, release_feedback: bool = False) -> Run:
    """Generate HTML feedback (``feedback/<student>/<lab>/``), optionally release it."""
    run = course.nbgrader("generate_feedback", course.require_lab(lab), "--force")
    if release_feedback:
        course.nbgrader("release_feedback", lab)
    return run


def export(course: Course, to: Path | None = None) -> Path:
    """Export the gradebook as CSV (default ``<root>/reports/grades.csv``)."""
    path = (to or course.root / "reports" / "grades.csv").resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    course.nbgrader("export", f"--to={path}")
    return path


def add_student(course: Course, student: str, first: str = "", last: str = "",
                email: str = "") -> dict[str, Any]:
    """Create or update a student in the gradebook."""
    if not re.fullmatch(r"[A-Za-z0-9_.@-]+", student or ""):
        raise InvalidInput(f"student id {student!r}: use letters, digits and _ . @ -")
    fields = {k: v for k, v in {"first_name": first, "last_name": last, "email": email}.items() if v}
    with course.gradebook() as gb:
        return dict(gb.update_or_create_student(student, **fields).to_dict())


def submit(course: Course, lab: str, notebook: Path, student: str) -> Path:
    """Put ``notebook`` into ``submitted/<student>/<lab>/`` with a ``timestamp.txt``, as
    ``nbgrader collect`` would. The file takes the lab's notebook name when the lab has one
    notebook; otherwise its own name must be one of the lab's notebooks."""
    names = course.notebooks(lab)
    if not notebook.is_file():
        raise InvalidInput(f"no notebook at {notebook}")
    if not re.fullmatch(r"[A-Za-z0-9_.@-]+", student or ""):
        raise InvalidInput(f"student id {student!r}: use letters, digits and _ . @ -")
    name = names[0] if len(names) == 1 else notebook.stem
    if name not in names:
        raise UnknownChoice(f"notebook of {lab}", notebook.stem, names)
    dest = course.root / "submitted" / student / lab
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(notebook, dest / f"{name}.ipynb")
    stamp = dt.datetime.now(dt.UTC).strftime(TIMESTAMP_FORMAT)
    (dest / "timestamp.txt").write_text(stamp + "\n", encoding="utf-8")
    return dest / f"{name}.ipynb"
