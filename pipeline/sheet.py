"""What every reader returns: a `Sheet` of Arrow strings, plus the pieces readers share.

Shared here: reading options and their limits, the problems a reader reports without
refusing the file (Frictionless error codes), header detection, unique header labels,
the conversion of Python rows into Arrow string batches, and the field-size check.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import arro3.core as ac

from pipeline.cell_errors import CellError
from pipeline.errors import ReadError
from pipeline.protocol import FileKind

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
READ_BUFFER = 4 * MIB  # reads of the file: in the browser each one is a slice of the File
BATCH_ROWS = 64 * 1024
HEADER_SCAN_ROWS = 50  # header detection looks at this many rows at most
MAX_PROBLEMS = 1000  # problems kept in a Sheet; `problem_count` counts them all
EXCEL_MAX_ROWS = 1_048_576
EXCEL_MAX_COLUMNS = 16_384
EXCEL_MAX_CELL_CHARS = 32_767

Cell = str | None

# Byte-order marks and their codecs, longest first (UTF-32 LE starts like UTF-16 LE).
BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


@dataclass(frozen=True)
class ReadOptions:
    """What the user (or the operator) decides about reading one file.

    header_row is 1-based, as the user sees rows; None means "detect it".
    """

    encoding: str | None = None
    sheet: str | None = None
    header_row: int | None = None
    max_bytes: int = 1 * GIB  # the server's default LOADBAY_MAX_FILE_BYTES too
    max_field_bytes: int = 128 * KIB
    # Zip containers (xlsx, xlsm, xlsb, ods): checked before any parser opens them.
    max_zip_entries: int = 10_000
    max_unzipped_bytes: int = 1 * GIB
    max_zip_ratio: int = 100
    zip_ratio_min_bytes: int = 1 * MIB  # the ratio rule applies to entries larger than this
    # A JSON array is parsed whole (NDJSON streams): a tighter limit than max_bytes.
    max_json_bytes: int = 256 * MIB
    # Told the number of data rows read so far, batch by batch (for a progress bar).
    on_rows: Callable[[int], None] | None = field(default=None, compare=False, repr=False)

    def rows_read(self, count: int) -> None:
        if self.on_rows is not None:
            self.on_rows(count)


@dataclass(frozen=True)
class Problem:
    """Something wrong in the file that does not stop the import (Frictionless codes).

    row is the row number as the user sees it; column is 1-based; either may be None.
    """

    code: str
    message: str
    row: int | None = None
    column: int | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"code": self.code, "message": self.message}
        if self.row is not None:
            out["row"] = self.row
        if self.column is not None:
            out["column"] = self.column
        return out


@dataclass(frozen=True)
class Sheet:
    """One table of a file. Column i of `table` is named str(i) and holds `headers[i]`.

    Data row k (0-based) is row `first_data_row + k` as the user sees it.
    """

    file_name: str
    headers: tuple[str, ...]
    table: ac.Table
    header_row: int = 1
    delimiter: str = ","
    kind: FileKind = FileKind.CSV
    encoding: str | None = "utf-8"
    sheet_name: str | None = None
    sheet_names: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()
    problem_count: int = 0
    blank_rows: tuple[int, ...] = ()
    """Data rows (0-based) blank in the file: kept, so later rows keep their numbers, but
    left out of the import (the review starts with them deleted)."""
    row_errors: tuple[CellError, ...] = ()
    """Errors of whole rows found while reading (`extra-cell`, `missing-cell`; no field):
    every one of them, counted by the review and the CLI like cell errors."""
    looks_headerless: bool = False
    """The first row looks like data, not column names: the page offers "no header row"."""
    above: tuple[tuple[str | None, ...], ...] = ()
    """The rows above the header row as read (row 1 first, at most the header scan's): the
    page shows them with the preview, so the user can click one of them as the header row."""

    @property
    def first_data_row(self) -> int:
        """The row number the user sees for the first data row (header rows counted)."""
        return self.header_row + 1

    @property
    def num_rows(self) -> int:
        return int(self.table.num_rows)

    def column(self, index: int) -> ac.Array:
        return self.table.column(str(index)).combine_chunks()


class Problems:
    """Collects problems, keeping the first MAX_PROBLEMS and counting the rest."""

    def __init__(self) -> None:
        self.kept: list[Problem] = []
        self.count = 0

    def add(self, problem: Problem) -> None:
        self.count += 1
        if len(self.kept) < MAX_PROBLEMS:
            self.kept.append(problem)


# --- headers ------------------------------------------------------------------------------------

_NUMBER = re.compile(r"^[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?%?$")
_DATE = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2})?)?$")


def _is_label(cell: str) -> bool:
    text = cell.strip()
    return bool(text) and not _NUMBER.match(text) and not _DATE.match(text)


def detect_header(rows: Sequence[Sequence[Cell]]) -> int:
    """0-based index of the header among the first rows (leading blank and title rows skipped).

    The header is the first row whose non-empty cell count is at least max(2, half the
    widest row's) and whose non-empty cells are mostly labels (not numbers or dates).
    Without such a row: the first non-blank row (a one-column file, or numbers only).
    """
    counts = [sum(1 for c in row if c is not None and c.strip()) for row in rows]
    if not counts or max(counts) == 0:
        return 0
    need = max(2, math.ceil(max(counts) / 2))
    for index, row in enumerate(rows):
        if counts[index] < need:
            continue
        filled = [c for c in row if c is not None and c.strip()]
        if 2 * sum(1 for c in filled if _is_label(c)) >= len(filled):
            return index
    return next(i for i, n in enumerate(counts) if n)


def looks_like_data(header: Sequence[Cell]) -> bool:
    """A header row holding a number or a date among its cells is most likely data: column
    names are words (`detect_header` already prefers a row of labels when there is one)."""
    return any(c is not None and c.strip() and not _is_label(c) for c in header)


def header_width(cells: Sequence[Cell]) -> int:
    """Cells up to the last non-empty one (trailing blanks are not columns)."""
    width = len(cells)
    while width and not (cells[width - 1] or "").strip():
        width -= 1
    return width


def unique_headers(
    cells: Sequence[Cell], header_row: int | None, problems: Problems
) -> tuple[str, ...]:
    """Blank headers get a position name, repeated ones a counter; each is flagged."""
    seen: dict[str, int] = {}
    out = []
    for i, raw in enumerate(cells):
        cell = (raw or "").strip()
        label = cell or f"Column {i + 1}"
        if not cell:
            problems.add(
                Problem(
                    "blank-label",
                    f"Column {i + 1} has no header; it is called “{label}”.",
                    header_row,
                    i + 1,
                )
            )
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            unique = f"{label} ({seen[label]})"
            while unique in seen:
                seen[label] += 1
                unique = f"{label} ({seen[label]})"
            seen[unique] = 1
            problems.add(
                Problem(
                    "duplicate-label",
                    f"Column {i + 1}'s header “{label}” repeats an earlier one; "
                    f"it is called “{unique}”.",
                    header_row,
                    i + 1,
                )
            )
            label = unique
        out.append(label)
    return tuple(out)


def check_header_row(name: str, header_row: int | None, available: int) -> None:
    if header_row is not None and not 1 <= header_row <= available:
        raise ReadError(
            f"{name}: the header row must be between 1 and {available} "
            f"(the rows that were scanned), not {header_row}. Pick one of those rows."
        )


# --- Arrow batches ------------------------------------------------------------------------------


def string_schema(width: int) -> ac.Schema:
    return ac.Schema([ac.Field(str(i), ac.DataType.string(), True) for i in range(width)])


class ColumnBuilder:
    """Python rows in, Arrow string record batches out, BATCH_ROWS at a time.

    Rows are kept as they come and turned into columns with one zip(*rows) a batch (C
    speed); a row shorter than the header is padded with None, a longer one is cut.
    """

    def __init__(self, width: int) -> None:
        self.width = width
        self.schema = string_schema(width)
        self.pending: list[Sequence[Cell]] = []
        self.batches: list[ac.RecordBatch] = []
        self.rows = 0

    def append(self, row: Sequence[Cell]) -> None:
        if len(row) != self.width:
            row = list(row[: self.width]) + [None] * (self.width - len(row))
        self.pending.append(row)
        self.rows += 1
        if len(self.pending) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        columns = zip(*self.pending, strict=True)
        arrays = [ac.Array(list(c), ac.DataType.string()) for c in columns]
        self.batches.append(ac.RecordBatch(arrays, schema=self.schema))
        self.pending = []

    def table(self) -> ac.Table:
        self.flush()
        return ac.Table.from_batches(self.batches, schema=self.schema)


# --- field size ---------------------------------------------------------------------------------


def _prefix_bytes(column: ac.Array, end: int) -> int:
    return int(column.slice(0, end).nbytes) if end else 0


def _nbytes_tracks_offsets() -> bool:
    """arro3 0.9.1 sizes a sliced string array by its values up to the slice's end offset.

    The field-size check below relies on that to find long cells without a Python loop
    over every cell; if a build ever sizes slices differently, the check falls back to
    looking at every cell (slower, still right).
    """
    probe = ac.Array(["a", "bbbbbbbbbb", None, "cc"], ac.DataType.string())
    sizes = [_prefix_bytes(probe, k) for k in range(1, 5)]
    return sizes[1] - sizes[0] - 4 == 10 and sizes[3] - sizes[2] - 4 == 2


_FAST_SIZE = _nbytes_tracks_offsets()


def long_cells(column: ac.Array, limit: int) -> list[int]:
    """Indices of the cells holding more than `limit` bytes of UTF-8 (in ascending order)."""
    n = len(column)
    if not n:
        return []
    if not _FAST_SIZE:
        return [i for i, v in enumerate(column.to_pylist()) if v and len(v.encode()) > limit]
    if _prefix_bytes(column, n) - 4 * n <= limit:
        return []
    found: list[int] = []
    stack = [(0, n)]
    while stack:
        start, end = stack.pop()
        size = _prefix_bytes(column, end) - _prefix_bytes(column, start) - 4 * (end - start)
        if size <= limit:
            continue
        if end - start == 1:
            value = column.slice(start, 1).to_pylist()[0]
            if value is not None and len(value.encode()) > limit:
                found.append(start)
            continue
        middle = (start + end) // 2
        stack.append((middle, end))
        stack.append((start, middle))
    return sorted(found)


def check_field_sizes(
    name: str, batch: ac.RecordBatch, first_row: int, headers: Sequence[str], limit: int
) -> None:
    for i in range(batch.num_columns):
        found = long_cells(batch.column(i), limit)
        if found:
            raise ReadError(field_too_large(name, first_row + found[0], headers[i], limit))


def no_data_rows(where: str) -> str:
    return f"{where} has a header row but no data rows. Add at least one row under the header."


def field_too_large(name: str, row: int, column: str | None, limit: int) -> str:
    where = f"row {row}, column “{column}”" if column else f"row {row}"
    return (
        f"{name}: the cell at {where} is larger than the limit of {limit // KIB} KiB. "
        "Check for a missing closing quote, or shorten the cell, and pick the file again."
    )


def canonical_number(value: float) -> str:
    """42.0 -> "42", 0.1 -> "0.1", 1e21 -> "1e+21": Python's shortest repr, without ".0"."""
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text
