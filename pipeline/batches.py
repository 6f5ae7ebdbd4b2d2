"""Arrow IPC stream batches: what travels from the browser to the server."""

from __future__ import annotations

import io
from typing import Final

import arro3.core as ac
import arro3.io as aio

BATCH_ROWS = 65_536
COMPRESSION: Final = "zstd"


def encode_ipc(table: ac.Table) -> bytes:
    """One IPC stream (schema + record batches), zstd-compressed buffers."""
    sink = io.BytesIO()
    aio.write_ipc_stream(table, sink, compression=COMPRESSION)
    return sink.getvalue()


def decode_ipc(data: bytes) -> ac.Table:
    return aio.read_ipc_stream(io.BytesIO(data)).read_all()


def batch_ranges(num_rows: int, batch_rows: int = BATCH_ROWS) -> list[tuple[int, int]]:
    """(offset, length) of each batch; an empty table still yields no batches."""
    return [(start, min(batch_rows, num_rows - start)) for start in range(0, num_rows, batch_rows)]
