"""Arrow IPC stream batches: what travels from the browser to the server.

arro3-io 0.9.1's wasm32 build writes compressed IPC buffers that no reader can open
(the buffer length prefixes are wrong; native builds are fine). So in Pyodide the
stream is written uncompressed and the browser gzips the whole request body
(`CompressionStream`), which the server inflates under a size cap.
"""

from __future__ import annotations

import io
import sys
from typing import Literal

import arro3.core as ac
import arro3.io as aio

BATCH_ROWS = 65_536
Compression = Literal["zstd", "lz4"] | None
IN_PYODIDE = sys.platform == "emscripten"


DEFAULT_COMPRESSION: Compression = None if IN_PYODIDE else "zstd"


def encode_ipc(table: ac.Table, compression: Compression = DEFAULT_COMPRESSION) -> bytes:
    """One IPC stream (schema + record batches); zstd buffers where arro3 writes them right."""
    sink = io.BytesIO()
    aio.write_ipc_stream(table, sink, compression=compression)
    return sink.getvalue()


def batch_ranges(num_rows: int, batch_rows: int = BATCH_ROWS) -> list[tuple[int, int]]:
    """(offset, length) of each batch; an empty table still yields no batches."""
    return [(start, min(batch_rows, num_rows - start)) for start in range(0, num_rows, batch_rows)]
