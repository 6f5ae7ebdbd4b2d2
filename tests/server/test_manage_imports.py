"""The management API's imports and deliveries: listing with filters, an import's detail
(counts, template version, the server's rejections, timings), downloads in four formats,
deletion and 410 after it or after expiry, every delivery attempt and retries; every route
walked with every wrong credential; the hourly Idempotency-Key purge."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq
import pytest
from python_calamine import CalamineWorkbook
from sqlalchemy import select, update
from starlette.testclient import TestClient

from server import db, deliveries, events, exports, import_views, imports, jobs, keys, orgs, uploads
from server.app import create_app
from server.errors import Invalid
from server.manage import idempotency, import_routes, schemas
from server.manage import routes as manage_routes
from server.runtime import Runtime
from tests.conftest import CONTACTS_SCHEMA, run_async

if TYPE_CHECKING:
    from tests.conftest import BatchFactory, DemoOrgFactory, OrgSetup, Receiver, RuntimeFactory

BASE = "https://127.0.0.1:8443"
PROBLEM = "application/problem+json"
CSV = (
    "Full name,Email,Country\nAda Lovelace,ada@example.com,GB\n=Grace Hopper,grace@example.com,US\n"
)
BAD_CSV = "Full name,Email,Country\n,a@example.com,XX\n,b@example.com,GB\nC,c@example.com,YY\n"


@dataclass
class World:
    rt: Runtime
    setup: OrgSetup
    secret: str
    key_id: str
    api: TestClient
    batch_factory: BatchFactory

    def stored(self, name: str = "contacts.csv", *, submit: bool = True) -> tuple[str, str]:
        """An import of CSV's two rows in two batches of one; (import id, upload token)."""
        created = imports.create_import(self.rt, self.setup.org, self.setup.template.id, name)
        for seq in range(2):
            body = self.batch_factory(CSV, offset=seq, length=1)
            uploads.receive_batch(
                self.rt, created.import_id, created.upload_token, seq, 2 + seq, body
            )
        if submit:
            imports.submit(self.rt, created.import_id, created.upload_token, 2, 2)
        return created.import_id, created.upload_token

    def deliveries_of(self, import_id: str) -> list[int]:
        with self.rt.sessions() as session:
            return list(
                session.scalars(
                    select(db.Delivery.id)
                    .where(db.Delivery.import_id == import_id)
                    .order_by(db.Delivery.id)
                )
            )


@pytest.fixture
def store() -> str:
    return "sqlite"


@pytest.fixture
def world(
    runtime_factory: RuntimeFactory,
    demo_org: DemoOrgFactory,
    batch_factory: BatchFactory,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[World]:
    rt = runtime_factory(allow_private_networks=("127.0.0.0/8",))
    monkeypatch.setattr(jobs, "_runtime", lambda: rt)
    setup = demo_org(rt, webhook_urls=[receiver.url])
    created = keys.create_key(rt, setup.org.id, "tests")
    with TestClient(create_app(rt), base_url=BASE) as client:
        client.headers["authorization"] = f"Bearer {created.secret}"
        yield World(rt, setup, created.secret, created.key.id, client, batch_factory)


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"], body["type"]) == (
        status,
        code,
        f"urn:loadbay:problem:{code}",
    )
    assert body["detail"]
    return body


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


