"""Delimited text (CSV, TSV, semicolon, pipe) into a `Sheet` of Arrow strings.

How a file is read:

- Encoding: detected on the first 64 KiB (`pipeline.encodings`), or the user's choice. A
  file whose first 64 KiB are plain ASCII but which turns out not to be UTF-8 further down
  is read as Windows-1252. Anything but UTF-8 is transcoded to UTF-8 on the fly while
  arrow-rs reads it (a file-like object; nothing is held whole, no temporary file).
- The first rows (at most 50, within the first 64 KiB) are parsed in Python to sniff the
  delimiter and find the header row (leading blank and title rows skipped); the data
  after it goes to arrow-rs's CSV reader as Arrow strings, 64k rows a batch.
- Ragged rows: arrow-rs refuses a row with a different number of cells. Then the file is
  read again with Python's csv module (slower, same result for regular rows): a row with
  too many cells keeps the first ones and gets an "extra-cell" problem, a row with too
  few is padded with empty cells and gets a "missing-cell" problem. The file stays usable.
- Blank lines: a blank line inside the data is kept as an empty row with a "blank-row"
  problem, as the spreadsheet readers keep blank rows, so every row keeps the number a
  spreadsheet app shows it under. arrow-rs skips blank lines without a trace, so a file
  with one (or with a blank line inside a quoted cell: it cannot tell) is read by the
  Python reader instead. Blank lines at the end of the file are dropped.
- A field-size limit (128 KiB by default): a bigger cell (a 50 MB line, a quote never
  closed) is refused with a message naming the row, after arrow-rs has read that batch.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, cast

import arro3.compute as acc
import arro3.core as ac
import arro3.io as aio

from pipeline.cell_errors import CellError, cut, row_error
from pipeline.columns import NO_HEADER_ROW, default_column_names
from pipeline.encodings import Encoding, Utf8Stream, decode_sample, detect_encoding
from pipeline.errors import ReadError
from pipeline.protocol import FileKind
from pipeline.scan import positions
from pipeline.sheet import (
    BATCH_ROWS,
    HEADER_SCAN_ROWS,
    KIB,
    READ_BUFFER,
    ColumnBuilder,
    Problem,
    Problems,
    ReadOptions,
    Sheet,
    check_field_sizes,
    check_header_row,
    detect_header,
    field_too_large,
    header_width,
    looks_like_data,
    no_data_rows,
    string_schema,
    unique_headers,
)

SAMPLE_BYTES = 64 * KIB
MAX_SAMPLE_BYTES = 8 * 1024 * KIB  # a header row longer than this is refused
BATCH_CELLS = 4 * 1024 * 1024  # cells a batch of arrow-rs holds: fewer rows for wide files
DELIMITERS = ",;\t|"
CSV_FIELD_LIMIT = 128 * KIB  # Python's csv default, for the first rows whatever else set it


def batch_rows(width: int) -> int:
    """Rows a batch of `width` columns: arrow-rs sizes its buffers rows x columns up front,
    and in wasm32 64k rows of 4,000 columns already overflow its capacity."""
    return max(1, min(BATCH_ROWS, BATCH_CELLS // max(width, 1)))


def read_delimited(path: str, name: str, options: ReadOptions, size: int) -> Sheet:
    sample = _sample(path, size)
    whole = len(sample) >= size
    encoding = detect_encoding(sample, name, options.encoding)
    try:
        return _read(path, name, options, sample, whole, encoding)
    except _NotUtf8 as exc:
        if options.encoding is None and encoding.ascii_sample:
            return _read(path, name, options, sample, whole, Encoding("cp1252"))
        raise ReadError(
            f"{name} is not UTF-8 encoded throughout ({exc.detail}). Pick the file's "
            "encoding (for example Windows-1252), or save it as 'CSV UTF-8' and pick it again."
        ) from exc


def text_encoding(path: str, name: str, options: ReadOptions, size: int) -> Encoding:
    """The encoding `read_delimited` reads the file in (before its Windows-1252 retry)."""
    return detect_encoding(_sample(path, size), name, options.encoding)


def _sample(path: str, size: int) -> bytes:
    """The first 64 KiB, or more until the header and a row are in it (a survey export's
    header of 20,000 columns is longer), up to MAX_SAMPLE_BYTES."""
    with open(path, "rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
        while sample.count(b"\n") < 2 and len(sample) < min(size, MAX_SAMPLE_BYTES):
            sample += fh.read(len(sample))
    return sample


class _NotUtf8(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Head:
    """What a file's first rows say about all of it: every part of the data is read with it.

    `start` is the byte offset of the first data row in the file (a UTF-8 file's bytes are
    the text's: parts of it can be read from their offsets, pipeline.chunking).
    """

    name: str
    encoding: Encoding
    delimiter: str
    headers: tuple[str, ...]
    header_index: int
    header_row: int
    start: int
    problems: Problems
    headerless: bool
    max_field_bytes: int
    above: tuple[tuple[str | None, ...], ...] = ()  # the rows above the header row (Sheet.above)

    def to_dict(self) -> dict[str, object]:
        """For the engines that read the parts (pipeline.bridge), as JSON."""
        return {
            "name": self.name,
            "codec": self.encoding.codec,
            "bom": self.encoding.bom,
            "delimiter": self.delimiter,
            "headers": list(self.headers),
            "header_index": self.header_index,
            "header_row": self.header_row,
            "start": self.start,
            "problems": [p.to_dict() for p in self.problems.kept],
            "problem_count": self.problems.count,
            "headerless": self.headerless,
            "max_field_bytes": self.max_field_bytes,
            "above": [list(row) for row in self.above],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Head:
        problems = Problems()
        problems.kept = [
            Problem(p["code"], p["message"], p.get("row"), p.get("column"))
            for p in data["problems"]
        ]
        problems.count = int(data["problem_count"])
        return cls(
            name=str(data["name"]),
            encoding=Encoding(str(data["codec"]), int(data["bom"])),
            delimiter=str(data["delimiter"]),
            headers=tuple(str(h) for h in data["headers"]),
            header_index=int(data["header_index"]),
            header_row=int(data["header_row"]),
            start=int(data["start"]),
            problems=problems,
            headerless=bool(data["headerless"]),
            max_field_bytes=int(data["max_field_bytes"]),
            above=tuple(tuple(row) for row in data.get("above", ())),
        )


def read_head(path: str, name: str, options: ReadOptions, size: int) -> Head | None:
    """The head of a UTF-8 file, for reading its data in parts; None if it is not UTF-8
    (its parts' offsets would not be the text's), when it is read whole instead."""
    sample = _sample(path, size)
    encoding = detect_encoding(sample, name, options.encoding)
    if not encoding.is_utf8:
        return None
    try:
        return _head(name, options, sample, len(sample) >= size, encoding)
    except _NotUtf8:
        return None


def _read(
    path: str, name: str, options: ReadOptions, sample: bytes, whole: bool, encoding: Encoding
) -> Sheet:
    head = _head(name, options, sample, whole, encoding)
    data = _FileData(path, name, encoding, head.start - encoding.bom)
    blank_rows: tuple[int, ...] = ()
    row_errors: tuple[CellError, ...] = ()
    try:
        table = _read_arrow(data, name, head.headers, head.delimiter, head.header_row, options)
        blank_rows = _all_empty(table)
    except _NotForArrow:
        with open(path, "rb") as raw:
            raw.seek(encoding.bom)
            table, blank_rows, row_errors = _read_python(
                raw, head, head.header_index + 1, head.header_row
            )
    return sheet_of(head, table, blank_rows, row_errors)


def _head(name: str, options: ReadOptions, sample: bytes, whole: bool, encoding: Encoding) -> Head:
    text = decode_sample(sample[encoding.bom :], name, encoding, whole)
    if not text.strip():
        raise ReadError(
            f"{name} is empty. Pick a file with a header row and at least one row of data."
        )
    delimiter = _sniff_delimiter(text if whole else text[: text.rfind("\n") + 1] or text)
    spans = _record_spans(text, whole, HEADER_SCAN_ROWS, delimiter)
    if not spans:
        raise ReadError(field_too_large(name, 1, None, options.max_field_bytes))
    limit = options.max_field_bytes
    records = []
    with _field_limit(CSV_FIELD_LIMIT):  # then a cell over `limit` is named with its column
        for number, (a, b) in enumerate(spans, start=1):
            try:
                records.append(_parse_record(text[a:b], delimiter))
            except csv.Error as exc:  # a cell over Python's own default limit (128 KiB)
                raise ReadError(field_too_large(name, number, None, limit)) from exc
    problems = Problems()
    if options.header_row == NO_HEADER_ROW:  # the data starts at row 1: columns are named
        header_index, header_row = -1, NO_HEADER_ROW
        headers = tuple(default_column_names(max(map(header_width, records), default=1) or 1))
        skip, headerless = 0, False
    else:
        check_header_row(name, options.header_row, len(records))
        if options.header_row is not None:
            header_index = options.header_row - 1
        else:
            header_index = detect_header(records[:HEADER_SCAN_ROWS])
        header_row = header_index + 1
        raw = records[header_index]
        if not any(c.strip() for c in raw):
            raise ReadError(
                f"{name}: row {header_row} is blank, so it cannot be the header row. "
                "Pick the row that holds the column names."
            )
        headers = unique_headers(raw, header_row, problems)
        skip = len(text[: spans[header_index][1]].encode("utf-8"))
        headerless = options.header_row is None and looks_like_data(raw)
    for number, record in enumerate(records, start=1):
        for j, cell in enumerate(record):
            if len(cell) > limit // 4 and len(cell.encode()) > limit:
                column = headers[j] if number > header_row and j < len(headers) else None
                raise ReadError(field_too_large(name, number, column, limit))
    return Head(
        name=name,
        encoding=encoding,
        delimiter=delimiter,
        headers=headers,
        header_index=header_index,
        header_row=header_row,
        start=encoding.bom + skip,
        problems=problems,
        headerless=headerless,
        max_field_bytes=limit,
        above=tuple(tuple(r) for r in records[: max(header_index, 0)]),
    )


def sheet_of(
    head: Head, table: ac.Table, blank_rows: tuple[int, ...], row_errors: tuple[CellError, ...]
) -> Sheet:
    """The Sheet of a file's data as read (whole or joined from parts): empty rows at the
    end go, as blank lines at the end do; row errors and blank rows are listed as problems."""
    kept, end = list(blank_rows), table.num_rows
    while kept and kept[-1] == end - 1:
        kept.pop()
        end -= 1
    if end < table.num_rows:
        table = table.slice(0, end)
    blank_rows = tuple(kept)
    problems = Problems()
    problems.kept, problems.count = list(head.problems.kept), head.problems.count
    for error in row_errors:  # listed with the file's problems too, as the page shows them
        count = int(error.params["count"])  # type: ignore[call-overload]
        at = len(head.headers) + 1 if error.code == "extra-cell" else count + 1
        problems.add(Problem(error.code, error.message, error.row, at))
    for index in blank_rows:
        number = head.header_row + 1 + index
        problems.add(Problem("blank-row", f"Row {number} is blank.", number))
    if table.num_rows == len(blank_rows):
        raise ReadError(no_data_rows(head.name))
    return Sheet(
        file_name=head.name,
        headers=head.headers,
        table=table,
        header_row=head.header_row,
        above=head.above,
        delimiter=head.delimiter,
        kind=FileKind.CSV,
        encoding=head.encoding.display,
        problems=tuple(problems.kept),
        problem_count=problems.count,
        blank_rows=blank_rows,
        row_errors=row_errors,
        looks_headerless=head.headerless,
    )


def _all_empty(table: ac.Table) -> tuple[int, ...]:
    """Rows whose every cell is empty (`,,,,`, as spreadsheet exports leave): blank rows.

    Found in Arrow: the rows empty in the first column, narrowed column by column.
    """
    if table.num_rows == 0 or table.num_columns == 0:
        return ()
    rows: ac.Array | None = None
    for i in range(table.num_columns):
        column = table.column(i).combine_chunks()
        if rows is None:
            rows = acc.filter(positions(len(column)), acc.is_null(column))
        else:
            rows = acc.filter(rows, acc.is_null(acc.take(column, rows)))
        if len(rows) == 0:
            return ()
    return tuple(rows.to_pylist()) if rows is not None else ()


# --- records and delimiters ---------------------------------------------------------------------


def _record_spans(text: str, whole: bool, most: int, delimiter: str) -> list[tuple[int, int]]:
    """(start, end) of the first complete records of `text`, each end after its line break.

    Quotes count only at the start of a field (as in Python's csv and arrow-rs); a quoted
    field may hold delimiters, doubled quotes and line breaks. A blank line is a record.
    The last record counts only if it ends with a line break or the text is the whole file.
    """
    spans: list[tuple[int, int]] = []
    n = len(text)
    i = start = 0
    field_start = True
    quoted = False
    while i < n and len(spans) < most:
        ch = text[i]
        if quoted:
            if ch == '"':
                if i + 1 < n and text[i + 1] == '"':
                    i += 2
                    continue
                if i + 1 >= n and not whole:
                    break
                quoted = False
            i += 1
            continue
        if ch == '"' and field_start:
            quoted = True
            field_start = False
        elif ch in "\r\n":
            end = i + 1
            if ch == "\r":
                if end >= n and not whole:
                    break
                if end < n and text[end] == "\n":
                    end += 1
            spans.append((start, end))
            start = i = end
            field_start = True
            continue
        else:
            field_start = ch == delimiter
        i += 1
    if whole and start < n and len(spans) < most and text[start:].strip("\r\n"):
        spans.append((start, n))
    return spans


def _parse_record(text: str, delimiter: str) -> list[str]:
    row = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    return row


def _sniff_delimiter(text: str) -> str:
    lines = "\n".join(text.splitlines()[:HEADER_SCAN_ROWS])[: 32 * KIB]
    try:
        return csv.Sniffer().sniff(lines, delimiters=DELIMITERS).delimiter
    except csv.Error:
        counts = {d: lines.count(d) for d in DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


# --- the two readers ----------------------------------------------------------------------------


class _NotForArrow(Exception):
    """arrow-rs would not give the file's exact rows (ragged rows, blank lines)."""


class _Counted(io.RawIOBase):
    """The data on its way to arrow-rs, its line feeds counted (once per 4 MiB, in C).

    arrow-rs skips blank lines without a trace. When the line feeds are exactly one per
    record, there was none (and no line break inside a cell); otherwise the file is
    searched for a blank line (`_inner_blank_line`).
    """

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw
        self.line_feeds = 0
        self.quotes = 0
        self.last = 10  # the last byte read; the header's line feed before the first

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = int(self._raw.readinto(buffer))  # type: ignore[attr-defined]
        if count:
            chunk = buffer[:count].tobytes()
            self.line_feeds += chunk.count(b"\n")
            self.quotes += chunk.count(b'"')
            self.last = chunk[-1]
        return count

    def close(self) -> None:
        self._raw.close()
        super().close()

    def exact_for(self, records: int) -> bool:
        """One line feed per record (the last may have none): no blank line was skipped."""
        return self.line_feeds == records - (0 if self.last == 10 else 1)


_BLANK = re.compile(rb"\n[\r\n]|\r\r")  # a line break right after another (CRLF is one)
_DATA = re.compile(rb"[^\r\n]")


class _FileData:
    """The file's data rows from the first on, as UTF-8 bytes (`skip`: UTF-8 bytes of the
    text before them, after the BOM), transcoded on the fly if the file is not UTF-8."""

    def __init__(self, path: str, name: str, encoding: Encoding, skip: int) -> None:
        self.path, self.name, self.encoding, self.skip = path, name, encoding, skip

    def open(self) -> IO[bytes]:
        raw = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed by the caller
        if self.encoding.is_utf8:
            raw.seek(self.encoding.bom + self.skip)
            return raw
        raw.seek(self.encoding.bom)
        stream = Utf8Stream(raw, self.name, self.encoding)
        stream.skip(self.skip)
        return cast(IO[bytes], stream)


class RangeData:
    """Bytes [start, end) of a UTF-8 file, then `tail` (a part of its data, pipeline.chunking)."""

    def __init__(self, path: str, start: int, end: int, tail: bytes = b"") -> None:
        self.path, self.start, self.end, self.tail = path, start, end, tail

    def open(self) -> IO[bytes]:
        return cast(IO[bytes], _Range(self.path, self.start, self.end, self.tail))


class _Range(io.RawIOBase):
    def __init__(self, path: str, start: int, end: int, tail: bytes) -> None:
        super().__init__()
        self._raw = open(path, "rb", buffering=0)  # noqa: SIM115 - closed in close()
        self._raw.seek(start)
        self._left = end - start
        self._tail = tail

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._left > 0:
            view = memoryview(buffer)[: min(len(buffer), self._left)]
            count = int(self._raw.readinto(view) or 0)
            if count:
                self._left -= count
                return count
            self._left = 0
        count = min(len(buffer), len(self._tail))
        buffer[:count] = self._tail[:count]
        self._tail = self._tail[count:]
        return count

    def close(self) -> None:
        self._raw.close()
        super().close()


Data = _FileData | RangeData


def _inner_blank_line(data: Data) -> bool:
    """Whether the data holds a blank line with data after it (inside a quoted cell too)."""
    source, _ = _open_data(data)
    with source:
        last = b"\n"  # the header's line break
        blank = False
        while chunk := source.read(READ_BUFFER):
            if not blank:
                found = _BLANK.search(last + chunk[:1])
                at = 1 if found else -1
                if at < 0 and (b"\n\n" in chunk or b"\r" in chunk):
                    found = _BLANK.search(chunk)
                    at = found.end() if found else -1
                if at >= 0:
                    blank = True
                    chunk = chunk[at:]
            if blank and _DATA.search(chunk):
                return True
            last = chunk[-1:] or last
    return False


def _open_data(data: Data) -> tuple[io.BufferedReader, _Counted]:
    """The data as UTF-8 bytes, and the count of its line feeds as they pass."""
    counted = _Counted(data.open())
    # A large buffer: in the browser each read of the file system is a slice of the File.
    return io.BufferedReader(counted, READ_BUFFER), counted


def _read_arrow(
    data: Data,
    name: str,
    headers: tuple[str, ...],
    delimiter: str,
    header_row: int,
    options: ReadOptions,
) -> ac.Table:
    schema = string_schema(len(headers))
    fh, counted = _open_data(data)
    try:
        reader = aio.read_csv(
            fh, schema, has_header=False, batch_size=batch_rows(len(headers)), delimiter=delimiter
        )
        batches = []
        first = header_row + 1
        for batch in _batches(reader, name, header_row + 1):
            check_field_sizes(name, batch, first, headers, options.max_field_bytes)
            first += batch.num_rows
            batches.append(batch)
            options.rows_read(first - header_row - 1)
    finally:
        fh.close()
    records = first - header_row - 1
    if counted.quotes % 2:  # perhaps a quote never closed: arrow-rs reads on to the end
        raise _NotForArrow("an odd number of quotes")
    if not counted.exact_for(records) and _inner_blank_line(data):
        raise _NotForArrow("a blank line inside the data")
    return ac.Table.from_batches(batches, schema=schema)


def _batches(reader: ac.RecordBatchReader, name: str, first_row: int) -> Iterator[ac.RecordBatch]:
    """arrow-rs's batches; its "line N" counts records from the first data row (1-based)."""
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except ReadError:
            raise
        except Exception as exc:  # noqa: BLE001 - arrow-rs raises plain exceptions
            detail = str(exc)
            if "incorrect number of fields" in detail:
                raise _NotForArrow(detail) from exc
            if "utf-8" in detail.lower() or "utf8" in detail.lower():
                line = re.search(r"for line (\d+)", detail)
                where = f"row {first_row + int(line[1]) - 1}" if line else "a row"
                raise _NotUtf8(f"{where} is not valid UTF-8") from exc
            raise ReadError(f"{name} cannot be read as CSV ({detail}).") from exc
        yield batch


def _read_python(
    raw: IO[bytes], head: Head, skip_records: int, header_row: int
) -> tuple[ac.Table, tuple[int, ...], tuple[CellError, ...]]:
    """The table, which of its rows are blank in the file (blank lines, rows of empty
    cells), and the errors of rows with more or fewer cells than the header.

    `raw` is at the file's text (after its BOM) or a part's first byte; `skip_records`
    records are passed over (the header and the rows above it); `header_row` numbers rows.
    """
    name, headers, delimiter = head.name, head.headers, head.delimiter
    limit, encoding = head.max_field_bytes, head.encoding
    width = len(headers)
    quarter = limit // 4  # a cell of fewer characters cannot exceed `limit` UTF-8 bytes
    builder = ColumnBuilder(width)
    blank_rows: list[int] = []
    row_errors: list[CellError] = []
    with _field_limit(limit):
        text = io.TextIOWrapper(raw, encoding=encoding.codec, newline="")
        lines = _LastRecord(text)
        reader = csv.reader(lines, delimiter=delimiter)
        try:
            for _ in range(skip_records):
                next(reader, None)
            blank = 0  # blank lines waiting for a row after them
            for record in reader:
                lines.record_read()
                if not any(record):
                    blank += 1
                    continue
                for _ in range(blank):
                    blank_rows.append(builder.rows)
                    builder.append([None] * width)
                blank = 0
                row = header_row + 1 + builder.rows
                got = len(record)
                if got > width:
                    extra = record[width:]
                    if any(c.strip() for c in extra):
                        row_errors.append(_extra(row, got, width, delimiter.join(extra)))
                    record = record[:width]
                elif got < width:
                    row_errors.append(_missing(row, got, width))
                if max(map(len, record), default=0) > quarter:  # in C: a long cell?
                    for j, cell in enumerate(record):
                        if len(cell) > quarter and len(cell.encode()) > limit:
                            raise ReadError(field_too_large(name, row, headers[j], limit))
                builder.append([c or None for c in record])
        except csv.Error as exc:
            row = header_row + 1 + builder.rows + blank
            if "field larger than field limit" in str(exc):
                raise ReadError(field_too_large(name, row, None, limit)) from exc
            raise ReadError(f"{name}: row {row} cannot be read as CSV ({exc}).") from exc
        except UnicodeDecodeError as exc:
            raise ReadError(
                f"{name} is not valid {encoding.display} throughout ({exc.reason}). "
                "Pick the file's encoding, or save it as 'CSV UTF-8' and pick it again."
            ) from exc
        if builder.rows and _ends_in_quote(lines.last, delimiter):
            raise ReadError(unclosed_quote(name, header_row + builder.rows))
    return builder.table(), tuple(blank_rows), tuple(row_errors)


@contextmanager
def _field_limit(limit: int) -> Iterator[None]:
    """Python's csv module with the file's field-size limit: it is process-wide (another
    library, frictionless for one, may have raised it), so set it for each read."""
    old = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(old)


class _LastRecord:
    """The lines csv.reader reads, keeping those of the record it read last."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._pending: list[str] = []
        self.last = ""

    def __iter__(self) -> _LastRecord:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self._pending.append(line)
        return line

    def record_read(self) -> None:
        if len(self._pending) == 1:
            self.last = self._pending[0]
        else:
            self.last = "".join(self._pending)
        self._pending.clear()


def _ends_in_quote(record: str, delimiter: str) -> bool:
    """Whether a record's text ends inside a quoted cell (a quote opened, never closed).

    As csv.reader reads: a quote opens a cell only at the cell's start; inside, a doubled
    quote is a quote and a single one closes the cell.
    """
    quoted = False
    field_start = True
    i, n = 0, len(record)
    while i < n:
        ch = record[i]
        if quoted:
            if ch == '"':
                if i + 1 < n and record[i + 1] == '"':
                    i += 2
                    continue
                quoted = False
        elif ch == '"' and field_start:
            quoted = True
        field_start = not quoted and ch in (delimiter, "\n", "\r")
        i += 1
    return quoted


def unclosed_quote(name: str, row: int) -> str:
    return (
        f'{name}: row {row} opens a quote (") that is never closed, so the rest of the file '
        "would be one cell. Close the quote or remove it, and pick the file again."
    )


def _extra(row: int, got: int, width: int, cells: str) -> CellError:
    return row_error(row, "extra-cell", {"row": row, "count": got, "width": width,
                                         "cells": cut(cells)})  # fmt: skip


def _missing(row: int, got: int, width: int) -> CellError:
    return row_error(row, "missing-cell", {"row": row, "count": got, "width": width})


# --- parts of the data (pipeline.chunking cuts them and joins them) ----------------------------

SENTINEL = "\x1f"  # the cells of the record put after a part: it must come back as one row


@dataclass(frozen=True)
class Part:
    """Rows of a byte range of the data, numbered from 1 (row errors; blank rows 0-based).

    `verified`: the range ended at a record boundary (the record put after it came back
    as its own row); a range cut inside a quoted cell is not, and is read again joined
    with the next one. `slow`: read by the Python reader (ragged rows, blank lines).
    """

    table: ac.Table
    blank_rows: tuple[int, ...]
    row_errors: tuple[CellError, ...]
    verified: bool
    slow: bool = False


def read_part(path: str, head: Head, start: int, end: int, last: bool, header_row: int = 0) -> Part:
    """Bytes [start, end) of a UTF-8 file's data, read as the whole file would be: by
    arrow-rs, or by the Python reader if this part has ragged rows or blank lines.

    `header_row`: the row number before the part's first row, for its row errors and the
    rows a ReadError names (0: numbered from the part's start, for `chunking.join`)."""
    width = len(head.headers)
    cell = f'"{SENTINEL}"'
    tail = b"" if last else (head.delimiter.join([cell] * width) + "\n").encode()
    data = RangeData(path, start, end, tail)
    options = ReadOptions(max_field_bytes=head.max_field_bytes)
    row_errors: tuple[CellError, ...] = ()
    slow = False
    try:
        table = _read_arrow(data, head.name, head.headers, head.delimiter, header_row, options)
        blank_rows = _all_empty(table)
    except _NotForArrow:
        slow = True
        raw = data.open()
        try:
            table, blank_rows, row_errors = _read_python(raw, head, 0, header_row)
        finally:
            raw.close()
    except _NotUtf8 as exc:
        raise ReadError(f"{head.name} is not UTF-8 encoded throughout ({exc.detail}).") from exc
    if last:
        return Part(table, blank_rows, row_errors, True, slow)
    n = table.num_rows
    verified = n > 0 and all(table.column(i)[n - 1].as_py() == SENTINEL for i in range(width))
    if not verified:
        return Part(table, blank_rows, row_errors, False, slow)
    rows = tuple(i for i in blank_rows if i < n - 1)
    return Part(table.slice(0, n - 1), rows, row_errors, True, slow)
