"""JSON (an array of objects) and NDJSON (one object a line) into a `Sheet`.

- Headers are the union of the objects' keys, in first-seen order.
- Values become text: strings as they are ("" is empty), numbers canonical ("42" for
  42.0), booleans "true"/"false", null empty, nested objects and arrays as compact JSON.
- A row that is not an object (a number, a list, a line that is not JSON) gets an
  "invalid-row" problem and stays in the table as an empty row, so row numbers hold.
- There is no header row: header_row is 0 and row N is the N-th object (blank NDJSON
  lines are skipped and not counted).
- A JSON array is parsed whole, so it has its own size limit (`max_json_bytes`, 256 MiB
  by default); NDJSON is read line by line, twice (keys first, then cells).
- Encoding: UTF-8, or UTF-16/32 with a BOM (RFC 8259 allows nothing else).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

from pipeline.errors import ReadError
from pipeline.protocol import FileKind
from pipeline.sheet import (
    BOMS,
    MIB,
    READ_BUFFER,
    Cell,
    ColumnBuilder,
    Problem,
    Problems,
    ReadOptions,
    Sheet,
    canonical_number,
    field_too_large,
    unique_headers,
)


def _encoding(path: str) -> tuple[str, int]:
    with open(path, "rb") as fh:
        head = fh.read(4)
    for bom, codec in BOMS:
        if head.startswith(bom):
            return codec, len(bom)
    return "utf-8", 0


def _text(path: str, name: str) -> io.TextIOWrapper:
    codec, bom = _encoding(path)
    raw = open(path, "rb", buffering=READ_BUFFER)  # noqa: SIM115 - the wrapper closes it
    raw.seek(bom)
    return io.TextIOWrapper(raw, encoding=codec, newline="")


def _not_utf8(name: str, exc: UnicodeDecodeError) -> ReadError:
    return ReadError(
        f"{name} is not UTF-8 encoded ({exc.reason}); JSON files must be. "
        "Save it as UTF-8 and pick it again."
    )


MAX_DEPTH = 200  # levels of nested lists and objects; no table needs more
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INNERMOST = re.compile(r"\[\]|\{\}")


def _deeper_than(text: str, depth: int) -> bool:
    """Whether the JSON text nests lists and objects more than `depth` levels.

    Checked before parsing: in Pyodide the parser's recursion overflows the JavaScript stack
    (a fatal error, not a RecursionError) long before Python's own limit. In C-speed passes:
    strings and all but the brackets taken out, then the innermost pairs, `depth` times.
    """
    if text.count("[") + text.count("{") <= depth:
        return False
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for _ in range(depth):
        brackets, removed = _INNERMOST.subn("", brackets)
        if not brackets:
            return False
        if not removed:  # unbalanced: the parser would still descend every opening run
            return re.search(f"[\\[{{]{{{depth + 1}}}", brackets) is not None
    return True


def _too_deep(name: str, where: str = "") -> ReadError:
    return ReadError(
        f"{name}{where} nests lists or objects too deeply to be read as rows (more levels "
        "than any table needs). Flatten the nested values, or export the data as CSV, "
        "and pick the file again."
    )


def _cell(value: Any) -> Cell:
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return canonical_number(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def read_json(path: str, name: str, kind: FileKind, options: ReadOptions, size: int) -> Sheet:
    if kind == FileKind.NDJSON and _looks_like_ndjson(path, name):
        return _build(name, FileKind.NDJSON, lambda: _ndjson_rows(path, name), options)
    if size > options.max_json_bytes:
        raise ReadError(
            f"{name} is a JSON document larger than the limit of "
            f"{options.max_json_bytes // MIB} MiB for JSON. Save it as NDJSON (one object "
            "a line) or CSV, or split it, and pick the file again."
        )
    try:
        with _text(path, name) as fh:
            text = fh.read()
        if _deeper_than(text, MAX_DEPTH):
            raise _too_deep(name)
        document = json.loads(text)
        del text
    except UnicodeDecodeError as exc:
        raise _not_utf8(name, exc) from exc
    except json.JSONDecodeError as exc:
        raise ReadError(
            f"{name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}). "
            "Fix the file or export it again, and pick it again."
        ) from exc
    except RecursionError as exc:  # an array 100,000 levels deep
        raise _too_deep(name) from exc
    if isinstance(document, dict):
        document = [document]
    if not isinstance(document, list):
        raise ReadError(
            f"{name} is JSON but not a list of rows. Pick a JSON array of objects "
            '(like [{"name": "Ada"}, ...]) or NDJSON.'
        )
    rows = document
    return _build(
        name, FileKind.JSON, lambda: iter((i + 1, r) for i, r in enumerate(rows)), options
    )


def _looks_like_ndjson(path: str, name: str) -> bool:
    """The first line is a whole JSON object (more lines, if any, are read as rows)."""
    try:
        with _text(path, name) as fh:
            line = fh.readline(1 * MIB)
            while line and not line.strip():
                line = fh.readline(1 * MIB)
    except UnicodeDecodeError as exc:
        raise _not_utf8(name, exc) from exc
    if _deeper_than(line, MAX_DEPTH):
        raise _too_deep(name, " (line 1)")
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False
    except RecursionError as exc:
        raise _too_deep(name, " (line 1)") from exc


def _ndjson_rows(path: str, name: str) -> Iterator[tuple[int, Any]]:
    number = 0
    try:
        with _text(path, name) as fh:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                number += 1
                if _deeper_than(line, MAX_DEPTH):
                    raise _too_deep(name, f" (line {line_no})")
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as exc:
                    yield number, _Invalid(f"line {line_no} is not valid JSON ({exc.msg})")
                except RecursionError as exc:
                    raise _too_deep(name, f" (line {line_no})") from exc
    except UnicodeDecodeError as exc:
        raise _not_utf8(name, exc) from exc


class _Invalid:
    def __init__(self, why: str) -> None:
        self.why = why


def _build(
    name: str,
    kind: FileKind,
    rows: Any,
    options: ReadOptions,
) -> Sheet:
    keys: dict[str, int] = {}
    count = 0
    for _, row in rows():
        count += 1
        if isinstance(row, dict):
            for key in row:
                if key not in keys:
                    keys[key] = len(keys)
    if count == 0:
        raise ReadError(f"{name} holds no rows. Pick a file with at least one object in it.")
    if not keys:
        raise ReadError(
            f"{name} holds no objects with fields. Pick a JSON array of objects "
            '(like [{"name": "Ada"}, ...]) or NDJSON.'
        )
    problems = Problems()
    headers = unique_headers(list(keys), None, problems)
    width = len(keys)
    builder = ColumnBuilder(width)
    limit = options.max_field_bytes
    for number, row in rows():
        cells: list[Cell] = [None] * width
        if isinstance(row, dict):
            for key, value in row.items():
                try:
                    text = _cell(value)
                except RecursionError as exc:  # deep, but within what the parser took
                    raise _too_deep(name, f" (row {number})") from exc
                if text is not None and len(text) > limit // 4 and len(text.encode()) > limit:
                    raise ReadError(field_too_large(name, number, key, limit))
                cells[keys[key]] = text
        else:
            why = row.why if isinstance(row, _Invalid) else f"it is {_kind_of(row)}"
            problems.add(
                Problem(
                    "invalid-row",
                    f"Row {number} is not an object ({why}); it is left empty.",
                    number,
                )
            )
        builder.append(cells)
    return Sheet(
        file_name=name,
        headers=headers,
        table=builder.table(),
        header_row=0,
        delimiter="",
        kind=kind,
        encoding="utf-8",
        problems=tuple(problems.kept),
        problem_count=problems.count,
    )


def _kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
