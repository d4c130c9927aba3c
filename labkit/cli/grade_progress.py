"""The live progress of ``labkit course grade`` (rich's progress display, on stderr).

    grading lab03-new-index ━━━━━━━━━━╺━━━━━━━━━  7/16  running: alice, bob  failed: 1  0:04:10 left

Done / total, who is being graded now, failures so far (anything not ``graded``) and the time
left as rich estimates it from the pace so far. Fed by ``course_grade.grade``'s ``progress``
callback from the worker threads; ``--json`` prints the same JSON as before on stdout.
"""

from __future__ import annotations

import threading
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class GradeProgress:
    """A context manager whose ``__call__`` is ``course_grade.grade``'s progress callback."""

    def __init__(self, lab: str, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._lock = threading.Lock()
        self.running: list[str] = []
        self.failed: list[str] = []
        self.total = 0
        self.display = Progress(
            TextColumn(f"grading {lab}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("running: {task.fields[running]}"), TextColumn("failed: {task.fields[failed]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("left"),
            console=self.console, transient=False,
        )
        self.task = self.display.add_task("grade", total=None, running="-", failed=0)

    def __enter__(self) -> GradeProgress:
        self.display.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.display.stop()

    def __call__(self, event: str, student: str, outcome: Any) -> None:
        with self._lock:
            if event == "queued":
                self.total += 1
            elif event == "started":
                self.running.append(student)
            elif event == "finished":
                self.running.remove(student)
                if outcome is not None and outcome.status != "graded":
                    self.failed.append(student)
            done = 1 if event == "finished" else 0
            self.display.update(self.task, total=self.total, advance=done,
                                running=", ".join(self.running) or "-", failed=len(self.failed))
