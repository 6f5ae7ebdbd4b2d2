"""PostgreSQL destination (psycopg 3): each batch is one transaction of `COPY` plus a ledger row.

The ledger, `loadbay_ledger (import_id, destination_id, batch)` in the target table's
schema, is written first in the transaction that loads the batch: a redelivered batch
finds its row and changes nothing, and a concurrent duplicate waits on the row and then
finds it. Modes:

- append: `COPY` into the table.
- upsert: `COPY` into a temporary table, then `INSERT ... ON CONFLICT (<primaryKey>) DO
  UPDATE`; the template's primaryKey must be a unique key of the table (create_table makes
  it the primary key).
- replace: batches arrive in separate jobs, so each is copied into a staging table of the
  import (`loadbay_stage_<digest>`, beside the target); once every batch is in, finish()
  replaces the table's rows in one transaction (`DELETE`, `INSERT ... SELECT`, drop the
  staging table, a ledger row for batch -1). Readers see the old rows until that commit and
  the new ones after it, never a mix, and are not blocked (no TRUNCATE, no rename).

The host is resolved once and checked by the SSRF guard, and libpq connects to the checked
address (`hostaddr`) while TLS still verifies the host name. Nothing of the worker's own
PostgreSQL setup is used: no PGPASSWORD, passfile, service file or Kerberos ticket.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import errors as pg_errors
from psycopg import sql

from destinations import pgcopy
from destinations.base import (
    DeliveryBatch,
    DestinationContext,
    DestinationSpec,
    FinishedImport,
    WriteResult,
    setting,
)
from destinations.errors import (
    ConfigurationError,
    DeliveryError,
    EndpointGoneError,
    FatalDeliveryError,
    RetryableDeliveryError,
)
from destinations.network import ALLOW_SETTING, resolve

MODES = ("append", "upsert", "replace")
SSLMODES = ("disable", "require", "verify-ca", "verify-full")
PLAIN = ("disable",)
MAX_DSN = 1000
LEDGER = "loadbay_ledger"
FINISHED = -1  # the ledger's batch number for a finished replace
DSN_KEYS = frozenset({"host", "port", "dbname", "user", "application_name"})
# Retryable: the server is there but busy, restarting or holding a lock for now.
_RETRYABLE = (
    pg_errors.OperationalError,
    pg_errors.LockNotAvailable,
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
    pg_errors.QueryCanceled,
)


@dataclass(frozen=True)
class PostgresConfig:
    dsn: str = setting(
        "Where to connect, without the password: postgresql://user@host:5432/dbname (or "
        "host=... port=... dbname=... user=...)."
    )
    table: str = setting('The target table, "name" or "schema.name".')
    password: str | None = setting("The role's password.", secret=True, default=None)
    mode: str = setting(
        "append (add rows), upsert (insert or update on the template's primaryKey) or "
        "replace (the import's rows replace the table's, in one transaction).",
        default="append",
    )
    create_table: bool = setting(
        "Create the table from the template's types when it does not exist.", default=False
    )
    sslmode: str = setting(
        "TLS: verify-full (default: encrypted, certificate and host name checked), "
        "verify-ca, require, or disable (only to networks the operator opened).",
        default="verify-full",
    )
    ca_pem: str | None = setting(
        "CA certificate(s) in PEM that sign the server's certificate (default: the "
        "system's trust store).",
        default=None,
    )

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigurationError(
                f'The "mode" setting of a postgresql destination must be one of {", ".join(MODES)}.'
            )
        if self.sslmode not in SSLMODES:
            raise ConfigurationError(
                f'The "sslmode" setting of a postgresql destination must be one of '
                f"{', '.join(SSLMODES)}."
            )
        self.target  # noqa: B018 - parses "table" now, so a bad one fails when it is set
        self.conninfo  # noqa: B018 - and "dsn"

    @property
    def target(self) -> tuple[str, str]:
        parts = self.table.split(".")
        if len(parts) > 2 or not all(0 < len(p) < 64 for p in parts):
            raise ConfigurationError(
                'The "table" setting of a postgresql destination must be "name" or '
                '"schema.name", each at most 63 characters.'
            )
        return ("public", parts[0]) if len(parts) == 1 else (parts[0], parts[1])

    @property
    def conninfo(self) -> dict[str, str]:
        if len(self.dsn) > MAX_DSN:
            raise ConfigurationError(
                f'The "dsn" of a postgresql destination is longer than {MAX_DSN} characters.'
            )
        try:
            parsed = psycopg.conninfo.conninfo_to_dict(self.dsn)
        except psycopg.ProgrammingError:
            raise ConfigurationError(
                'The "dsn" setting of a postgresql destination is not a connection string '
                "(postgresql://user@host:5432/dbname)."
            ) from None
        if "password" in parsed:
            raise ConfigurationError(
                'The "dsn" of a postgresql destination must not hold the password; give it '
                'as "password" (it is write-only).'
            )
        unknown = sorted(set(parsed) - DSN_KEYS)
        if unknown:
            raise ConfigurationError(
                f'The "dsn" of a postgresql destination may only set {", ".join(sorted(DSN_KEYS))}'
                f"; not {', '.join(unknown)}."
            )
        host = str(parsed.get("host") or "")
        if not host or host.startswith("/") or "," in host:
            raise ConfigurationError(
                'The "dsn" of a postgresql destination needs one network host name or address.'
            )
        port = str(parsed.get("port") or "5432")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigurationError('The "dsn" of a postgresql destination has a bad port.')
        return {k: str(v) for k, v in parsed.items()} | {"port": port}


@dataclass(frozen=True)
class PostgresDestination:
    config: PostgresConfig
    context: DestinationContext = field(default_factory=DestinationContext)

    @property
    def kind(self) -> str:
        return SPEC.kind

    @property
    def spec(self) -> DestinationSpec[PostgresConfig]:
        return SPEC

    def check(self) -> None:
        """The DSN parses, its host resolves and passes the SSRF policy; nothing is sent."""
        self._address()

    def probe(self) -> str:
        """Connect (TLS and password as a delivery would) and ask whether the table can be
        written, or created when it is missing; nothing is written."""
        schema, table = self.config.target
        with self._connection() as conn:
            found = conn.execute(
                "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text)) IS NOT NULL, "
                "has_schema_privilege(%s, 'CREATE')",
                (schema, table, schema),
            ).fetchone()
            exists, may_create = bool(found and found[0]), bool(found and found[1])
            name = f"{schema}.{table}"
            if exists:
                may_write = conn.execute(
                    "SELECT has_table_privilege(format('%%I.%%I', %s::text, %s::text), 'INSERT')",
                    (schema, table),
                ).fetchone()
                if not (may_write and may_write[0]):
                    raise FatalDeliveryError(
                        f"Connected, but the user may not insert into {name}: grant INSERT."
                    )
                return f"Connected; {name} exists and accepts inserts."
        if not self.config.create_table:
            raise FatalDeliveryError(
                f'Connected, but {name} does not exist: create it, or set "create_table".'
            )
        if not may_create:
            raise FatalDeliveryError(
                f"Connected, but {name} does not exist and the user may not create tables in "
                f"{schema}: grant CREATE on the schema, or create the table."
            )
        return f"Connected; {name} will be created by the first delivery."

    def write(self, batch: DeliveryBatch) -> WriteResult:
        schema, table = self.config.target
        columns = pgcopy.columns(batch.table)
        mode = self.config.mode
        if mode == "upsert" and not batch.primary_key:
            raise ConfigurationError(
                "An upsert needs the template's primaryKey; the template has none. Set one, "
                'or use mode "append".'
            )
        with self._connection() as conn, conn.transaction():
            if not _claim(conn, schema, batch.import_id, batch.destination_id, batch.seq):
                return WriteResult(detail=f"batch {batch.seq} was loaded already")
            if self.config.create_table:
                _create(conn, schema, table, columns, batch.primary_key)
            if mode == "append":
                _copy(conn, sql.Identifier(schema, table), batch.table)
            elif mode == "upsert":
                _upsert(conn, schema, table, batch.table, batch.primary_key)
            else:
                stage = sql.Identifier(schema, _stage_name(batch.import_id, batch.destination_id))
                like = sql.SQL("CREATE TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS)")
                _ensure(conn, stage, like.format(stage, sql.Identifier(schema, table)))
                _copy(conn, stage, batch.table)
        return WriteResult(detail=f"{batch.table.num_rows} rows copied ({mode})")

    def finish(self, done: FinishedImport) -> WriteResult | None:
        """For replace: the staged rows replace the table's, in one transaction."""
        if self.config.mode != "replace":
            return None
        schema, table = self.config.target
        stage = sql.Identifier(schema, _stage_name(done.import_id, done.destination_id))
        target = sql.Identifier(schema, table)
        with self._connection() as conn, conn.transaction():
            if not _claim(conn, schema, done.import_id, done.destination_id, FINISHED):
                return WriteResult(detail="the table was replaced already")
            conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(target))
            conn.execute(sql.SQL("DELETE FROM {}").format(target))
            copied = conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(target, stage))
            conn.execute(sql.SQL("DROP TABLE {}").format(stage))
        return WriteResult(detail=f"{copied.rowcount} rows replaced the table's")

    def _address(self) -> tuple[dict[str, str], str]:
        info = self.config.conninfo
        address = resolve(info["host"], int(info["port"]), self.context.policy)
        if self.config.sslmode in PLAIN and not self.context.policy.allows(address):
            raise ConfigurationError(
                'sslmode "disable" sends rows and the password unencrypted; use verify-full. '
                f"It is only allowed to addresses an operator opened with {ALLOW_SETTING}."
            )
        return info, str(address)

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        info, address = self._address()
        with tempfile.TemporaryDirectory(prefix="loadbay-pg-") as directory:
            params = info | {
                "hostaddr": address,
                "password": self.config.password or "",
                "passfile": os.path.join(directory, "no-passfile"),
                "gssencmode": "disable",
                "sslmode": self.config.sslmode,
                "sslcertmode": "disable",
                "connect_timeout": str(max(2, math.ceil(self.context.timeout))),
                "application_name": info.get("application_name", "loadbay"),
                "options": (
                    f"-c lock_timeout={int(self.context.timeout * 1000)} "
                    f"-c statement_timeout={int(self.context.statement_timeout * 1000)}"
                ),
            }
            if self.config.sslmode.startswith("verify"):
                params["sslrootcert"] = "system"
                if self.config.ca_pem:
                    params["sslrootcert"] = os.path.join(directory, "ca.pem")
                    with open(params["sslrootcert"], "w", encoding="ascii") as out:
                        out.write(self.config.ca_pem)
            try:
                conninfo = psycopg.conninfo.make_conninfo("", **params)
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    yield conn
            except psycopg.Error as exc:
                raise _sorted(exc, info) from None


