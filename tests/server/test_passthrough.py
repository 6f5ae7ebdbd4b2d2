"""No-store passthrough (retention 0): rows reach the destination and nothing else.

The import's data key and sealed batches live in a Redis of the test's own (AOF on); after
delivery neither the data directory, the SQLite file, Redis (live keys, AOF, RDB, slow
log) nor any log line holds a cell value. A window that closes before delivery fails the
deliveries and tells the end user (status) and the client (an event).
"""

from __future__ import annotations

import copy
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis
from rq import SimpleWorker
from sqlalchemy import func, select

from server import db, deliveries, events, imports, jobs, passthrough, uploads
from server.deliveries import DeliveryStatus
from server.errors import Gone
from server.runtime import Runtime
from tests.conftest import CONTACTS_SCHEMA
from tests.server.test_faults import RedisProcess, own_redis  # noqa: F401 - fixture

if TYPE_CHECKING:
    from tests.conftest import BatchFactory, DemoOrgFactory, OrgSetup, Receiver, RuntimeFactory

pytestmark = pytest.mark.parametrize("store", ["sqlite"])

# Values nothing but this test could put anywhere: each is looked for, as bytes, everywhere.
DISTINCTIVE = (
    "Quillon Vexmarrow",
    "Oriel Thandrewick",
    "quillon.vexmarrow.7c1f@example.org",
    "oriel.thandrewick.93ab@example.org",
    "+44 7700 918273",
)
CSV = (
    "Full name,Email,Phone,Country\n"
    f"{DISTINCTIVE[0]},{DISTINCTIVE[2]},{DISTINCTIVE[4]},GB\n"
    f"{DISTINCTIVE[1]},{DISTINCTIVE[3]},,FR\n"
)


def passthrough_schema() -> dict[str, Any]:
    schema = copy.deepcopy(CONTACTS_SCHEMA)
    schema["x-loadbay"] = {"retentionDays": 0}
    schema["fields"][1]["constraints"]["unique"] = True  # unique digests exist mid-import
    return schema


@pytest.fixture
def rt(runtime_factory: RuntimeFactory, own_redis: RedisProcess) -> Runtime:  # noqa: F811
    return runtime_factory(redis_url=own_redis.url)


def _submitted(
    rt: Runtime, setup: OrgSetup, batch_factory: BatchFactory
) -> tuple[imports.CreatedImport, list[int]]:
    created = imports.create_import(rt, setup.org, setup.template.id, "people.csv")
    body = batch_factory(CSV, passthrough_schema())
    assert uploads.receive_batch(rt, created.import_id, created.upload_token, 0, 2, body) == 2
    ids = imports.submit(rt, created.import_id, created.upload_token, 1, 2)
    return created, ids


def _live_keys(client: redis.Redis) -> dict[bytes, bytes]:
    """Every live key and its DUMP (the value as Redis serialises it)."""
    dumped: dict[bytes, bytes] = {}
    for name in client.scan_iter(count=1000):
        value = client.dump(name)
        if value is not None:
            dumped[name] = bytes(value)  # type: ignore[arg-type]
    return dumped


