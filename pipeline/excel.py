"""Spreadsheets (xlsx, xlsm, xlsb, xls, ods) into a `Sheet`, with python-calamine.

- Zip-based files pass pipeline.zipguard first: calamine never opens a zip bomb. An ODS
  saved with a password is named so (its manifest lists encryption data), not "damaged".
- The sheet is the one the user picks (`ReadOptions.sheet`), else the first visible
  worksheet. Rows are read with `iter_rows`, 16k at a time, and turned into Arrow string
  batches column by column (`_Columns`): each column of a chunk is converted by its
  majority kind in whole-column calls, the minority cell by cell. In the browser this is
  what the time goes to after calamine's own reading of the sheet (`get_sheet_by_name`,
  most of it) and zipguard's inflating; per-cell Python loops were most of the rest.
- Cells become the text a person would type: numbers canonical ("42", not "42.0"),
  booleans "true"/"false", dates "YYYY-MM-DD", date-times "YYYY-MM-DDThh:mm:ss"
  (fractions of a second kept), times "hh:mm:ss", durations in ISO 8601 ("PT1H30M").
  Formulas give their cached values (what the file last saved), error cells their code
  (e.g. "#DIV/0!"). A merged range holds its value in its top-left cell only, the other
  cells are empty: that is what calamine reports.
- Rows are numbered as the spreadsheet shows them (row 1 is the sheet's first row, even
  when the data starts lower). Leading blank and title rows are skipped by header
  detection; blank rows inside the data are kept (empty cells) so numbers stay right,
  reported as "blank-row", and left out of the import (`Sheet.blank_rows`).
- No header row: `ReadOptions.header_row == 0` (pipeline.columns) reads every row as data,
  the columns named "Column A", "Column B", ... A detected header row holding numbers or
  dates sets `Sheet.looks_headerless` (the page offers the choice); when such a row (or a
  row below data) would leave no data rows, the sheet is read without a header row.
- Columns: up to the header's last non-empty cell. A row with a value further right gets
  an "extra-cell" problem (the value is not imported).
- The rows read are counted against the sheet's dimension: a shortfall is an error,
  never a silently shorter table. Excel's limits are enforced: 1,048,576 rows, 16,384
  columns, 32,767 characters a cell.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import operator
import zipfile
from collections.abc import Iterator
from typing import cast

import arro3.core as ac
import python_calamine as pc

from pipeline.columns import NO_HEADER_ROW, default_column_names
from pipeline.errors import ReadError
from pipeline.ooxml import ods_encrypted
from pipeline.protocol import FileKind
from pipeline.sheet import (
    EXCEL_MAX_CELL_CHARS,
    EXCEL_MAX_COLUMNS,
    EXCEL_MAX_ROWS,
    HEADER_SCAN_ROWS,
    READ_BUFFER,
    Cell,
    Problem,
    Problems,
    ReadOptions,
    Sheet,
    canonical_number,
    check_header_row,
    detect_header,
    field_too_large,
    header_width,
    long_cells,
    looks_like_data,
    no_data_rows,
    string_schema,
    unique_headers,
)
from pipeline.sniff import damaged, password_protected
from pipeline.zipguard import check_zip

_WHAT = {
    FileKind.XLSX: "an Excel workbook (xlsx)",
    FileKind.XLSM: "an Excel macro-enabled workbook (xlsm)",
    FileKind.XLSB: "an Excel binary workbook (xlsb)",
    FileKind.XLS: "an Excel 97-2003 workbook (xls)",
    FileKind.ODS: "an OpenDocument spreadsheet (ods)",
}
Value = int | float | str | bool | datetime.time | datetime.date | datetime.timedelta

CHUNK_ROWS = 16_384  # rows turned into columns at a time (and a progress report each)


@contextlib.contextmanager
def _open(
    path: str, name: str, kind: FileKind, options: ReadOptions
) -> Iterator[pc.CalamineWorkbook]:
    if kind == FileKind.ODS and _ods_encrypted(path):
        raise ReadError(password_protected(name))
    if kind != FileKind.XLS:
        check_zip(path, name, options)
    # Through a 4 MiB buffer, not by path: calamine's many small reads would each be a slice
    # of the File in the browser (a 200k-row xlsx read 1.5x faster so).
    with open(path, "rb", buffering=READ_BUFFER) as fh:
        try:
            book = pc.CalamineWorkbook.from_filelike(fh)
        except pc.PasswordError as exc:
            raise ReadError(password_protected(name)) from exc
        except Exception as exc:  # noqa: BLE001 - calamine raises several kinds: "damaged"
            if "password" in str(exc).lower() or "encrypt" in str(exc).lower():
                raise ReadError(password_protected(name)) from exc
            raise ReadError(damaged(name, _WHAT[kind], _short(exc))) from exc
        try:
            yield book
        finally:
            book.close()


def _ods_encrypted(path: str) -> bool:
    try:
        with open(path, "rb", buffering=READ_BUFFER) as fh, zipfile.ZipFile(fh) as zf:
            return ods_encrypted(zf)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return False  # check_zip names what is wrong with the zip


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def _worksheets(book: pc.CalamineWorkbook) -> list[pc.SheetMetadata]:
    return [m for m in book.sheets_metadata if m.typ in (pc.SheetTypeEnum.WorkSheet, None)] or list(
        book.sheets_metadata
    )


def workbook_sheet_names(path: str, name: str, kind: FileKind, options: ReadOptions) -> list[str]:
    with _open(path, name, kind, options) as book:
        return [m.name for m in _worksheets(book)]


def _pick_sheet(book: pc.CalamineWorkbook, name: str, wanted: str | None) -> str:
    sheets = _worksheets(book)
    names = [m.name for m in sheets]
    if not names:
        raise ReadError(f"{name} has no worksheets. Pick a workbook with data in a sheet.")
    if wanted is not None:
        if wanted not in book.sheet_names:
            listed = ", ".join(f"“{n}”" for n in names)
            raise ReadError(f"{name} has no sheet “{wanted}”. Pick one of: {listed}.")
        return wanted
    visible = [m.name for m in sheets if m.visible == pc.SheetVisibleEnum.Visible]
    return (visible or names)[0]


def read_spreadsheet(path: str, name: str, kind: FileKind, options: ReadOptions) -> Sheet:
    with _open(path, name, kind, options) as book:
        sheet_name = _pick_sheet(book, name, options.sheet)
        try:
            sheet = book.get_sheet_by_name(sheet_name)
        except Exception as exc:  # noqa: BLE001 - calamine's XML/zip errors
            raise ReadError(damaged(name, _WHAT[kind], _short(exc))) from exc
        return _read_sheet(sheet, name, kind, sheet_name, tuple(book.sheet_names), options)


def _read_sheet(
    sheet: pc.CalamineSheet,
    name: str,
    kind: FileKind,
    sheet_name: str,
    names: tuple[str, ...],
    options: ReadOptions,
) -> Sheet:
    where = f"{name} (sheet “{sheet_name}”)"
    start = sheet.start
    if start is None or sheet.height == 0:
        raise ReadError(f"{where} is empty. Pick the sheet that holds the data.")
    expected_rows = start[0] + sheet.height  # iter_rows yields from the sheet's row 1
    if expected_rows > EXCEL_MAX_ROWS or sheet.width > EXCEL_MAX_COLUMNS:
        raise ReadError(
            f"{where} is larger than Excel allows ({expected_rows:,} rows, {sheet.width:,} "
            f"columns; the limits are {EXCEL_MAX_ROWS:,} and {EXCEL_MAX_COLUMNS:,}). "
            "Save it again in your spreadsheet program, or split it."
        )
    try:
        return _read_rows(
            sheet.iter_rows(), expected_rows, where, name, kind, sheet_name, names, options
        )
    except ReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - calamine's XML errors mid-sheet
        raise ReadError(damaged(where, "a spreadsheet", _short(exc))) from exc


def _read_rows(
    rows: Iterator[list[Value]],
    expected_rows: int,
    where: str,
    name: str,
    kind: FileKind,
    sheet_name: str,
    names: tuple[str, ...],
    options: ReadOptions,
) -> Sheet:
    limit = options.max_field_bytes
    head_raw = list(itertools.islice(rows, HEADER_SCAN_ROWS))
    head = [_row_text(r, where, i + 1, limit) for i, r in enumerate(head_raw)]
    problems = Problems()
    looks_headerless = False
    if options.header_row == NO_HEADER_ROW:
        index = -1
    else:
        check_header_row(where, options.header_row, len(head))
        index = options.header_row - 1 if options.header_row else detect_header(head)
        if options.header_row is None:
            looks_headerless = looks_like_data(head[index])
            above = any(header_width(r) for r in head[:index])
            if index == len(head_raw) - 1 and (looks_headerless or above):
                peek = next(rows, None)
                if peek is None:  # nothing under the "header", data above or in it: no header
                    index, looks_headerless = -1, True
                else:
                    rows = itertools.chain([peek], rows)
    header_row = index + 1
    if index < 0:
        width = max(map(header_width, head), default=0) or 1
        headers = tuple(default_column_names(width))
    else:
        raw = head[index]
        width = header_width(raw)
        if width == 0:
            raise ReadError(
                f"{where}: row {header_row} is blank, so it cannot be the header row. "
                "Pick the row that holds the column names."
            )
        headers = unique_headers(raw[:width], header_row, problems)
    columns = _Columns(where, width, header_row, limit, problems)
    columns.add(head_raw[index + 1 :])
    while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
        columns.add(chunk)
        options.rows_read(columns.rows)
    seen = index + 1 + columns.rows
    if seen != expected_rows:
        raise ReadError(
            f"{where}: {seen:,} rows were read but the sheet says it has {expected_rows:,}. "
            "The file may be damaged: open it in your spreadsheet program, save it again, "
            "and pick the new file."
        )
    table = columns.table()
    if table.num_rows == 0:
        raise ReadError(no_data_rows(where))
    return Sheet(
        file_name=name,
        headers=headers,
        table=table,
        header_row=header_row,
        above=tuple(tuple(r) for r in head[: max(index, 0)]),
        delimiter="",
        kind=kind,
        encoding=None,
        sheet_name=sheet_name,
        sheet_names=names,
        problems=tuple(problems.kept),
        problem_count=problems.count,
        blank_rows=tuple(columns.blank_rows),
        looks_headerless=looks_headerless,
    )


class _Columns:
    """Raw calamine rows in, Arrow string batches out, a chunk of rows at a time.

    Each chunk is turned into columns with one zip(*rows) and each column into text with a
    few whole-column calls (`_column_text`): per-cell Python work is kept to the cells whose
    kind differs from most of their column's. The chunk's Python values are dropped as soon
    as its batch is built, so a big sheet never holds Python rows and Arrow at once.
    """

    def __init__(self, where: str, width: int, header_row: int, limit: int, problems: Problems):
        self.where = where
        self.width = width
        self.header_row = header_row
        self.limit = limit
        self.problems = problems
        self.schema = string_schema(width)
        self.batches: list[ac.RecordBatch] = []
        self.blank_rows: list[int] = []
        self.rows = 0

    def add(self, chunk: list[list[Value]]) -> None:
        if not chunk:
            return
        n = len(chunk)
        first = self.header_row + 1 + self.rows  # the row number of chunk[0]
        longest = max(map(len, chunk))
        if longest < self.width or min(map(len, chunk)) != longest:
            size = max(longest, self.width)
            chunk = [r + [""] * (size - len(r)) if len(r) < size else r for r in chunk]
        raw = list(zip(*chunk, strict=True))
        del chunk
        extra: set[int] = set()
        for column in raw[self.width :]:
            filled = map(operator.ne, column, itertools.repeat(""))
            extra.update(itertools.compress(range(n), filled))
        texts = [_column_text(c, self.where, first, self.limit) for c in raw[: self.width]]
        del raw
        blank = list(itertools.compress(range(n), map(operator.is_, texts[0], _NONES)))
        for text in texts[1:]:
            if not blank:
                break
            blank = [i for i in blank if text[i] is None]
        blank = [i for i in blank if i not in extra]
        for i in sorted(extra.union(blank)):
            number = first + i
            if i in extra:
                self.problems.add(
                    Problem(
                        "extra-cell",
                        f"Row {number} has values to the right of the last header (column "
                        f"{self.width}); they are left out. Give those columns a header to "
                        "import them.",
                        number,
                        self.width + 1,
                    )
                )
            else:
                self.problems.add(Problem("blank-row", f"Row {number} is blank.", number))
        self.blank_rows.extend(self.rows + i for i in blank)
        arrays = [ac.Array(t, ac.DataType.string()) for t in texts]
        del texts
        self._check_long_cells(arrays, first)
        self.batches.append(ac.RecordBatch(arrays, schema=self.schema))
        self.rows += n

    def _check_long_cells(self, arrays: list[ac.Array], first: int) -> None:
        """Cells past Excel's or the operator's limit, found in Arrow (no per-cell pass):
        the first of them, in row order, is refused with `_text`'s message."""
        over = min(self.limit, EXCEL_MAX_CELL_CHARS)  # bytes; either limit implies more
        found = sorted((i, j) for j, a in enumerate(arrays) for i in long_cells(a, over))
        for i, j in found:
            value = arrays[j].slice(i, 1).to_pylist()[0]
            _text(value, self.where, first + i, self.limit)

    def table(self) -> ac.Table:
        return ac.Table.from_batches(self.batches, schema=self.schema)


