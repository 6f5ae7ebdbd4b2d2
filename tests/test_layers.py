"""The layers stay one-directional (LAYOUT.md): `pipeline` (also run in the browser) imports
neither `destinations` nor `server`; `destinations` does not import `server`. And the
formula rule is one: the column version escapes exactly the cells the text version does."""

from __future__ import annotations

import ast
from pathlib import Path

import polars as pl
import pytest

from destinations.rows import escape_formulas
from pipeline.formulas import FORMULA_STARTERS, escape_text

ROOT = Path(__file__).resolve().parent.parent
BELOW = {"pipeline": {"destinations", "server"}, "destinations": {"server"}}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(BELOW))
def test_a_lower_layer_imports_no_higher_one(package: str) -> None:
    wrong = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & BELOW[package])
        for path in sorted((ROOT / package).rglob("*.py"))
        if _imports(path) & BELOW[package]
    }
    assert wrong == {}


def test_the_column_escape_and_the_cell_escape_agree() -> None:
    cells = [f"{c}1+2" for c in sorted(FORMULA_STARTERS)] + ["1+2", "a=b", "", "'=x", " =x"]
    escaped = escape_formulas(pl.DataFrame({"cell": cells}))["cell"].to_list()
    assert escaped == [escape_text(c) for c in cells]
    assert escaped[0].startswith("'") and escaped[-5:] == ["1+2", "a=b", "", "'=x", " =x"]