def _files_under(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _holding(blobs: dict[Any, bytes]) -> dict[str, list[str]]:
    """Which distinctive values appear in which of the named byte strings."""
    found: dict[str, list[str]] = {}
    for where, data in blobs.items():
        for value in DISTINCTIVE:
            if value.encode() in data:
                found.setdefault(value, []).append(str(where))
    return found


def _rewrite_and_save(client: redis.Redis) -> None:
    """BGREWRITEAOF (the AOF then holds only live keys) and SAVE (an RDB of them)."""
    client.bgrewriteaof()
    while True:
        info = client.info("persistence")
        if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            break
        time.sleep(0.05)
    client.save()


def test_a_passthrough_import_leaves_no_value_anywhere(
    rt: Runtime,
    own_redis: RedisProcess,  # noqa: F811
    demo_org: DemoOrgFactory,
    batch_factory: BatchFactory,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert set(_holding({"the upload": CSV.encode()})) == set(DISTINCTIVE)  # the probe works
    caplog.set_level(logging.DEBUG)  # every logger, every level
    client = own_redis.client()
    client.config_set("slowlog-log-slower-than", 0)  # the slow log records every command
    client.config_set("slowlog-max-len", 100_000)  # and keeps them all
    setup = demo_org(rt, schema=passthrough_schema(), webhook_urls=[receiver.url])
    created, [delivery_id] = _submitted(rt, setup, batch_factory)

    # In transit: Redis holds the batch and its key, sealed; the database holds no digest.
    with rt.sessions() as session:
        imp = session.get(db.Import, created.import_id)
        assert imp is not None and imp.retention_days == 0 and imp.wrapped_data_key is None
        [batch] = session.scalars(select(db.Batch).where(db.Batch.import_id == imp.id))
        assert (batch.row_count, batch.digest) == (2, "")
        assert batch.blob_key.startswith(f"loadbay:{rt.settings.queue_name}:passthrough:")
        seconds = (imp.expires_at - imp.created_at).total_seconds()
        assert seconds == rt.settings.passthrough_ttl == 3600
    in_transit = _live_keys(client)
    held = sorted(k.rsplit(b":", 1)[1].split(b".")[0] for k in in_transit if b":passthrough:" in k)
    assert held == [b"0", b"key", b"seen"]  # a sealed batch, the wrapped key, unique digests
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(db.UniqueValue)) == 0
    assert all(0 < int(client.ttl(k)) <= 3600 for k in in_transit if b":passthrough:" in k)
    assert _holding(in_transit) == {}
    assert _holding(_files_under(own_redis.directory)) == {}  # the AOF so far
    assert not list(rt.settings.blob_dir.rglob("*.sealed"))  # the blob store is never used

    assert deliveries.enqueue_all(rt, [delivery_id]) == 1
    jobs.use_runtime(rt)
    try:
        SimpleWorker(rt.queue.worker_queues, connection=rt.queue.connection).work(burst=True)
    finally:
        jobs._runtime.cache_clear()

    # Delivered: the receiver has every value, so the values did travel.
    [request] = receiver.requests
    rows = json.loads(request.body)["data"]["rows"]
    assert [r["full_name"] for r in rows] == [DISTINCTIVE[0], DISTINCTIVE[1]]
    assert [r["email"] for r in rows] == [DISTINCTIVE[2], DISTINCTIVE[3]]
    state = imports.status(rt, created.import_id, created.upload_token)
    assert (state.status, state.rows, state.deliveries["delivered"]) == ("delivered", 2, 1)
    with rt.sessions() as session:
        delivery = session.get(db.Delivery, delivery_id)
        assert delivery is not None and delivery.status == DeliveryStatus.DELIVERED
        assert session.scalar(select(func.count()).select_from(db.UniqueValue)) == 0

    # Afterwards, nowhere: Redis's live keys, its AOF and RDB, its slow log, the data
    # directory (SQLite file, blob store, master key), the database file itself, the logs.
    live = _live_keys(client)
    assert [k for k in live if b":passthrough:" in k] == []
    _rewrite_and_save(client)
    redis_files = _files_under(own_redis.directory)
    assert any(p.suffix == ".rdb" for p in redis_files)
    assert any("appendonly" in p.name for p in redis_files)
    slowlog = {
        i: b" ".join(arg if isinstance(arg, bytes) else str(arg).encode() for arg in e["command"])
        if isinstance(e["command"], list)
        else bytes(e["command"])
        for i, e in enumerate(client.slowlog_get(10_000))
    }
    assert len(slowlog) > 10
    assert any(b"HSET" in c.upper() and b":passthrough:" in c for c in slowlog.values())
    database_file = Path(rt.settings.database_url.removeprefix("sqlite:///"))
    logged = {
        i: f"{r.getMessage()} {r.exc_text or ''}".encode() for i, r in enumerate(caplog.records)
    }
    assert any(b"delivered batch 0" in line for line in logged.values())
    assert _holding(live) == {}
    assert _holding(redis_files) == {}
    assert _holding(slowlog) == {}
    assert _holding(_files_under(rt.settings.data_dir)) == {}
    assert _holding({database_file: database_file.read_bytes()}) == {}
    assert _holding(logged) == {}


def test_a_window_that_closes_before_delivery_fails_it_and_says_so(
    rt: Runtime,
    own_redis: RedisProcess,  # noqa: F811
    demo_org: DemoOrgFactory,
    batch_factory: BatchFactory,
    receiver: Receiver,
) -> None:
    setup = demo_org(rt, schema=passthrough_schema(), webhook_urls=[receiver.url])
    created, [delivery_id] = _submitted(rt, setup, batch_factory)
    client = own_redis.client()
    held = [k for k in client.scan_iter(match="*:passthrough:*")]
    assert len(held) == 3
    # The window closes: Redis expires the keys itself (a TTL of 1 ms), and the import's
    # recorded end passes.
    for name in held:
        client.pexpire(name, 1)
    with rt.sessions.begin() as session:
        imp = session.get(db.Import, created.import_id)
        assert imp is not None
        imp.expires_at = db.utcnow()
        closed = imp.expires_at
    while client.exists(*held):
        time.sleep(0.01)

    # A retry after the window cannot send anything: the attempt fails, for good.
    assert deliveries.enqueue_all(rt, [delivery_id]) == 1
    jobs.use_runtime(rt)
    try:
        SimpleWorker(rt.queue.worker_queues, connection=rt.queue.connection).work(burst=True)
        assert receiver.requests == []
        with rt.sessions() as session:
            delivery = session.get(db.Delivery, delivery_id)
            assert delivery is not None and delivery.status == DeliveryStatus.FAILED
            assert delivery.last_error == (
                f"Batch 0 of import {created.import_id} is no longer held. "
                + passthrough.undelivered_message(rt)
            )
        assert "1 h passthrough window" in passthrough.undelivered_message(rt)

        # The minute's sweep closes the import: the end user's status and the client's
        # event say what happened.
        assert jobs.sweep()["passthrough_expired"] == 1
        assert jobs.sweep()["passthrough_expired"] == 0
    finally:
        jobs._runtime.cache_clear()
    state = imports.status(rt, created.import_id, created.upload_token)
    assert state.status == "expired" and state.to_dict()["final"] is True
    gone = state.to_dict()["dataGone"]
    assert gone["reason"] == "passthrough-window"
    assert "passthrough window closed" in gone["message"]
    assert [e.detail for e in events.list_for(rt, setup.org.id)] == [
        {"rows": 2, "batches": 1},  # import.submitted
        {
            "reason": "passthrough-window",
            "rows": 2,
            "batches": 1,
            "undelivered": 1,
            "failed_now": 0,
        },
    ]
    with rt.sessions() as session:
        submitted, event = session.scalars(
            select(db.Event).where(db.Event.import_id == created.import_id).order_by(db.Event.id)
        )
        assert submitted.kind == events.IMPORT_SUBMITTED
        assert (event.kind, event.actor) == (events.IMPORT_EXPIRED, "passthrough")
    assert abs((closed - dt_of(gone["at"])).total_seconds()) < 5


def dt_of(text: str) -> Any:
    import datetime as dt

    return dt.datetime.fromisoformat(text)


def test_pending_deliveries_fail_with_the_reason_when_the_window_closes(
    rt: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory, receiver: Receiver
) -> None:
    setup = demo_org(rt, schema=passthrough_schema(), webhook_urls=[receiver.url])
    created, [delivery_id] = _submitted(rt, setup, batch_factory)  # never enqueued
    with rt.sessions.begin() as session:
        imp = session.get(db.Import, created.import_id)
        assert imp is not None
        imp.expires_at = db.utcnow()
    assert passthrough.expire_overdue(rt) == [created.import_id]
    with rt.sessions() as session:
        delivery = session.get(db.Delivery, delivery_id)
        assert delivery is not None and delivery.status == DeliveryStatus.FAILED
        assert delivery.last_error == passthrough.undelivered_message(rt)
    assert rt.queue.connection.keys("*:passthrough:*") == []
    assert imports.status(rt, created.import_id, created.upload_token).status == "expired"


def test_an_upload_after_the_window_is_gone_with_the_date(
    rt: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory
) -> None:
    setup = demo_org(rt, schema=passthrough_schema(), webhook_urls=["https://127.0.0.1:9/in"])
    created = imports.create_import(rt, setup.org, setup.template.id, "people.csv")
    with rt.sessions.begin() as session:
        imp = session.get(db.Import, created.import_id)
        assert imp is not None
        imp.expires_at = db.utcnow()
        closed = imp.expires_at
    body = batch_factory(CSV, passthrough_schema())
    with pytest.raises(Gone) as raised:
        uploads.receive_batch(rt, created.import_id, created.upload_token, 0, 2, body)
    assert raised.value.details["reason"] == "passthrough-window"
    assert raised.value.details["at"] == closed.isoformat()
    assert closed.strftime("%Y-%m-%d at %H:%M UTC") in raised.value.message
    with pytest.raises(Gone):
        imports.submit(rt, created.import_id, created.upload_token, 0, 0)
    state = imports.status(rt, created.import_id, created.upload_token)
    assert state.status == "expired" and state.gone is not None


def test_a_batch_is_deleted_once_every_destination_has_it(
    rt: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory, receiver: Receiver
) -> None:
    setup = demo_org(rt, schema=passthrough_schema(), webhook_urls=[receiver.url, receiver.url])
    created = imports.create_import(rt, setup.org, setup.template.id, "people.csv")
    for seq, offset in ((0, 0), (1, 1)):
        body = batch_factory(CSV, passthrough_schema(), offset=offset, length=1)
        uploads.receive_batch(rt, created.import_id, created.upload_token, seq, 2 + offset, body)
    ids = imports.submit(rt, created.import_id, created.upload_token, 2, 2)
    assert len(ids) == 4

    def held() -> int:
        return len(rt.queue.connection.keys("*:passthrough:*"))

    with rt.sessions() as session:
        order = list(
            session.execute(
                select(db.Delivery.id, db.Delivery.seq).order_by(db.Delivery.seq, db.Delivery.id)
            )
        )
    assert held() == 4  # the key, two batches and the unique digests
    assert deliveries.deliver(rt, order[0].id) == "delivered"
    assert held() == 4  # batch 0 still waits for its second destination
    assert deliveries.deliver(rt, order[1].id) == "delivered"
    assert held() == 3
    assert deliveries.deliver(rt, order[2].id) == "delivered"
    assert deliveries.deliver(rt, order[3].id) == "delivered"
    assert held() == 0  # every batch delivered: the data key went too
    assert len(receiver.requests) == 4
    state = imports.status(rt, created.import_id, created.upload_token)
    assert state.status == "delivered" and state.gone is None


def test_a_re_sent_batch_is_recognised_from_its_digest_in_redis(
    rt: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory
) -> None:
    setup = demo_org(rt, schema=passthrough_schema(), webhook_urls=["https://127.0.0.1:9/in"])
    created = imports.create_import(rt, setup.org, setup.template.id, "people.csv")
    body = batch_factory(CSV, passthrough_schema())
    other = batch_factory(CSV, passthrough_schema(), length=1)
    assert uploads.receive_batch(rt, created.import_id, created.upload_token, 0, 2, body) == 2
    assert uploads.receive_batch(rt, created.import_id, created.upload_token, 0, 2, body) == 2
    from server.errors import Conflict

    with pytest.raises(Conflict, match="different content"):
        uploads.receive_batch(rt, created.import_id, created.upload_token, 0, 2, other)
    assert len(rt.queue.connection.keys("*:passthrough:*")) == 3


def test_submitted_without_destinations_nothing_waits_in_redis(
    rt: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory
) -> None:
    setup = demo_org(rt, schema=passthrough_schema())
    created, ids = _submitted(rt, setup, batch_factory)
    assert ids == []
    assert rt.queue.connection.keys("*:passthrough:*") == []
    assert imports.status(rt, created.import_id, created.upload_token).status == "complete"


def test_deleting_a_passthrough_import_in_flight_empties_redis_at_once(
    rt: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory
) -> None:
    from server import retention

    setup = demo_org(rt, schema=passthrough_schema(), webhook_urls=["https://127.0.0.1:9/in"])
    created, [delivery_id] = _submitted(rt, setup, batch_factory)
    assert len(rt.queue.connection.keys("*:passthrough:*")) == 3
    assert retention.delete_import_data(rt, created.import_id) is True
    assert retention.delete_import_data(rt, created.import_id) is False
    assert rt.queue.connection.keys("*:passthrough:*") == []
    state = imports.status(rt, created.import_id, created.upload_token)
    assert state.status == "deleted" and state.gone is not None
    assert state.gone.reason == "deleted"
    with rt.sessions() as session:
        delivery = session.get(db.Delivery, delivery_id)
        assert delivery is not None and delivery.status == DeliveryStatus.FAILED


def test_unique_values_are_checked_across_batches_through_redis(
    rt: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory
) -> None:
    from server.errors import Invalid

    setup = demo_org(rt, schema=passthrough_schema(), webhook_urls=["https://127.0.0.1:9/in"])
    created = imports.create_import(rt, setup.org, setup.template.id, "people.csv")
    first = batch_factory(CSV, passthrough_schema(), length=1)
    assert uploads.receive_batch(rt, created.import_id, created.upload_token, 0, 2, first) == 1
    again = f"Full name,Email\nSomeone Else,{DISTINCTIVE[2]}\n"
    with pytest.raises(Invalid) as raised:
        uploads.receive_batch(
            rt, created.import_id, created.upload_token, 1, 3, batch_factory(again)
        )
    [error] = raised.value.details
    assert (error["row"], error["field"], error["code"]) == (3, "email", "unique-error")
    assert "row 2" in error["message"]
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(db.UniqueValue)) == 0
    # The refused batch added nothing: a corrected one passes.
    fixed = batch_factory(f"Full name,Email\nSomeone Else,{DISTINCTIVE[3]}\n")
    assert uploads.receive_batch(rt, created.import_id, created.upload_token, 1, 3, fixed) == 1