_NONES = itertools.repeat(None)
_EMPTY = itertools.repeat("")
# Kinds whose str() is the text a person would type, after the fix-ups in `_typed_texts`.
_JOINABLE = frozenset({float, int, bool, datetime.date, datetime.datetime, datetime.time})


def _column_text(values: tuple[Value, ...], where: str, first: int, limit: int) -> list[Cell]:
    """One column of a chunk as text, as `_text` would make each cell, in bulk.

    Text cells ("" is an empty cell) and typed cells (numbers, dates, booleans) are told
    apart with one C-level pass; the column's majority kind is converted whole, the
    minority cell by cell.
    """
    n = len(values)
    is_str = list(map(isinstance, values, itertools.repeat(str)))
    strings = is_str.count(True)
    if strings * 2 >= n:  # mostly text: all as text, then the typed cells one by one
        out = cast("list[Cell]", list(values))
        if strings < n:
            for i in itertools.compress(range(n), map(operator.not_, is_str)):
                out[i] = _text(values[i], where, first + i, limit)
        if strings and values.count(""):  # empty cells
            for i in itertools.compress(range(n), map(operator.eq, values, _EMPTY)):
                out[i] = None
        return out
    typed = list(values)
    str_at = list(itertools.compress(range(n), is_str))
    for i in str_at:
        typed[i] = 0  # a placeholder, replaced below
    texts = _typed_texts(typed, where, first, limit)
    for i in str_at:
        texts[i] = cast(str, values[i]) or None  # long ones: found in Arrow
    return texts


