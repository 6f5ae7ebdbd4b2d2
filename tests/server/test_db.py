"""The metadata schema: Alembic migrations on SQLite and PostgreSQL, timezone-aware times."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from server import db
from server.runtime import Runtime

TABLES = {
    "organisations",
    "templates",
    "destinations",
    "imports",
    "batches",
    "deliveries",
    "mapping_memories",
    "unique_values",
    "unique_sets",
    "delivery_attempts",
    "events",
    "secret_keys",
    "idempotency_keys",
    "template_versions",
    "organisation_tombstones",
    # accounts (server/models/accounts.py)
    "users",
    "memberships",
    "invitations",
    "user_sessions",
    "recovery_codes",
    "sign_in_failures",
    "org_security",
    "audit_entries",
    "audit_head",
}


@pytest.fixture
def empty_database_url(store: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database with nothing in it yet: a new SQLite file, or a new PostgreSQL schema."""
    if store == "sqlite":
        yield f"sqlite:///{tmp_path / 'sub' / 'fresh.db'}"
        return
    pg = request.getfixturevalue("postgres_database")
    schema = f"migrate_{secrets.token_hex(4)}"
    with pg.connect() as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{pg.url}?options=-csearch_path%3D{schema}"
    finally:
        with pg.connect() as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_migrations_create_every_table(empty_database_url: str) -> None:
    db.migrate(empty_database_url)
    engine = create_engine(empty_database_url)
    try:
        inspector = inspect(engine)
        assert set(inspector.get_table_names()) == TABLES | {"alembic_version"}
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        assert [version] == ScriptDirectory(str(db.MIGRATIONS)).get_heads()  # one head, reached
        columns = {c["name"] for c in inspector.get_columns("deliveries")}
        assert columns == {
            "id",
            "import_id",
            "seq",
            "destination_id",
            "status",
            "attempts",
            "last_error",
            "delivered_at",
            "claimed_at",
            "next_attempt_at",
        }
        attempt_columns = {c["name"] for c in inspector.get_columns("delivery_attempts")}
        assert "duration_ms" in attempt_columns
        assert "left_out" in {c["name"] for c in inspector.get_columns("batches")}
        uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("batches")}
        assert ("import_id", "seq") in uniques
    finally:
        engine.dispose()


def test_migrating_twice_is_harmless(empty_database_url: str) -> None:
    db.migrate(empty_database_url)
    db.migrate(empty_database_url)
    engine = create_engine(empty_database_url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
    finally:
        engine.dispose()


def test_the_schema_matches_the_models(runtime: Runtime) -> None:
    """Alembic's autogenerate finds nothing missing: migrations and models agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = runtime.sessions.kw["bind"]
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.Base.metadata)
    assert diff == []


def test_datetimes_come_back_timezone_aware_in_utc(runtime: Runtime) -> None:
    berlin_noon = dt.datetime(
        2024, 7, 1, 12, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))
    )
    with runtime.sessions.begin() as session:
        session.add(
            db.Organisation(
                id="org_tz",
                name="TZ",
                publishable_key="pk_tz",
                allowed_origins=["https://a.example"],
                wrapped_key=b"k",
                created_at=berlin_noon,
            )
        )
    with runtime.sessions() as session:
        org = session.get(db.Organisation, "org_tz")
        assert org is not None
        assert org.created_at.tzinfo is not None
        assert org.created_at.utcoffset() == dt.timedelta(0)
        assert org.created_at == dt.datetime(2024, 7, 1, 10, 0, 0, 123456, tzinfo=dt.UTC)
        assert org.allowed_origins == ["https://a.example"]


def test_default_timestamps_are_now_in_utc(runtime: Runtime) -> None:
    before = dt.datetime.now(dt.UTC)
    with runtime.sessions.begin() as session:
        session.add(
            db.Organisation(
                id="org_now",
                name="Now",
                publishable_key="pk_now",
                allowed_origins=[],
                wrapped_key=b"k",
            )
        )
    after = dt.datetime.now(dt.UTC)
    with runtime.sessions() as session:
        org = session.get(db.Organisation, "org_now")
        assert org is not None
        assert org.created_at.utcoffset() == dt.timedelta(0)
        assert before <= org.created_at <= after


def test_utc_datetime_type_converts_both_ways() -> None:
    column = db.UTCDateTime()
    plus_five = dt.datetime(2024, 1, 1, 5, 0, tzinfo=dt.timezone(dt.timedelta(hours=5)))
    assert column.process_bind_param(plus_five, None) == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert column.process_bind_param(None, None) is None
    naive = dt.datetime(2024, 1, 1, 0, 0)
    assert column.process_result_value(naive, None) == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert column.process_result_value(plus_five, None) == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert column.process_result_value(None, None) is None


def test_new_ids_are_prefixed_and_unique() -> None:
    ids = {db.new_id("imp") for _ in range(100)}
    assert len(ids) == 100
    assert all(i.startswith("imp_") and len(i) == 28 for i in ids)
