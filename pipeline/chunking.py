"""A delimited file read in parts (by parallel engines) and joined into what one engine reads.

- Cuts: the data (after the header) of a UTF-8 file is cut into byte ranges, each cut right
  after a line feed (`cuts`). A cut may fall inside a quoted cell holding a line break:
  each part but the last is read with a sentinel record after it
  (`pipeline.delimited.read_part`), which comes back as its own row only if the part ended
  at a record boundary. A part whose sentinel was swallowed is read again joined with the
  next range (`join`), so the rows are exactly the whole file's.
- Each part takes arrow-rs, or the Python reader if it alone holds a ragged row or a blank
  line: one such row no longer sends the whole file through the slow reader.
- Rows are numbered once every part has said how many it holds: row errors, blank rows
  and the cell errors of each part are shifted by the rows before it.
- Validation: each engine checks the rows it read with the rules of one cell
  (`part_errors`); the rules across rows (unique, primaryKey) need whole columns and run
  once over the joined table (`cross_row_errors`); `merged_errors` orders them all as
  `pipeline.validation.validate` over the whole table does, so the review built from
  them is the one engine's, exactly.
- A part that cannot be read (a cell too large, not UTF-8, a quote never closed) stops the
  split: the file is read whole (`ReadWhole`), whose message names the right row.
- In turn (`in_turn`, `parts_in_turn`): the server's headless import reads a file of any
  encoding one part after another, holding one part at a time; each part's rows and
  messages are numbered as the file's, and a file in another encoding than UTF-8 is read
  from a copy transcoded to UTF-8 (so that its parts can be cut by bytes).
"""

from __future__ import annotations

import io
import itertools
import operator
import os
import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import IO, Any, cast

import arro3.compute as acc
import arro3.core as ac
import arro3.io as aio

from pipeline.cell_errors import CellError, new_error
from pipeline.delimited import (
    Head,
    Part,
    read_delimited,
    read_head,
    read_part,
    sheet_of,
    text_encoding,
)
from pipeline.encodings import Encoding, transcode, utf8_throughout
from pipeline.errors import ReadError
from pipeline.protocol import FileKind
from pipeline.readers import file_kind, read_file
from pipeline.review import Review
from pipeline.review.recheck import cross_row
from pipeline.schema import Template
from pipeline.session import ImportSession
from pipeline.sheet import KIB, MIB, ReadOptions, Sheet, string_schema
from pipeline.validation import validate

SPLIT_BYTES = 8 * MIB
"""Data smaller than this is read by one engine: a part's start-up would cost more."""
CUT_WINDOW = 64 * KIB


class ReadWhole(Exception):
    """A part could not be read as the whole file would be: read the file whole."""


