"""The dashboard's imports screens: the list with filters and search, an import's page
(timeline, error chart, deliveries with retry, a preview with personal data masked),
revealing a field, downloads in four formats, delete now; and the audit entries of each
data access (preview, reveal, download, delete, expiry) from the dashboard and the
management API, holding ids and actors, never a cell value."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
import pytest
from python_calamine import CalamineWorkbook
from sqlalchemy import select, update
from starlette.testclient import TestClient

from server import (
    attempts,
    audit,
    db,
    import_views,
    imports,
    keys,
    previews,
    retention,
    uploads,
    users,
)
from server.app import create_app
from server.permissions import Role
from server.runtime import Runtime
from tests.conftest import CONTACTS_SCHEMA
from tests.server.users_support import BASE, PASSWORD, Dashboard

if TYPE_CHECKING:
    from tests.conftest import BatchFactory, DemoOrgFactory, OrgSetup, RuntimeFactory

CSV = (
    "Full name,Email,Country\nAda Lovelace,ada@example.com,GB\n=Grace Hopper,grace@example.com,US\n"
)
PERSONAL_SCHEMA = copy.deepcopy(CONTACTS_SCHEMA)
for _field in PERSONAL_SCHEMA["fields"]:
    if _field["name"] == "email":
        _field.setdefault("x-loadbay", {})["classification"] = "personal"


@pytest.fixture
def store() -> str:
    return "sqlite"


@dataclass
class World:
    rt: Runtime
    setup: OrgSetup
    batch_factory: BatchFactory
    client: TestClient
    joined: set[Role] = field(default_factory=set)

    def stored(self, name: str = "contacts.csv") -> str:
        created = imports.create_import(self.rt, self.setup.org, self.setup.template.id, name)
        body = self.batch_factory(CSV, PERSONAL_SCHEMA)
        uploads.receive_batch(self.rt, created.import_id, created.upload_token, 0, 2, body)
        imports.submit(self.rt, created.import_id, created.upload_token, 1, 2)
        return created.import_id

    def member(self, role: Role) -> Dashboard:
        email = f"{role.value}@acme.example"
        if role not in self.joined:
            users.add_user(
                self.rt, self.setup.org.id, email, role.value, PASSWORD, role, actor="cli"
            )
            self.joined.add(role)
        self.client.cookies.clear()
        board = Dashboard(self.client)
        assert board.sign_in(email).status_code == 303
        return board

    def actions(self) -> list[audit.Entry]:
        return audit.entries(self.rt, self.setup.org.id)


@pytest.fixture
def world(
    runtime_factory: RuntimeFactory, demo_org: DemoOrgFactory, batch_factory: BatchFactory
) -> Iterator[World]:
    rt = runtime_factory()
    setup = demo_org(rt, schema=PERSONAL_SCHEMA)
    with TestClient(create_app(rt), base_url=BASE) as client:
        yield World(rt, setup, batch_factory, client)


def _of(entries: list[audit.Entry], action: str) -> list[audit.Entry]:
    return [e for e in entries if e.action == action]


def test_the_list_filters_and_searches(world: World) -> None:
    first = world.stored("contacts.csv")
    second = world.stored("leads-december.xlsx")
    owner = world.member(Role.OWNER)
    page = owner.get("/dashboard/imports")
    assert page.status_code == 200
    assert first in page.text and second in page.text
    page = owner.get("/dashboard/imports", params={"q": "december"})
    assert second in page.text and first not in page.text
    page = owner.get("/dashboard/imports", params={"q": first})
    assert first in page.text and second not in page.text
    page = owner.get("/dashboard/imports", params={"status": "delivering"})
    assert first not in page.text  # no destination: both are complete
    page = owner.get(
        "/dashboard/imports", params={"status": "complete", "template": world.setup.template.id}
    )
    assert first in page.text and second in page.text
    later = (db.utcnow() + dt.timedelta(hours=1)).isoformat()
    page = owner.get("/dashboard/imports", params={"created_after": later})
    assert first not in page.text and "No import matches." in page.text
    page = owner.get("/dashboard/imports", params={"created_after": "yesterday"})
    assert page.status_code == 422
    assert "created_after is a date or time such as 2026-12-01" in page.text
    # The management API searches the same way (one domain function).
    key = keys.create_key(world.rt, world.setup.org.id, "lister").secret
    api = world.client.get(
        "/api/v1/imports",
        params={"search": "DECEMBER"},
        headers={"authorization": f"Bearer {key}"},
    )
    assert [i["id"] for i in api.json()["items"]] == [second]
    api = world.client.get(
        "/api/v1/imports", params={"search": "%"}, headers={"authorization": f"Bearer {key}"}
    )
    assert api.json()["items"] == []  # a LIKE wildcard is a plain character
    # The end user's identity, as the client's backend signed it, is searched too.
    with world.rt.sessions.begin() as session:
        row = session.get(db.Import, first)
        assert row is not None
        row.identity = {"user": "user-4711@example.com", "metadata": {}, "key_id": "sk_x"}
    page = owner.get("/dashboard/imports", params={"q": "4711@EXAMPLE"})
    assert first in page.text and second not in page.text


def test_the_preview_masks_personal_data_and_a_reveal_is_audited(world: World) -> None:
    import_id = world.stored()
    owner = world.member(Role.OWNER)
    page = owner.get(f"/dashboard/imports/{import_id}")
    assert page.status_code == 200
    assert "Ada Lovelace" in page.text and "ada@example.com" not in page.text
    assert "email (personal)" in page.text and "masked" in page.text
    assert f"contacts ({world.setup.template.id}, version 1)" in page.text
    assert "<strong>Submitted</strong>: 20" in page.text  # the timeline has the moment
    previewed = _of(world.actions(), "import.previewed")
    assert len(previewed) == 1
    assert previewed[0].target == import_id
    assert previewed[0].detail == {"rows": "1-2", "masked": ["email"]}
    assert previewed[0].actor.startswith("user:usr_")

    page = owner.post(f"/dashboard/imports/{import_id}/reveal", {"field": "email"})
    assert page.status_code == 200
    assert "ada@example.com" in page.text and "grace@example.com" in page.text
    revealed = _of(world.actions(), "import.revealed")
    assert [(e.target, e.detail, e.actor) for e in revealed] == [
        (import_id, {"rows": "1-2", "fields": ["email"]}, previewed[0].actor)
    ]
    page = owner.post(f"/dashboard/imports/{import_id}/reveal", {"field": "full_name"})
    assert page.status_code == 422 and "not a personal-data field" in page.text

    developer = world.member(Role.DEVELOPER)
    page = developer.get(f"/dashboard/imports/{import_id}")
    assert "ada@example.com" not in page.text and "Reveal email" not in page.text
    refused = developer.post(f"/dashboard/imports/{import_id}/reveal", {"field": "email"})
    assert refused.status_code == 403
    viewer = world.member(Role.VIEWER)
    page = viewer.get(f"/dashboard/imports/{import_id}")
    assert page.status_code == 200 and "Ada Lovelace" not in page.text  # no rows for a viewer
    # the owner's page, the page that refused the reveal (it previews again), the developer's
    assert len(_of(world.actions(), "import.previewed")) == 3
    dumped = json.dumps([e.as_json() for e in world.actions()])
    assert "ada@example.com" not in dumped and "Lovelace" not in dumped


def test_downloads_in_each_format_are_audited_from_dashboard_and_api(world: World) -> None:
    import_id = world.stored()
    owner = world.member(Role.OWNER)
    csv = owner.get(f"/dashboard/imports/{import_id}/download", params={"format": "csv"})
    assert csv.status_code == 200
    assert csv.text.splitlines()[2].startswith("'=Grace Hopper,grace@example.com")
    ndjson = owner.get(f"/dashboard/imports/{import_id}/download", params={"format": "ndjson"})
    assert json.loads(ndjson.text.splitlines()[0])["email"] == "ada@example.com"
    parquet = owner.get(f"/dashboard/imports/{import_id}/download", params={"format": "parquet"})
    assert pq.read_table(io.BytesIO(parquet.content)).column("full_name").to_pylist() == [
        "Ada Lovelace",
        "=Grace Hopper",
    ]
    xlsx = owner.get(f"/dashboard/imports/{import_id}/download", params={"format": "xlsx"})
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(xlsx.content)).get_sheet_by_index(0)
    assert sheet.to_python()[1][0] == "Ada Lovelace"
    bad = owner.get(f"/dashboard/imports/{import_id}/download", params={"format": "pdf"})
    assert bad.status_code == 422

    key = keys.create_key(world.rt, world.setup.org.id, "exporter")
    api = world.client.get(
        f"/api/v1/imports/{import_id}/rows",
        params={"format": "csv"},
        headers={"authorization": f"Bearer {key.secret}"},
    )
    assert api.status_code == 200 and api.text == csv.text
    downloads = _of(world.actions(), "import.downloaded")
    assert [(e.detail["format"], e.detail["rows"]) for e in reversed(downloads)] == [
        ("csv", 2),
        ("ndjson", 2),
        ("parquet", 2),
        ("xlsx", 2),
        ("csv", 2),
    ]
    assert downloads[0].actor == f"api-key:{key.key.id}"
    assert all(e.actor.startswith("user:") for e in downloads[1:])
    assert all(e.target == import_id and e.address for e in downloads)


def test_delete_now_needs_the_confirmation_and_is_audited(world: World) -> None:
    import_id = world.stored()
    developer = world.member(Role.DEVELOPER)
    assert (
        developer.post(f"/dashboard/imports/{import_id}/delete", {"confirm": "yes"}).status_code
        == 403
    )
    owner = world.member(Role.OWNER)
    page = owner.get(f"/dashboard/imports/{import_id}")
    assert "Delete now" in page.text
    unconfirmed = owner.post(f"/dashboard/imports/{import_id}/delete", {})
    assert unconfirmed.status_code == 422 and "tick the box" in unconfirmed.text
    assert _of(world.actions(), "import.deleted") == []
    done = owner.post(f"/dashboard/imports/{import_id}/delete", {"confirm": "yes"})
    assert done.status_code == 303
    assert done.headers["location"] == f"/dashboard/imports/{import_id}?done=deleted"
    page = owner.get(done.headers["location"])
    assert "Import deleted: its rows are shredded." in page.text
    assert "<strong>Deleted by user:usr_" in page.text
    assert "Download CSV" not in page.text and "Ada Lovelace" not in page.text
    gone = owner.get(f"/dashboard/imports/{import_id}/download", params={"format": "csv"})
    assert gone.status_code == 410 and "was deleted by user:" in gone.text
    deleted = _of(world.actions(), "import.deleted")
    assert [(e.target, e.actor, e.detail) for e in deleted] == [
        (import_id, deleted[0].actor, {"rows": 2, "batches": 1})
    ]
    assert deleted[0].actor.startswith("user:usr_") and deleted[0].address == "testclient"
    other = world.stored("second.csv")
    key = keys.create_key(world.rt, world.setup.org.id, "deleter")
    api = world.client.delete(
        f"/api/v1/imports/{other}", headers={"authorization": f"Bearer {key.secret}"}
    )
    assert api.status_code == 200, api.text
    by_key = _of(world.actions(), "import.deleted")[0]
    assert (by_key.target, by_key.actor, by_key.address) == (
        other,
        f"api-key:{key.key.id}",
        "testclient",
    )


def test_expiry_by_the_retention_sweep_is_audited(world: World) -> None:
    import_id = world.stored()
    later = db.utcnow() + dt.timedelta(days=400)
    assert retention.purge_expired(world.rt, later) == [import_id]
    expired = _of(world.actions(), "import.expired")
    assert [(e.target, e.actor, e.detail) for e in expired] == [
        (import_id, "retention", {"rows": 2, "batches": 1})
    ]


def test_a_failed_delivery_is_retried_from_the_import_page(
    world: World, demo_org: DemoOrgFactory, batch_factory: BatchFactory
) -> None:
    from server import orgs

    destination = orgs.create_destination(
        world.rt,
        world.setup.org,
        world.setup.template,
        "webhook",
        "CRM hook",
        {"url": "https://127.0.0.1:9/hook", "secret": "s" * 32},
    )
    import_id = world.stored()
    with world.rt.sessions.begin() as session:
        session.execute(
            update(db.Delivery)
            .where(db.Delivery.import_id == import_id)
            .values(status="failed", last_error="the destination answered 500")
        )
        delivery_id = session.scalar(
            select(db.Delivery.id).where(db.Delivery.import_id == import_id)
        )
        assert delivery_id is not None
        attempts.record(
            session,
            delivery_id,
            db.utcnow(),
            "failed",
            error="the destination answered 500",
            said=attempts.Said(status_code=500, duration_ms=12),
        )
    assert destination.id
    owner = world.member(Role.OWNER)
    page = owner.get(f"/dashboard/imports/{import_id}")
    assert "CRM hook" in page.text and "the destination answered 500" in page.text
    assert "<strong>Delivery failed</strong>: 20" in page.text  # when the attempt failed
    attempt_rows = page.text.split('<table id="attempts">', 1)[1].split("</table>", 1)[0]
    assert "<td>failed</td><td>500</td><td>12</td>" in attempt_rows
    done = owner.post(f"/dashboard/deliveries/{delivery_id}/retry", {"import": import_id})
    assert done.status_code == 303
    assert done.headers["location"] == f"/dashboard/imports/{import_id}?done=retried"
    with world.rt.sessions() as session:
        assert session.get(db.Delivery, delivery_id).status == "pending"
    again = owner.post(f"/dashboard/deliveries/{delivery_id}/retry", {"import": import_id})
    assert again.status_code == 409 and "only a failed delivery is retried" in again.text


def test_the_error_summary_is_charted_by_code_and_field(world: World) -> None:
    import_id = world.stored()
    owner = world.member(Role.OWNER)
    assert (
        "None: every batch passed the server" in owner.get(f"/dashboard/imports/{import_id}").text
    )
    import_views.record_rejection(
        world.rt,
        import_id,
        1,
        [
            import_views.ErrorCount("constraint-error", "country", "enum", 3),
            import_views.ErrorCount("type-error", "amount", None, 1),
        ],
    )
    page = owner.get(f"/dashboard/imports/{import_id}")
    chart = page.text.split('<table id="errors">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(
        r"<tr><td>(.*?)</td><td>(.*?)</td><td>(\d+)</td>\s*<td><svg [^>]*>"
        r'<rect x="0" y="2" height="12" width="(\d+)"',
        chart,
    )
    assert rows == [
        ("constraint-error (enum)", "country", "3", "300"),
        ("type-error", "amount", "1", "100"),
    ]
    assert "1 batch(es) refused" in chart


def _cells(response_content: bytes, fmt: str) -> list[list[object]]:
    """The rows of a download as lists, header first, whatever its format."""
    if fmt == "csv":
        return [line.split(",") for line in response_content.decode().splitlines()]
    if fmt == "ndjson":
        rows = [json.loads(line) for line in response_content.decode().splitlines()]
        return [list(rows[0])] + [list(r.values()) for r in rows]
    if fmt == "parquet":
        table = pq.read_table(io.BytesIO(response_content))
        return [table.column_names] + [list(r.values()) for r in table.to_pylist()]
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(response_content)).get_sheet_by_index(0)
    return [list(r) for r in sheet.to_python()]


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "parquet", "ndjson"])
def test_a_member_who_may_not_reveal_downloads_personal_data_masked(world: World, fmt: str) -> None:
    import_id = world.stored()
    developer = world.member(Role.DEVELOPER)
    page = developer.get(f"/dashboard/imports/{import_id}")
    assert "downloads show the personal-data fields (email) masked" in page.text
    masked = developer.get(f"/dashboard/imports/{import_id}/download", params={"format": fmt})
    assert masked.status_code == 200
    rows = _cells(masked.content, fmt)
    at = rows[0].index("email")
    assert [r[at] for r in rows[1:]] == [previews.MASK, previews.MASK]
    assert "Ada Lovelace" in [str(r[0]) for r in rows[1:]]  # other fields in clear
    assert "ada@example.com" not in masked.content.decode("latin-1")
    # The management API, called from the same session, masks the same way.
    via_api = world.client.get(f"/api/v1/imports/{import_id}/rows", params={"format": fmt})
    assert via_api.status_code == 200
    assert _cells(via_api.content, fmt) == _cells(masked.content, fmt)
    owner = world.member(Role.OWNER)
    page = owner.get(f"/dashboard/imports/{import_id}")
    assert "Downloads hold the personal-data fields (email) in clear" in page.text
    clear = owner.get(f"/dashboard/imports/{import_id}/download", params={"format": fmt})
    rows = _cells(clear.content, fmt)
    assert [r[at] for r in rows[1:]] == ["ada@example.com", "grace@example.com"]
    downloads = list(reversed(_of(world.actions(), "import.downloaded")))
    assert [(e.detail["format"], e.detail["masked"]) for e in downloads] == [
        (fmt, ["email"]),
        (fmt, ["email"]),
        (fmt, []),
    ]


def test_a_secret_key_downloads_in_clear_and_is_audited(world: World) -> None:
    import_id = world.stored()
    key = keys.create_key(world.rt, world.setup.org.id, "backend")
    api = world.client.get(
        f"/api/v1/imports/{import_id}/rows",
        params={"format": "ndjson"},
        headers={"authorization": f"Bearer {key.secret}"},
    )
    assert [json.loads(line)["email"] for line in api.text.splitlines()] == [
        "ada@example.com",
        "grace@example.com",
    ]
    (entry,) = _of(world.actions(), "import.downloaded")
    assert (entry.actor, entry.detail) == (
        f"api-key:{key.key.id}",
        {"format": "ndjson", "rows": 2, "masked": []},
    )


def test_the_api_preview_pages_rows_with_personal_data_masked(world: World) -> None:
    import_id = world.stored()
    key = keys.create_key(world.rt, world.setup.org.id, "previewer")
    auth = {"authorization": f"Bearer {key.secret}"}
    first = world.client.get(f"/api/v1/imports/{import_id}/preview?limit=1", headers=auth)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["columns"][:2] == ["full_name", "email"]
    assert (body["personal"], body["masked"], body["revealed"]) == (["email"], ["email"], [])
    assert [r[:2] for r in body["rows"]] == [["Ada Lovelace", previews.MASK]]
    assert (body["first_row"], body["last_row"], body["total_rows"]) == (1, 1, 2)
    assert body["next_first_row"] == 2
    second = world.client.get(
        f"/api/v1/imports/{import_id}/preview", params={"first_row": 2}, headers=auth
    ).json()
    assert [r[:2] for r in second["rows"]] == [["=Grace Hopper", previews.MASK]]
    assert second["next_first_row"] is None
    beyond = world.client.get(
        f"/api/v1/imports/{import_id}/preview", params={"first_row": 9}, headers=auth
    ).json()
    assert (beyond["rows"], beyond["first_row"]) == ([], 0)
    bad = world.client.get(f"/api/v1/imports/{import_id}/preview?limit=0", headers=auth)
    assert bad.status_code == 422 and "limit" in bad.json()["detail"]
    previewed = list(reversed(_of(world.actions(), "import.previewed")))
    assert [e.detail for e in previewed] == [
        {"rows": "1-1", "masked": ["email"]},
        {"rows": "2-2", "masked": ["email"]},
        {"rows": "none", "masked": ["email"]},
    ]
    assert {e.actor for e in previewed} == {f"api-key:{key.key.id}"}


def test_the_api_reveal_names_fields_and_a_row_range_and_is_audited(world: World) -> None:
    import_id = world.stored()
    key = keys.create_key(world.rt, world.setup.org.id, "revealer")
    auth = {"authorization": f"Bearer {key.secret}"}
    url = f"/api/v1/imports/{import_id}/reveal"
    shown = world.client.post(
        url, json={"fields": ["email"], "first_row": 2, "last_row": 2}, headers=auth
    )
    assert shown.status_code == 200, shown.text
    assert [r[:2] for r in shown.json()["rows"]] == [["=Grace Hopper", "grace@example.com"]]
    assert (shown.json()["revealed"], shown.json()["masked"]) == (["email"], [])
    not_personal = world.client.post(
        url, json={"fields": ["country"], "first_row": 1, "last_row": 2}, headers=auth
    )
    assert not_personal.status_code == 422
    assert "country: not a personal-data field" in not_personal.json()["detail"]
    too_many = world.client.post(
        url, json={"fields": ["email"], "first_row": 1, "last_row": 500}, headers=auth
    )
    assert too_many.status_code == 422 and "1 to 100 rows" in too_many.json()["detail"]
    (revealed,) = _of(world.actions(), "import.revealed")
    assert (revealed.target, revealed.actor, revealed.detail) == (
        import_id,
        f"api-key:{key.key.id}",
        {"rows": "2-2", "fields": ["email"]},
    )
    # A developer's session may preview (masked) but not reveal.
    developer = world.member(Role.DEVELOPER)
    page = world.client.get(f"/api/v1/imports/{import_id}/preview")
    assert page.status_code == 200 and page.json()["rows"][0][1] == previews.MASK
    developer.get("/dashboard/")
    refused = world.client.post(
        url,
        json={"fields": ["email"], "first_row": 1, "last_row": 1},
        headers={"origin": BASE, "x-csrf-token": developer.csrf},
    )
    assert refused.status_code == 403
    dumped = json.dumps([e.as_json() for e in world.actions()])
    assert "grace@example.com" not in dumped
