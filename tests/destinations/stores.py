"""Harnesses for the s3 and postgresql kinds: moto's S3 server (ThreadedMotoServer, over
HTTP with boto3) and the real PostgreSQL server, each test in a bucket or schema of its
own. Failures the stores cannot be made to produce on demand (a 5xx, throttling, a hang)
come from the loopback receiver standing in as the S3 endpoint."""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import pytest
from sqlalchemy.engine import make_url

from destinations import DestinationContext
from destinations.testing import Failure, Setup
from tests.conftest import PG_ADMIN_URL
from tests.destinations.conftest import LOOPBACK, Receiver, Reply, closed_port

KEY_ID, SECRET_KEY = "loadbay-test", "moto-secret-" + "x" * 20


def s3_client(url: str, service: str = "s3") -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET_KEY,
    )


class S3Harness:
    """An effect is an object in the test's bucket, by (key, ETag): an overwrite with the
    same bytes is the same effect."""

    kind = "s3"

    def __init__(self, moto: str, receiver: Receiver) -> None:
        self.moto, self.receiver = moto, receiver
        self.bucket = f"loadbay-{secrets.token_hex(6)}"
        self.client = s3_client(moto)
        self.client.create_bucket(Bucket=self.bucket)
        self.context = DestinationContext(policy=LOOPBACK, timeout=5.0)

    def config(self, **overrides: Any) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "region": "us-east-1",
            "endpoint_url": self.moto,
            "sse": "AES256",
            "access_key_id": KEY_ID,
            "secret_access_key": SECRET_KEY,
        } | overrides

    def working(self) -> Setup:
        return Setup(self.config(), self.context)

    def failing(self, failure: Failure) -> Setup | None:
        if failure is Failure.CONNECTION_REFUSED:
            return Setup(
                self.config(endpoint_url=f"http://127.0.0.1:{closed_port()}"), self.context
            )
        if failure is Failure.GONE:
            return Setup(self.config(bucket=f"gone-{secrets.token_hex(6)}"), self.context)
        stand_in = self.config(endpoint_url=self.receiver.origin)
        if failure is Failure.TIMEOUT:
            self.receiver.hold_next()
            return Setup(stand_in, DestinationContext(policy=LOOPBACK, timeout=0.3))
        status = {Failure.SERVER_ERROR: 500, Failure.RATE_LIMITED: 503, Failure.REJECTED: 403}
        self.receiver.answer(Reply(status[failure]))
        return Setup(stand_in, self.context)

    def refused(self) -> Setup:
        return Setup(self.config(), DestinationContext())

    def effects(self) -> list[Any]:
        listed = self.client.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        return sorted((o["Key"], o["ETag"]) for o in listed)


@pytest.fixture
def s3_harness(moto_url: str, receiver: Receiver) -> S3Harness:
    return S3Harness(moto_url, receiver)


# --- PostgreSQL ---------------------------------------------------------------------------------


class Target:
    """The session's target database, and two roles: one allowed no connection, one allowed
    nothing but to connect."""

    def __init__(self) -> None:
        suffix = secrets.token_hex(5)
        self.name = f"loadbay_dest_{suffix}"
        self.limited, self.powerless = f"loadbay_limited_{suffix}", f"loadbay_ro_{suffix}"
        url = make_url(PG_ADMIN_URL)
        self.host, self.port = url.host or "127.0.0.1", url.port or 5432
        self.user = url.username or "postgres"

    def dsn(self, user: str | None = None, dbname: str | None = None) -> str:
        return f"postgresql://{user or self.user}@{self.host}:{self.port}/{dbname or self.name}"

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn(), autocommit=True)


@pytest.fixture(scope="session")
def pg_target() -> Iterator[Target]:
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    target = Target()
    with admin:
        admin.execute(f'CREATE DATABASE "{target.name}"')
        admin.execute(f'CREATE ROLE "{target.limited}" LOGIN CONNECTION LIMIT 0')
        admin.execute(f'CREATE ROLE "{target.powerless}" LOGIN')
        try:
            yield target
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{target.name}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{target.limited}"')
            admin.execute(f'DROP ROLE IF EXISTS "{target.powerless}"')


