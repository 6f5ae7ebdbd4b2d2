"""The postgresql destination against the real server: typed COPY, created tables, the three
modes (replace watched by a concurrent reader), the ledger, DSN rules and the SSRF guard's
pinned address. (The shared contract is in test_conformance.py.)"""

from __future__ import annotations

import datetime as dt
import math
import threading
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

import destinations
from destinations import DeliveryBatch, DestinationContext, pgcopy
from destinations.base import FinishedImport, WriteResult
from destinations.errors import ConfigurationError, FatalDeliveryError, RetryableDeliveryError
from destinations.network import UnsafeAddressError
from destinations.pgcopy import pg_type
from destinations.postgresql import PostgresDestination
from destinations.testing import sample_batch
from tests.destinations.conftest import LOOPBACK, FakeDNS
from tests.destinations.stores import PostgresHarness

CONTEXT = DestinationContext(policy=LOOPBACK, timeout=5.0)
EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def _make(h: PostgresHarness, **config: Any) -> PostgresDestination:
    made = destinations.create("postgresql", h.config(**config), CONTEXT)
    assert isinstance(made, PostgresDestination)
    return made


def _rows(h: PostgresHarness, order: str = "1") -> list[tuple[Any, ...]]:
    query = f'SELECT * FROM "{h.schema}".rows ORDER BY {order}'
    return [tuple(r) for r in h.admin.execute(query).fetchall()]


def _people(names: list[str], amounts: list[float], seq: int = 0, imp: str = "imp_pg") -> Any:
    table = pa.table({"email": pa.array(names), "amount": pa.array(amounts, pa.float64())})
    return DeliveryBatch(
        imp, seq, 2, "people", table, destination_id="dst_1", primary_key=("email",)
    )


def test_rows_land_with_their_types_in_a_created_table(postgresql_harness: PostgresHarness) -> None:
    h = postgresql_harness
    result = _make(h).write(sample_batch(0))
    assert result.detail == "2 rows copied (append)"
    columns = h.admin.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = 'rows' ORDER BY ordinal_position",
        (h.schema,),
    ).fetchall()
    assert columns == [
        ("name", "text"),
        ("count", "bigint"),
        ("amount", "double precision"),
        ("ok", "boolean"),
        ("day", "date"),
        ("at", "timestamp with time zone"),
    ]
    assert _rows(h, "amount DESC") == [
        (
            "Zyxwab Quorth",
            42,
            19.75,
            True,
            dt.date(2024, 2, 29),
            dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        ),
        (None, None, -0.5, False, None, None),
    ]


def test_empty_text_and_null_stay_apart_and_quotes_survive(
    postgresql_harness: PostgresHarness,
) -> None:
    h = postgresql_harness
    table = pa.table({"note": pa.array(["", None, 'say "hi", then\nleave', "=1+1"])})
    _make(h).write(DeliveryBatch("imp_text", 0, 1, "notes", table))
    got = [r[0] for r in h.admin.execute(f'SELECT note FROM "{h.schema}".rows').fetchall()]
    assert got == ["", None, 'say "hi", then\nleave', "=1+1"]  # a database is not a spreadsheet


def test_types_map_for_created_tables() -> None:
    assert pg_type(pa.timestamp("us")) == "timestamp"
    assert pg_type(pa.int32()) == "integer"
    assert pg_type(pa.decimal128(10, 2)) == "numeric"
    with pytest.raises(FatalDeliveryError, match="no PostgreSQL type"):
        pg_type(pa.list_(pa.int64()))


def test_a_column_with_no_postgresql_type_is_fatal_naming_it(
    postgresql_harness: PostgresHarness,
) -> None:
    table = pa.table({"tags": pa.array([[1, 2]], pa.list_(pa.int64()))})
    with pytest.raises(FatalDeliveryError, match='Column "tags"'):
        _make(postgresql_harness).write(DeliveryBatch("imp_x", 0, 1, "t", table))


