"""The packages import in one direction only: ``labkit -> graders -> sandbox``.

Checked on the source (every import statement of every module, at any depth), so an import
hidden inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"sandbox": ("graders", "labkit"), "graders": ("labkit",)}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_in_one_direction(package):
    offences = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in _imports(path):
            if module.split(".")[0] in FORBIDDEN[package]:
                offences.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert offences == []


def test_modelapi_imports_nothing_of_the_kit():
    """The toy service talks to the kit over HTTP only; it must build into its image alone."""
    offences = []
    for path in sorted((ROOT / "sandbox" / "modelapi").rglob("*.py")):
        for line, module in _imports(path):
            if module.split(".")[0] in ("sandbox", "graders", "labkit"):
                offences.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert offences == []


def test_tiers_are_private_subpackages():
    """Only the kit's own packages reach into ``sandbox._docker`` / ``sandbox._kube``; labs and
    lessons use the public surface."""
    notebooks = sorted((ROOT / "labs" / "source").rglob("*.ipynb")) + sorted((ROOT / "curriculum").glob("*.ipynb"))
    offences = [str(nb.relative_to(ROOT)) for nb in notebooks
                if "sandbox._docker" in nb.read_text() or "sandbox._kube" in nb.read_text()]
    assert offences == []


def test_modules_stay_under_400_lines():
    """A module a reader can hold in their head: the kit's packages and the benchmarks."""
    roots = [ROOT / name for name in ("sandbox", "graders", "labkit", "bench")]
    long = [f"{path.relative_to(ROOT)}: {n} lines" for root in roots for path in sorted(root.rglob("*.py"))
            if (n := len(path.read_text().splitlines())) > 400]
    assert long == []