# --- listing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_imports_are_listed_by_status_template_and_time(
    world: World, receiver: Receiver, demo_org: DemoOrgFactory
) -> None:
    rt, api = world.rt, world.api
    uploading, _ = world.stored(submit=False)
    delivering, _ = world.stored()
    delivered, _ = world.stored()
    for delivery_id in world.deliveries_of(delivered):
        assert deliveries.deliver(rt, delivery_id) == "delivered"
    failed, _ = world.stored()
    receiver.answer(400)
    assert deliveries.deliver(rt, world.deliveries_of(failed)[0]) == "failed"
    deleted, _ = world.stored()
    assert api.delete(f"/api/v1/imports/{deleted}").status_code == 200
    other_template = orgs.create_template(rt, world.setup.org, CONTACTS_SCHEMA)
    made = imports.create_import(rt, world.setup.org, other_template.id, "other.csv")
    imports.submit(rt, made.import_id, made.upload_token, 0, 0)  # no destination: complete
    demo_org(rt)  # another organisation's imports never show
    with rt.sessions.begin() as session:
        session.execute(
            update(db.Import)
            .where(db.Import.id == uploading)
            .values(created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        )

    everything = _ids(api.get("/api/v1/imports"))
    assert everything == [made.import_id, deleted, failed, delivered, delivering, uploading]
    by_status = {
        status: _ids(api.get("/api/v1/imports", params={"status": status}))
        for status in imports.ImportStatus
    }
    assert by_status == {
        "uploading": [uploading],
        "delivering": [delivering],
        "delivered": [delivered],
        "complete": [made.import_id],
        "failed": [failed],
        "deleted": [deleted],
        "expired": [],
    }
    listed = {i["id"]: i for i in api.get("/api/v1/imports").json()["items"]}
    assert {i: listed[i]["status"] for i in listed} == {
        uploading: "uploading",
        delivering: "delivering",
        delivered: "delivered",
        failed: "failed",
        deleted: "deleted",
        made.import_id: "complete",
    }
    assert listed[delivered]["deliveries"] == {"pending": 0, "delivered": 2, "failed": 0}
    assert (listed[delivered]["rows"], listed[delivered]["batches"]) == (2, 2)
    assert listed[delivering]["final"] is False and listed[delivered]["final"] is True
    assert _ids(api.get("/api/v1/imports", params={"template_id": other_template.id})) == [
        made.import_id
    ]
    assert _ids(
        api.get("/api/v1/imports", params={"created_before": "2026-06-01T00:00:00+02:00"})
    ) == [uploading]
    assert (
        _ids(api.get("/api/v1/imports", params={"created_after": "2026-06-01T00:00:00Z"}))
        == everything[:-1]
    )
    # Pages of two, by cursor, newest first.
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = api.get("/api/v1/imports", params=params).json()
        assert len(page["items"]) <= 2
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything


@pytest.mark.parametrize(
    ("params", "name", "accepted"),
    [
        ({"status": "done"}, "status", "is one of uploading, delivering, delivered"),
        ({"created_after": "yesterday"}, "created_after", "RFC 3339"),
        ({"created_after": "2026-12-01"}, "created_after", "RFC 3339"),
        ({"created_before": "2026-12-01T10:00:00"}, "created_before", "with an offset"),
        ({"created_before": "2026-02-30T10:00:00Z"}, "created_before", "RFC 3339"),
        ({"limit": "0"}, "limit", "from 1 to 100"),
        ({"limit": "many"}, "limit", "from 1 to 100"),
        ({"template_id": "t" * 41}, "template_id", "1 to 40 characters"),
    ],
)
def test_bad_filters_are_problems_naming_the_parameter(
    world: World, params: dict[str, str], name: str, accepted: str
) -> None:
    body = _problem(world.api.get("/api/v1/imports", params=params), 422, "invalid")
    assert name in body["detail"] and accepted in body["detail"]
    assert body["errors"][0]["loc"] == ["query", name]


# --- one import ----------------------------------------------------------------------------------


def test_an_import_shows_counts_version_rejections_and_timings(world: World) -> None:
    rt, api = world.rt, world.api
    created = imports.create_import(rt, world.setup.org, world.setup.template.id, "people.csv")
    bad = world.batch_factory(BAD_CSV)
    with pytest.raises(Invalid, match="do not pass the template's rules"):
        uploads.receive_batch(rt, created.import_id, created.upload_token, 0, 2, bad)
    with pytest.raises(Invalid):
        uploads.receive_batch(rt, created.import_id, created.upload_token, 0, 2, bad)
    before = api.get(f"/api/v1/imports/{created.import_id}").json()
    assert (before["status"], before["submitted_at"], before["delivered_at"]) == (
        "uploading",
        None,
        None,
    )
    for seq in range(2):
        body = world.batch_factory(CSV, offset=seq, length=1)
        uploads.receive_batch(rt, created.import_id, created.upload_token, seq, 2 + seq, body)
    imports.submit(rt, created.import_id, created.upload_token, 2, 2)
    # The template changes after the import: the import keeps the version it used.
    schema = {**CONTACTS_SCHEMA, "title": "Contacts v2"}
    assert api.put(f"/api/v1/templates/{world.setup.template.id}", json={"schema": schema}).json()[
        "version"
    ] == (world.setup.template.version + 1)
    for delivery_id in world.deliveries_of(created.import_id):
        assert deliveries.deliver(rt, delivery_id) == "delivered"

    response = api.get(f"/api/v1/imports/{created.import_id}")
    assert response.status_code == 200
    got = response.json()
    assert {k: got[k] for k in ("id", "status", "final", "rows", "batches", "file_name")} == {
        "id": created.import_id,
        "status": "delivered",
        "final": True,
        "rows": 2,
        "batches": 2,
        "file_name": "people.csv",
    }
    assert (got["template_id"], got["template_version"]) == (
        world.setup.template.id,
        world.setup.template.version,
    )
    assert got["deliveries"] == {"pending": 0, "delivered": 2, "failed": 0}
    assert got["rejected_batches"] == 2
    assert got["errors"] == [
        {"code": "constraint-error", "field": "country", "constraint": "enum", "count": 4},
        {"code": "constraint-error", "field": "full_name", "constraint": "required", "count": 4},
    ]
    assert got["left_out"] == 0 and got["data_gone"] is None
    created_at, submitted_at, delivered_at, expires_at = (
        dt.datetime.fromisoformat(got[k])
        for k in ("created_at", "submitted_at", "delivered_at", "expires_at")
    )
    assert created_at <= submitted_at <= delivered_at <= db.utcnow()
    assert expires_at - created_at == dt.timedelta(days=rt.settings.retention_days)
    assert got["expired"] is False
    assert "Ada" not in response.text  # metadata only
    _problem(api.get("/api/v1/imports/imp_missing"), 404, "not-found")


def test_rejections_recorded_per_import_are_bounded(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_views, "MAX_REJECTIONS", 2)
    created = imports.create_import(world.rt, world.setup.org, world.setup.template.id, "x.csv")
    bad = world.batch_factory(BAD_CSV)
    for _ in range(4):
        with pytest.raises(Invalid):
            uploads.receive_batch(world.rt, created.import_id, created.upload_token, 0, 2, bad)
    rejected = events.list_for(
        world.rt, world.setup.org.id, import_id=created.import_id, kind=events.BATCH_REJECTED
    )
    assert len(rejected) == 2
    assert rejected[0].detail == {
        "seq": 0,
        "errors": [
            {"code": "constraint-error", "field": "country", "constraint": "enum", "count": 2},
            {
                "code": "constraint-error",
                "field": "full_name",
                "constraint": "required",
                "count": 2,
            },
        ],
    }
    assert world.api.get(f"/api/v1/imports/{created.import_id}").json()["rejected_batches"] == 2


# --- rows ----------------------------------------------------------------------------------------


def test_rows_download_in_every_format(world: World) -> None:
    import_id, _ = world.stored("Kontakte März.csv")
    api = world.api
    csv_answer = api.get(f"/api/v1/imports/{import_id}/rows", params={"format": "csv"})
    assert csv_answer.status_code == 200
    assert csv_answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert csv_answer.headers["content-disposition"] == (
        "attachment; filename=\"Kontakte_M_rz.csv\"; filename*=UTF-8''Kontakte%20M%C3%A4rz.csv"
    )
    assert csv_answer.headers["cache-control"] == "no-store"
    lines = csv_answer.text.splitlines()
    assert lines[0] == "full_name,email,phone,country,signup_date,amount"
    assert lines[1:] == [
        "Ada Lovelace,ada@example.com,,GB,,",
        "'=Grace Hopper,grace@example.com,,US,,",
    ]
    default = api.get(f"/api/v1/imports/{import_id}/rows")
    assert default.content == csv_answer.content
    head = api.head(f"/api/v1/imports/{import_id}/rows", params={"format": "csv"})
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-disposition"] == csv_answer.headers["content-disposition"]

    ndjson = api.get(f"/api/v1/imports/{import_id}/rows", params={"format": "ndjson"})
    assert ndjson.headers["content-type"] == "application/x-ndjson"
    names = [json.loads(line)["full_name"] for line in ndjson.text.splitlines()]
    assert names == ["Ada Lovelace", "=Grace Hopper"]  # a machine format: as it was

    parquet = api.get(f"/api/v1/imports/{import_id}/rows", params={"format": "parquet"})
    assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column("email").to_pylist() == ["ada@example.com", "grace@example.com"]

    xlsx = api.get(f"/api/v1/imports/{import_id}/rows", params={"format": "xlsx"})
    assert xlsx.headers["content-disposition"].startswith(
        'attachment; filename="Kontakte_M_rz.xlsx"'
    )
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(xlsx.content)).get_sheet_by_index(0)
    rows = sheet.to_python()
    assert rows[0][:2] == ["full_name", "email"]
    assert [r[0] for r in rows[1:]] == ["Ada Lovelace", "'=Grace Hopper"]

    body = _problem(
        api.get(f"/api/v1/imports/{import_id}/rows", params={"format": "xls"}), 422, "invalid"
    )
    assert "csv, xlsx, parquet, ndjson" in body["detail"]
    assert body["errors"][0]["loc"] == ["query", "format"]
    _problem(api.get("/api/v1/imports/imp_missing/rows"), 404, "not-found")


