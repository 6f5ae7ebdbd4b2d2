"""Issue #15, the upload path: what a stranger can send costs a bounded amount, and every
malformed request gets a 4xx with a message. Requests go through the ASGI app itself, so a
test sees exactly how much of a body the server read before answering."""

from __future__ import annotations

import asyncio
import functools
import gzip
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest
from sqlalchemy import select

from server import batches, db, imports, uploads
from server.app import create_app
from server.errors import Conflict, Invalid
from server.http.digest import content_digest_header
from server.http.limits import Limiter
from server.runtime import Runtime
from tests.conftest import run_async

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from tests.conftest import BatchFactory, DemoOrgFactory, OrgSetup, RuntimeFactory

BASE = "https://127.0.0.1:8443"
CSV = """Full name,Email
Zyxwab Quorth,zq@example.com
Mirela Okonkwo-Vass,mov@example.com
"""


@pytest.fixture
def store() -> str:
    return "sqlite"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    chunks_read: int
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


async def _call(
    app: Starlette,
    method: str,
    path: str,
    headers: dict[str, str],
    chunks: Sequence[bytes] = (),
    stall: bool = False,
) -> Answer:
    """One request straight into the ASGI app; `stall` leaves the body unfinished."""
    read = 0
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.9", 5000),
        "server": ("127.0.0.1", 8443),
    }
    parts = list(chunks)

    async def receive() -> dict[str, Any]:
        nonlocal read
        if parts:
            read += 1
            chunk = parts.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(parts) or stall}
        if stall:
            await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    started = time.monotonic()
    try:
        await app(scope, receive, send)
    except Exception:  # Starlette re-raises a server error after answering it, for the log
        if not sent:
            raise
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(
        start["status"],
        {k.decode(): v.decode() for k, v in start["headers"]},
        body,
        read,
        time.monotonic() - started,
    )


_run = run_async


def call(app: Starlette, *args: Any, **kwargs: Any) -> Answer:
    answer: Answer = _run(_call(app, *args, **kwargs))
    return answer


@pytest.fixture
def setup(runtime: Runtime, demo_org: DemoOrgFactory) -> OrgSetup:
    return demo_org(runtime, origins=["https://host.example"])


@pytest.fixture
def app(runtime: Runtime) -> Starlette:
    return create_app(runtime)


def _import(runtime: Runtime, setup: OrgSetup) -> imports.CreatedImport:
    return imports.create_import(runtime, setup.org, setup.template.id, "c.csv")


def _auth(token: str, **more: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "origin": BASE, **more}


def _ipc(table: pa.Table, compression: str | None = None) -> bytes:
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


# --- compressed Arrow IPC ------------------------------------------------------------------


def test_a_compressed_batch_is_refused_before_it_inflates(
    runtime: Runtime, setup: OrgSetup
) -> None:
    """A few KB of zstd declaring 200 MB of cells: refused, and pyarrow allocates next to
    nothing (before: the server grew by 1-2.5 GB, then answered 422)."""
    created = _import(runtime, setup)
    cells = pa.array(["a" * 1_000_000] * 200)
    bomb = _ipc(pa.table({"full_name": cells, "email": cells}), "zstd")
    del cells
    assert len(bomb) < 200_000
    pool = pa.default_memory_pool()
    pool.release_unused()
    before = pool.bytes_allocated()
    with pytest.raises(Invalid, match="compressed; send them uncompressed"):
        uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, bomb)
    assert pool.bytes_allocated() - before < 1_000_000


def test_a_compressed_dictionary_batch_is_refused_too(runtime: Runtime, setup: OrgSetup) -> None:
    created = _import(runtime, setup)
    column = pa.array(["x" * 10_000] * 100).dictionary_encode()
    body = _ipc(pa.table({"full_name": column}), "lz4")
    with pytest.raises(Invalid, match="compressed"):
        uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, body)


# --- bodies: credential and size first, bounded reading ------------------------------------


def test_a_body_without_a_valid_token_is_never_read(
    app: Starlette, runtime: Runtime, setup: OrgSetup
) -> None:
    """Before: a 1 GiB body with no token was read whole (9 s, 2 GB) before the 401."""
    created = _import(runtime, setup)
    chunks = [b"x" * 65536] * 100
    for headers in ({"origin": BASE}, _auth("not-the-token")):
        answer = call(app, "PUT", f"/api/v1/imports/{created.import_id}/batches/0", headers, chunks)
        assert answer.status == 401
        assert answer.chunks_read == 0