def test_upsert_updates_rows_by_the_templates_primary_key(
    postgresql_harness: PostgresHarness,
) -> None:
    h = postgresql_harness
    hook = _make(h, mode="upsert")
    hook.write(_people(["ada@example.com", "alan@example.com"], [1.0, 2.0], seq=0))
    hook.write(_people(["ada@example.com", "grace@example.com"], [10.0, 3.0], seq=1))
    assert _rows(h) == [
        ("ada@example.com", 10.0),
        ("alan@example.com", 2.0),
        ("grace@example.com", 3.0),
    ]
    key = h.admin.execute(
        "SELECT k.column_name FROM information_schema.table_constraints c "
        "JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name) "
        "WHERE c.table_schema = %s AND c.table_name = 'rows' AND c.constraint_type = 'PRIMARY KEY'",
        (h.schema,),
    ).fetchall()
    assert key == [("email",)]


def test_upsert_without_a_primary_key_is_a_configuration_error(
    postgresql_harness: PostgresHarness,
) -> None:
    with pytest.raises(ConfigurationError, match="primaryKey"):
        _make(postgresql_harness, mode="upsert").write(sample_batch(0))
    assert postgresql_harness.effects() == []


def test_a_constraint_violation_is_fatal_and_quotes_no_value(
    postgresql_harness: PostgresHarness,
) -> None:
    h = postgresql_harness
    hook = _make(h, mode="upsert")
    with pytest.raises(FatalDeliveryError) as caught:
        hook.write(_people(["dup@example.com", "dup@example.com"], [1.0, 2.0]))
    assert "dup@example.com" not in str(caught.value)
    assert "21000" in str(caught.value)  # cardinality_violation, by its SQLSTATE
    assert h.effects() == []


def test_replace_is_invisible_until_finish_and_then_whole(
    postgresql_harness: PostgresHarness,
) -> None:
    h = postgresql_harness
    h.admin.execute(f'CREATE TABLE "{h.schema}".rows (email text, amount double precision)')
    old = [(f"old{i}@example.com", float(i)) for i in range(5000)]
    with h.admin.cursor().copy(f'COPY "{h.schema}".rows FROM STDIN') as copy:
        for row in old:
            copy.write_row(row)
    hook = _make(h, mode="replace", create_table=False)
    new = [f"new{i}@example.com" for i in range(20_000)]
    hook.write(_people(new[:10_000], [1.0] * 10_000, seq=0))
    hook.write(_people(new[10_000:], [1.0] * 10_000, seq=1))
    assert len(_rows(h)) == 5000  # staged, not yet visible

    seen: set[int] = set()
    first_read, stop = threading.Event(), threading.Event()

    def read() -> None:  # until it has seen the new table (or is stopped)
        with h.target.connect() as reader:
            while not stop.is_set() and 20_000 not in seen:
                row = reader.execute(f'SELECT count(*) FROM "{h.schema}".rows').fetchone()
                assert row is not None
                seen.add(row[0])
                first_read.set()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert first_read.wait(10)
        done = FinishedImport("imp_pg", "people", "dst_1", "org", (10_000, 10_000))
        assert hook.finish(done) == WriteResult(detail="20000 rows replaced the table's")
        assert hook.finish(done) == WriteResult(detail="the table was replaced already")
        reader.join(10)
    finally:
        stop.set()
        reader.join(10)
    assert seen == {5000, 20_000}, f"a reader saw a half-replaced table: {sorted(seen)}"
    assert sorted(r[0] for r in _rows(h)) == sorted(new)
    stages = h.admin.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename LIKE 'loadbay_stage%%'",
        (h.schema,),
    ).fetchone()
    assert stages == (0,)
    hook.write(_people(new[:10_000], [1.0] * 10_000, seq=0))  # a late redelivery: no effect
    assert len(_rows(h)) == 20_000


def test_finish_does_nothing_in_append_and_upsert(postgresql_harness: PostgresHarness) -> None:
    done = FinishedImport("imp_pg", "people", "dst_1", "org", (2,))
    assert _make(postgresql_harness).finish(done) is None
    assert _make(postgresql_harness, mode="upsert").finish(done) is None


def test_a_missing_table_without_create_table_is_fatal(
    postgresql_harness: PostgresHarness,
) -> None:
    with pytest.raises(FatalDeliveryError, match="42P01"):
        _make(postgresql_harness, create_table=False).write(sample_batch(0))


def test_the_host_is_resolved_once_and_libpq_connects_to_that_address(
    postgresql_harness: PostgresHarness, fake_dns: FakeDNS
) -> None:
    h = postgresql_harness
    resolver = fake_dns({"db.example.test": [["127.0.0.1"]]})
    dsn = f"postgresql://{h.target.user}@db.example.test:{h.target.port}/{h.target.name}"
    _make(h, dsn=dsn).write(sample_batch(0))  # libpq cannot resolve the name: hostaddr it is
    assert resolver.names_asked == ["db.example.test"]
    assert len(h.effects()) == 1


