"""Delivery attempts: one row per attempt with its outcome, status code and the receiver's
answer (cut to 1,000 characters, never an echo of the rows sent); a failed delivery can be
sent again."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select, update

import destinations
from server import attempts, db, deliveries, imports, jobs, retention, sweeper, uploads
from server.deliveries import DeliveryStatus
from server.errors import Conflict, Gone, NotFound
from server.runtime import Runtime

if TYPE_CHECKING:
    from tests.conftest import BatchFactory, DemoOrgFactory, Receiver, RuntimeFactory

CSV = "Full name,Email\nAda Lovelace,ada@example.com\nGrace Hopper,grace@example.com\n"


class Talker:
    """A receiver that answers every request with one status and body."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self.send_response(outer.status)
                self.send_header("content-type", "text/plain; charset=utf-8")
                self.send_header("content-length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def talker() -> Iterator[Talker]:
    state = Talker()
    thread = threading.Thread(target=state.server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield state
    state.server.shutdown()
    state.server.server_close()
    thread.join(5)


class Made:
    def __init__(self, rt: Runtime, org_id: str, import_id: str, delivery_id: int) -> None:
        self.rt, self.org_id, self.import_id, self.delivery_id = rt, org_id, import_id, delivery_id


@pytest.fixture
def make(
    runtime_factory: RuntimeFactory,
    demo_org: DemoOrgFactory,
    batch_factory: BatchFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    rt = runtime_factory(allow_private_networks=("127.0.0.0/8",))
    monkeypatch.setattr(jobs, "_runtime", lambda: rt)

    def build(url: str) -> Made:
        org = demo_org(rt, webhook_urls=[url])
        created = imports.create_import(rt, org.org, org.template.id, "contacts.csv")
        body = batch_factory(CSV, compression=None)
        uploads.receive_batch(rt, created.import_id, created.upload_token, 0, 2, body)
        [delivery_id] = imports.submit(rt, created.import_id, created.upload_token, 1, 2)
        return Made(rt, org.org.id, created.import_id, delivery_id)

    return build


def _due_now(rt: Runtime, delivery_id: int) -> None:
    with rt.sessions.begin() as session:
        session.execute(
            update(db.Delivery).where(db.Delivery.id == delivery_id).values(next_attempt_at=None)
        )


def _delivery(rt: Runtime, delivery_id: int) -> db.Delivery:
    with rt.sessions() as session:
        row = session.get(db.Delivery, delivery_id)
        assert row is not None
        return row


def test_a_500_then_a_200_are_two_attempts(make: Any, receiver: Receiver) -> None:
    made = make(receiver.url)
    receiver.answer(500)
    before = db.utcnow()
    assert deliveries.deliver(made.rt, made.delivery_id).startswith("retry in ")
    _due_now(made.rt, made.delivery_id)
    assert deliveries.deliver(made.rt, made.delivery_id) == "delivered"
    first, second = attempts.attempts_of(made.rt, made.import_id)
    assert (first.number, first.outcome, first.status_code) == (1, "retry", 500)
    assert first.error == f"{receiver.url} answered 500."
    assert first.answer is None  # the receiver said nothing beyond its status
    assert first.duration_ms is not None and second.duration_ms is not None
    assert (second.number, second.outcome, second.error) == (2, "delivered", None)
    assert {first.delivery_id, second.delivery_id} == {made.delivery_id}
    assert (first.seq, second.seq) == (0, 0)
    assert before <= first.started_at <= first.finished_at <= second.started_at
    assert second.started_at <= second.finished_at <= db.utcnow()
    assert len(receiver.requests) == 2


def test_the_answer_is_kept_to_1000_characters(make: Any, talker: Talker) -> None:
    made = make(talker.url)
    talker.status = 503
    talker.body = ("Overloaded, come back later. " * 200).encode()
    assert len(talker.body) > 5000
    deliveries.deliver(made.rt, made.delivery_id)
    [attempt] = attempts.attempts_of(made.rt, made.import_id)
    assert attempt.status_code == 503
    assert attempt.answer == talker.body.decode()[:1000]
    assert len(attempt.answer) == 1000
    with made.rt.sessions() as session:
        stored = session.scalars(select(db.DeliveryAttempt.answer)).one()
    assert stored == talker.body.decode()[:1000]


def test_a_delivered_attempt_keeps_status_duration_and_answer(make: Any, talker: Talker) -> None:
    made = make(talker.url)
    talker.status, talker.body = 202, b"queued as job 77"
    assert deliveries.deliver(made.rt, made.delivery_id) == "delivered"
    [attempt] = attempts.attempts_of(made.rt, made.import_id)
    assert (attempt.outcome, attempt.status_code, attempt.answer) == (
        "delivered",
        202,
        "queued as job 77",
    )
    assert attempt.duration_ms is not None and attempt.duration_ms >= 0
    elapsed = attempt.finished_at - attempt.started_at
    assert attempt.duration_ms <= elapsed.total_seconds() * 1000 + 1


def test_a_delivered_answer_quoting_the_rows_is_not_kept(make: Any, talker: Talker) -> None:
    made = make(talker.url)
    talker.body = b"thanks for grace@example.com"
    assert deliveries.deliver(made.rt, made.delivery_id) == "delivered"
    [attempt] = attempts.attempts_of(made.rt, made.import_id)
    assert (attempt.status_code, attempt.answer) == (200, attempts.ECHOED)


def test_an_attempt_that_never_reached_the_destination_has_no_duration(
    make: Any, receiver: Receiver
) -> None:
    made = make(receiver.url)
    with made.rt.sessions.begin() as session:
        session.execute(update(db.Destination).values(kind="no-such-kind"))
    deliveries.deliver(made.rt, made.delivery_id)
    [attempt] = attempts.attempts_of(made.rt, made.import_id)
    assert attempt.outcome == "failed"
    assert attempt.duration_ms is None


def test_an_answer_quoting_the_rows_sent_is_not_kept(make: Any, talker: Talker) -> None:
    made = make(talker.url)
    talker.status = 422
    talker.body = b'{"error": "bad row", "row": {"full_name": "Grace Hopper"}}'
    assert deliveries.deliver(made.rt, made.delivery_id) == "failed"  # a 4xx is final
    [attempt] = attempts.attempts_of(made.rt, made.import_id)
    assert (attempt.outcome, attempt.status_code) == ("failed", 422)
    assert attempt.answer == attempts.ECHOED
    assert "Grace" not in (attempt.answer + (attempt.error or ""))


def test_a_410_disables_and_is_recorded_as_disabled(make: Any, receiver: Receiver) -> None:
    made = make(receiver.url)
    receiver.answer(410)
    assert deliveries.deliver(made.rt, made.delivery_id) == "failed"
    [attempt] = attempts.attempts_of(made.rt, made.import_id)
    assert (attempt.outcome, attempt.status_code) == ("disabled", 410)
    with pytest.raises(Conflict, match="its destination is disabled"):
        deliveries.retry(made.rt, made.delivery_id)


def test_an_unexpected_error_is_an_attempt(
    make: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = make(receiver.url)

    def broken(*args: object) -> None:
        raise RuntimeError("Ada Lovelace")  # a message that quotes a cell

    monkeypatch.setattr(destinations, "create", broken)
    deliveries.deliver(made.rt, made.delivery_id)
    [attempt] = attempts.attempts_of(made.rt, made.import_id)
    assert attempt.outcome == "retry"
    assert attempt.error == "Internal error (RuntimeError) in loadbay; it will be retried."
    assert (attempt.status_code, attempt.answer) == (None, None)


def test_a_stale_claim_released_by_the_sweeper_is_an_attempt(make: Any, receiver: Receiver) -> None:
    made = make(receiver.url)
    now = db.utcnow()
    assert deliveries.claim(made.rt, made.delivery_id, now) == 1
    later = now + dt.timedelta(seconds=made.rt.queue.timings.stale_after + 1)
    assert sweeper.sweep(made.rt, later).released == 1
    [attempt] = attempts.attempts_of(made.rt, made.import_id)
    assert attempt.outcome == "retry"
    assert (attempt.started_at, attempt.finished_at) == (now, later)
    assert attempt.error is not None and "its worker stopped" in attempt.error


def test_a_failed_delivery_is_retried_with_its_schedule_restarted(
    make: Any, receiver: Receiver
) -> None:
    made = make(receiver.url)
    receiver.answer(400)
    assert deliveries.deliver(made.rt, made.delivery_id) == "failed"
    assert deliveries.retry(made.rt, made.delivery_id) is True
    row = _delivery(made.rt, made.delivery_id)
    assert (row.status, row.attempts, row.next_attempt_at) == (DeliveryStatus.PENDING, 0, None)
    assert made.rt.queue.status(f"delivery-{made.delivery_id}-1") == "queued"
    assert deliveries.deliver(made.rt, made.delivery_id) == "delivered"
    outcomes = [
        (a.number, a.outcome, a.status_code) for a in attempts.attempts_of(made.rt, made.import_id)
    ]
    assert outcomes == [(1, "failed", 400), (2, "delivered", 200)]
    with pytest.raises(Conflict, match="was delivered already"):
        deliveries.retry(made.rt, made.delivery_id)


def test_only_failed_deliveries_of_ones_own_organisation_are_retried(
    make: Any, receiver: Receiver
) -> None:
    made = make(receiver.url)
    with pytest.raises(Conflict, match="is pending: only a failed delivery is retried"):
        deliveries.retry(made.rt, made.delivery_id)
    with pytest.raises(NotFound):
        deliveries.retry(made.rt, made.delivery_id, org_id="org_someone_else")
    with pytest.raises(NotFound):
        attempts.attempts_of(made.rt, made.import_id, org_id="org_someone_else")
    with pytest.raises(NotFound):
        deliveries.retry(made.rt, 987654)
    assert retention.delete_import_data(made.rt, made.import_id)  # pending -> failed
    assert _delivery(made.rt, made.delivery_id).status == DeliveryStatus.FAILED
    with pytest.raises(Gone, match="was deleted"):
        deliveries.retry(made.rt, made.delivery_id, org_id=made.org_id)


def test_echoes_finds_values_as_text_or_json_escaped() -> None:
    import pyarrow as pa

    table = pa.table(
        {
            "name": ['Zoë Quote"s', "Ada Lovelace", None],
            "count": [12345, 7, 8],
            "ok": [True, False, True],
        }
    )
    assert attempts.echoes("rejected: Ada Lovelace", table)
    assert attempts.echoes('{"name":"Zo\\u00eb Quote\\"s"}', table)  # as json.dumps wrote it
    assert attempts.echoes("row 12345 is bad", table)  # typed values, as text
    assert not attempts.echoes("true; 7 rows; all fine", table)  # booleans, short values
    assert not attempts.echoes("", table)


def test_a_value_quoted_across_the_cut_still_drops_the_answer(make: Any, talker: Talker) -> None:
    made = make(talker.url)
    talker.status = 500
    talker.body = ("." * 994 + "Grace Hopper was here" + "." * 3000).encode()
    deliveries.deliver(made.rt, made.delivery_id)
    [attempt] = attempts.attempts_of(made.rt, made.import_id)
    assert attempt.answer == attempts.ECHOED  # 'Grace ' was inside the first 1,000