def test_a_declared_length_past_the_cap_is_refused_unread(
    app: Starlette, runtime: Runtime, setup: OrgSetup
) -> None:
    """Before: Content-Length 10^14 with 3 bytes held the connection for 40 s and more."""
    created = _import(runtime, setup)
    answer = call(
        app,
        "PUT",
        f"/api/v1/imports/{created.import_id}/batches/0",
        _auth(created.upload_token, **{"content-length": str(10**14)}),
        [b"abc"],
        stall=True,
    )
    assert answer.status == 413
    assert answer.chunks_read == 0
    assert "at most 67108864 bytes" in answer.json()["error"]["message"]


def test_a_body_longer_than_declared_stops_at_the_cap(runtime: Runtime, setup: OrgSetup) -> None:
    app = create_app(runtime)
    created = _import(runtime, setup)
    chunks = [b"x" * (1024 * 1024)] * 80  # 80 MiB, no Content-Length
    answer = call(
        app,
        "PUT",
        f"/api/v1/imports/{created.import_id}/batches/0",
        _auth(created.upload_token),
        chunks,
    )
    assert answer.status == 413
    assert answer.chunks_read == 65  # 64 MiB cap: stopped at the first chunk past it


def test_a_slow_body_is_cut_off_by_the_read_timeout(runtime: Runtime, setup: OrgSetup) -> None:
    app = create_app(runtime, Limiter(body_timeout=0.5))
    created = _import(runtime, setup)
    answer = call(
        app,
        "PUT",
        f"/api/v1/imports/{created.import_id}/batches/0",
        _auth(created.upload_token, **{"content-length": "1000"}),
        [b"abc"],
        stall=True,
    )
    assert answer.status == 408
    assert answer.seconds < 5
    assert "did not arrive within" in answer.json()["error"]["message"]


def test_gzip_is_inflated_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
    app: Starlette,
    runtime: Runtime,
    setup: OrgSetup,
    batch_factory: BatchFactory,
) -> None:
    """Before: ten small gzip bodies raised /healthz latency from 6 to 686 ms."""
    on_loop: list[bool] = []
    inflate = uploads.inflate

    def recording(body: bytes, limit: int) -> bytes:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:  # no event loop runs in this thread
            on_loop.append(False)
        return inflate(body, limit)

    monkeypatch.setattr(uploads, "inflate", recording)
    created = _import(runtime, setup)
    body = gzip.compress(batch_factory(CSV))
    digest = content_digest_header(body)
    answer = call(
        app,
        "PUT",
        f"/api/v1/imports/{created.import_id}/batches/0",
        _auth(created.upload_token, **{"content-encoding": "gzip", "content-digest": digest}),
        [body],
    )
    assert answer.status == 200, answer.body
    assert answer.json() == {"seq": 0, "rows": 2}
    assert on_loop == [False]


def test_concurrent_uploads_past_the_limit_are_told_to_come_back(
    runtime: Runtime, setup: OrgSetup
) -> None:
    app = create_app(runtime, Limiter(max_concurrent_uploads=1, body_timeout=10))
    created = _import(runtime, setup)
    path = f"/api/v1/imports/{created.import_id}/batches/0"

    async def both() -> Answer:
        held = asyncio.create_task(
            _call(app, "PUT", path, _auth(created.upload_token), [b"x"], stall=True)
        )
        await asyncio.sleep(0.3)
        second = await _call(app, "PUT", path, _auth(created.upload_token), [b"y"])
        held.cancel()
        return second

    second: Answer = _run(both())
    assert second.status == 503
    assert second.headers["retry-after"] == "2"
    assert second.seconds < 3


