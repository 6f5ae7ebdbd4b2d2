"""Webhook rows written by polars hold what `json.dumps(table.to_pylist())` held."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyarrow as pa
import pytest

from destinations.base import DeliveryBatch
from destinations.rows import rows_json
from destinations.webhook import _body

UTC = dt.UTC


def _python(table: pa.Table) -> Any:
    def value(v: object) -> str:
        assert isinstance(v, dt.date | dt.datetime | dt.time)
        return v.isoformat()

    return json.loads(json.dumps(table.to_pylist(), default=value, allow_nan=False))


def _every_type() -> pa.Table:
    """One column per type a template field is delivered as (pipeline.types.arrow_type)."""
    return pa.table(
        {
            "text": pa.array(['a"b\\', "\n\t\x00\x7f", "é中😀\u2028", "", None]),
            "integer": pa.array([2**63 - 1, -(2**63), 0, None, 7], pa.int64()),
            "number": pa.array([0.1 + 0.2, 1e-05, 1e16, -0.0, None], pa.float64()),
            "boolean": pa.array([True, False, None, True, False]),
            "date": pa.array(
                [
                    dt.date(1, 1, 1),
                    dt.date(9999, 12, 31),
                    None,
                    dt.date(2024, 2, 29),
                    dt.date(1969, 12, 31),
                ]
            ),  # fmt: skip
            "datetime": pa.array(
                [
                    dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
                    dt.datetime(2024, 1, 2, 3, 4, 5, 123, tzinfo=UTC),
                    None,
                    dt.datetime(1, 1, 1, tzinfo=UTC),
                    dt.datetime(2038, 1, 19, tzinfo=UTC),
                ],
                pa.timestamp("us", tz="UTC"),
            ),  # fmt: skip
            "time": pa.array(
                [
                    dt.time(0, 0),
                    dt.time(23, 59, 59, 999999),
                    None,
                    dt.time(12, 30),
                    dt.time(1, 2, 3),
                ],
                pa.time64("us"),
            ),  # fmt: skip
            "year": pa.array([1, 2024, None, 9999, 0], pa.int32()),
        }
    )


def test_every_delivered_type_holds_the_same_values() -> None:
    table = _every_type()
    written = rows_json(table)
    assert written is not None
    assert json.loads(written) == _python(table)
    assert list(json.loads(written)[0]) == table.column_names  # columns in template order


def test_the_webhook_body_is_the_same_document() -> None:
    table = _every_type()
    batch = DeliveryBatch("imp_1", 3, 9, "contacts", table, dt.datetime(2026, 1, 1, tzinfo=UTC))
    assert json.loads(_body(batch, 0, 1, table)) == {
        "type": "import.batch",
        "timestamp": "2026-01-01T00:00:00+00:00",
        "data": {
            "import_id": "imp_1",
            "template": "contacts",
            "batch": 3,
            "batch_count": 9,
            "part": 0,
            "part_count": 1,
            "row_count": 5,
            "left_out": 0,
            "rows": _python(table),
        },
    }


@pytest.mark.parametrize(
    "column",
    [
        pa.array([1.0, float("nan")]),
        pa.array([float("inf"), 1.0]),
        pa.array([-(10**6), 0], pa.date32()),  # before year 1: Python has no such date
        pa.array([b"\x00"], pa.binary()),
    ],
)
def test_what_it_cannot_promise_is_left_to_the_python_path(column: pa.Array) -> None:
    assert rows_json(pa.table({"c": column})) is None


def test_an_empty_batch_is_an_empty_list() -> None:
    assert rows_json(pa.table({"c": pa.array([], pa.string())})) == "[]"