def test_a_name_that_resolves_to_a_private_address_is_refused(
    postgresql_harness: PostgresHarness, fake_dns: FakeDNS
) -> None:
    fake_dns({"db.example.test": [["10.0.0.5"]]})
    hook = _make(postgresql_harness, dsn="postgresql://u@db.example.test/x")
    with pytest.raises(UnsafeAddressError, match="private"):
        hook.check()


def test_plain_connections_are_only_allowed_to_opened_networks() -> None:
    config = {"dsn": "postgresql://u@93.184.215.14/x", "table": "t", "sslmode": "disable"}
    made = destinations.create("postgresql", config, CONTEXT)
    with pytest.raises(ConfigurationError, match="verify-full"):
        made.check()
    secure = destinations.create("postgresql", {**config, "sslmode": "verify-full"}, CONTEXT)
    secure.check()  # a public address: resolves and passes; nothing is sent


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"dsn": "postgresql://u:pw@db.example/x"}, "must not hold the password"),
        ({"dsn": "host=db.example passfile=/etc/shadow"}, "not passfile"),
        ({"dsn": "host=db.example hostaddr=10.0.0.1"}, "not hostaddr"),
        ({"dsn": "host=db.example sslmode=disable"}, "not sslmode"),
        ({"dsn": "host=/var/run/postgresql dbname=x"}, "network host"),
        ({"dsn": "host=a.example,b.example"}, "network host"),
        ({"dsn": "dbname=x"}, "network host"),
        ({"dsn": "not a dsn at all ="}, "not a connection string"),
        ({"dsn": "host=db.example dbname=" + "x" * 1000}, "longer than 1000"),
        ({"mode": "merge"}, "append, upsert, replace"),
        ({"sslmode": "prefer"}, "disable, require, verify-ca, verify-full"),
        ({"table": "a.b.c"}, '"schema.name"'),
        ({"table": "x" * 64}, "63 characters"),
    ],
)
def test_unusable_settings_are_refused(config: dict[str, Any], message: str) -> None:
    base = {"dsn": "postgresql://u@db.example/x", "table": "t"}
    with pytest.raises(ConfigurationError, match=message):
        destinations.create("postgresql", {**base, **config}, CONTEXT)


def test_the_password_is_write_only() -> None:
    spec = destinations.spec("postgresql")
    config = {"dsn": "postgresql://u@db.example/x", "table": "t", "password": "hunter2-long"}
    assert spec.redact(config)["password"] == {"set": True}
    assert "hunter2" not in repr(spec.parse(config))
    assert spec.json_schema()["properties"]["password"]["writeOnly"] is True


def test_decimals_and_times_copy_exactly(postgresql_harness: PostgresHarness) -> None:
    h = postgresql_harness
    table = pa.table(
        {
            "price": pa.array([Decimal("12.34"), None], pa.decimal128(10, 2)),
            "at": pa.array([dt.time(9, 30), None], pa.time64("us")),
        }
    )
    _make(h).write(DeliveryBatch("imp_dec", 0, 1, "t", table))
    assert _rows(h, "price") == [(Decimal("12.34"), dt.time(9, 30)), (None, None)]


