"""Delivery through faults (#17): real `loadbay worker` processes, the real PostgreSQL
server, moto's S3 server and a loopback webhook receiver.

- a worker killed with SIGKILL while 50 imports are being delivered: after a new worker
  starts, every row is in PostgreSQL and in S3 exactly once, and the webhook receiver has
  every batch at least once, repeats sharing a `webhook-id`;
- Redis killed and restarted (AOF on) with deliveries queued and in flight: nothing lost;
- a destination failing its first attempts (5xx, a timeout, a refused connection,
  PostgreSQL down): delivered after it recovers, every attempt logged, on the schedule.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from destinations import DestinationContext
from destinations.network import NetworkPolicy
from destinations.webhook import new_secret
from server import attempts, db, deliveries, imports, orgs, uploads
from server import destinations as dests
from server.deliveries import RETRY_SCHEDULE, DeliveryStatus
from server.runtime import Runtime
from server.settings import Timings
from tests.conftest import CONTACTS_SCHEMA
from tests.destinations.conftest import pg_target  # noqa: F401 - a fixture used here
from tests.destinations.stores import KEY_ID, SECRET_KEY, Target, s3_client
from tests.server.test_faults import FAST, Processes, RedisProcess, own_redis, wait_for

if TYPE_CHECKING:
    from tests.conftest import BatchFactory, Receiver, RuntimeFactory

__all__ = ["own_redis"]
pytestmark = pytest.mark.parametrize("store", ["sqlite"])

ROWS, PER_BATCH = 10, 5  # each import: 2 batches of 5 rows


def _csv(n: int) -> str:
    lines = [f"Person {n}-{i},p{n}_{i}@example.com" for i in range(ROWS)]
    return "Full name,Email\n" + "\n".join(lines) + "\n"


@dataclasses.dataclass
class World:
    rt: Runtime
    org: db.Organisation
    template: db.Template
    processes: Processes
    bucket: str
    table: str


@pytest.fixture
def world(
    own_redis: RedisProcess,
    runtime_factory: RuntimeFactory,
    pg_target: Target,  # noqa: F811 - the fixture
    moto_url: str,
    receiver: Receiver,
    tmp_path: Path,
) -> Iterator[World]:
    rt = runtime_factory(
        redis_url=own_redis.url,
        queue_name="deliveries",
        allow_private_networks=("127.0.0.0/8",),
        timings=Timings.from_env(FAST),
    )
    org = orgs.create_organisation(rt, "Faults Org", ["https://host.example"])
    template = orgs.create_template(rt, org, CONTACTS_SCHEMA)
    table, bucket = f"faults_{secrets.token_hex(4)}", f"faults-{secrets.token_hex(4)}"
    s3_client(moto_url).create_bucket(Bucket=bucket)
    pg = {"dsn": pg_target.dsn(), "table": table, "mode": "append", "create_table": True}
    orgs.create_destination(rt, org, template, "postgresql", "db", pg | {"sslmode": "disable"})
    s3 = {
        "bucket": bucket,
        "region": "us-east-1",
        "endpoint_url": moto_url,
        "access_key_id": KEY_ID,
        "secret_access_key": SECRET_KEY,
    }
    orgs.create_destination(rt, org, template, "s3", "bucket", s3)
    hook = {"url": receiver.url, "secret": new_secret()}
    orgs.create_destination(rt, org, template, "webhook", "hook", hook)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOADBAY_", "REDIS_"))}
    env |= FAST | {
        "LOADBAY_DATA_DIR": str(rt.settings.data_dir),
        "DATABASE_URL": rt.settings.database_url,
        "REDIS_URL": own_redis.url,
        "LOADBAY_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8",
    }
    processes = Processes(env, tmp_path)
    yield World(rt, org, template, processes, bucket, table)
    processes.stop_all()
    with pg_target.connect() as conn:
        conn.execute(f"DROP TABLE IF EXISTS public.{table}")


def _submit(world: World, batch_factory: BatchFactory, n: int) -> list[int]:
    rt = world.rt
    created = imports.create_import(rt, world.org, world.template.id, f"people-{n}.csv")
    for seq in range(ROWS // PER_BATCH):
        body = batch_factory(_csv(n), offset=seq * PER_BATCH, length=PER_BATCH)
        uploads.receive_batch(
            rt, created.import_id, created.upload_token, seq, 2 + seq * PER_BATCH, body
        )
    return imports.submit(rt, created.import_id, created.upload_token, ROWS // PER_BATCH, ROWS)


def _count(rt: Runtime, *statuses: str) -> int:
    with rt.sessions() as session:
        found = session.scalar(
            select(func.count()).select_from(db.Delivery).where(db.Delivery.status.in_(statuses))
        )
    return int(found or 0)


def _expected_emails(imports_made: int) -> list[str]:
    return sorted(f"p{n}_{i}@example.com" for n in range(imports_made) for i in range(ROWS))


def _assert_once_everywhere(
    world: World, target: Target, moto: str, receiver: Receiver, made: int
) -> None:
    expected = _expected_emails(made)
    with target.connect() as conn:
        emails = [r[0] for r in conn.execute(f"SELECT email FROM public.{world.table}")]
        ledger = conn.execute("SELECT count(*) FROM public.loadbay_ledger").fetchone()
    assert sorted(emails) == expected  # every row once: none lost, none twice
    assert ledger is not None and ledger[0] >= made * (ROWS // PER_BATCH)
    client = s3_client(moto)
    keys = [
        o["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=world.bucket)
        for o in page.get("Contents", [])
    ]
    parts = [k for k in keys if k.endswith(".parquet")]
    assert len(parts) == made * (ROWS // PER_BATCH)  # a redelivery overwrote its own object
    assert len([k for k in keys if k.endswith("manifest.json")]) == made
    s3_emails: list[str] = []
    for key in parts:
        body = client.get_object(Bucket=world.bucket, Key=key)["Body"].read()
        s3_emails += pq.read_table(io.BytesIO(body)).column("email").to_pylist()
    assert sorted(s3_emails) == expected
    seen: dict[str, bytes] = {}
    for request in receiver.requests:
        rows = json.dumps(json.loads(request.body)["data"]["rows"]).encode()
        assert seen.setdefault(request.headers["webhook-id"], rows) == rows
    assert len(seen) == made * (ROWS // PER_BATCH)  # every batch at least once


def test_a_worker_killed_while_50_imports_deliver_leaves_every_row_once(
    world: World,
    batch_factory: BatchFactory,
    pg_target: Target,  # noqa: F811 - the fixture
    moto_url: str,
    receiver: Receiver,
) -> None:
    made = 50
    ids = [i for n in range(made) for i in _submit(world, batch_factory, n)]
    assert len(ids) == made * 2 * 3
    worker = world.processes.start("worker")
    world.processes.start("cron")
    deliveries.enqueue_all(world.rt, ids)
    wait_for(lambda: _count(world.rt, DeliveryStatus.DELIVERED) >= len(ids) // 3, 120, "a third")
    os.kill(worker.pid, signal.SIGKILL)
    killed = time.monotonic()
    worker.wait(5)
    at_kill = _count(world.rt, DeliveryStatus.DELIVERED)
    world.processes.start("worker")
    took = wait_for(
        lambda: _count(world.rt, DeliveryStatus.DELIVERED) == len(ids), 180, "all delivered"
    )
    print(f"{at_kill}/{len(ids)} delivered at the kill; the rest {took:.1f} s after it")
    assert _count(world.rt, DeliveryStatus.FAILED) == 0
    _assert_once_everywhere(world, pg_target, moto_url, receiver, made)
    assert time.monotonic() - killed < 180


def test_redis_killed_with_deliveries_queued_and_in_flight_loses_nothing(
    world: World,
    own_redis: RedisProcess,
    batch_factory: BatchFactory,
    pg_target: Target,  # noqa: F811 - the fixture
    moto_url: str,
    receiver: Receiver,
) -> None:
    made = 20
    ids = [i for n in range(made) for i in _submit(world, batch_factory, n)]
    worker = world.processes.start("worker")
    cron = world.processes.start("cron")
    deliveries.enqueue_all(world.rt, ids)
    wait_for(lambda: _count(world.rt, DeliveryStatus.DELIVERED) >= 10, 60, "first deliveries")
    own_redis.kill()  # queued jobs, scheduled retries and the running one's record
    in_flight = _count(world.rt, DeliveryStatus.SENDING)
    time.sleep(2)
    own_redis.start()  # from its AOF (everysec): at most about a second of jobs lost
    took = wait_for(
        lambda: _count(world.rt, DeliveryStatus.DELIVERED) == len(ids), 180, "all delivered"
    )
    print(f"{in_flight} in flight at the kill; every delivery done {took:.1f} s after restart")
    assert worker.poll() is None and cron.poll() is None  # the same processes carried on
    assert _count(world.rt, DeliveryStatus.FAILED) == 0
    _assert_once_everywhere(world, pg_target, moto_url, receiver, made)


# --- a destination failing its first attempts (in process; the clock moved by hand) ------


class Proxy:
    """A TCP forwarder on a fixed loopback port, standing in for a PostgreSQL server that
    goes down (the port refuses connections) and comes back on the same address."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.listener: socket.socket | None = None
        self.open: list[socket.socket] = []

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(8)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and cut the open ones (a server that went away)."""
        if self.listener is not None:
            try:  # wakes the accepting thread; a close alone leaves the port listening
                self.listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.listener.close()
            self.listener = None
        for sock in self.open:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self.open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def _attempts(rt: Runtime, delivery_id: int) -> list[attempts.Attempt]:
    with rt.sessions() as session:
        imp_id = session.scalar(select(db.Delivery.import_id).where(db.Delivery.id == delivery_id))
    assert imp_id is not None
    return [a for a in attempts.attempts_of(rt, imp_id) if a.delivery_id == delivery_id]


def _due_now(rt: Runtime, delivery_id: int) -> float:
    """Seconds the schedule asked to wait; then make the delivery due (time passes)."""
    with rt.sessions.begin() as session:
        row = session.get(db.Delivery, delivery_id)
        assert row is not None and row.next_attempt_at is not None
        assert row.status == DeliveryStatus.PENDING
        waited = (row.next_attempt_at - db.utcnow()).total_seconds()
        row.next_attempt_at = db.utcnow()
    return waited


def _one_delivery(
    runtime_factory: RuntimeFactory, batch_factory: BatchFactory, kind: str, config: dict[str, Any]
) -> tuple[Runtime, int]:
    rt = runtime_factory(allow_private_networks=("127.0.0.0/8",))
    rt = dataclasses.replace(  # a short timeout, so a hanging receiver costs a second
        rt,
        destination_context=DestinationContext(
            policy=NetworkPolicy.from_strings(("127.0.0.0/8",)), timeout=1.0
        ),
    )
    org = orgs.create_organisation(rt, "Flaky Org", ["https://host.example"])
    template = orgs.create_template(rt, org, CONTACTS_SCHEMA)
    orgs.create_destination(rt, org, template, kind, "flaky", config)
    created = imports.create_import(rt, org, template.id, "people.csv")
    body = batch_factory(_csv(0), offset=0, length=PER_BATCH)
    uploads.receive_batch(rt, created.import_id, created.upload_token, 0, 2, body)
    [delivery_id] = imports.submit(rt, created.import_id, created.upload_token, 1, PER_BATCH)
    return rt, delivery_id


def _on_schedule(waits: list[float]) -> None:
    for attempt, waited in enumerate(waits, start=1):
        base = RETRY_SCHEDULE[attempt - 1]
        assert base * 0.88 <= waited <= base * 1.1 + 1, (attempt, waited)


def test_a_webhook_failing_with_5xx_a_timeout_and_a_refusal_is_delivered_after(
    runtime_factory: RuntimeFactory, batch_factory: BatchFactory, receiver: Receiver
) -> None:
    config = {"url": receiver.url, "secret": new_secret()}
    rt, delivery_id = _one_delivery(runtime_factory, batch_factory, "webhook", config)
    org, dest_id = _org_of(rt, delivery_id), _destination_of(rt, delivery_id)
    receiver.answer(503, 500)
    receiver.hold_next()  # the third attempt hangs past the timeout
    waits = []
    for _ in range(3):
        assert deliveries.deliver(rt, delivery_id).startswith("retry in")
        waits.append(_due_now(rt, delivery_id))
    receiver.released.set()
    # The fourth finds nobody listening: the receiver's machine is down.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    dests.update_destination(rt, org, dest_id, config={"url": f"http://127.0.0.1:{dead}/hook"})
    assert deliveries.deliver(rt, delivery_id).startswith("retry in")
    waits.append(_due_now(rt, delivery_id))
    dests.update_destination(rt, org, dest_id, config={"url": receiver.url})  # it is back
    assert deliveries.deliver(rt, delivery_id) == "delivered"
    _on_schedule(waits)
    logged = _attempts(rt, delivery_id)
    assert [a.outcome for a in logged] == ["retry"] * 4 + ["delivered"]
    assert [a.status_code for a in logged] == [503, 500, None, None, 200]
    assert "did not answer within 1 s" in (logged[2].error or "")
    assert "Connection refused" in (logged[3].error or "")


def _destination_of(rt: Runtime, delivery_id: int) -> str:
    with rt.sessions() as session:
        found = session.scalar(
            select(db.Delivery.destination_id).where(db.Delivery.id == delivery_id)
        )
    assert found is not None
    return found


def _org_of(rt: Runtime, delivery_id: int) -> db.Organisation:
    with rt.sessions() as session:
        org = session.scalar(
            select(db.Organisation)
            .join(db.Import, db.Import.org_id == db.Organisation.id)
            .join(db.Delivery, db.Delivery.import_id == db.Import.id)
            .where(db.Delivery.id == delivery_id)
        )
        assert org is not None
        session.expunge(org)
        return org


def test_postgresql_down_for_a_while_is_delivered_once_it_is_back(
    runtime_factory: RuntimeFactory,
    batch_factory: BatchFactory,
    pg_target: Target,  # noqa: F811 - the fixture
) -> None:
    proxy = Proxy((pg_target.host, pg_target.port))
    proxy.up()
    table = f"flaky_{secrets.token_hex(4)}"
    dsn = f"postgresql://{pg_target.user}@127.0.0.1:{proxy.port}/{pg_target.name}"
    config = {"dsn": dsn, "table": table, "mode": "append", "create_table": True}
    rt, delivery_id = _one_delivery(
        runtime_factory, batch_factory, "postgresql", config | {"sslmode": "disable"}
    )
    proxy.down()  # the database goes away
    waits = []
    for _ in range(3):
        assert deliveries.deliver(rt, delivery_id).startswith("retry in")
        waits.append(_due_now(rt, delivery_id))
    proxy.up()  # and comes back on the same address
    try:
        assert deliveries.deliver(rt, delivery_id) == "delivered"
        _on_schedule(waits)
        logged = _attempts(rt, delivery_id)
        assert [a.outcome for a in logged] == ["retry"] * 3 + ["delivered"]
        with psycopg.connect(pg_target.dsn(), autocommit=True) as conn:
            count = conn.execute(f"SELECT count(*) FROM public.{table}").fetchone()
            assert count == (PER_BATCH,)
            conn.execute(f"DROP TABLE public.{table}")
    finally:
        proxy.down()
    with rt.sessions() as session:
        row = session.get(db.Delivery, delivery_id)
        assert row is not None and (row.status, row.attempts) == (DeliveryStatus.DELIVERED, 4)
