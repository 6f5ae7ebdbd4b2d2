"""Delivery records: the atomic claim, enqueuing once, the job boundary and the sweeper."""

from __future__ import annotations

import datetime as dt
import threading
from typing import TYPE_CHECKING

import pytest
from rq import SimpleWorker
from rq.job import Job, JobStatus
from sqlalchemy import delete, update

from server import db, deliveries, imports, jobs, sweeper, uploads
from server.deliveries import DeliveryStatus
from server.runtime import Runtime
from tests.server.test_faults import (  # noqa: F401 - fixtures used by the process test
    Setup,
    delivery,
    own_redis,
    setup,
)

if TYPE_CHECKING:
    from tests.conftest import BatchFactory, DemoOrgFactory, Receiver, RuntimeFactory

CSV = "Full name,Email\nAda Lovelace,ada@example.com\nGrace Hopper,grace@example.com\n"


@pytest.fixture
def one_delivery(
    runtime_factory: RuntimeFactory,
    demo_org: DemoOrgFactory,
    batch_factory: BatchFactory,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Runtime, int]:
    rt = runtime_factory(allow_private_networks=("127.0.0.0/8",))
    monkeypatch.setattr(jobs, "_runtime", lambda: rt)
    org = demo_org(rt, webhook_urls=[receiver.url])
    created = imports.create_import(rt, org.org, org.template.id, "contacts.csv")
    body = batch_factory(CSV, compression=None)
    uploads.receive_batch(rt, created.import_id, created.upload_token, 0, 2, body)
    [delivery_id] = imports.submit(rt, created.import_id, created.upload_token, 1, 2)
    return rt, delivery_id


def _set(rt: Runtime, delivery_id: int, **values: object) -> None:
    with rt.sessions.begin() as session:
        session.execute(update(db.Delivery).where(db.Delivery.id == delivery_id).values(**values))


def test_the_status_enum_is_what_the_database_holds() -> None:
    assert [s.value for s in DeliveryStatus] == ["pending", "sending", "delivered", "failed"]
    assert isinstance(DeliveryStatus.PENDING, str)  # compares equal to what rows hold


def test_a_claim_is_taken_once(one_delivery: tuple[Runtime, int]) -> None:
    rt, delivery_id = one_delivery
    assert deliveries.claim(rt, delivery_id) == 1
    assert deliveries.claim(rt, delivery_id) is None  # sending: nobody else may
    row = delivery(rt, delivery_id)
    assert (row.status, row.attempts) == (DeliveryStatus.SENDING, 1)
    assert row.claimed_at is not None


def test_concurrent_claims_let_one_through(one_delivery: tuple[Runtime, int]) -> None:
    rt, delivery_id = one_delivery
    results: list[int | None] = []
    barrier = threading.Barrier(8)

    def race() -> None:
        barrier.wait()
        results.append(deliveries.claim(rt, delivery_id))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results, key=lambda r: r or 0) == [None] * 7 + [1]
    assert delivery(rt, delivery_id).attempts == 1


def test_a_delivery_not_yet_due_is_not_claimed(one_delivery: tuple[Runtime, int]) -> None:
    rt, delivery_id = one_delivery
    _set(rt, delivery_id, next_attempt_at=db.utcnow() + dt.timedelta(minutes=5))
    assert deliveries.claim(rt, delivery_id) is None
    assert jobs.deliver(delivery_id) == "skipped"
    assert delivery(rt, delivery_id).attempts == 0


def test_twenty_replays_of_enqueue_make_one_job_and_one_attempt(
    one_delivery: tuple[Runtime, int], receiver: Receiver
) -> None:
    rt, delivery_id = one_delivery
    made = [deliveries.enqueue_all(rt, [delivery_id]) for _ in range(20)]
    assert made == [1] + [0] * 19
    assert (rt.queue.small.count, rt.queue.first.count) == (1, 0)  # a 2-row import
    SimpleWorker(rt.queue.worker_queues, connection=rt.queue.connection).work(burst=True)
    assert len(receiver.requests) == 1
    row = delivery(rt, delivery_id)
    assert (row.status, row.attempts) == (DeliveryStatus.DELIVERED, 1)
    assert deliveries.enqueue_all(rt, [delivery_id]) == 0  # delivered: nothing to enqueue


