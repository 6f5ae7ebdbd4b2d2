"""Arrow and PostgreSQL: the type a created table gives each column (`pg_type`), and record
batches as PostgreSQL's binary COPY format, built with numpy and Arrow
kernels (no per-row Python): the server then parses no text at all, which is where a text
COPY spends its time (dates, timestamps, floats).

The format: a signature header, then per row an int16 field count and per field an int32
length (-1 for NULL) and the value in network byte order; an int16 -1 ends the stream.
Dates count days and timestamps microseconds from 2000-01-01. Columns of a type not listed
in `supported` (numeric, for one) make the caller fall back to CSV.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from destinations.errors import FatalDeliveryError

_TYPES: tuple[tuple[Any, str], ...] = (
    (pa.types.is_string, "text"),
    (pa.types.is_large_string, "text"),
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_int16, "smallint"),
    (pa.types.is_int32, "integer"),
    (pa.types.is_int64, "bigint"),
    (pa.types.is_float32, "real"),
    (pa.types.is_float64, "double precision"),
    (pa.types.is_date32, "date"),
    (pa.types.is_time64, "time"),
    (pa.types.is_decimal, "numeric"),
)
HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
_PG_EPOCH_DAYS = 10_957  # 2000-01-01 - 1970-01-01
_PG_EPOCH_US = _PG_EPOCH_DAYS * 86_400_000_000


def pg_type(arrow: pa.DataType) -> str:
    """The PostgreSQL type a created table gives a column of this Arrow type."""
    if pa.types.is_timestamp(arrow):
        return "timestamptz" if arrow.tz is not None else "timestamp"
    for test, name in _TYPES:
        if test(arrow):
            return name
    raise FatalDeliveryError(f"A column of type {arrow} has no PostgreSQL type here.")


def columns(table: pa.Table) -> list[tuple[str, str]]:
    out = []
    for column in table.schema:
        try:
            out.append((column.name, pg_type(column.type)))
        except FatalDeliveryError:
            raise FatalDeliveryError(
                f'Column "{column.name}" is of type {column.type}, which has no PostgreSQL '
                "type here."
            ) from None
    return out


def _fixed(arrow: pa.DataType) -> tuple[str, Callable[[pa.Array], pa.Array]] | None:
    """The big-endian numpy type of a fixed-width column and how to get its values."""
    if pa.types.is_boolean(arrow):
        return ">u1", lambda a: a.cast(pa.uint8())
    if pa.types.is_int16(arrow):
        return ">i2", lambda a: a
    if pa.types.is_int32(arrow):
        return ">i4", lambda a: a
    if pa.types.is_int64(arrow):
        return ">i8", lambda a: a
    if pa.types.is_float32(arrow):
        return ">f4", lambda a: a
    if pa.types.is_float64(arrow):
        return ">f8", lambda a: a
    if pa.types.is_date32(arrow):
        return ">i4", lambda a: pc.subtract(a.cast(pa.int32()), _PG_EPOCH_DAYS)
    if pa.types.is_timestamp(arrow):
        return ">i8", lambda a: pc.subtract(
            a.cast(pa.timestamp("us", tz=arrow.tz)).cast(pa.int64()), _PG_EPOCH_US
        )
    if pa.types.is_time64(arrow):
        return ">i8", lambda a: a.cast(pa.time64("us")).cast(pa.int64())
    return None


def supported(schema: pa.Schema) -> bool:
    return all(
        pa.types.is_string(f.type) or pa.types.is_large_string(f.type) or _fixed(f.type)
        for f in schema
    )


def encode(batch: pa.RecordBatch) -> bytes:
    """The rows of one record batch (no header or trailer) in binary COPY format.

    Each column becomes one binary array of per-row fields (length + value, or -1), built
    with numpy and Arrow kernels, and Arrow joins the fields of each row; no Python runs
    per row or per value."""
    rows = batch.num_rows
    count = np.full(rows, batch.num_columns, dtype=">i2")
    fields = [_binary(count.view(np.uint8).reshape(rows, 2))]
    for column in batch.columns:
        valid = column.is_valid()
        fixed = _fixed(column.type)
        if fixed is not None:
            dtype, values = fixed
            width = np.dtype(dtype).itemsize
            data = np.asarray(pc.fill_null(values(column), 0).to_numpy(zero_copy_only=False))
            field = np.empty((rows, 4 + width), dtype=np.uint8)
            field[:, :4] = np.frombuffer(np.array([width], dtype=">i4").tobytes(), np.uint8)
            field[:, 4:] = data.astype(dtype).view(np.uint8).reshape(rows, width)
            value = _binary(field)
        else:
            text = pc.fill_null(column, "").cast(pa.binary())
            lengths = np.asarray(pc.binary_length(text).to_numpy(zero_copy_only=False))
            prefix = lengths.astype(">i4").view(np.uint8).reshape(rows, 4)
            value = pc.binary_join_element_wise(_binary(prefix), text, b"")
        fields.append(pc.if_else(valid, value, _NULL))
    joined = pc.binary_join_element_wise(*fields, b"")
    if isinstance(joined, pa.ChunkedArray):
        joined = joined.combine_chunks()
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32)
    first, last = int(offsets[joined.offset]), int(offsets[joined.offset + rows])
    return bytes(memoryview(joined.buffers()[2])[first:last]) if rows else b""


_NULL = pa.scalar(b"\xff\xff\xff\xff", pa.binary())


def _binary(matrix: np.ndarray) -> pa.Array:
    """A (rows, width) uint8 matrix as a binary array of its rows."""
    rows, width = matrix.shape
    buffer = pa.py_buffer(np.ascontiguousarray(matrix))
    return pa.Array.from_buffers(pa.binary(width), rows, [None, buffer]).cast(pa.binary())