SPEC = DestinationSpec(
    kind="postgresql",
    title="PostgreSQL table",
    config=PostgresConfig,
    build=PostgresDestination,
)


def _stage_name(import_id: str, destination_id: str) -> str:
    digest = hashlib.sha256(f"{import_id}\0{destination_id}".encode()).hexdigest()[:24]
    return f"loadbay_stage_{digest}"


def _claim(conn: psycopg.Connection[Any], schema: str, import_id: str, dest: str, n: int) -> bool:
    """The ledger row of (import, destination, batch); False when it was there already."""
    ledger = sql.Identifier(schema, LEDGER)
    _ensure(
        conn,
        ledger,
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (import_id text NOT NULL, destination_id text NOT "
            "NULL, batch integer NOT NULL, delivered_at timestamptz NOT NULL DEFAULT now(), "
            "PRIMARY KEY (import_id, destination_id, batch))"
        ).format(ledger),
    )
    inserted = conn.execute(
        sql.SQL(
            "INSERT INTO {} (import_id, destination_id, batch) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING"
        ).format(ledger),
        (import_id, dest, n),
    )
    return inserted.rowcount == 1


def _create(
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    columns: list[tuple[str, str]],
    primary_key: tuple[str, ...],
) -> None:
    parts = [sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in columns]
    if primary_key:
        parts.append(
            sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, primary_key)))
        )
    target = sql.Identifier(schema, table)
    _ensure(
        conn,
        target,
        sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(target, sql.SQL(", ").join(parts)),
    )