def test_an_unexpected_error_is_an_attempt_with_a_safe_message(
    one_delivery: tuple[Runtime, int],
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rt, delivery_id = one_delivery

    cell = "Ada Lovelace"

    def broken(*args: object) -> None:
        raise ValueError(f"could not parse {cell!r}")  # a message quoting a cell

    monkeypatch.setattr(deliveries, "load_batch", broken)
    outcome = jobs.deliver(delivery_id)
    assert outcome.startswith("retry in")
    row = delivery(rt, delivery_id)
    assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 1)
    assert row.last_error == "Internal error (ValueError) in loadbay; it will be retried."
    assert row.next_attempt_at is not None and row.claimed_at is None
    assert rt.queue.status(f"delivery-{delivery_id}-2") == "scheduled"
    assert "unexpected ValueError" in caplog.text
    assert cell not in caplog.text
    assert receiver.requests == []


def test_once_the_schedule_is_spent_an_unexpected_error_fails(
    one_delivery: tuple[Runtime, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    rt, delivery_id = one_delivery
    _set(rt, delivery_id, attempts=len(deliveries.RETRY_SCHEDULE))
    monkeypatch.setattr(deliveries, "load_batch", lambda *a: 1 / 0)
    assert jobs.deliver(delivery_id) == "failed"
    row = delivery(rt, delivery_id)
    assert row.status == DeliveryStatus.FAILED
    assert row.last_error == "Internal error (ZeroDivisionError) in loadbay; it will be retried."


def test_a_missing_batch_fails_the_delivery(one_delivery: tuple[Runtime, int]) -> None:
    rt, delivery_id = one_delivery
    with rt.sessions.begin() as session:
        session.execute(delete(db.Batch))
    assert jobs.deliver(delivery_id) == "failed"
    row = delivery(rt, delivery_id)
    assert (row.status, row.attempts) == (DeliveryStatus.FAILED, 1)
    assert row.last_error is not None and "is no longer stored" in row.last_error
    with rt.sessions() as session:
        imp = session.get(db.Import, row.import_id)
        assert imp is not None
        assert imports.import_status(session, imp).status == "failed"


def test_a_blob_that_does_not_decrypt_is_an_attempt(
    one_delivery: tuple[Runtime, int], receiver: Receiver
) -> None:
    rt, delivery_id = one_delivery
    with rt.sessions() as session:
        [batch] = session.query(db.Batch).all()
    rt.blobs.put(batch.blob_key, b"\0" * 64)
    assert jobs.deliver(delivery_id).startswith("retry in")
    row = delivery(rt, delivery_id)
    assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 1)
    assert row.last_error is not None and row.last_error.startswith("Internal error (")
    assert receiver.requests == []


def test_the_sweeper_releases_a_stale_claim_and_enqueues_it(
    one_delivery: tuple[Runtime, int],
) -> None:
    rt, delivery_id = one_delivery
    assert deliveries.claim(rt, delivery_id) == 1  # a worker took it, then died
    now = db.utcnow()
    assert sweeper.sweep(rt, now).to_dict() == {"released": 0, "failed": 0, "enqueued": 0}
    later = now + dt.timedelta(seconds=rt.queue.timings.stale_after + 1)
    assert sweeper.sweep(rt, later).to_dict() == {"released": 1, "failed": 0, "enqueued": 1}
    row = delivery(rt, delivery_id)
    assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 1)
    assert row.last_error is not None and "did not finish" in row.last_error
    assert rt.queue.status(f"delivery-{delivery_id}-2") == "queued"
    assert rt.queue.retry.count == 1
    # The job is there: another sweep enqueues nothing.
    assert sweeper.sweep(rt, later).enqueued == 0


def test_a_stale_claim_past_the_schedule_fails(one_delivery: tuple[Runtime, int]) -> None:
    rt, delivery_id = one_delivery
    _set(rt, delivery_id, attempts=len(deliveries.RETRY_SCHEDULE))
    assert deliveries.claim(rt, delivery_id) == len(deliveries.RETRY_SCHEDULE) + 1
    later = db.utcnow() + dt.timedelta(hours=1)
    assert sweeper.sweep(rt, later).to_dict() == {"released": 0, "failed": 1, "enqueued": 0}
    assert delivery(rt, delivery_id).status == DeliveryStatus.FAILED


def test_the_sweeper_enqueues_due_deliveries_without_a_job(
    one_delivery: tuple[Runtime, int],
) -> None:
    rt, delivery_id = one_delivery
    _set(rt, delivery_id, next_attempt_at=db.utcnow() + dt.timedelta(minutes=5))
    assert sweeper.sweep(rt).enqueued == 0  # not due
    _set(rt, delivery_id, next_attempt_at=None)
    assert sweeper.sweep(rt).enqueued == 1
    assert sweeper.sweep(rt).enqueued == 0  # queued already
    assert deliveries.enqueue_all(rt, [delivery_id]) == 0  # nor does the submit route


