"""nbval (lax) passes on every source notebook against the real Docker sandbox.

Each notebook runs in a ``pytest --nbval-lax`` subprocess on a copy of its folder, with a
``LABKIT_SANDBOX_ID`` of its own that is torn down afterwards; the runs of a session share the
``lab_work`` pool (``LABKIT_TEST_JOBS`` at a time) with the autograding proofs.
"""

from __future__ import annotations

import pytest
from nbhelpers import LABS


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.lab_nbval
@pytest.mark.parametrize("lab", LABS)
def test_source_notebook_passes_nbval_lax(lab: str, lab_work):
    code, output = lab_work.nbval[lab]
    assert code is not None, f"nbval of {lab} was cut off:\n{output[-3000:]}"
    assert code == 0, f"nbval of {lab} failed (exit {code}):\n{output[-6000:]}"
