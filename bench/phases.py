"""The loadbay side of the bench: the real `pipeline` calls, timed phase by phase.

Runs inside Pyodide (the bench worker writes this file into its FS and imports it) and
natively (`python -m bench.phases FILE TEMPLATE`), so the same numbers can be compared.
Only the standard library, `pipeline`, arro3 and (for the xlsx fallback) python-calamine.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from collections import Counter
from datetime import date, datetime
from datetime import time as dtime
from typing import Any

import arro3.core as ac

from pipeline import matching, readers, validation
from pipeline.template import Template

WINDOW_ROWS = 64 * 1024


def _now() -> float:
    return time.perf_counter() * 1000.0


def run(path: str, file_name: str, template_json: str) -> str:
    """Parse, match, validate one file; JSON with ms per phase, rows and error counts."""
    template = Template.from_dict(json.loads(template_json))
    is_excel = file_name.lower().endswith((".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"))
    notes: list[str] = []
    t0 = _now()
    if hasattr(readers, "read_file"):
        sheet: Any = readers.read_file(path, file_name)
        reader = "pipeline.readers.read_file"
    elif is_excel:
        sheet = _calamine_sheet(path, file_name)
        reader = "python_calamine iter_rows (bench fallback: pipeline has no read_file yet)"
        notes.append("xlsx read by the bench's own calamine windowing, not by pipeline")
    else:
        sheet = readers.read_csv(path, file_name)
        reader = "pipeline.readers.read_csv"
    t1 = _now()
    mapping = matching.match_columns(sheet.headers, template)
    t2 = _now()
    table = _mapped_table(sheet, template, mapping)
    errors = validation.validate(table, template, sheet.first_data_row)
    t3 = _now()
    result = {
        "reader": reader,
        "parse_ms": t1 - t0,
        "match_ms": t2 - t1,
        "validate_ms": t3 - t2,
        "rows": int(sheet.table.num_rows),
        "cols": len(sheet.headers),
        "mapped": len(mapping),
        "errors": len(errors),
        "invalid_cells": len({(e.row, e.field) for e in errors}),
        "errors_by_code": dict(Counter(_code(e) for e in errors)),
        "notes": notes,
    }
    del sheet, table, errors
    gc.collect()
    return json.dumps(result)


def _code(error: Any) -> str:
    constraint = getattr(error, "constraint", None)
    return f"{error.code}:{constraint}" if constraint else str(error.code)


def _mapped_table(sheet: Any, template: Template, mapping: dict[str, int]) -> ac.Table:
    """As pipeline.session.ImportSession.mapped_table: mapped columns named after fields."""
    names = [f.name for f in template.fields if f.name in mapping]
    arrays = [sheet.column(mapping[name]) for name in names]
    schema = ac.Schema([ac.Field(n, ac.DataType.string(), True) for n in names])
    return ac.Table.from_arrays(arrays, schema=schema)


class _CalamineSheet:
    def __init__(self, file_name: str, headers: tuple[str, ...], table: ac.Table) -> None:
        self.file_name = file_name
        self.headers = headers
        self.table = table
        self.first_data_row = 2

    def column(self, index: int) -> ac.Array:
        return self.table.column(str(index)).combine_chunks()


def _cell(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date | dtime):
        return value.isoformat()
    return str(value)


def _calamine_sheet(path: str, file_name: str) -> _CalamineSheet:
    """First sheet, read window by window into Arrow string columns (never one to_python)."""
    from python_calamine import CalamineWorkbook

    workbook = CalamineWorkbook.from_path(path)
    sheet = workbook.get_sheet_by_index(0)
    rows = sheet.iter_rows()
    headers = tuple(str(_cell(v) or f"Column {i + 1}") for i, v in enumerate(next(rows)))
    width = len(headers)
    schema = ac.Schema([ac.Field(str(i), ac.DataType.string(), True) for i in range(width)])
    batches = []
    window: list[list[Any]] = []

    def flush() -> None:
        cols = list(zip(*window, strict=True)) if window else [() for _ in range(width)]
        arrays = [ac.Array([_cell(v) for v in col], ac.DataType.string()) for col in cols]
        batches.append(ac.RecordBatch.from_arrays(arrays, schema=schema))
        window.clear()

    for row in rows:
        cells = list(row[:width]) + [None] * (width - len(row))
        window.append(cells)
        if len(window) >= WINDOW_ROWS:
            flush()
    if window:
        flush()
    return _CalamineSheet(file_name, headers, ac.Table.from_batches(batches, schema=schema))


if __name__ == "__main__":
    with open(sys.argv[2], encoding="utf-8") as fh:
        template_text = fh.read()
    print(run(sys.argv[1], sys.argv[1].rsplit("/", 1)[-1], template_text))