def _ensure(conn: psycopg.Connection[Any], name: sql.Identifier, create: sql.Composed) -> None:
    """Create a table unless it exists. Two transactions creating one table at once would
    clash in the catalog, so a creator first takes a transaction lock on the name."""
    qualified = name.as_string(conn)
    found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified,)).fetchone()
    if found is not None and found[0]:
        return
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (qualified,))
    conn.execute(create)


def _copy(conn: psycopg.Connection[Any], target: sql.Identifier, table: pa.Table) -> None:
    """COPY the rows in binary (see pgcopy.py) when every column has a binary encoder here,
    else as CSV that Arrow encodes (C++): strings always quoted, so an unquoted empty field
    is NULL and "" an empty string."""
    names = sql.SQL(", ").join(map(sql.Identifier, table.column_names))
    binary = pgcopy.supported(table.schema)
    form = sql.SQL("binary" if binary else "csv")
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {})").format(target, names, form)
    with conn.cursor().copy(statement) as copy:
        if binary:
            copy.write(pgcopy.HEADER)
        for chunk in table.to_batches(max_chunksize=65_536):
            if binary:
                copy.write(pgcopy.encode(chunk))
            else:
                sink = pa.BufferOutputStream()
                pacsv.write_csv(chunk, sink, options)
                copy.write(sink.getvalue().to_pybytes())
        if binary:
            copy.write(pgcopy.TRAILER)