def test_a_value_recorded_by_a_concurrent_batch_is_a_conflict_and_takes_nothing(
    rt: Runtime, demo_org: DemoOrgFactory
) -> None:
    setup = demo_org(rt, schema=passthrough_schema())
    created = imports.create_import(rt, setup.org, setup.template.id, "people.csv")
    with rt.sessions() as session:
        imp = session.get(db.Import, created.import_id)
    assert imp is not None
    assert passthrough.record_seen(rt, imp, {b"a" * 16: 2}) == [b"a" * 16]
    from server.errors import Conflict

    with pytest.raises(Conflict, match="send it again"):
        passthrough.record_seen(rt, imp, {b"b" * 16: 3, b"a" * 16: 4})
    assert passthrough.seen_rows(rt, imp, [b"a" * 16, b"b" * 16]) == {b"a" * 16: 2}


def test_a_failed_delivery_is_retried_within_the_window(
    rt: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory, receiver: Receiver
) -> None:
    setup = demo_org(rt, schema=passthrough_schema(), webhook_urls=[receiver.url])
    created, [delivery_id] = _submitted(rt, setup, batch_factory)
    receiver.answer(400)  # refused for good: failed at once
    assert deliveries.deliver(rt, delivery_id) == "failed"
    assert len(rt.queue.connection.keys("*:passthrough:*")) == 3  # kept for a retry
    deliveries.retry(rt, delivery_id)
    assert deliveries.deliver(rt, delivery_id) == "delivered"
    assert len(receiver.requests) == 2
    assert rt.queue.connection.keys("*:passthrough:*") == []
    assert imports.status(rt, created.import_id, created.upload_token).status == "delivered"
