"""Arrow IPC batches: round trip, zstd compression, and how rows are split."""

from __future__ import annotations

import datetime as dt
import io

import arro3.core as ac
import arro3.io as aio
import pyarrow as pa
import pytest

from pipeline.batches import BATCH_ROWS, IN_PYODIDE, batch_ranges, encode_ipc

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def decode_ipc(data: bytes) -> pa.Table:
    """A batch as the server reads it (pyarrow)."""
    return pa.ipc.open_stream(data).read_all()


def string_table(**columns: list[str | None]) -> ac.Table:
    schema = ac.Schema([ac.Field(n, ac.DataType.string(), True) for n in columns])
    arrays = [ac.Array(v, ac.DataType.string()) for v in columns.values()]
    return ac.Table.from_arrays(arrays, schema=schema)


def test_round_trip_keeps_names_types_and_values() -> None:
    typed = pa.table(
        {
            "name": pa.array(["Ada", None, "Zoé"], pa.string()),
            "age": pa.array([36, None, -1], pa.int64()),
            "score": pa.array([1.5, 2.0, None], pa.float64()),
            "ok": pa.array([True, False, None], pa.bool_()),
            "day": pa.array([dt.date(2024, 2, 29), None, dt.date(1, 1, 1)], pa.date32()),
            "at": pa.array(
                [dt.datetime(2024, 1, 2, 10, tzinfo=dt.UTC), None, None],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )
    data = encode_ipc(ac.Table.from_arrow(typed))
    assert isinstance(data, bytes)

    assert decode_ipc(data).equals(typed)  # the server reads these bytes with pyarrow


def test_empty_table_round_trips() -> None:
    table = string_table(a=[])
    back = decode_ipc(encode_ipc(table))
    assert back.column_names == ["a"]
    assert back.num_rows == 0


def test_uncompressed_when_asked() -> None:
    """What Pyodide writes (arro3's wasm32 compressed IPC is unreadable); pyarrow reads it."""
    table = string_table(city=["Amsterdam"] * 1_000)
    data = encode_ipc(table, compression=None)
    assert data.count(b"Amsterdam") == 1_000
    assert pa.ipc.open_stream(data).read_all().column("city").to_pylist() == ["Amsterdam"] * 1_000


def test_buffers_are_zstd_compressed_natively() -> None:
    assert IN_PYODIDE is False
    table = string_table(city=["Amsterdam"] * 20_000)
    data = encode_ipc(table)

    plain = io.BytesIO()
    aio.write_ipc_stream(table, plain, compression=None)
    raw_size = len(plain.getvalue())
    assert raw_size > 250_000
    assert len(data) < raw_size / 4  # the offsets compress less well than the text

    messages = list(pa.ipc.MessageReader.open_stream(pa.py_buffer(data)))
    assert [m.type for m in messages] == ["schema", "record batch"]
    body = messages[1].body.to_pybytes()
    # Each compressed buffer: its uncompressed length (int64), then a zstd frame.
    starts = [i for i in range(8, len(body) - 3) if body[i : i + 4] == ZSTD_MAGIC]
    lengths = [int.from_bytes(body[i - 8 : i], "little") for i in starts]
    assert lengths == [
        20_000 // 8,
        20_001 * 4,
        20_000 * len("Amsterdam"),
    ]  # validity, offsets, text
    assert pa.ipc.open_stream(data).read_all().column("city").to_pylist() == ["Amsterdam"] * 20_000


@pytest.mark.parametrize(
    ("num_rows", "batch_rows", "expected"),
    [
        (0, 10, []),
        (1, 10, [(0, 1)]),
        (9, 10, [(0, 9)]),
        (10, 10, [(0, 10)]),
        (11, 10, [(0, 10), (10, 1)]),
        (30, 10, [(0, 10), (10, 10), (20, 10)]),
        (25, 10, [(0, 10), (10, 10), (20, 5)]),
        (3, 1, [(0, 1), (1, 1), (2, 1)]),
        (BATCH_ROWS, BATCH_ROWS, [(0, BATCH_ROWS)]),
        (
            2 * BATCH_ROWS + 1,
            BATCH_ROWS,
            [(0, BATCH_ROWS), (BATCH_ROWS, BATCH_ROWS), (2 * BATCH_ROWS, 1)],
        ),
    ],
)
def test_batch_ranges(num_rows: int, batch_rows: int, expected: list[tuple[int, int]]) -> None:
    assert batch_ranges(num_rows, batch_rows) == expected


def test_batch_ranges_default_size() -> None:
    assert BATCH_ROWS == 65_536
    assert batch_ranges(100_000) == [(0, 65_536), (65_536, 34_464)]
