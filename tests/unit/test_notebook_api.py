"""Every call a notebook makes on the sandbox exists in the kit's API (both tiers, and the box's).

A refactor that drops or renames a public method (``ServiceClient.healthy``, ``Sandbox.state``)
breaks the lessons and labs that call it, and only an nbval run against a live sandbox finds out,
minutes later. This reads the code cells of every lab source, lesson and dashboard notebook and
checks the attributes used on ``sb`` (a sandbox of either tier, or the grading box's remote one), on ``sb.client`` and on a
``ServiceClient(...)`` against the classes.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from sandbox._docker.backend import DockerSandbox
from sandbox._kube.backend import KubeSandbox
from sandbox.client import ServiceClient
from sandbox.control.client import RemoteSandbox

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted([*ROOT.glob("labs/source/*/*.ipynb"), *ROOT.glob("curriculum/*.ipynb")])


def _cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        out.append("\n".join("pass" if line.lstrip().startswith(("%", "!")) else line
                             for line in src.splitlines()))
    return out


def _uses(tree: ast.AST) -> list[tuple[str, str, int]]:
    """(owner, attribute, line) for ``sb.X``, ``sb.client.X`` and ``ServiceClient(...).X``."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        value = node.value
        if isinstance(value, ast.Name) and value.id == "sb":
            found.append(("Sandbox", node.attr, node.lineno))
        elif isinstance(value, ast.Attribute) and value.attr == "client" and \
                isinstance(value.value, ast.Name) and value.value.id == "sb":
            found.append(("ServiceClient", node.attr, node.lineno))
        elif isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "ServiceClient":
            found.append(("ServiceClient", node.attr, node.lineno))
    return found


def _record_subscripts(tree: ast.AST) -> list[int]:
    """Lines that index a component of ``sb.status().components`` like a dict (they are records)."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp, ast.For)):
            continue
        gens = [node] if isinstance(node, ast.For) else node.generators
        for gen in gens:
            it, target = gen.iter, gen.target
            if isinstance(it, ast.Attribute) and it.attr == "components" and isinstance(target, ast.Name):
                lines += [n.lineno for n in ast.walk(node) if isinstance(n, ast.Subscript)
                          and isinstance(n.value, ast.Name) and n.value.id == target.id]
    return lines


def _has(cls: type, attr: str) -> bool:
    if hasattr(cls, attr):
        return True
    return any(attr in getattr(base, "__annotations__", {}) for base in cls.__mro__)


def test_the_notebooks_are_found():
    assert len([p for p in NOTEBOOKS if "labs/source" in str(p)]) >= 13
    assert len([p for p in NOTEBOOKS if "curriculum" in str(p)]) >= 13


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_sandbox_call_in_a_notebook_exists(path: Path):
    # both tiers, and the box's remote view: a lab runs on any of them
    classes = {"Sandbox": (DockerSandbox, KubeSandbox, RemoteSandbox), "ServiceClient": (ServiceClient,)}
    missing = []
    for n, src in enumerate(_cells(path)):
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue  # a trainee's stub cell; nbval reports real syntax errors
        for owner, attr, line in _uses(tree):
            if attr == "client" and owner == "Sandbox":
                continue
            if not all(_has(cls, attr) for cls in classes[owner]):
                missing.append(f"code cell {n}, line {line}: {owner}.{attr}")
        missing += [f"code cell {n}, line {line}: a Component indexed like a dict (use c.name, c.state)"
                    for line in _record_subscripts(tree)]
    assert not missing, f"{path.name} calls what the kit does not have:\n" + "\n".join(missing)


class _Recorder:
    """A stand-in backend that records the lifecycle calls ``connect`` makes."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def up(self) -> _Recorder:
        self.calls.append("up")
        return self

    def reset(self) -> None:
        self.calls.append("reset")


@pytest.mark.parametrize(("kwargs", "calls"), [({}, ["up"]), ({"up": False}, []), ({"fresh": True}, ["reset"])])
def test_connect_brings_up_keeps_or_starts_from_a_clean_slate(monkeypatch, kwargs, calls):
    import sandbox

    made = _Recorder()
    monkeypatch.delenv("LABKIT_CONTROL_SOCKET", raising=False)
    monkeypatch.setattr(sandbox, "make_sandbox", lambda settings: made)
    assert sandbox.connect(**kwargs) is made
    assert made.calls == calls  # fresh: one reset (which brings it up), never an up() torn down at once


def test_no_lab_brings_its_sandbox_up_only_to_reset_it():
    """A lab's first cell starts clean with ``connect(fresh=True)``: ``connect()`` followed by
    ``sb.reset()`` starts the whole sandbox twice (measured: ~3 s and ~3 CPU-s per graded run)."""
    twice = []
    for path in NOTEBOOKS:
        for src in _cells(path):
            lines = [line.split("#")[0].strip() for line in src.splitlines()]
            code = [line for line in lines if line]
            for a, b in zip(code, code[1:]):
                if a == "sb = connect()" and b == "sb.reset()":
                    twice.append(path.name)
    assert twice == []
