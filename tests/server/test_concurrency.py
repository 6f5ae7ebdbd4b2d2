"""Queue priorities and each destination's concurrency limit (server.queue slots)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from rq import SimpleWorker
from sqlalchemy import update

from server import db, deliveries, imports, jobs, sweeper, uploads
from server.deliveries import DeliveryStatus
from server.queue import SMALL_IMPORT_ROWS
from server.runtime import Runtime

if TYPE_CHECKING:
    from tests.conftest import BatchFactory, DemoOrgFactory, RuntimeFactory

ROWS = ["Ada Lovelace,ada@example.com", "Grace Hopper,grace@example.com"] * 2
CSV = "Full name,Email\n" + "\n".join(ROWS) + "\n"


@dataclass
class Gate:
    """A webhook receiver that holds every request until released, counting how many
    were open at once."""

    url: str = ""
    open_now: int = 0
    most_open: int = 0
    served: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def gate() -> Iterator[Gate]:
    state = Gate()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            with state.lock:
                state.open_now += 1
                state.most_open = max(state.most_open, state.open_now)
            state.release.wait(20)
            with state.lock:
                state.open_now -= 1
                state.served += 1
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


@dataclass(frozen=True)
class Sent:
    rt: Runtime
    destination_id: str
    delivery_ids: list[int]


@pytest.fixture
def four_batches(
    runtime_factory: RuntimeFactory,
    demo_org: DemoOrgFactory,
    batch_factory: BatchFactory,
    gate: Gate,
    monkeypatch: pytest.MonkeyPatch,
) -> Sent:
    """A 4-row import in four 1-row batches to one webhook that takes 2 attempts at once."""
    rt = runtime_factory(allow_private_networks=("127.0.0.0/8",))
    monkeypatch.setattr(jobs, "_runtime", lambda: rt)
    org = demo_org(rt, webhook_urls=[gate.url])
    [destination] = org.destinations
    with rt.sessions.begin() as session:
        session.execute(
            update(db.Destination)
            .where(db.Destination.id == destination.id)
            .values(max_concurrency=2)
        )
    created = imports.create_import(rt, org.org, org.template.id, "contacts.csv")
    for seq in range(4):
        body = batch_factory(CSV, offset=seq, length=1, compression=None)
        uploads.receive_batch(rt, created.import_id, created.upload_token, seq, seq + 2, body)
    ids = imports.submit(rt, created.import_id, created.upload_token, 4, 4)
    return Sent(rt, destination.id, ids)


def _status(rt: Runtime, delivery_id: int) -> tuple[str, int]:
    with rt.sessions() as session:
        row = session.get(db.Delivery, delivery_id)
        assert row is not None
        return row.status, row.attempts


def test_workers_read_retries_then_small_imports_then_big_ones(
    four_batches: Sent,
) -> None:
    rt = four_batches.rt
    assert [q.name for q in rt.queue.worker_queues] == [
        rt.queue.retry.name,
        rt.queue.small.name,
        rt.queue.first.name,
    ]
    assert deliveries.enqueue_all(rt, four_batches.delivery_ids[:2]) == 2
    assert (rt.queue.small.count, rt.queue.first.count) == (2, 0)  # 4 rows: a small import
    with rt.sessions.begin() as session:
        session.execute(update(db.Import).values(row_count=SMALL_IMPORT_ROWS + 1))
    assert deliveries.enqueue_all(rt, four_batches.delivery_ids[2:]) == 2
    assert (rt.queue.small.count, rt.queue.first.count) == (2, 2)


def test_a_slot_has_at_most_limit_holders_and_wakes_its_oldest_waiters(
    runtime_factory: RuntimeFactory,
) -> None:
    queue = runtime_factory().queue
    assert queue.take_slot("dest", "a", 2, "1")
    assert queue.take_slot("dest", "b", 2, "2")
    assert not queue.take_slot("dest", "c", 2, "3")
    assert not queue.take_slot("dest", "d", 2, "4")
    assert queue.take_slot("dest", "a", 2, "1")  # a holder taking again keeps its place
    assert queue.waiters() == {"3", "4"}
    assert queue.waiting_slots() == ["dest"]
    assert queue.give_slot("dest", "a", 2) == ["3"]
    assert queue.waiters() == {"4"}
    # A holder that died: its place lapses after a job's timeout plus grace.
    queue.connection.zadd(queue._slot_keys("dest")[0], {"b": 1})
    assert queue.give_slot("dest", "", 2) == ["4"]
    assert queue.waiters() == set()
    assert queue.waiting_slots() == []  # the last waiter woken: the slot leaves the registry
    assert queue.take_slot("other", "x", 1, "9")  # slots are per name
    assert not queue.take_slot("other", "y", 1, "8")
    assert queue.waiting_slots() == ["other"]


def test_a_destination_is_sent_at_most_its_limit_at_once(four_batches: Sent, gate: Gate) -> None:
    rt, ids = four_batches.rt, four_batches.delivery_ids
    results: dict[int, str] = {}

    def run(delivery_id: int) -> None:
        results[delivery_id] = jobs.deliver(delivery_id)

    threads = [threading.Thread(target=run, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while (
        list(results.values()).count("waiting") < 2 or gate.open_now < 2
    ) and time.monotonic() < deadline:
        time.sleep(0.02)
    waiting = sorted(i for i, r in results.items() if r == "waiting")
    assert len(waiting) == 2
    assert {_status(rt, i) for i in waiting} == {(DeliveryStatus.PENDING, 0)}  # not claimed
    assert rt.queue.waiters() == {str(i) for i in waiting}
    gate.release.set()
    for t in threads:
        t.join(20)
    assert sorted(results.values()) == ["delivered", "delivered", "waiting", "waiting"]
    assert gate.most_open == 2
    # The two attempts that gave their places back enqueued the waiters on the retry queue.
    assert rt.queue.waiters() == set()
    assert rt.queue.retry.count == 2
    SimpleWorker(rt.queue.worker_queues, connection=rt.queue.connection).work(burst=True)
    assert {_status(rt, i) for i in ids} == {(DeliveryStatus.DELIVERED, 1)}
    assert (gate.served, gate.most_open) == (4, 2)


def test_the_sweeper_wakes_a_waiter_whose_holder_died(four_batches: Sent, gate: Gate) -> None:
    rt, dest = four_batches.rt, four_batches.destination_id
    first, second = four_batches.delivery_ids[:2]
    assert rt.queue.take_slot(dest, "dead-1", 2, "x")
    assert rt.queue.take_slot(dest, "dead-2", 2, "y")
    assert jobs.deliver(first) == "waiting"
    assert jobs.deliver(second) == "waiting"
    report = sweeper.sweep(rt)
    # The holders are alive: the waiters wait (the sweeper does not enqueue them either).
    assert report.enqueued == 2  # the other two deliveries, which had no job yet
    assert rt.queue.waiters() == {str(first), str(second)}
    keys = rt.queue._slot_keys(dest)
    rt.queue.connection.zadd(keys[0], {"dead-1": 1, "dead-2": 1})  # their places lapse
    assert sweeper.sweep(rt).enqueued == 2
    assert rt.queue.waiters() == set()
    gate.release.set()
    SimpleWorker(rt.queue.worker_queues, connection=rt.queue.connection).work(burst=True)
    assert {_status(rt, i) for i in four_batches.delivery_ids} == {(DeliveryStatus.DELIVERED, 1)}
    assert gate.served == 4
