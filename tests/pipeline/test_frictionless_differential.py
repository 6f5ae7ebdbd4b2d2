"""loadbay against frictionless-py over random Table Schemas and values (issue 20).

Every cell either both flag or neither does, except where loadbay follows the Table
Schema specification more strictly than Python's own parsers (README, "Table Schema"):
those choices are listed here, and only those may differ.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

import pytest

from pipeline.session import ImportSession
from pipeline.template import parse_template

frictionless = pytest.importorskip("frictionless")

POOLS: dict[str, list[str]] = {
    "integer": ["1", "-2", "0", "007", "+5", "1.0", "1e3", "abc", "", "9223372036854775807",
                "1_000", " 3", "\u0663"],
    "number": ["1.5", "-2", "1e3", "NaN", "INF", "abc", "", ".5", "5.", "1,5", "1_0", " 2"],
    "boolean": ["true", "false", "True", "FALSE", "1", "0", "yes", ""],
    "date": ["2024-01-02", "2024-02-30", "2024/01/02", "", "20240102", "0001-01-01"],
    "string": ["a", "abc", "abcdef", "", "x y"],
    "year": ["2024", "24", "0099", ""],
    "time": ["10:00:00", "25:00:00", "10:00", ""],
    "datetime": ["2024-01-02T10:00:00", "2024-01-02T10:00:00Z", "2024-01-02 10:00:00",
                 "2024-01-02T10:00:00+02:00", ""],
    "yearmonth": ["2024-01", "2024-13", "2024", ""],
}  # fmt: skip

# Where loadbay is deliberately stricter than Python's int()/float(), which frictionless uses:
# digit separators, digits of other scripts, spaces around a number, and NaN/infinities
# (JSON and most databases cannot hold them).
STRICTER = {("integer", v) for v in ("1_000", "\u0663", " 3")} | {
    ("number", v) for v in ("1_0", " 2", "NaN", "INF")
}


def _schema(rng: random.Random) -> dict[str, Any]:
    fields = []
    for i in range(3):
        kind = rng.choice(sorted(POOLS))
        field: dict[str, Any] = {"name": f"f{i}", "type": kind}
        constraints: dict[str, Any] = {}
        if rng.random() < 0.3:
            constraints["required"] = True
        if kind in ("integer", "number") and rng.random() < 0.3:
            constraints["minimum"] = 0
        if kind == "integer" and rng.random() < 0.2:
            constraints["maximum"] = 5
        if kind == "string" and rng.random() < 0.3:
            constraints["maxLength"] = 3
        if kind == "string" and rng.random() < 0.3:
            constraints["pattern"] = "a.*"
        if kind == "string" and rng.random() < 0.2:
            constraints["enum"] = ["a", "abc"]
        if constraints:
            field["constraints"] = constraints
        fields.append(field)
    return {"fields": fields}


@pytest.mark.parametrize("seed", range(40))
def test_loadbay_flags_the_cells_frictionless_flags(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    schema = _schema(rng)
    fields = schema["fields"]
    names = [f["name"] for f in fields]
    rows = [[rng.choice(POOLS[f["type"]]) for f in fields] for _ in range(8)]
    path = tmp_path / "data.csv"
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([names, *rows])
    session = ImportSession.open(str(path), "data.csv", parse_template(schema))
    ours = {(e.row, e.field) for e in session.report().errors}
    resource = frictionless.Resource(
        data=[names, *rows], schema=frictionless.Schema.from_descriptor(schema)
    )
    report = frictionless.validate(resource)
    theirs = {
        (e.row_number, e.field_name)
        for task in report.tasks
        for e in task.errors
        if getattr(e, "field_name", None)
    }
    assert report.tasks and not report.errors  # frictionless ran: its answer is a real one
    differing = {
        (fields[int(name[1:])]["type"], rows[row - 2][int(name[1:])], (row, name) in ours)
        for row, name in ours ^ theirs
    }
    assert {(kind, value) for kind, value, _ in differing} <= STRICTER, differing
    assert all(flagged_by_us for _, _, flagged_by_us in differing), differing