def test_rate_limits_answer_429_with_retry_after(runtime: Runtime, setup: OrgSetup) -> None:
    app = create_app(runtime, Limiter(per_address="3/minute"))
    created = _import(runtime, setup)
    path = f"/api/v1/imports/{created.import_id}"
    statuses = [call(app, "GET", path, _auth(created.upload_token)).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    last = call(app, "GET", path, _auth(created.upload_token))
    assert 1 <= int(last.headers["retry-after"]) <= 60
    assert last.json()["error"]["code"] == "rate-limited"


def test_import_creation_is_rate_limited_per_address(runtime: Runtime, setup: OrgSetup) -> None:
    app = create_app(runtime, Limiter(creations_per_address="2/minute"))
    body = json.dumps(
        {"publishableKey": setup.org.publishable_key, "templateId": setup.template.id}
    ).encode()
    statuses = [
        call(app, "POST", "/api/v1/imports", {"origin": BASE}, [body]).status for _ in range(3)
    ]
    assert statuses == [201, 201, 429]


@pytest.mark.parametrize("configured", ["limiter", "settings"])
def test_imports_are_rate_limited_per_publishable_key(
    runtime_factory: RuntimeFactory, demo_org: DemoOrgFactory, configured: str
) -> None:
    """Whatever addresses they come from: the key is public, the organisation's imports are not
    an unbounded table for anyone who reads it."""
    if configured == "limiter":
        rt = runtime_factory()
        app = create_app(rt, Limiter(imports_per_key="2/minute"))
    else:  # LOADBAY_IMPORTS_PER_MINUTE
        rt = runtime_factory(imports_per_minute=2)
        app = create_app(rt)
    setup = demo_org(rt, origins=["https://host.example"])
    body = json.dumps(
        {"publishableKey": setup.org.publishable_key, "templateId": setup.template.id}
    ).encode()
    answers = [call(app, "POST", "/api/v1/imports", {"origin": BASE}, [body]) for _ in range(3)]
    assert [a.status for a in answers] == [201, 201, 429]
    wait = int(answers[2].headers["retry-after"])
    assert 1 <= wait <= 60
    assert answers[2].json()["error"] == {
        "code": "rate-limited",
        "message": f"This importer may start at most 2 imports a minute; try again in {wait} s.",
    }


def _submit(app: Starlette, created: imports.CreatedImport, body: bytes) -> Answer:
    path = f"/api/v1/imports/{created.import_id}/submit"
    return call(app, "POST", path, _auth(created.upload_token), [body])


# --- submit -------------------------------------------------------------------------------


def test_submit_is_bounded_by_what_is_stored(
    app: Starlette, runtime: Runtime, setup: OrgSetup, batch_factory: BatchFactory
) -> None:
    """Before: {"batches": 10000000} allocated a gigabyte and answered with 89 MB."""
    created = _import(runtime, setup)
    uploads.receive_batch(
        runtime, created.import_id, created.upload_token, 0, 2, batch_factory(CSV)
    )
    body = json.dumps({"batches": 10_000_000, "rows": 2}).encode()
    answer = _submit(app, created, body)
    assert answer.status == 422
    assert len(answer.body) < 400
    assert answer.json()["error"]["message"] == (
        "9999999 batch(es) have not arrived (numbers 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and "
        "9999989 more); upload them before submitting."
    )
    assert answer.seconds < 2


def test_submit_is_idempotent(
    runtime: Runtime, setup: OrgSetup, batch_factory: BatchFactory
) -> None:
    created = _import(runtime, setup)
    uploads.receive_batch(
        runtime, created.import_id, created.upload_token, 0, 2, batch_factory(CSV)
    )
    first = imports.submit(runtime, created.import_id, created.upload_token, 1, 2)
    again = imports.submit(runtime, created.import_id, created.upload_token, 1, 2)
    assert first == again


# --- two uploads of one batch number ------------------------------------------------------


def _concurrently(calls: list[Callable[[], int]]) -> list[object]:
    """Each call from its own thread, released at the same moment; what each returned or
    the service error it raised."""
    outcomes: list[object] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(index: int) -> None:
        barrier.wait()
        try:
            outcomes[index] = calls[index]()
        except (Conflict, Invalid) as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def _race(
    runtime: Runtime, created: imports.CreatedImport, bodies: dict[int, bytes]
) -> dict[int, object]:
    """Each body sent as batch 0 at the same moment, keyed by its row count."""
    calls = [
        functools.partial(
            uploads.receive_batch, runtime, created.import_id, created.upload_token, 0, 2, body
        )
        for body in bodies.values()
    ]
    return dict(zip(bodies, _concurrently(calls), strict=True))


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_racing_uploads_of_one_batch_leave_the_winners_rows(
    runtime: Runtime, setup: OrgSetup, batch_factory: BatchFactory
) -> None:
    """Before: the stored blob held the loser's rows under the winner's count and digest in
    14 of 15 trials, and the loser got a 500."""
    ours = "Full name,Email\n" + "".join(f"Ada {i},a{i}@example.com\n" for i in range(300))
    theirs = "Full name,Email\n" + "".join(f"Bob {i},b{i}@example.com\n" for i in range(200))
    bodies = {300: batch_factory(ours), 200: batch_factory(theirs)}
    for _ in range(8):
        created = _import(runtime, setup)
        outcomes = _race(runtime, created, bodies)
        winners = [n for n, outcome in outcomes.items() if outcome == n]
        assert len(winners) == 1, outcomes
        with runtime.sessions() as session:
            imp = session.get(db.Import, created.import_id)
            assert imp is not None
            record = session.scalar(select(db.Batch).where(db.Batch.import_id == imp.id))
            assert record is not None and record.row_count == winners[0]
            table = batches.load_batch(runtime, session, imp, 0)
        assert table.num_rows == winners[0]
        assert table.column("full_name")[0].as_py() == ("Ada 0" if winners[0] == 300 else "Bob 0")
        folder = runtime.settings.blob_dir / setup.org.id / created.import_id
        assert [p.name for p in folder.iterdir()] == [record.blob_key.rsplit("/", 1)[1]]


# --- malformed input: a 4xx with a message, never a 500 ------------------------------------


def _bad_utf8() -> pa.Table:
    data = pa.py_buffer(b"ok\xff\xfe")
    offsets = pa.py_buffer(pa.array([0, 2, 4], pa.int32()).buffers()[1].to_pybytes())
    array = pa.Array.from_buffers(pa.string(), 2, [None, offsets, data])
    return pa.table({"full_name": array, "email": pa.array(["a@example.com", "b@example.com"])})


def _bad_offsets() -> bytes:
    """A stream whose string offsets point past their data (pyarrow refuses to write one,
    so the offsets are patched in the bytes)."""
    good = _ipc(pa.table({"full_name": pa.array(["ab", "cd"])}))
    offsets = (0).to_bytes(4, "little") + (2).to_bytes(4, "little") + (4).to_bytes(4, "little")
    assert good.count(offsets) == 1
    return good.replace(offsets, offsets[:8] + (4000).to_bytes(4, "little"))


def _twice_row() -> pa.Table:
    return pa.Table.from_arrays(
        [pa.array([2, 3]), pa.array([2, 3]), pa.array(["A", "B"]), pa.array(["a@x.io", "b@x.io"])],
        names=["__row", "__row", "full_name", "email"],
    )


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("truncated", lambda: _ipc(pa.table({"full_name": ["A"]}))[:-20], "not an Arrow IPC"),
        ("invalid-utf8", lambda: _ipc(_bad_utf8()), "not an Arrow IPC stream"),
        ("offsets-out-of-range", _bad_offsets, "not an Arrow IPC stream"),
        ("duplicate-row-column", lambda: _ipc(_twice_row()), "names a column twice"),
        ("empty", lambda: b"", "not an Arrow IPC stream"),
    ],
)
def test_malformed_streams_are_refused_with_a_message(
    runtime: Runtime, setup: OrgSetup, name: str, body: Any, message: str
) -> None:
    created = _import(runtime, setup)
    with pytest.raises(Invalid, match=message):
        uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, body())


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("batches/9223372036854775808", "The batch number must be between 0 and 2147483647."),
        ("batches/2147483648", "The batch number must be between 0 and 2147483647."),
        ("batches/0?first_row=9223372036854775808", "first_row must be between 0 and"),
        ("batches/0?first_row=0", "first_row must be between 1 and 2147483647."),
        ("batches/%D9%A3", "The batch number must be a whole number."),
    ],
)
def test_huge_or_odd_numbers_are_refused(
    app: Starlette, runtime: Runtime, setup: OrgSetup, path: str, message: str
) -> None:
    created = _import(runtime, setup)
    answer = call(
        app,
        "PUT",
        f"/api/v1/imports/{created.import_id}/{path}",
        _auth(created.upload_token),
        [b"x"],
    )
    assert answer.status == 422
    assert answer.json()["error"]["message"].startswith(message)