def _upsert(
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    rows: pa.Table,
    primary_key: tuple[str, ...],
) -> None:
    temp = sql.Identifier("loadbay_upsert")
    target = sql.Identifier(schema, table)
    conn.execute(
        sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(
            temp, target
        )
    )
    _copy(conn, temp, rows)
    names = [sql.Identifier(n) for n in rows.column_names]
    updates = [
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(n), sql.Identifier(n))
        for n in rows.column_names
        if n not in primary_key
    ]
    action = (
        sql.SQL("DO UPDATE SET {}").format(sql.SQL(", ").join(updates))
        if updates
        else sql.SQL("DO NOTHING")
    )
    conn.execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) {}").format(
            target,
            sql.SQL(", ").join(names),
            sql.SQL(", ").join(names),
            temp,
            sql.SQL(", ").join(map(sql.Identifier, primary_key)),
            action,
        )
    )


def _sorted(exc: psycopg.Error, info: dict[str, str]) -> DeliveryError:
    """The error a retry policy needs, with a message that names no value: the server's
    own text may quote a row (a constraint violation's DETAIL), so only its SQLSTATE and
    primary message are kept, and never a secret."""
    where = f"{info['host']}:{info['port']}/{info.get('dbname', '')}"
    state = getattr(exc, "sqlstate", None)
    diag = getattr(exc, "diag", None)
    primary = (getattr(diag, "message_primary", None) or "").split("\n")[0][:200]
    said = f"{where} answered {state}: {primary}" if state else f"{where}: {_first_line(exc)}"
    if state is None:  # libpq gives no SQLSTATE for a failed connection: its words tell
        return _connection_failure(said, _first_line(exc))
    if isinstance(exc, pg_errors.InvalidCatalogName):
        return EndpointGoneError(f"{said}. The database is gone; the destination is disabled.")
    if isinstance(exc, pg_errors.TooManyConnections):
        return RetryableDeliveryError(f"{said}. It will be retried.", retry_after=60.0)
    if isinstance(exc, _RETRYABLE):
        return RetryableDeliveryError(f"{said}. It will be retried.")
    return FatalDeliveryError(f"{said}. Retrying cannot help; fix the settings or the table.")


_GONE = re.compile(r'FATAL:\s+database ".*" does not exist')
_BUSY = re.compile(r"too many connections|remaining connection slots")
_REFUSED = re.compile(
    r"password authentication failed|no pg_hba\.conf entry|role \".*\" does not exist|"
    r"certificate|SSL|permission denied"
)


def _connection_failure(said: str, text: str) -> DeliveryError:
    """A failed connection, sorted by the server's (or libpq's) English message."""
    if _GONE.search(text):
        return EndpointGoneError(f"{said}. The database is gone; the destination is disabled.")
    if _BUSY.search(text):
        return RetryableDeliveryError(f"{said}. It will be retried.", retry_after=60.0)
    if _REFUSED.search(text):
        return FatalDeliveryError(f"{said}. Retrying cannot help; fix the settings.")
    return RetryableDeliveryError(f"{said}. It will be retried.")


def _first_line(exc: BaseException) -> str:
    """A connection error's own words (libpq's), first line only; no parameters in it."""
    return str(exc).strip().split("\n")[0][:300]