def _typed_texts(values: list[Value], where: str, first: int, limit: int) -> list[Cell]:
    """Numbers, dates, booleans (no text cells) as text: one str() pass, joined, fixed up."""
    kinds = set(map(type, values))
    if not kinds <= _JOINABLE:
        return [_text(v, where, first + i, limit) for i, v in enumerate(values)]
    joined = "\n".join(map(str, values)) + "\n"
    if float in kinds:  # integer-valued floats below 1e16 end in ".0": 42.0 -> "42"
        joined = joined.replace(".0\n", "\n")
    if datetime.datetime in kinds:  # "2024-01-05 13:30:00" -> "2024-01-05T13:30:00"
        joined = joined.replace(" ", "T")
    if bool in kinds:
        joined = joined.replace("True\n", "true\n").replace("False\n", "false\n")
    texts: list[Cell] = joined.split("\n")  # type: ignore[assignment]
    texts.pop()
    return texts


def _row_text(values: list[Value], where: str, number: int, limit: int) -> list[Cell]:
    return [_text(v, where, number, limit) for v in values]


def _text(value: Value, where: str, row: int, limit: int) -> Cell:
    if isinstance(value, str):
        if not value:
            return None
        if len(value) > EXCEL_MAX_CELL_CHARS:
            raise ReadError(
                f"{where}: a cell in row {row} holds {len(value):,} characters, more than "
                f"Excel's limit of {EXCEL_MAX_CELL_CHARS:,}. Shorten it and pick the file again."
            )
        if len(value) > limit // 4 and len(value.encode()) > limit:
            raise ReadError(field_too_large(where, row, None, limit))
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return canonical_number(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, datetime.time):
        return value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    if isinstance(value, datetime.timedelta):
        return _duration(value)
    return str(value)


def _duration(value: datetime.timedelta) -> str:
    seconds = value.total_seconds()
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = f"{sign}PT"
    if hours:
        out += f"{int(hours)}H"
    if minutes:
        out += f"{int(minutes)}M"
    if secs or out.endswith("PT"):
        out += f"{canonical_number(round(secs, 6))}S"
    return out