def test_a_job_redis_calls_queued_that_no_queue_holds_is_run_again(
    one_delivery: tuple[Runtime, int], receiver: Receiver
) -> None:
    """Taken off its queue just before Redis died; its start was never written."""
    rt, delivery_id = one_delivery
    assert deliveries.enqueue_all(rt, [delivery_id]) == 1
    assert sweeper.sweep(rt).enqueued == 0  # queued, and on its queue: left alone
    job = Job.fetch(rt.queue.job_id(f"delivery-{delivery_id}-1"), connection=rt.queue.connection)
    rt.queue.small.remove(job)
    assert job.get_status(refresh=True) == JobStatus.QUEUED
    assert sweeper.sweep(rt).enqueued == 1
    SimpleWorker(rt.queue.worker_queues, connection=rt.queue.connection).work(burst=True)
    row = delivery(rt, delivery_id)
    assert (row.status, row.attempts, len(receiver.requests)) == (DeliveryStatus.DELIVERED, 1, 1)


def test_a_job_that_died_before_claiming_is_run_again(
    one_delivery: tuple[Runtime, int], receiver: Receiver
) -> None:
    """Redis went away under a work horse that had started the job but not claimed the
    delivery: Redis (restored from its AOF) still calls the job started, for ever."""
    rt, delivery_id = one_delivery
    assert deliveries.enqueue_all(rt, [delivery_id]) == 1
    job = Job.fetch(rt.queue.job_id(f"delivery-{delivery_id}-1"), connection=rt.queue.connection)
    rt.queue.small.remove(job)  # it left the queue for a work horse...
    started = db.utcnow() - dt.timedelta(seconds=rt.queue.timings.stale_after - 2)
    job.set_status(JobStatus.STARTED)
    job.started_at = started.replace(tzinfo=None)
    job.save()
    assert sweeper.sweep(rt).enqueued == 0  # ...a few seconds ago: it may yet claim it
    job.started_at = (started - dt.timedelta(seconds=5)).replace(tzinfo=None)
    job.save()
    assert sweeper.sweep(rt).enqueued == 1  # long ago, and nobody claimed it: run again
    assert rt.queue.retry.count == 1
    SimpleWorker(rt.queue.worker_queues, connection=rt.queue.connection).work(burst=True)
    row = delivery(rt, delivery_id)
    assert (row.status, row.attempts, len(receiver.requests)) == (DeliveryStatus.DELIVERED, 1, 1)


@pytest.mark.parametrize("store", ["sqlite"])
def test_two_workers_running_one_delivery_send_it_once(
    setup: Setup,  # noqa: F811 - the fixture imported above
    receiver: Receiver,
) -> None:
    """Two jobs for one delivery, two real worker processes at once: one webhook request."""
    [delivery_id] = setup.make_deliveries([receiver.url])
    receiver.hold_next()  # the first request is slow, so both workers are busy together
    threading.Timer(1.5, receiver.released.set).start()
    queues = setup.rt.queue
    for name in ("a", "b"):  # a duplicate job, as a replay before job ids would have made
        queues.enqueue("server.jobs.deliver", delivery_id, job_id=f"dup-{name}-{delivery_id}")
    workers = [setup.processes.start("worker", "--burst") for _ in range(2)]
    for worker in workers:
        assert worker.wait(30) == 0
    assert len(receiver.requests) == 1
    row = delivery(setup.rt, delivery_id)
    assert (row.status, row.attempts) == (DeliveryStatus.DELIVERED, 1)


def test_the_sweeper_moves_a_retry_no_scheduler_picked_up(
    one_delivery: tuple[Runtime, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    rt, delivery_id = one_delivery
    monkeypatch.setattr(deliveries, "load_batch", lambda *a: 1 / 0)
    assert jobs.deliver(delivery_id).startswith("retry in")  # a retry scheduled in ~5 s
    name = f"delivery-{delivery_id}-2"
    assert rt.queue.status(name) == "scheduled"
    assert sweeper.sweep(rt).enqueued == 0  # on time: the scheduler's business
    row = delivery(rt, delivery_id)
    assert row.next_attempt_at is not None
    late = row.next_attempt_at + dt.timedelta(seconds=sweeper.OVERDUE + 1)
    assert sweeper.sweep(rt, late).enqueued == 1  # no scheduler moved it: we do
    assert rt.queue.status(name) == "queued"
    assert rt.queue.retry.count == 1
    assert sweeper.sweep(rt, late).enqueued == 0
