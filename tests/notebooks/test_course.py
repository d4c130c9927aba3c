"""The course's CI proofs: every lab generates; the instructor solution autogrades to full
autograded points, the released blank to 0 without hanging, a wrong submission to partial
credit with the expected grade cells failing; the written answers' rubric checks suggest full
points for the solution, 0 for the blank and partial for the wrong answer (a rubric-only lab of
the leadership and governance tracks is proven by those alone); ``--jobs 2`` and ``--jobs 1``
agree; a hanging or crashing submission is cut off and scored 0 without blocking the others.

All of it in a copy of the course (``conftest.course``), never in the repository's ``labs/``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from fixture_lab import LAB as FIXTURE
from fixture_lab import variant
from nbhelpers import (
    LABS,
    LABS_DIR,
    autograded,
    copy_course,
    rubric_cells,
    suggestions,
    wrong_proven,
)
from typer.testing import CliRunner
from wrong_submissions import WRONG, make_wrong

from labkit.cli.course import course_app
from labkit.course import Course, add_student, submit
from labkit.course_grade import grade, grading_sandbox_id, infrastructure_failure
from labkit.report import read_changes
from sandbox import labels
from sandbox.errors import InvalidInput, UnknownChoice

# --- fast: the configuration, the course object, the CLI -------------------------------------


def _config(root: Path, env: dict[str, str] | None = None):
    from traitlets.config.loader import PyFileConfigLoader

    old = dict(os.environ)
    os.environ.pop("LABKIT_GRADEBOOK_URL", None)
    os.environ.update(env or {})
    try:
        return PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    finally:
        os.environ.clear()
        os.environ.update(old)


def test_config_is_relative_to_its_folder_and_names_graders_by_string(tmp_path):
    copy_course(tmp_path / "labs", labs=[])
    c = _config(tmp_path / "labs")
    root = (tmp_path / "labs").resolve()
    assert c.CourseDirectory.root == str(root) and c.CourseDirectory.course_id == "labkit"
    assert c.CourseDirectory.db_url == f"sqlite:///{root / 'gradebook.db'}"
    assert c.Exchange.root == str(root / "exchange")
    assert c.LiveStateGrader.source_root == str(root / "source")
    assert c.Execute.timeout >= 120 and c.Execute.startup_timeout >= 60
    assert "raise NotImplementedError()" in c.ClearSolutions.code_stub["python"]
    chain = c.Autograde.autograde_preprocessors
    assert all(isinstance(p, str) for p in chain), "classes named by string: config loads without graders"
    execute = chain.index("graders.execute.GraderExecute")  # nbgrader's Execute on the grader's clock
    # before the submission runs: the foreign objects and the instructor source the grade rests on
    assert chain[execute - 2:execute] == ["graders.preprocessor.ForeignSnapshot", "graders.preprocessor.SourceSnapshot"]
    assert chain[execute + 1] == "graders.preprocessor.LiveStateGrader"
    assert chain.index("nbgrader.preprocessors.SaveAutoGrades") > execute + 1
    from nbgrader.preprocessors import Execute

    from graders.execute import GraderExecute
    assert issubclass(GraderExecute, Execute)  # so the c.Execute settings above reach it


def test_gradebook_url_switches_to_postgresql_by_environment(tmp_path):
    url = "postgresql+psycopg2://labkit:secret@db.example.edu/labkit"
    c = _config(LABS_DIR, {"LABKIT_GRADEBOOK_URL": url})
    assert c.CourseDirectory.db_url == url


def test_gradebook_url_reaches_nbgrader_and_our_gradebook(fixture_course: Course, tmp_path, monkeypatch):
    """The switch is one variable: nbgrader (subprocess) and ``Course.gradebook`` both follow it."""
    root = tmp_path / "labs"
    shutil.copytree(fixture_course.root, root, ignore=shutil.ignore_patterns("gradebook.db", "release"))
    other = tmp_path / "elsewhere.db"
    monkeypatch.setenv("LABKIT_GRADEBOOK_URL", f"sqlite:///{other}")
    course = Course(root.resolve())
    course.nbgrader("generate_assignment", FIXTURE, "--create", "--force")
    assert other.is_file() and not (root / "gradebook.db").exists()
    with course.gradebook() as gb:
        assert [a.name for a in gb.assignments] == [FIXTURE]


def test_unknown_lab_and_student_name_the_valid_ones(fixture_course: Course, tmp_path):
    with pytest.raises(UnknownChoice, match=f"valid: {FIXTURE}"):
        fixture_course.require_lab("lab99-nope")
    nb = fixture_course.root / "source" / FIXTURE / f"{FIXTURE}.ipynb"
    course = copy_course(tmp_path / "labs", labs=[])
    (course.root / "source" / FIXTURE).mkdir(parents=True)
    nbformat.write(nbformat.read(str(nb), as_version=4), str(course.root / "source" / FIXTURE / "x.ipynb"))
    with pytest.raises(InvalidInput, match="no submissions"):
        course.require_students(FIXTURE)
    submit(course, FIXTURE, nb, "alice")
    assert (course.root / "submitted" / "alice" / FIXTURE / "x.ipynb").is_file()
    assert "UTC" in (course.root / "submitted" / "alice" / FIXTURE / "timestamp.txt").read_text()
    with pytest.raises(UnknownChoice, match="valid: alice"):
        course.require_students(FIXTURE, "bob")
    with pytest.raises(InvalidInput, match="student id"):
        submit(course, FIXTURE, nb, "bad name")


def test_grading_sandbox_ids_are_unique_and_dns_safe():
    ids = {grading_sandbox_id("Jean-Luc Picard, the very long student name of the cohort") for _ in range(50)}
    assert len(ids) == 50
    assert all(i.startswith("grade-") and len(i) <= 40 and i == i.lower() and " " not in i for i in ids)


def test_infrastructure_errors_in_locked_cells_are_the_machinerys_not_the_trainees(tmp_path):
    from fixture_lab import fixture_notebook

    def executed(cell_index: int, ename: str) -> Path:
        nb = fixture_notebook()
        nb.cells[cell_index].outputs = [nbformat.v4.new_output("error", ename=ename, evalue="no free pool",
                                                               traceback=[])]
        folder = tmp_path / f"{cell_index}-{ename}"
        folder.mkdir()
        nbformat.write(nb, str(folder / "lab.ipynb"))
        return folder

    cause, temporary = infrastructure_failure(executed(1, "InfrastructureError"))
    assert "InfrastructureError in cell setup" in cause and not temporary
    assert infrastructure_failure(executed(1, "DockerUnavailable"))[1]  # temporary by class: retried
    assert infrastructure_failure(executed(1, "KubeBusy"))[1]
    assert infrastructure_failure(executed(2, "InfrastructureError")) == ("", False)  # the trainee's own cell
    assert infrastructure_failure(executed(1, "SandboxNotUp")) == ("", False)  # trainee state: the checks judge it


def test_cli_students_submit_export_and_bad_lab(fixture_course: Course, tmp_path):
    root_dir = tmp_path / "labs"
    shutil.copytree(fixture_course.root, root_dir, ignore=shutil.ignore_patterns("submitted", "autograded"))
    src = root_dir / "source" / FIXTURE / f"{FIXTURE}.ipynb"
    runner = CliRunner()
    root = ["--root", str(root_dir)]
    for args in (["students", "add", "alice", "--first", "Alice", "--last", "A", *root],
                 ["submit", FIXTURE, str(src), "--student", "alice", *root], ["export", *root]):
        result = runner.invoke(course_app, args)
        assert result.exit_code == 0, f"{args}: {result.output}"
    assert (root_dir / "submitted" / "alice" / FIXTURE / f"{FIXTURE}.ipynb").is_file()
    assert "alice" in (root_dir / "reports" / "grades.csv").read_text()
    bad = runner.invoke(course_app, ["grade", "lab99-nope", *root])
    assert bad.exit_code == 2 and "valid: " + FIXTURE in bad.output


# --- every lab: generate_assignment ----------------------------------------------------------


@pytest.mark.parametrize("lab", LABS)
def test_generate_assignment(lab: str, course: Course, generated):
    release = course.root / "release" / lab / f"{lab}.ipynb"
    assert f"processing assignment '{lab}'" not in generated.output, generated.tail()
    assert release.is_file(), f"generate_assignment made no {release}: {generated.tail()}"
    text = release.read_text(encoding="utf-8")
    assert "### BEGIN SOLUTION" not in text and "### BEGIN HIDDEN TESTS" not in text


# --- every lab: the three submissions, graded against live sandboxes -------------------------


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.lab_grades
@pytest.mark.parametrize("lab", LABS)
def test_solution_earns_full_autograded_points(lab: str, lab_work):
    o = lab_work.outcome(lab, "solution")
    assert o.status == "graded", f"{o.status}: {o.cause} (log {o.log})"
    if not autograded(lab):  # a track lab where judgement is the skill: its rubric checks prove it
        assert o.max_score == 0 and rubric_cells(lab), "a lab without autograded points must declare rubric checks"
        return
    assert o.max_score > 0, "the lab has no autograded points"
    assert o.score == o.max_score, f"{o.score:g}/{o.max_score:g}; failed: {o.failed_cells} (log {o.log})"


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.lab_grades
@pytest.mark.parametrize("lab", LABS)
def test_blank_release_scores_zero_without_hanging(lab: str, lab_work):
    o = lab_work.outcome(lab, "blank")
    assert o.status == "graded", f"{o.status}: {o.cause} (log {o.log})"
    earning = {cell: points for cell, points in o.cell_scores.items() if points > 0}
    assert o.score == 0, f"blank scored {o.score:g}/{o.max_score:g}; cells earning points: {earning} (log {o.log})"


def test_every_lab_has_a_wrong_submission():
    """Graded every run for the labs of ``WRONG_LIVE`` and the track labs, for all with
    ``LABKIT_TEST_WRONG=all``; each lab must have one either way."""
    assert not [lab for lab in LABS if lab not in WRONG], "add them to tests/notebooks/wrong_submissions.py"


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.lab_grades
@pytest.mark.parametrize("lab", [lab for lab in LABS if wrong_proven(lab)])
def test_wrong_submission_gets_partial_credit(lab: str, course: Course, lab_work):
    spec = WRONG.get(lab)
    assert spec, f"no wrong submission for {lab}: add one to tests/notebooks/wrong_submissions.py"
    o = lab_work.outcome(lab, "wrong")
    assert o.status == "graded", f"{o.status}: {o.cause} (log {o.log})"
    if autograded(lab):
        assert 0 < o.score < o.max_score, f"{spec.why}: scored {o.score:g}/{o.max_score:g}, failed {o.failed_cells}"
        assert spec.failing <= set(o.failed_cells), f"expected {sorted(spec.failing)} to fail; failed {o.failed_cells}"
        assert not spec.passing & set(o.failed_cells), f"expected {sorted(spec.passing)} to pass; failed {o.failed_cells}"
    else:
        assert spec.suggest_partial, f"{lab} is rubric-only: its wrong submission must make a suggestion partial"
    suggested = suggestions(course.root, lab, "wrong")
    for grade_id in spec.suggest_partial:
        points, most = suggested.get(grade_id, (None, None))
        assert points is not None and 0 < points < most, f"{spec.why}: {grade_id} suggested {points}/{most}"


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.lab_grades
@pytest.mark.parametrize("lab", [lab for lab in LABS if rubric_cells(lab)])
def test_rubric_checks_suggest_full_for_the_solution_and_nothing_for_the_blank(lab: str, course: Course, lab_work):
    """Each written answer's check ran in the grader's process: the model answer earns every point,
    the released "YOUR ANSWER HERE" earns none."""
    for role in ("solution", "blank"):
        assert lab_work.outcome(lab, role).status == "graded"
    cells = rubric_cells(lab)
    solution = suggestions(course.root, lab, "solution")
    blank = suggestions(course.root, lab, "blank")
    assert set(solution) == set(blank) == cells, f"suggestions for {sorted(solution)} / {sorted(blank)}; cells {cells}"
    for grade_id in cells:
        assert solution[grade_id][0] == solution[grade_id][1], f"solution {grade_id}: {solution[grade_id]}"
        assert blank[grade_id][0] == 0, f"blank {grade_id}: {blank[grade_id]}"


def _checks_need_a_sandbox(lab: str) -> bool:
    from graders import CHECKS
    from graders.preprocessor import declared_checks

    declared = declared_checks(LABS_DIR / "source" / lab / f"{lab}.ipynb")
    return any(CHECKS[d["check"]].needs_sandbox for d in declared.values())


def _cells_change_the_service(lab: str, solution: bool) -> bool:
    """Whether the lab's solution (or locked) code cells deploy, roll back or inject a fault."""
    nb = nbformat.read(str(LABS_DIR / "source" / lab / f"{lab}.ipynb"), as_version=4)
    return any(bool(c.metadata.get("nbgrader", {}).get("solution")) == solution
               and any(call in c.source for call in (".deploy(", ".rollback(", "inject("))
               for c in nb.cells if c.cell_type == "code")


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.lab_grades
@pytest.mark.parametrize("lab", LABS)
def test_graded_run_records_who_changed_what(lab: str, course: Course, lab_work):
    """The KPIs' input: the grader attributes each revision of the run to a cell it ran in."""
    lab_work.outcome(lab, "solution")
    run = read_changes(course.root).get(("solution", lab))
    if not _checks_need_a_sandbox(lab):  # nothing live graded: its measurement rollouts are no one's changes
        assert run is None, f"{lab} grades no live state but recorded changes: {run}"
        return
    assert run is not None and "error" not in run, f"no changes record for {lab}: {run}"
    made_by = [r["made_by"] for r in run["revisions"]]
    assert "unknown" not in made_by, f"{lab}: a revision made outside every cell: {run['revisions']}"
    for who, solution in (("lab", False), ("trainee", True)):
        if _cells_change_the_service(lab, solution):
            assert who in made_by, f"{lab}: no revision attributed to the {who}: {run['revisions']}"
    if lab.startswith("lab05"):  # fix-forward with the crashing rc1 fails; the undo is a remediation
        assert (run["changes"], run["failed"]) == (1, 1), run


