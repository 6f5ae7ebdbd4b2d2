"""The engine's modules form a layered graph: no cycles, and no work done at import time."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PIPELINE = Path(__file__).resolve().parents[2] / "pipeline"


def _module(path: Path) -> str:
    parts = path.relative_to(PIPELINE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The pipeline modules a module imports, anywhere in it (TYPE_CHECKING blocks too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    modules = {_module(p) for p in PIPELINE.rglob("*.py")}
    return {name for name in found if name in modules and name != "pipeline"}


def graph() -> dict[str, set[str]]:
    return {_module(p): _imports(p) for p in sorted(PIPELINE.rglob("*.py"))}


def test_the_module_graph_has_no_cycle() -> None:
    edges = graph()
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        if name in done:
            return
        for target in sorted(edges.get(name, ())):
            visit(target, (*path, name))
        done.add(name)

    for name in sorted(edges):
        visit(name, ())
    assert "pipeline.types" in edges["pipeline.template"]
    assert "pipeline.schema" in edges["pipeline.types"]


def test_the_schema_imports_nothing_of_the_engine_at_import_time() -> None:
    assert graph()["pipeline.schema"] == set()


def test_no_module_writes_into_another_at_import_time() -> None:
    """A top-level `other.NAME[...] = ...` or `other.NAME = ...` is work done by importing."""
    for path in sorted(PIPELINE.rglob("*.py")):
        for node in ast.parse(path.read_text("utf-8")).body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            for target in targets:
                while isinstance(target, ast.Subscript):
                    target = target.value
                assert not isinstance(target, ast.Attribute), f"{path.name}:{node.lineno}"


def test_every_module_imports_on_its_own() -> None:
    """Each module imported first, in a fresh interpreter: no order between them matters."""
    for path in sorted(PIPELINE.rglob("*.py")):
        name = _module(path)
        proc = subprocess.run(
            [sys.executable, "-c", f"import {name}"],
            capture_output=True,
            text=True,
            cwd=PIPELINE.parent,
            check=False,
        )
        assert proc.returncode == 0, f"{name}: {proc.stderr}"