def test_a_download_stops_when_its_client_goes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export thread waits for the client, at most QUEUED chunks ahead, and ends when
    the answer is closed early (a client that went away)."""
    import_id, _ = world.stored()
    monkeypatch.setattr(import_routes, "CHUNK", 1)
    monkeypatch.setattr(import_routes, "QUEUED", 1)
    plan = exports.plan_export(world.rt, import_id, "csv")

    name = f"export-{import_id}"

    async def first_chunk_then_leave() -> tuple[bytes, list[threading.Thread]]:
        stream = import_routes._stream(world.rt, plan, world.setup.org.id)
        chunk = await stream.__anext__()
        producers = [t for t in threading.enumerate() if t.name == name]
        assert [t.is_alive() for t in producers] == [True]  # waiting for room in the queue
        await stream.aclose()  # type: ignore[attr-defined]
        return chunk, producers

    chunk, producers = run_async(first_chunk_then_leave())
    assert chunk.startswith(b"full_name,email,")
    producers[0].join(10)
    assert not producers[0].is_alive()


def test_downloads_beyond_the_cap_wait_their_turn(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one export slot, a second download starts no export (no thread, no batch
    loaded) until the first is done, then runs to its end."""
    import_id, _ = world.stored()
    monkeypatch.setattr(import_routes, "CHUNK", 1)
    monkeypatch.setattr(import_routes, "QUEUED", 1)
    monkeypatch.setattr(import_routes, "DOWNLOADS", threading.BoundedSemaphore(1))
    plan = exports.plan_export(world.rt, import_id, "csv")
    name = f"export-{import_id}"

    async def two() -> tuple[int, bytes]:
        first = import_routes._stream(world.rt, plan, world.setup.org.id)
        await first.__anext__()
        second = import_routes._stream(world.rt, plan, world.setup.org.id)
        waiting = asyncio.ensure_future(second.__anext__())
        for _ in range(5):
            await asyncio.sleep(0.06)  # a few turns of its wait for a slot
        running = len([t for t in threading.enumerate() if t.name == name and t.is_alive()])
        assert not waiting.done()
        await first.aclose()  # type: ignore[attr-defined]
        chunks = [await waiting] + [chunk async for chunk in second]
        return running, b"".join(chunks)

    running, body = run_async(two())
    assert running == 1
    assert body.splitlines()[1:] == [
        b"Ada Lovelace,ada@example.com,,GB,,",
        b"'=Grace Hopper,grace@example.com,,US,,",
    ]
    for thread in [t for t in threading.enumerate() if t.name == name]:
        thread.join(10)  # the export gives its slot back as its thread ends
    assert import_routes.DOWNLOADS.acquire(blocking=False)