# --- parallel grading ----------------------------------------------------------------------------


def _jobs_lab() -> str:
    """The fixture lab (cheap: the per-lab proofs already grade every real lab in parallel);
    ``LABKIT_TEST_JOBS_LAB=<lab>`` runs this proof on a real lab (4 autogrades of it)."""
    return os.environ.get("LABKIT_TEST_JOBS_LAB") or FIXTURE


@pytest.mark.docker
@pytest.mark.slow
def test_jobs_2_gives_the_same_scores_as_jobs_1(tmp_path, docker_client, images_built, fixture_course):
    lab = _jobs_lab()
    if lab == FIXTURE:
        course = copy_course(tmp_path / "labs", labs=[])
        (course.root / "source" / lab).mkdir(parents=True)
        src = fixture_course.root / "source" / lab / f"{lab}.ipynb"
        (course.root / "source" / lab / f"{lab}.ipynb").write_bytes(src.read_bytes())
    else:
        course = copy_course(tmp_path / "labs", labs=[lab])
    course.nbgrader("generate_assignment", lab, "--create", "--force")
    source = course.root / "source" / lab / f"{lab}.ipynb"
    submit(course, lab, source, "first")
    submit(course, lab, make_wrong(source, WRONG[lab], tmp_path / "wrong.ipynb"), "second")
    two = grade(course, lab, jobs=2, timeout_s=600)
    one = grade(course, lab, jobs=1, timeout_s=600)
    assert [o.status for o in two.outcomes + one.outcomes] == ["graded"] * 4
    assert two.scores() == one.scores(), f"--jobs 2 {two.scores()} != --jobs 1 {one.scores()}"
    assert {o.student: o.failed_cells for o in two.outcomes} == {o.student: o.failed_cells for o in one.outcomes}
    assert two.scores()["first"][0] > two.scores()["second"][0]
    ids = {o.sandbox_id for o in two.outcomes + one.outcomes}
    assert len(ids) == 4, "every run had a sandbox of its own"
    _assert_torn_down(docker_client, ids)


