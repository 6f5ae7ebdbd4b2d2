"""Spreadsheets (xlsx, xlsm, xlsb, xls, ods) into a `Sheet`, with python-calamine.

- Zip-based files pass pipeline.zipguard first: calamine never opens a zip bomb.
- The sheet is the one the user picks (`ReadOptions.sheet`), else the first visible
  worksheet. Rows are read with `iter_rows` and turned into Arrow string batches 64k
  rows at a time (never one `to_python()` of the whole sheet).
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
- Columns: up to the header's last non-empty cell. A row with a value further right gets
  an "extra-cell" problem (the value is not imported).
- The rows read are counted against the sheet's dimension: a shortfall is an error,
  never a silently shorter table. Excel's limits are enforced: 1,048,576 rows, 16,384
  columns, 32,767 characters a cell.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator

import python_calamine as pc

from pipeline.errors import ReadError
from pipeline.protocol import FileKind
from pipeline.sheet import (
    EXCEL_MAX_CELL_CHARS,
    EXCEL_MAX_COLUMNS,
    EXCEL_MAX_ROWS,
    HEADER_SCAN_ROWS,
    READ_BUFFER,
    Cell,
    ColumnBuilder,
    Problem,
    Problems,
    ReadOptions,
    Sheet,
    canonical_number,
    check_header_row,
    detect_header,
    field_too_large,
    header_width,
    no_data_rows,
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

PROGRESS_ROWS = 16_384


@contextlib.contextmanager
def _open(
    path: str, name: str, kind: FileKind, options: ReadOptions
) -> Iterator[pc.CalamineWorkbook]:
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
    limit = options.max_field_bytes
    rows = _text_rows(sheet, where, limit)
    head: list[list[Cell]] = []
    for row in rows:
        head.append(row)
        if len(head) >= HEADER_SCAN_ROWS:
            break
    check_header_row(where, options.header_row, len(head))
    index = options.header_row - 1 if options.header_row else detect_header(head)
    header_row = index + 1
    raw = head[index]
    width = header_width(raw)
    if width == 0:
        raise ReadError(
            f"{where}: row {header_row} is blank, so it cannot be the header row. "
            "Pick the row that holds the column names."
        )
    problems = Problems()
    headers = unique_headers(raw[:width], header_row, problems)
    builder = ColumnBuilder(width)
    blank_rows: list[int] = []

    def data_rows() -> Iterator[list[Cell]]:
        yield from head[index + 1 :]
        yield from rows

    for row in data_rows():
        number = header_row + 1 + builder.rows
        if len(row) > width and row.count(None) - row[:width].count(None) != len(row) - width:
            problems.add(
                Problem(
                    "extra-cell",
                    f"Row {number} has values to the right of the last header (column "
                    f"{width}); they are left out. Give those columns a header to import them.",
                    number,
                    width + 1,
                )
            )
        elif row[:width].count(None) == width:
            problems.add(Problem("blank-row", f"Row {number} is blank.", number))
            blank_rows.append(builder.rows)
        builder.append(row)
        if builder.rows % PROGRESS_ROWS == 0:
            options.rows_read(builder.rows)
    seen = index + 1 + builder.rows
    if seen != expected_rows:
        raise ReadError(
            f"{where}: {seen:,} rows were read but the sheet says it has {expected_rows:,}. "
            "The file may be damaged: open it in your spreadsheet program, save it again, "
            "and pick the new file."
        )
    table = builder.table()
    if table.num_rows == 0:
        raise ReadError(no_data_rows(where))
    return Sheet(
        file_name=name,
        headers=headers,
        table=table,
        header_row=header_row,
        delimiter="",
        kind=kind,
        encoding=None,
        sheet_name=sheet_name,
        sheet_names=names,
        problems=tuple(problems.kept),
        problem_count=problems.count,
        blank_rows=tuple(blank_rows),
    )


def _text_rows(sheet: pc.CalamineSheet, where: str, limit: int) -> Iterator[list[Cell]]:
    """Each row's cells as text; the common kinds of cell on a fast path, the rest by `_text`."""
    number = 0
    long = min(limit // 4, EXCEL_MAX_CELL_CHARS)
    date, stamp = datetime.date, datetime.datetime
    try:
        for values in sheet.iter_rows():
            number += 1
            out: list[Cell] = []
            add = out.append
            for v in values:
                kind = type(v)
                if kind is str:
                    add((v or None) if len(v) <= long else _text(v, where, number, limit))  # type: ignore[arg-type]
                elif kind is float:
                    text = repr(v)  # integer-valued floats below 1e16 end in ".0"
                    add(text[:-2] if text.endswith(".0") else text)
                elif kind is date:
                    add(v.isoformat())  # type: ignore[union-attr]
                elif kind is bool:
                    add("true" if v else "false")
                elif kind is stamp:
                    add(v.isoformat(timespec="microseconds" if v.microsecond else "seconds"))  # type: ignore[union-attr,call-arg]
                else:
                    add(_text(v, where, number, limit))
            yield out
    except ReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - calamine's XML errors mid-sheet
        raise ReadError(damaged(where, "a spreadsheet", _short(exc))) from exc


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