class PostgresHarness:
    """An effect is a ledger row of the test's schema; a batch whose rows landed twice (or
    not at all) adds an entry naming the table's row count."""

    kind = "postgresql"
    ROWS_PER_BATCH = 2  # sample_batch's

    def __init__(self, target: Target) -> None:
        self.target = target
        self.schema = f"s_{secrets.token_hex(5)}"
        self.admin = target.connect()
        self.admin.execute(f'CREATE SCHEMA "{self.schema}"')
        self.context = DestinationContext(policy=LOOPBACK, timeout=5.0)
        self.held: list[psycopg.Connection[Any]] = []

    @property
    def table(self) -> str:
        return f"{self.schema}.rows"

    def config(self, **overrides: Any) -> dict[str, Any]:
        return {
            "dsn": self.target.dsn(),
            "table": self.table,
            "password": "unused-on-trust-" + self.schema,
            "mode": "append",
            "create_table": True,
            "sslmode": "disable",
        } | overrides

    def working(self) -> Setup:
        return Setup(self.config(), self.context)

    def failing(self, failure: Failure) -> Setup | None:
        t = self.target
        if failure is Failure.CONNECTION_REFUSED:
            return Setup(
                self.config(dsn=f"postgresql://u@127.0.0.1:{closed_port()}/x"), self.context
            )
        if failure is Failure.TIMEOUT:
            port = self._silent_listener()
            quick = DestinationContext(policy=LOOPBACK, timeout=1.0)
            return Setup(self.config(dsn=f"postgresql://u@127.0.0.1:{port}/x"), quick)
        if failure is Failure.RATE_LIMITED:
            return Setup(self.config(dsn=t.dsn(user=t.limited)), self.context)
        if failure is Failure.REJECTED:
            return Setup(self.config(dsn=t.dsn(user=t.powerless)), self.context)
        if failure is Failure.GONE:
            return Setup(self.config(dsn=t.dsn(dbname=f"gone_{self.schema}")), self.context)
        # SERVER_ERROR: another session holds the table; the write gives up at lock_timeout.
        self.admin.execute(f'CREATE TABLE "{self.schema}".rows (name text)')
        holder = t.connect()
        holder.execute("BEGIN")
        holder.execute(f'LOCK TABLE "{self.schema}".rows IN ACCESS EXCLUSIVE MODE')
        self.held.append(holder)
        return Setup(self.config(), DestinationContext(policy=LOOPBACK, timeout=1.0))

    def _silent_listener(self) -> int:
        """A port that accepts connections and never says a word."""
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        accepted: list[socket.socket] = []

        def accept() -> None:
            try:
                while True:
                    accepted.append(listener.accept()[0])
            except OSError:
                pass

        threading.Thread(target=accept, daemon=True).start()
        self.sockets = [listener, *accepted]
        return int(listener.getsockname()[1])

    def refused(self) -> Setup:
        return Setup(self.config(), DestinationContext())

    def effects(self) -> list[Any]:
        ledger = self.admin.execute(
            "SELECT to_regclass(%s) IS NOT NULL", (f"{self.schema}.loadbay_ledger",)
        ).fetchone()
        if ledger is None or not ledger[0]:
            return []
        landed: list[Any] = sorted(
            self.admin.execute(
                f'SELECT import_id, batch FROM "{self.schema}".loadbay_ledger'
            ).fetchall()
        )
        rows = self.admin.execute(f'SELECT count(*) FROM "{self.schema}".rows').fetchone()
        count = rows[0] if rows else 0
        if count != self.ROWS_PER_BATCH * len(landed):
            landed.append(("rows in the table", count))
        return landed

    def close(self) -> None:
        for held in self.held:
            held.close()
        for sock in getattr(self, "sockets", []):
            sock.close()
        self.admin.close()


@pytest.fixture
def postgresql_harness(pg_target: Target) -> Iterator[PostgresHarness]:
    harness = PostgresHarness(pg_target)
    yield harness
    harness.close()