def test_a_row_number_past_the_integer_range_is_refused(runtime: Runtime, setup: OrgSetup) -> None:
    created = _import(runtime, setup)
    table = pa.table({"__row": pa.array([2, 2**40]), "full_name": ["A", "B"]})
    with pytest.raises(Invalid, match="increasing row numbers from 1 to 2147483647"):
        uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, _ipc(table))


def test_deeply_nested_json_is_a_422(app: Starlette, runtime: Runtime, setup: OrgSetup) -> None:
    created = _import(runtime, setup)
    body = b"[" * 100_000 + b"]" * 100_000
    answer = _submit(app, created, body)
    assert answer.status == 422
    assert answer.json()["error"]["message"] == "The request body's JSON is nested too deeply."


# --- headers --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/nowhere", "/api/v1/imports/imp_x"])
def test_every_answer_carries_hsts_nosniff_and_a_csp(app: Starlette, path: str) -> None:
    answer = call(app, "GET", path, {})
    assert answer.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["content-security-policy"].startswith("default-src 'none'")


def test_a_server_error_is_json_with_a_locked_csp(
    monkeypatch: pytest.MonkeyPatch, app: Starlette, runtime: Runtime, setup: OrgSetup
) -> None:
    created = _import(runtime, setup)

    def broken(*args: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(imports, "status", broken)
    answer = call(app, "GET", f"/api/v1/imports/{created.import_id}", _auth(created.upload_token))
    assert answer.status == 500
    assert answer.json()["error"]["code"] == "server-error"
    assert "a bug" not in answer.body.decode()
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_racing_batches_cannot_both_pass_a_unique_rule(
    runtime: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory
) -> None:
    """Before: two batches holding one value of a unique field, sent at the same moment,
    could both be stored (the cross-batch check read before either had written)."""
    schema = {
        "fields": [
            {"name": "full_name", "type": "string"},
            {"name": "email", "type": "string", "constraints": {"unique": True}},
        ]
    }
    setup = demo_org(runtime, schema=schema)
    body = batch_factory("Full name,Email\nAda,same@example.com\n", schema)
    for _ in range(6):
        created = imports.create_import(runtime, setup.org, setup.template.id, "c.csv")
        outcomes = _concurrently(
            [
                functools.partial(
                    uploads.receive_batch,
                    runtime,
                    created.import_id,
                    created.upload_token,
                    seq,
                    2 + seq,
                    body,
                )
                for seq in (0, 1)
            ]
        )
        # One is stored; the other lost the race (Conflict) or, coming second, was refused
        # by the cross-batch rule itself (RowsRejected, an Invalid).
        kinds = sorted(
            "int"
            if isinstance(o, int)
            else "Refused"
            if isinstance(o, (Conflict, Invalid))
            else repr(o)
            for o in outcomes
        )
        assert kinds == ["Refused", "int"], outcomes
        with runtime.sessions() as session:
            stored = session.scalars(
                select(db.Batch).where(db.Batch.import_id == created.import_id)
            ).all()
        assert len(stored) == 1


def test_a_batch_digest_is_keyed_not_a_bare_sha256(
    runtime: Runtime, setup: OrgSetup, batch_factory: BatchFactory
) -> None:
    """Before: the stored per-batch SHA-256 of the body let anyone holding the metadata
    confirm a guessed batch. Now it is an HMAC under a key derived from the data key."""
    import hashlib

    created = _import(runtime, setup)
    body = batch_factory(CSV)
    uploads.receive_batch(runtime, created.import_id, created.upload_token, 0, 2, body)
    with runtime.sessions() as session:
        imp = session.get(db.Import, created.import_id)
        org = session.get(db.Organisation, setup.org.id)
        record = session.scalar(select(db.Batch).where(db.Batch.import_id == created.import_id))
        assert imp is not None and org is not None and record is not None
        assert imp.wrapped_data_key is not None
        key = runtime.vault.data_key(org.id, org.wrapped_key, imp.id, imp.wrapped_data_key)
    assert record.digest != hashlib.sha256(body).hexdigest()
    assert record.digest == batches.content_digest(key, body)
    assert record.digest != batches.content_digest(bytes(32), body)


@pytest.mark.parametrize(
    ("proxies", "expected"),
    [((), (False, None)), (("10.0.0.5",), (True, "10.0.0.5"))],
)
def test_forwarded_addresses_are_believed_only_from_named_proxies(
    monkeypatch: pytest.MonkeyPatch,
    runtime_factory: Any,
    proxies: tuple[str, ...],
    expected: tuple[bool, str | None],
) -> None:
    """Before: uvicorn's default trusted X-Forwarded-For from 127.0.0.1, so anything on the
    machine could pose as any client address to the rate limits and mapping memory."""
    import uvicorn

    from server import cli

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs))
    rt = runtime_factory(trusted_proxies=proxies)
    cli._serve(rt, "127.0.0.1", 0, None, None)
    assert (seen["proxy_headers"], seen["forwarded_allow_ips"]) == expected