def test_a_download_failing_midway_is_cut_not_short(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the first byte breaks the stream (the client sees an incomplete
    answer), never a shorter file that looks whole."""
    import_id, _ = world.stored()
    monkeypatch.setattr(import_routes, "CHUNK", 1)
    plan = exports.plan_export(world.rt, import_id, "csv")
    real = exports.load_batch

    def second_lost(rt: Runtime, session: Any, imp: db.Import, seq: int) -> Any:
        if seq == 1:
            raise OSError("blob store unreachable")
        return real(rt, session, imp, seq)

    monkeypatch.setattr(exports, "load_batch", second_lost)

    received: list[bytes] = []

    async def read_all() -> None:
        async for chunk in import_routes._stream(world.rt, plan, world.setup.org.id):
            received.append(chunk)

    with pytest.raises(import_routes.DownloadBroken) as caught:
        run_async(read_all())
    assert b"".join(received).splitlines() == [
        b"full_name,email,phone,country,signup_date,amount",
        b"Ada Lovelace,ada@example.com,,GB,,",
    ]
    assert isinstance(caught.value.__cause__, OSError)


# --- deletion and expiry -----------------------------------------------------------------------


def test_delete_shreds_now_and_every_data_endpoint_is_gone(world: World) -> None:
    import_id, _ = world.stored()
    api = world.api
    before = db.utcnow()
    deleted = api.delete(f"/api/v1/imports/{import_id}")
    assert deleted.status_code == 200, deleted.text
    event = deleted.json()
    actor = f"api-key:{world.key_id}"
    assert (event["kind"], event["actor"], event["import_id"]) == (
        "import.deleted",
        actor,
        import_id,
    )
    assert event["detail"] == {"rows": 2, "batches": 2}
    at = dt.datetime.fromisoformat(event["at"])
    assert before <= at <= db.utcnow()
    assert [e.id for e in events.list_for(world.rt, world.setup.org.id, kind="import.deleted")] == [
        event["id"]
    ]
    message = (
        f"The data of import {import_id} was deleted by {actor} on {at:%Y-%m-%d at %H:%M} UTC; "
        "its rows are no longer stored."
    )
    for fmt in ("csv", "parquet"):
        gone = _problem(
            api.get(f"/api/v1/imports/{import_id}/rows", params={"format": fmt}), 410, "gone"
        )
        assert gone["detail"] == message
        assert gone["errors"] == {
            "import_id": import_id,
            "reason": "deleted",
            "at": at.isoformat(),
            "actor": actor,
        }
    assert _problem(api.delete(f"/api/v1/imports/{import_id}"), 410, "gone")["detail"] == message
    detail = api.get(f"/api/v1/imports/{import_id}").json()
    assert detail["status"] == "deleted"
    assert detail["data_gone"] == {"reason": "deleted", "at": event["at"], "actor": actor}
    # Its deliveries that had not gone out are failed, and cannot be retried.
    for delivery_id in world.deliveries_of(import_id):
        _problem(api.post(f"/api/v1/deliveries/{delivery_id}/retry"), 410, "gone")


def test_after_expiry_the_rows_are_gone_naming_the_retention(world: World) -> None:
    import_id, _ = world.stored()
    days = world.rt.settings.retention_days
    with world.rt.sessions.begin() as session:
        imp = session.get(db.Import, import_id)
        assert imp is not None
        imp.created_at = db.utcnow() - dt.timedelta(days=days, minutes=1)
        imp.expires_at = imp.created_at + dt.timedelta(days=days)
    assert jobs.purge_expired() == [import_id]
    gone = _problem(world.api.get(f"/api/v1/imports/{import_id}/rows"), 410, "gone")
    assert f"was expired after {days} days retention on " in gone["detail"]
    assert (gone["errors"]["reason"], gone["errors"]["actor"]) == ("expired", "retention")
    detail = world.api.get(f"/api/v1/imports/{import_id}").json()
    assert (detail["status"], detail["expired"], detail["data_gone"]["reason"]) == (
        "expired",
        True,
        "expired",
    )


# --- deliveries ----------------------------------------------------------------------------------


def test_every_attempt_is_listed_and_a_failed_delivery_retried(
    world: World, receiver: Receiver
) -> None:
    import_id, _ = world.stored()
    api = world.api
    first, second = world.deliveries_of(import_id)
    receiver.answer(400)
    assert deliveries.deliver(world.rt, first) == "failed"
    assert deliveries.deliver(world.rt, second) == "delivered"
    _problem(api.post(f"/api/v1/deliveries/{second}/retry"), 409, "conflict")
    retried = api.post(f"/api/v1/deliveries/{first}/retry")
    assert retried.status_code == 200, retried.text
    assert retried.json() == {"delivery_id": first, "status": "pending", "enqueued": True}
    _problem(api.post(f"/api/v1/deliveries/{first}/retry"), 409, "conflict")  # pending now
    assert deliveries.deliver(world.rt, first) == "delivered"

    listed = api.get(f"/api/v1/imports/{import_id}/deliveries")
    assert listed.status_code == 200
    items = listed.json()["items"]
    destination = world.setup.destination.id
    assert [
        (a["delivery_id"], a["batch"], a["destination_id"], a["number"], a["outcome"])
        for a in items
    ] == [
        (first, 0, destination, 1, "failed"),
        (first, 0, destination, 2, "delivered"),
        (second, 1, destination, 1, "delivered"),
    ]
    assert [a["status_code"] for a in items] == [400, 200, 200]  # delivered ones too
    for attempt in items:
        took = dt.datetime.fromisoformat(attempt["finished_at"]) - dt.datetime.fromisoformat(
            attempt["started_at"]
        )
        assert attempt["duration_ms"] == round(took / dt.timedelta(milliseconds=1))
    assert items[0]["error"]
    # Paged.
    page = api.get(f"/api/v1/imports/{import_id}/deliveries", params={"limit": "2"}).json()
    assert [a["id"] for a in page["items"]] == [a["id"] for a in items[:2]]
    rest = api.get(
        f"/api/v1/imports/{import_id}/deliveries", params={"cursor": page["next_cursor"]}
    ).json()
    assert ([a["id"] for a in rest["items"]], rest["next_cursor"]) == ([items[2]["id"]], None)
    _problem(
        api.get(f"/api/v1/imports/{import_id}/deliveries", params={"cursor": "x"}), 422, "invalid"
    )
    _problem(api.post("/api/v1/deliveries/not-a-number/retry"), 404, "not-found")
    _problem(api.post("/api/v1/deliveries/999999/retry"), 404, "not-found")


# --- credentials ---------------------------------------------------------------------------------


def _filled(path: str, ids: dict[str, str]) -> str:
    for prefix, value in ids.items():
        if path.startswith(prefix):
            return path.replace("{id}", value)
    return path


def test_every_route_refuses_every_wrong_credential(world: World, demo_org: DemoOrgFactory) -> None:
    """Walk every management route with no credential, the publishable key, an upload
    token (of another import) and another organisation's secret key."""
    import_id, _ = world.stored()
    _, other_token = world.stored()
    delivery_id = world.deliveries_of(import_id)[0]
    ids = {
        "/api/v1/templates": world.setup.template.id,
        "/api/v1/destinations": world.setup.destination.id,
        "/api/v1/imports": import_id,
        "/api/v1/deliveries": str(delivery_id),
        "/api/v1/files": import_id,
    }
    other = demo_org(world.rt)
    other_secret = keys.create_key(world.rt, other.org.id, "other").secret
    endpoints = [e for e in manage_routes.ENDPOINTS if not e.public]
    assert len(endpoints) == 28  # with the headless import's two, preview and reveal, and the
    # publishable key's rotation and grace period end
    client = TestClient(create_app(world.rt), base_url=BASE)
    for e in endpoints:
        path = _filled(e.path, ids)
        shared = (e.method, e.path) == import_routes.SHARED
        for credential in (None, world.setup.org.publishable_key, other_token):
            headers = {} if credential is None else {"authorization": f"Bearer {credential}"}
            response = client.request(e.method, path, headers=headers, json={})
            assert response.status_code == 401, (e.method, path, credential)
            if shared:  # the importer's status route: its shape, and another import's token
                assert response.json()["error"]["code"] == "unauthorized"
            else:
                _problem(response, 401, "unauthorized")
        body: dict[str, Any] = {"schema": CONTACTS_SCHEMA} if e.body is schemas.TemplateIn else {}
        if e.body is schemas.RevealIn:
            body = {"fields": ["email"], "first_row": 1, "last_row": 1}
        response = client.request(
            e.method, path, headers={"authorization": f"Bearer {other_secret}"}, json=body
        )
        if "{id}" in e.path:
            _problem(response, 404, "not-found")
        else:  # lists and the organisation: the other organisation's own, never ours
            assert response.status_code in (200, 201, 422), (e.method, path, response.text)
            assert import_id not in response.text and world.setup.template.id not in response.text
    # Nothing was changed by any of it.
    assert world.api.get(f"/api/v1/imports/{import_id}").json()["status"] == "delivering"
    # A secret key opens no importer route.
    refused = client.put(
        f"/api/v1/imports/{import_id}/batches/5",
        headers={"authorization": f"Bearer {world.secret}", "origin": BASE},
        content=b"x",
    )
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"


def test_unknown_api_paths_and_methods_are_problems(world: World) -> None:
    _problem(world.api.get("/api/v1/imports/imp_x/nothing"), 404, "not-found")
    _problem(world.api.get("/api/v2/imports"), 404, "not-found")
    wrong = _problem(world.api.patch("/api/v1/imports/imp_x"), 405, "method-not-allowed")
    assert "DELETE, GET, HEAD" in wrong["detail"]
    assert world.api.patch("/api/v1/imports/imp_x").headers["allow"] == "DELETE, GET, HEAD"


# --- Idempotency-Keys are purged by cron ---------------------------------------------------------


def test_cron_purges_idempotency_keys_older_than_24_hours(world: World) -> None:
    org_id = world.setup.org.id
    for name in ("old", "new"):
        assert idempotency.claim(world.rt, org_id, name, "/api/v1/templates", b"{}").replay is None
    with world.rt.sessions.begin() as session:
        session.execute(
            update(db.IdempotencyKey)
            .where(db.IdempotencyKey.key_hash == idempotency._digest(b"old"))
            .values(created_at=db.utcnow() - dt.timedelta(hours=24, minutes=1))
        )
        session.execute(
            update(db.IdempotencyKey)
            .where(db.IdempotencyKey.key_hash == idempotency._digest(b"new"))
            .values(created_at=db.utcnow() - dt.timedelta(hours=23, minutes=59))
        )
    assert jobs.purge_idempotency_keys() == 1
    with world.rt.sessions() as session:
        kept = [row.key_hash for row in session.query(db.IdempotencyKey)]
    assert kept == [idempotency._digest(b"new")]
    planned = {func.__name__: every for func, _, every, _ in jobs.periodic(world.rt.queue)}
    assert planned["purge_idempotency_keys"] == 3600
    assert set(planned) == {"sweep", "purge_expired", "purge_idempotency_keys"}
