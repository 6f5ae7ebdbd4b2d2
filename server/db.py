"""Metadata: organisations, templates, destinations, imports and their deliveries.

Only metadata lives here; cell values never do (they are sealed blobs). SQLite by
default, PostgreSQL in production via DATABASE_URL; the schema comes from Alembic.
"""

from __future__ import annotations

import datetime as dt
import enum
import os
import secrets
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import DateTime, TypeDecorator

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_CONCURRENCY = 4  # attempts sending to one destination at once, unless it says otherwise


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stored as UTC, read back timezone-aware (SQLite forgets the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return value.astimezone(dt.UTC) if value is not None else None

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


class Organisation(Base):
    __tablename__ = "organisations"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    publishable_key: Mapped[str] = mapped_column(String(64), unique=True)
    allowed_origins: Mapped[list[str]]
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Settings a client changes over the management API (None: the operator's default).
    retention_days: Mapped[int | None] = mapped_column(default=None)
    invalid_row_policy: Mapped[str] = mapped_column(String(20), default="reject")
    # An AWS KMS key (ARN): set, the organisation's new data keys come from KMS (server.kms).
    kms_key_arn: Mapped[str | None] = mapped_column(String(2048), default=None)
    # The publishable key before the last rotation, still opening the importer until
    # `previous_key_expires_at` (a grace period: server.orgs.rotate_publishable_key).
    previous_publishable_key: Mapped[str | None] = mapped_column(
        String(64), unique=True, default=None
    )
    previous_key_expires_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class OrganisationTombstone(Base):
    """What is left of a deleted organisation (`loadbay org delete`): its id, a SHA-256 of
    its name, when and by whom, and counts of what was shredded. Nothing else."""

    __tablename__ = "organisation_tombstones"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    deleted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(120))
    detail: Mapped[dict[str, Any]]


class SecretKey(Base):
    """An organisation's secret key for the management API. Its SHA-256 authenticates it
    (the key is 256 random bits, so a plain digest is enough); `sealed_secret` verifies
    signed end-user identities; `hint` is its last four characters, to tell keys apart."""

    __tablename__ = "secret_keys"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # The key sealed under the organisation key (server.identity): what verifies the
    # end-user identities the client's backend signs with it. None for keys made before 0018.
    sealed_secret: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)


class IdempotencyKey(Base):
    """A POST's Idempotency-Key (its SHA-256), kept 24 h with a digest of what was asked
    and the answer given; `status` is None while the first request is under way."""

    __tablename__ = "idempotency_keys"
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(default=None)
    body: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class Template(Base):
    __tablename__ = "templates"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    schema: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1)  # the newest of its TemplateVersions
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # The dashboard editor's unsaved changes: one "Save" makes them one new version.
    draft: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # The version the draft was begun on: a version made since (a PUT) refuses the Save.
    draft_base: Mapped[int | None] = mapped_column(default=None)