def cuts(path: str, start: int, end: int, parts: int) -> list[int]:
    """Bounds [start, c1, ..., end] of about `parts` equal ranges of bytes [start, end), each
    cut right after a line feed (fewer ranges when lines are longer than a range)."""
    bounds = [start]
    with open(path, "rb") as fh:
        for k in range(1, parts):
            at = max(start + (end - start) * k // parts, bounds[-1] + 1) - 1
            fh.seek(at)
            while at < end:
                block = fh.read(CUT_WINDOW)
                found = block.find(b"\n")
                if found >= 0 or not block:
                    at = at + found + 1 if found >= 0 else end
                    break
                at += len(block)
            if bounds[-1] < at < end:
                bounds.append(at)
    bounds.append(end)
    return bounds


@dataclass(frozen=True)
class Joined:
    """The sheet as one engine reads it, and where each part's rows start in it."""

    sheet: Sheet
    bounds: tuple[int, ...]
    """The byte ranges read, after merging those cut inside a quoted cell."""
    starts: tuple[int, ...]
    """Index of each range's first row in the sheet's table."""


PartReader = Callable[[int, int, bool], Part]
"""(start, end, last) -> the Part of bytes [start, end); raises ReadError."""


def join(
    head: Head, bounds: Sequence[int], parts: Sequence[Part | None], read: PartReader
) -> Joined:
    """The parts read from ranges `bounds` joined in order (None: the part could not be
    read). A part cut inside a quoted cell is read again with the next range (`read`)."""
    ranges = list(itertools.pairwise(bounds))
    tables: list[ac.Table] = []
    blank_rows: list[int] = []
    row_errors: list[CellError] = []
    kept_bounds, starts = [bounds[0]], []
    rows = k = 0
    while k < len(ranges):
        start, end = ranges[k]
        part = parts[k]
        try:
            while part is not None and not part.verified:  # the cut fell inside quotes
                k += 1
                end = ranges[k][1]
                part = read(start, end, k == len(ranges) - 1)
        except ReadError as exc:
            raise ReadWhole(str(exc)) from exc
        if part is None:
            raise ReadWhole(f"bytes {start}-{end} of {head.name} could not be read apart")
        shift = head.header_row + rows
        tables.append(part.table)
        blank_rows.extend(rows + index for index in part.blank_rows)
        row_errors.extend(renumbered(e, shift) for e in part.row_errors)
        starts.append(rows)
        kept_bounds.append(end)
        rows += part.table.num_rows
        k += 1
    schema = string_schema(len(head.headers))
    batches = [batch for table in tables for batch in table.to_batches()]
    table = ac.Table.from_batches(batches, schema=schema)
    sheet = sheet_of(head, table, tuple(blank_rows), tuple(row_errors))
    return Joined(sheet, tuple(kept_bounds), tuple(starts))


def renumbered(error: CellError, shift: int) -> CellError:
    """An error of a part's row as the row of the file (its message's row number too)."""
    params = error.params
    if "row" in params:
        params = {**params, "row": int(params["row"]) + shift}  # type: ignore[call-overload]
    return error._replace(row=error.row + shift, params=params)


def splittable(path: str, name: str, options: ReadOptions, min_bytes: int) -> Head | None:
    """The head of a delimited UTF-8 file whose data is worth reading in parts, else None."""
    if file_kind(path, name, options) is not FileKind.CSV or options.sheet is not None:
        return None
    size = os.path.getsize(path)
    if size > options.max_bytes:
        return None
    head = read_head(path, name, options, size)
    if head is None or size - head.start < min_bytes:
        return None
    return head


def read_ranges(path: str, head: Head, bounds: Sequence[int]) -> Joined:
    """The ranges of `bounds` read one after the other, as the engines read them, and joined;
    ReadWhole if one cannot be read apart."""
    ranges = list(itertools.pairwise(bounds))

    def read(start: int, end: int, last: bool) -> Part:
        return read_part(path, head, start, end, last)

    found: list[Part | None] = []
    for k, (start, end) in enumerate(ranges):
        try:
            found.append(read(start, end, k == len(ranges) - 1))
        except ReadError:
            found.append(None)
    return join(head, bounds, found, read)


def read_in_parts(
    path: str, name: str, options: ReadOptions, parts: int, min_bytes: int = SPLIT_BYTES
) -> Joined:
    """The file read as `parts` engines read it, here in one process (the reference the
    tests compare with one engine's reading; the browser reads the parts in workers)."""
    head = splittable(path, name, options, min_bytes) if parts > 1 else None
    if head is not None:
        try:
            return read_ranges(path, head, cuts(path, head.start, os.path.getsize(path), parts))
        except ReadWhole:
            pass
    sheet = (
        read_file(path, name, options)
        if head is None
        else read_delimited(path, name, options, os.path.getsize(path))
    )
    return Joined(sheet, (), (0,))


# --- in turn: one part after another, in one process -------------------------------------------


@dataclass(frozen=True)
class InTurn:
    """A delimited file to read part by part: its head, and the UTF-8 file its data is
    read from (the file itself, or the transcoded copy the caller named)."""

    head: Head
    path: str

    def bounds(self, part_bytes: int) -> list[int]:
        """Byte ranges of about `part_bytes` each, cut after line feeds (`cuts`)."""
        size = os.path.getsize(self.path)
        parts = max(1, -(-(size - self.head.start) // max(part_bytes, 1)))
        return cuts(self.path, self.head.start, size, parts)


def in_turn(path: str, name: str, options: ReadOptions, copy_to: str) -> InTurn | None:
    """How to read a delimited file part by part, in any encoding; None for a spreadsheet,
    JSON, or a text file given a sheet name (`read_file` reads or refuses those whole).

    A file not in UTF-8 (detected, chosen, or ASCII at first and Windows-1252 further on,
    as `read_delimited` retries it) is transcoded to UTF-8 at `copy_to` first."""
    if file_kind(path, name, options) is not FileKind.CSV or options.sheet is not None:
        return None
    encoding = text_encoding(path, name, options, os.path.getsize(path))
    if encoding.is_utf8 and encoding.ascii_sample and options.encoding is None:
        if not utf8_throughout(path):
            encoding = Encoding("cp1252")
    if not encoding.is_utf8:
        transcode(path, name, encoding, copy_to)
        path, options = copy_to, replace(options, encoding="utf-8")
    head = read_head(path, name, options, os.path.getsize(path))
    return None if head is None else InTurn(head, path)


def parts_in_turn(source: InTurn, bounds: Sequence[int]) -> Iterator[tuple[Part, int]]:
    """Each range of `bounds` read in turn, with the number of data rows before it; a range
    cut inside a quoted cell is read again joined with the next (as `join` does). A part
    that cannot be read is read once more with the next range (the cut may have made it
    so), and raises the ReadError, naming the file's row, if it still cannot be read."""
    head, ranges = source.head, list(itertools.pairwise(bounds))
    last = len(ranges) - 1
    rows = k = 0
    while k <= last:
        start = ranges[k][0]

        def read(upto: int, start: int = start, rows: int = rows) -> Part:
            end = ranges[upto][1]
            return read_part(source.path, head, start, end, upto == last, head.header_row + rows)

        try:
            part = read(k)
        except ReadError:
            if k == last:
                raise
            k += 1
            part = read(k)
        while not part.verified:
            k += 1
            part = read(k)
        rows += part.table.num_rows
        yield part, rows - part.table.num_rows
        del part  # the caller's part goes before the next is read
        k += 1


# --- validation in parts ------------------------------------------------------------------------


def cell_template(template: Template) -> Template:
    """The template without its rules across rows: what a part's engine checks."""
    return replace(
        template, fields=tuple(replace(f, unique=False) for f in template.fields), primary_key=()
    )


def part_errors(table: ac.Table, template: Template, first_row: int) -> list[CellError]:
    """The errors of a part's rows (mapped columns, named after fields) by the rules of one
    cell; `first_row` is the row number of its first row in the file."""
    return validate(table, cell_template(template), first_row)


def cross_row_errors(table: ac.Table, template: Template, first_row: int) -> list[CellError]:
    """The errors of the rules across rows (unique, primaryKey) over the whole mapped table."""
    spanning = [f.name for f in template.fields if f.unique] + list(template.primary_key)
    names = [n for n in dict.fromkeys(spanning) if n in table.column_names]
    if not names:
        return []
    spanned = replace(
        template,
        fields=tuple(replace(f, required=False) for f in template.fields if f.name in names),
    )
    return [e for e in validate(table.select(names), spanned, first_row) if cross_row(e)]


def merged_errors(
    template: Template, cells: Iterable[CellError], cross: Iterable[CellError]
) -> list[CellError]:
    """Every error in the order `validate` gives them over the whole table: by row; in a
    row, a repeated key first, then by field (template order), a field's unique last.

    `cells` are the parts' errors, each part's in order: only the rows with an error across
    rows are sorted field by field; the rest is merged by row number (in C)."""
    spanning = list(cross)
    out = list(cells)
    if not spanning:
        return out
    order: dict[str | None, int] = {None: -1}
    order.update({name: i for i, name in enumerate(template.field_names)})
    touched = {e.row for e in spanning}
    mixed = [e for e in out if e.row in touched] + spanning
    mixed.sort(key=lambda e: (e.row, order[e.field], cross_row(e)))
    out = [e for e in out if e.row not in touched] + mixed
    out.sort(key=operator.itemgetter(0))  # stable: each row's errors keep their order
    return out


def validate_in_parts(
    table: ac.Table, template: Template, first_row: int, starts: Sequence[int]
) -> list[CellError]:
    """`validate(table, template, first_row)` as the engines compute it: each part's rows
    (from `starts`) by one-cell rules, then the rules across rows over the whole table."""
    bounds = [*(min(s, table.num_rows) for s in starts), table.num_rows]
    cells: list[CellError] = []
    for a, b in itertools.pairwise(bounds):
        if b > a:
            cells.extend(part_errors(table.slice(a, b - a), template, first_row + a))
    return merged_errors(template, cells, cross_row_errors(table, template, first_row))


def start_review_in_parts(session: ImportSession, starts: Sequence[int]) -> Review:
    """The session's review, its cells' errors computed part by part (`validate_in_parts`)."""
    sheet = session.sheet
    found = validate_in_parts(
        session.mapped_table(), session.template, sheet.first_data_row, starts
    )
    return session.start_review(found=found)


# --- between engines ----------------------------------------------------------------------------
#
# The engines are workers of one page running this same code: a part's cells travel as an
# Arrow IPC stream (uncompressed: the bytes are handed over, not sent anywhere) in pieces,
# so that neither engine ever holds the whole stream in its memory (a wasm engine's memory
# never shrinks): the sender's worker copies each piece out as it is written, the receiver
# decodes piece by piece. Blank rows and errors are pickled as plain tuples (errors sharing
# one message's params stay shared; a NamedTuple pickles several times slower).

PIECE_BYTES = 1 * MIB
"""Writes to the sending worker are gathered into pieces of at least this (a batch's cells
are one piece)."""


class _Pieces(io.RawIOBase):
    """A stream writing each piece to `put` (the worker copies it out of the engine)."""

    def __init__(self, put: Callable[[memoryview], object]) -> None:
        self._put = put

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self._put(view)
        return view.nbytes


class _Received(io.RawIOBase):
    """A stream of the pieces `read(n)` gives (at most n bytes each; empty at the end)."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._read(size if size >= 0 else 1 << 30)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def to_wire(value: object) -> bytes:
    sink = io.BytesIO()
    _Pickler(sink, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return sink.getvalue()


def from_wire(data: bytes) -> Any:
    return pickle.loads(data)  # noqa: S301 - bytes from another engine of the same page


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: object) -> Any:
        if isinstance(obj, MappingProxyType):  # CellError's empty params
            return dict, (dict(obj),)
        return NotImplemented


def errors_to_wire(errors: Iterable[CellError]) -> bytes:
    return to_wire([tuple(e) for e in errors])


def errors_from_wire(data: bytes) -> list[CellError]:
    return list(map(new_error, from_wire(data)))


def write_cells(table: ac.Table, put: Callable[[memoryview], object]) -> None:
    """A part's cells as an Arrow IPC stream, in pieces handed to `put` as they are written
    (each valid only during the call: copy it)."""
    with io.BufferedWriter(_Pieces(put), PIECE_BYTES) as sink:
        aio.write_ipc_stream(table, sink, compression=None)


def cells_from(read: Callable[[int], bytes]) -> ac.Table:
    """A part's cells from `read(n)`, which gives the next bytes of its `write_cells` stream
    (at most n; empty at the end), piece by piece."""
    return aio.read_ipc_stream(cast(IO[bytes], _Received(read))).read_all()


def awaited_part(rows: int, meta: bytes, width: int) -> Part:
    """A part another engine read (`part_meta(part)`) whose cells it holds yet: its rows as
    null cells (one column for all: a few bytes a row), until the cells come (`with_part`)."""
    zeros = ac.Array.from_buffer(memoryview(bytearray(4 * rows)).cast("i"))
    nulls = acc.take(ac.Array([None], ac.DataType.string()), zeros)
    table = ac.Table.from_arrays([nulls] * width, schema=string_schema(width))
    blank_rows, row_errors, verified, slow = from_wire(meta)
    return Part(table, tuple(blank_rows), tuple(errors_from_wire(row_errors)), verified, slow)


def with_part(table: ac.Table, starts: Sequence[int], part: int, cells: ac.Table) -> ac.Table:
    """`table` (the joined parts, `starts` their first rows) with part `part`'s rows taken
    from `cells` (the part as read: the joined table may end before it does)."""
    start = starts[part]
    end = starts[part + 1] if part + 1 < len(starts) else table.num_rows
    end = min(end, table.num_rows)
    pieces = [
        table.slice(0, start),
        cells.slice(0, end - start),
        table.slice(end, table.num_rows - end),
    ]
    batches = [batch for piece in pieces for batch in piece.to_batches() if batch.num_rows]
    return ac.Table.from_batches(batches, schema=table.schema)


def part_meta(part: Part) -> bytes:
    return to_wire((part.blank_rows, errors_to_wire(part.row_errors), part.verified, part.slow))