# --- hanging and crashing submissions ---------------------------------------------------------


@pytest.mark.docker
@pytest.mark.slow
def test_hanging_and_crashing_submissions_are_cut_off_and_scored_zero(fixture_course: Course, docker_client,
                                                                      images_built):
    course, lab = fixture_course, FIXTURE
    add_student(course, "hangs")
    submit(course, lab, variant(course.root, "hang", "import time\ntime.sleep(3600)"), "hangs")
    submit(course, lab, variant(course.root, "crash", "import os\nos._exit(3)"), "crashes")
    submit(course, lab, course.root / "source" / lab / f"{lab}.ipynb", "works")
    run = grade(course, lab, ["hangs", "crashes", "works"], jobs=2, timeout_s=30)
    by = {o.student: o for o in run.outcomes}
    assert by["hangs"].status == "timeout" and by["hangs"].score == 0 and 29 <= by["hangs"].seconds < 600  # cut off, never the sleep's hour
    assert by["crashes"].status == "crashed" and by["crashes"].score == 0 and "died" in by["crashes"].cause
    assert by["works"].status == "graded" and by["works"].score == by["works"].max_score == 3
    with course.gradebook() as gb:
        for student in ("hangs", "crashes"):
            nb = gb.find_submission(lab, student).notebooks[0]
            assert [g.auto_score for g in nb.grades] == [0.0, 0.0]
            assert all("not graded" in (c.auto_comment or "") for c in nb.comments)
    _assert_torn_down(docker_client, {o.sandbox_id for o in run.outcomes})


