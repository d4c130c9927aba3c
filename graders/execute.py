"""``GraderExecute``: nbgrader's ``Execute`` on the grader's clock, with a cap on output.

Two things of a graded run must not be the kernel's to say:

* **When each cell ran.** nbclient stamps a cell's ``metadata.execution`` with the dates in the
  kernel's own message headers, which a submission can forge. Here every executed code cell is
  stamped with the grader's clock instead (``iopub.execute_input`` when the request went out,
  ``shell.execute_reply`` when the reply came back), and ``graders.changes`` attributes each
  revision to the cell whose window holds its creation (the engine's clock, same host).
* **How much it printed.** An endless ``print`` would grow the grader's memory until the cell's
  timeout; output beyond ``max_output_bytes`` per cell is dropped while it arrives, with one
  note saying so (nbgrader's ``LimitOutput`` trims what is kept afterwards, as before).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import nbformat
from nbformat.notebooknode import NotebookNode
from nbclient.util import run_sync
from nbgrader.preprocessors import Execute
from traitlets import Integer

TRUNCATED = "\n[labkit: output beyond {limit} bytes in this cell was dropped by the grader]\n"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class GraderExecute(Execute):
    """Execute, stamping cells with the grader's clock and capping each cell's output."""

    max_output_bytes = Integer(1_000_000, help="Bytes of output one cell may produce while it runs;"
                               " the rest is dropped as it arrives.").tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sizes: dict[int, int] = {}

    async def async_execute_cell(self, cell: NotebookNode, cell_index: int, execution_count: int | None = None,
                                 store_history: bool = True) -> NotebookNode:
        started = _now()
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        finally:
            if cell.cell_type == "code":
                timing = cell.setdefault("metadata", {}).setdefault("execution", {})
                timing.clear()  # the kernel's dates go; the grader's stay
                timing.update({"iopub.execute_input": started, "shell.execute_reply": _now()})

    execute_cell = run_sync(async_execute_cell)  # nbclient binds its own coroutine otherwise

    def output(self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None,
               cell_index: int) -> NotebookNode | None:
        size = len(str(msg.get("content", "")))
        seen = self._sizes.get(cell_index, 0)
        self._sizes[cell_index] = seen + size
        if seen + size <= self.max_output_bytes:
            return super().output(outs, msg, display_id, cell_index)
        if seen <= self.max_output_bytes:  # the first output past the cap: say so, once
            note = nbformat.v4.new_output("stream", name="stderr", text=TRUNCATED.format(limit=self.max_output_bytes))
            outs.append(note)
            return note
        return None