class TemplateVersion(Base):
    """Every schema a template has had: a PUT adds one; an import names the one it used."""

    __tablename__ = "template_versions"
    __table_args__ = (UniqueConstraint("template_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    template_id: Mapped[str] = mapped_column(ForeignKey("templates.id"), index=True)
    version: Mapped[int]
    schema: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Destination(Base):
    __tablename__ = "destinations"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    template_id: Mapped[str] = mapped_column(ForeignKey("templates.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    sealed_config: Mapped[bytes] = mapped_column(LargeBinary)
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    # How many attempts may send to it at once (server.deliveries).
    max_concurrency: Mapped[int] = mapped_column(default=DEFAULT_CONCURRENCY)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class Import(Base):
    __tablename__ = "imports"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    template_id: Mapped[str] = mapped_column(ForeignKey("templates.id"))
    template_version: Mapped[int | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(20), default="uploading")
    file_name: Mapped[str] = mapped_column(String(300))
    token_hash: Mapped[str] = mapped_column(String(64))
    wrapped_data_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    row_count: Mapped[int] = mapped_column(default=0)
    batch_count: Mapped[int] = mapped_column(default=0)
    mapping_remembered: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    # The retention it was created under, in days; 0 is passthrough (nothing stored, its
    # data key and sealed batches live in Redis only). None: created before 0013 (stored).
    retention_days: Mapped[int | None] = mapped_column(default=None)
    # The signed end-user identity it was made under ({"user", "metadata", "key_id"}), if any.
    identity: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class Batch(Base):
    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("import_id", "seq"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    import_id: Mapped[str] = mapped_column(ForeignKey("imports.id"), index=True)
    seq: Mapped[int]
    first_row: Mapped[int]
    row_count: Mapped[int]
    left_out: Mapped[int] = mapped_column(default=0, server_default="0")  # invalid rows left out
    digest: Mapped[str] = mapped_column(String(64))  # batches.content_digest of the body
    blob_key: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class UniqueValue(Base):
    """A value of a unique field (or a primary key) some earlier batch of an import held.

    `digest` is a keyed HMAC of the value under a key derived from the import's data key,
    never the value itself; rows go when the import's data is deleted.
    """

    __tablename__ = "unique_values"
    import_id: Mapped[str] = mapped_column(ForeignKey("imports.id"), primary_key=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)
    first_row: Mapped[int]


class UniqueSet(Base):
    """The values of unique fields (and primary keys) one batch of an import added: keyed
    digests (16 bytes each, sorted) and, in the same order, the row each first appeared in
    (uint32, little-endian); never the values. Gone with the import's data."""

    __tablename__ = "unique_sets"
    import_id: Mapped[str] = mapped_column(ForeignKey("imports.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True)
    digests: Mapped[bytes] = mapped_column(LargeBinary())
    first_rows: Mapped[bytes] = mapped_column(LargeBinary())


class Delivery(Base):
    """One (batch, destination) pair and where its delivery stands.

    `attempts` counts every attempt that was claimed, including one whose worker died;
    `next_attempt_at` is when the next may start (None: now); `claimed_at` is when the
    attempt under way was claimed (status `sending`), so the sweeper can tell a dead one.
    """

    class Status(enum.StrEnum):
        PENDING = "pending"
        SENDING = "sending"
        DELIVERED = "delivered"
        FAILED = "failed"

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("import_id", "seq", "destination_id"),
        Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    import_id: Mapped[str] = mapped_column(ForeignKey("imports.id"), index=True)
    seq: Mapped[int]
    destination_id: Mapped[str] = mapped_column(ForeignKey("destinations.id"))
    status: Mapped[str] = mapped_column(String(20), default=Status.PENDING.value)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(1000), default=None)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class DeliveryAttempt(Base):
    """One attempt at a delivery and how it ended: metadata only, never a cell value.

    `outcome` is delivered, retry, failed or disabled; `status_code` and `answer` are what
    the receiver said, when it said anything (`answer` is its own words, cut to 1,000
    characters); `duration_ms` is how long the destination took (write, and finish for
    the last batch); `error` is the safe message loadbay recorded.
    """

    class Outcome(enum.StrEnum):
        DELIVERED = "delivered"
        RETRY = "retry"
        FAILED = "failed"
        DISABLED = "disabled"

    __tablename__ = "delivery_attempts"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime]
    outcome: Mapped[str] = mapped_column(String(20))
    status_code: Mapped[int | None] = mapped_column(default=None)
    answer: Mapped[str | None] = mapped_column(String(1000), default=None)
    error: Mapped[str | None] = mapped_column(String(1000), default=None)
    duration_ms: Mapped[int | None] = mapped_column(default=None)


class Event(Base):
    """Something that happened to an organisation's data (`import.deleted`,
    `import.expired`), who did it (`cli`, `retention`, `api-key:<key id>`) and when;
    `detail` is metadata only."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_org_id_at", "org_id", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    import_id: Mapped[str | None] = mapped_column(ForeignKey("imports.id"), index=True)
    kind: Mapped[str] = mapped_column(String(60))
    actor: Mapped[str] = mapped_column(String(120))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    detail: Mapped[dict[str, Any]]


class MappingMemory(Base):
    """One client address's confirmation of a column mapping for one header layout.

    Nothing here is readable: `signature` (the layout), `header_digests` (each header, to
    compare layouts), the keys of `mapping` ({label digest: field name}), `variant` (the
    mapping) and `address` (who confirmed it) are HMAC-SHA256 digests under the template's
    mapping key (`Vault.mapping_key`), so a dictionary of likely labels or addresses cannot
    be tested against them without the organisation key. The rows of one memory (template,
    signature, variant) count its distinct addresses; `confirmed_at` is the last time any
    of them confirmed it (retention deletes memories not confirmed for its period).
    """

    __tablename__ = "mapping_memories"
    __table_args__ = (
        UniqueConstraint(
            "template_id", "signature", "variant", "address", name="uq_mapping_memories_vote"
        ),
        Index("ix_mapping_memories_confirmed_at", "confirmed_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    template_id: Mapped[str] = mapped_column(ForeignKey("templates.id"))
    signature: Mapped[str] = mapped_column(String(64))
    variant: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    header_digests: Mapped[list[str]]
    mapping: Mapped[dict[str, Any]]
    confirmed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def make_engine(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        _private_sqlite_file(url)
        event.listen(engine, "connect", _sqlite_secure_delete)
    return engine


def _private_sqlite_file(url: str) -> None:
    """The metadata file is created 0600 by us, not left to the umask of whoever started it
    (and its journal inherits the mode)."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)


def _sqlite_secure_delete(connection: Any, record: Any) -> None:
    """Deleted rows (wrapped data keys above all) are overwritten with zeros, set by loadbay
    rather than left to how SQLite was built."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA secure_delete = ON")
    cursor.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database to the newest schema (Alembic `upgrade head`) or to `revision`."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, revision)
