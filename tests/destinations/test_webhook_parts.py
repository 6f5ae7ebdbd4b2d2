"""The webhook destination's rows_per_request: a batch as several signed requests (parts),
each with its own stable webhook-id, and a failing part failing the attempt."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest
from standardwebhooks.webhooks import Webhook

from destinations import DeliveryBatch
from destinations.errors import ConfigurationError, RetryableDeliveryError
from tests.destinations.conftest import Receiver
from tests.destinations.test_webhook import SECRET, _batch, _hook, _make


def _numbered(rows: int, seq: int = 4) -> DeliveryBatch:
    table = pa.table({"n": pa.array(range(rows), pa.int64())})
    sealed = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    return DeliveryBatch("imp_parts", seq, 9, "numbers", table, occurred_at=sealed)


def test_a_batch_is_split_into_signed_requests_of_rows_per_request(receiver: Receiver) -> None:
    result = _hook(receiver, rows_per_request=2).write(_numbered(5))
    assert (result.status_code, result.detail) == (200, "3 requests")
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert ids == ["imp_parts-4-0", "imp_parts-4-1", "imp_parts-4-2"]
    datas = [Webhook(SECRET).verify(r.body, r.headers)["data"] for r in receiver.requests]
    assert [(d["part"], d["part_count"], d["row_count"]) for d in datas] == [
        (0, 3, 2),
        (1, 3, 2),
        (2, 3, 1),
    ]
    assert [row["n"] for d in datas for row in d["rows"]] == [0, 1, 2, 3, 4]
    assert {(d["batch"], d["batch_count"]) for d in datas} == {(4, 9)}


def test_the_default_is_1000_rows_per_request(receiver: Receiver) -> None:
    _hook(receiver).write(_numbered(2500))
    counts = [json.loads(r.body)["data"]["row_count"] for r in receiver.requests]
    assert counts == [1000, 1000, 500]


def test_an_empty_batch_is_one_request(receiver: Receiver) -> None:
    _hook(receiver).write(_numbered(0))
    [request] = receiver.requests
    assert json.loads(request.body)["data"]["rows"] == []


def test_a_failing_part_fails_the_write_and_the_retry_sends_every_part_again(
    receiver: Receiver,
) -> None:
    hook = _hook(receiver, rows_per_request=2)
    receiver.answer(200, 503)
    with pytest.raises(RetryableDeliveryError):
        hook.write(_numbered(5))
    assert [r.headers["webhook-id"] for r in receiver.requests] == [
        "imp_parts-4-0",
        "imp_parts-4-1",
    ]
    hook.write(_numbered(5))
    again = receiver.requests[2:]
    assert [r.headers["webhook-id"] for r in again] == [
        "imp_parts-4-0",
        "imp_parts-4-1",
        "imp_parts-4-2",
    ]
    assert again[0].body == receiver.requests[0].body  # the same body: receivers deduplicate


def test_write_returns_the_last_answer(receiver: Receiver) -> None:
    receiver.answer(202)
    result = _hook(receiver).write(_batch())
    assert (result.status_code, result.answer, result.detail) == (202, None, "1 request")


@pytest.mark.parametrize("size", [0, -1, 10_001])
def test_rows_per_request_out_of_range_is_refused(size: int) -> None:
    with pytest.raises(ConfigurationError, match="between 1 and 10,000"):
        _make({"url": "https://hooks.example/in", "secret": SECRET, "rows_per_request": size})
