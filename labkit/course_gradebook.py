"""What ``labkit course grade`` writes into nbgrader's gradebook besides nbgrader itself: a zero
for a submission whose own code hung or crashed, *not graded* for one the machinery failed, and
the outcome's points read back. One thread at a time, retried while SQLite is locked."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from .course import Course

if TYPE_CHECKING:
    from .course_grade import GradeOutcome

LOCKED = "database is locked"
_gradebook_lock = threading.Lock()




def with_gradebook(course: Course, action: Any, attempts: int = 5) -> Any:
    """Run ``action(gb)`` on the course's gradebook, one thread at a time; retry when
    SQLite is locked by an nbgrader process."""
    from sqlalchemy.exc import OperationalError

    for attempt in range(attempts):
        try:
            with _gradebook_lock, course.gradebook() as gb:
                return action(gb)
        except OperationalError as e:
            if LOCKED not in str(e) or attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    return None


def record_zero(course: Course, lab: str, student: str, cause: str) -> None:
    """Every grade cell of the lab's notebooks scores 0 for ``student``; comments say why."""

    def action(gb: Any) -> None:
        gb.update_or_create_student(student)
        submission = gb.update_or_create_submission(lab, student)
        for nb in submission.notebooks:
            for g in nb.grades:
                g.auto_score = 0.0
                g.needs_manual_grade = False
            for c in nb.comments:
                c.auto_comment = f"labkit: not graded ({cause}); every grade cell scored 0"
        gb.db.commit()

    with_gradebook(course, action)


def record_not_graded(course: Course, lab: str, student: str, cause: str) -> None:
    """The machinery failed: no grade cell keeps a score from this run (whatever nbgrader saved
    before the failure was noticed); each is flagged for the instructor with the cause."""
    regrade = f"labkit course grade {lab} --student {student}"

    def action(gb: Any) -> None:
        gb.update_or_create_student(student)
        submission = gb.update_or_create_submission(lab, student)
        for nb in submission.notebooks:
            for g in nb.grades:
                g.auto_score = None
                g.needs_manual_grade = True
            for c in nb.comments:
                c.auto_comment = f"labkit: not graded, the grading machinery failed ({cause}); regrade: {regrade}"
        gb.db.commit()

    with_gradebook(course, action)


def fill_scores(course: Course, lab: str, outcome: GradeOutcome) -> None:
    """Autograded points, failed and pending cells of the submission, from the gradebook."""

    def action(gb: Any) -> None:
        submission = gb.find_submission(lab, outcome.student)
        for nb in submission.notebooks:
            solutions = {c.name for c in nb.notebook.solution_cells}
            for g in nb.grades:
                manual = g.cell.cell_type != "code" or g.cell.name in solutions
                if manual and g.needs_manual_grade:
                    outcome.manual_pending.append(g.name)
                    continue
                if manual:
                    continue
                points, most = float(g.score or 0.0), float(g.max_score or 0.0)
                outcome.score += points
                outcome.max_score += most
                outcome.cell_scores[g.name] = points
                if points < most:
                    outcome.failed_cells.append(g.name)

    with_gradebook(course, action)
