"""Arrow record batches as PostgreSQL's binary COPY format, built with numpy (no per-row
Python): the server then parses no text at all, which is where a text COPY spends its time
(dates, timestamps, floats).

The format: a signature header, then per row an int16 field count and per field an int32
length (-1 for NULL) and the value in network byte order; an int16 -1 ends the stream.
Dates count days and timestamps microseconds from 2000-01-01. Columns of a type not listed
in `supported` (numeric, for one) make the caller fall back to CSV.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
_PG_EPOCH_DAYS = 10_957  # 2000-01-01 - 1970-01-01
_PG_EPOCH_US = _PG_EPOCH_DAYS * 86_400_000_000


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
    """The rows of one record batch (no header or trailer) in binary COPY format."""
    rows = batch.num_rows
    sizes = np.full(rows, 2, dtype=np.int64)  # the field count
    columns: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
    for column in batch.columns:
        valid = np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        fixed = _fixed(column.type)
        if fixed is not None:
            dtype, values = fixed
            width = np.dtype(dtype).itemsize
            data = np.asarray(
                pc.fill_null(values(column), 0).to_numpy(zero_copy_only=False)
            ).astype(dtype)
            lengths = np.where(valid, width, -1).astype(np.int32)
            columns.append((lengths, data.view(np.uint8).reshape(rows, width), None))
        else:
            text = pc.fill_null(column, "")
            if pa.types.is_large_string(text.type):
                text = text.cast(pa.string())
            offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)
            offsets = offsets[text.offset : text.offset + rows + 1]
            data = np.frombuffer(text.buffers()[2] or b"", dtype=np.uint8)
            lengths = np.where(valid, np.diff(offsets), -1).astype(np.int32)
            columns.append((lengths, data, offsets))
        sizes += 4 + np.maximum(lengths, 0)
    starts = np.zeros(rows, dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    out = np.empty(int(sizes.sum()), dtype=np.uint8)
    _scatter(out, starts, np.full(rows, len(batch.columns), dtype=">i2").view(np.uint8), 2)
    at = starts + 2
    for lengths, data, spans_of in columns:
        _scatter(out, at, lengths.astype(">i4").view(np.uint8), 4)
        at = at + 4
        if spans_of is None:
            keep = lengths >= 0
            width = data.shape[1]
            _scatter(out, at[keep], data[keep].reshape(-1), width)
        else:
            first, last = int(spans_of[0]), int(spans_of[-1])
            spans = np.diff(spans_of).astype(np.int64)
            if last > first:
                where = np.repeat(at - spans_of[:-1], spans) + np.arange(first, last)
                out[where] = data[first:last]
        at = at + np.maximum(lengths, 0)
    return out.tobytes()


def _scatter(out: np.ndarray, starts: np.ndarray, flat: np.ndarray, width: int) -> None:
    """out[starts[i] : starts[i] + width] = flat[i * width : (i + 1) * width], for every i."""
    if len(starts) == 0:
        return
    out[(starts[:, None] + np.arange(width)).reshape(-1)] = flat