@pytest.mark.docker
@pytest.mark.slow
def test_sigterm_during_grading_kills_the_run_and_tears_the_sandbox_down(fixture_course: Course, tmp_path,
                                                                        docker_client, images_built):
    root = tmp_path / "labs"
    shutil.copytree(fixture_course.root, root, ignore=shutil.ignore_patterns("submitted", "autograded"))
    course = Course(root.resolve())
    submit(course, FIXTURE, variant(course.root, "hang", "import time\ntime.sleep(3600)"), "stuck")
    code = "from labkit.cli.course import course_app; course_app()"
    proc = subprocess.Popen([sys.executable, "-c", code, "grade", FIXTURE, "--timeout", "300", "--root", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ids = _wait_for_sandboxes(docker_client, "grade-s-stuck-", proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode != 0, out
    _assert_torn_down(docker_client, ids)
    import psutil

    left = [p.pid for p in psutil.process_iter(["cmdline"]) if str(root) in " ".join(p.info["cmdline"] or [])]
    assert not left, f"processes of the interrupted run left: {left}"


def _wait_for_sandboxes(client, prefix: str, proc: subprocess.Popen, timeout_s: float = 90) -> set[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        ids = {c.labels.get(labels.SANDBOX, "") for c in client.containers.list(filters=labels.docker_filters())}
        ids = {i for i in ids if i.startswith(prefix)}
        if ids:
            return ids
        time.sleep(0.5)
    pytest.fail(f"no sandbox {prefix}* appeared (grade exited {proc.poll()})", pytrace=False)


def _assert_torn_down(client, sandbox_ids: set[str]) -> None:
    left = [c.name for c in client.containers.list(all=True, filters=labels.docker_filters())
            if c.labels.get(labels.SANDBOX) in sandbox_ids]
    assert not left, f"grading sandboxes left behind: {left}"