def test_binary_copy_round_trips_every_type_it_encodes(postgresql_harness: PostgresHarness) -> None:
    h = postgresql_harness
    at = dt.datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC)
    table = pa.table(
        {
            "t": pa.array(["", None, "Zoë 🦊", "a\tb\\n", "x" * 5000]),
            "lt": pa.array(["1", "2", None, "4", "5"], pa.large_string()),
            "b": pa.array([True, None, False, True, False]),
            "i2": pa.array([-32768, 32767, None, 0, 1], pa.int16()),
            "i4": pa.array([-(2**31), 2**31 - 1, None, 0, 1], pa.int32()),
            "i8": pa.array([-(2**63), 2**63 - 1, None, 0, 1], pa.int64()),
            "f4": pa.array([1.5, None, -0.25, 0.0, 2.0], pa.float32()),
            "f8": pa.array([math.pi, None, float("inf"), -0.0, 1e300], pa.float64()),
            "d": pa.array(
                [
                    dt.date(1970, 1, 1),
                    dt.date(1999, 12, 31),
                    None,
                    dt.date(2000, 1, 1),
                    dt.date(9999, 12, 31),
                ]
            ),
            "ts": pa.array([at, None, EPOCH, at, EPOCH], pa.timestamp("us", tz="UTC")),
            "naive": pa.array(
                [at.replace(tzinfo=None), None, None, None, None], pa.timestamp("ms")
            ),
            "tm": pa.array([dt.time(0, 0), dt.time(23, 59, 59, 999_999), None, None, None]),
        }
    )
    assert pgcopy.supported(table.schema)
    assert not pgcopy.supported(pa.schema([("n", pa.decimal128(5, 2))]))
    _make(h).write(DeliveryBatch("imp_bin", 0, 1, "t", table.slice(1, 4)))  # a sliced batch too
    _make(h).write(DeliveryBatch("imp_bin", 1, 1, "t", table.slice(0, 1)))
    got = sorted(_rows(h), key=repr)
    want = [tuple(row.values()) for row in table.to_pylist()]
    want[0] = (*want[0][:10], dt.datetime(1999, 12, 31, 23, 59, 59, 999_000), want[0][11])
    assert got == sorted(want, key=repr)


def test_two_workers_writing_one_batch_at_once_land_it_once(
    postgresql_harness: PostgresHarness,
) -> None:
    h = postgresql_harness
    _make(h).write(sample_batch(5))  # the table and the ledger exist: the race is on the row
    start = threading.Barrier(2)
    results: list[str] = []

    def deliver() -> None:
        start.wait(10)
        detail = _make(h).write(sample_batch(0)).detail
        results.append(str(detail))

    workers = [threading.Thread(target=deliver) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert sorted(results) == ["2 rows copied (append)", "batch 0 was loaded already"]
    assert h.effects() == [("imp_conformance", 0), ("imp_conformance", 5)]


def test_a_statement_that_outruns_the_statement_timeout_is_retried_not_hung(
    postgresql_harness: PostgresHarness,
) -> None:
    h = postgresql_harness
    _make(h).write(sample_batch(0))  # creates the table
    h.admin.execute(
        f'CREATE FUNCTION "{h.schema}".slow() RETURNS trigger LANGUAGE plpgsql AS '
        "$$ BEGIN PERFORM pg_sleep(5); RETURN NEW; END $$"
    )
    h.admin.execute(
        f'CREATE TRIGGER slow BEFORE INSERT ON "{h.schema}".rows '
        f'FOR EACH STATEMENT EXECUTE FUNCTION "{h.schema}".slow()'
    )
    context = DestinationContext(policy=LOOPBACK, timeout=5.0, statement_timeout=0.5)
    slow = destinations.create("postgresql", h.config(), context)
    with pytest.raises(RetryableDeliveryError, match="57014.*statement timeout"):
        slow.write(sample_batch(1))
    assert len(_rows(h)) == 2  # the cancelled COPY left nothing behind


def test_the_connection_test_connects_and_says_whether_the_table_can_be_written(
    postgresql_harness: PostgresHarness,
) -> None:
    """`probe()` (the API's and the dashboard's "test connection") connects as a delivery
    would and writes nothing; `check()` alone never connects."""
    h = postgresql_harness
    name = h.table
    assert (
        destinations.probe(_make(h)) == f"Connected; {name} will be created by the first delivery."
    )
    with pytest.raises(
        ConfigurationError, match=f'{name} does not exist: create it, or set "create_table"'
    ):
        destinations.probe(_make(h, create_table=False))
    _make(h).write(sample_batch(0))
    assert destinations.probe(_make(h)) == f"Connected; {name} exists and accepts inserts."
    role = f"r_{h.schema}"
    h.admin.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        h.admin.execute(f'GRANT USAGE ON SCHEMA "{h.schema}" TO "{role}"')
        reader = h.target.dsn(user=role)
        with pytest.raises(ConfigurationError, match=f"may not insert into {name}: grant INSERT"):
            destinations.probe(_make(h, dsn=reader))
    finally:
        h.admin.execute(f'DROP OWNED BY "{role}"')
        h.admin.execute(f'DROP ROLE "{role}"')
    assert _rows(h)[0][0] == "Zyxwab Quorth" and len(_rows(h)) == 2  # the probes wrote nothing
