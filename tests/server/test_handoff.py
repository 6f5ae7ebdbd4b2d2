"""The host-page destination on the server: created through the management API, its rows
read by the importer with the upload token, and delivered only on the page's
acknowledgement (the browser half: tests/e2e/test_sdk.py)."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from server import db, deliveries, keys
from server.app import create_app
from server.http.digest import content_digest_header
from server.runtime import Runtime

if TYPE_CHECKING:
    from tests.conftest import BatchFactory, DemoOrgFactory, OrgSetup, Receiver

BASE = "https://127.0.0.1:8443"
HOST = "https://host.example"
CSV = """Full name,Email,Country,Signup date,Amount,Notes
Zyxwab Quorth,zq@example.com,DE,2024-02-29,19.5,private note
Mirela Okonkwo-Vass,mov@example.com,FR,2023-01-31,-3,
Brunhild Eskaton,be@example.com,,,,
"""
CONFIG_SCRIPT = re.compile(
    r'<script type="application/json" id="loadbay-config">(.*?)</script>', re.S
)


@pytest.fixture
def store() -> str:
    return "sqlite"


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), base_url=BASE) as client:
        yield client


@pytest.fixture
def setup(runtime: Runtime, demo_org: DemoOrgFactory) -> OrgSetup:
    return demo_org(runtime, origins=[HOST])


def _manage(client: TestClient, rt: Runtime, setup: OrgSetup) -> dict[str, str]:
    return {"authorization": f"Bearer {keys.create_key(rt, setup.org.id, 'tests').secret}"}


def _host_page(client: TestClient, rt: Runtime, setup: OrgSetup, max_rows: int) -> Any:
    response = client.post(
        "/api/v1/destinations",
        json={
            "kind": "host-page",
            "name": "the page",
            "template_id": setup.template.id,
            "config": {"max_rows": max_rows},
        },
        headers=_manage(client, rt, setup),
    )
    assert response.status_code == 201, response.text
    return response.json()


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "origin": BASE}


def _submitted(client: TestClient, setup: OrgSetup, batch_factory: BatchFactory) -> tuple[str, str]:
    created = client.post(
        "/api/v1/imports",
        json={
            "publishableKey": setup.org.publishable_key,
            "templateId": setup.template.id,
            "fileName": "contacts.csv",
        },
        headers={"origin": BASE},
    ).json()
    import_id, token = created["id"], created["uploadToken"]
    body = gzip.compress(batch_factory(CSV))
    put = client.put(
        f"/api/v1/imports/{import_id}/batches/0",
        content=body,
        headers={
            **_auth(token),
            "content-digest": content_digest_header(body),
            "content-type": "application/vnd.apache.arrow.stream",
            "content-encoding": "gzip",
        },
    )
    assert put.status_code == 200, put.text
    submitted = client.post(
        f"/api/v1/imports/{import_id}/submit", json={"batches": 1, "rows": 3}, headers=_auth(token)
    )
    assert submitted.status_code == 202, submitted.text
    return import_id, token


def test_the_kind_is_listed_and_created_through_the_management_api(
    client: TestClient, runtime: Runtime, setup: OrgSetup
) -> None:
    kinds = client.get("/api/v1/destination-kinds", headers=_manage(client, runtime, setup))
    assert kinds.status_code == 200
    listed = {k["kind"]: k for k in kinds.json()["items"]}
    assert listed["host-page"]["json_schema"]["properties"]["max_rows"]["default"] == 10_000
    made = _host_page(client, runtime, setup, 2)
    assert (made["kind"], made["config"]) == ("host-page", {"max_rows": 2})
    refused = client.post(
        "/api/v1/destinations",
        json={
            "kind": "host-page",
            "name": "too many",
            "template_id": setup.template.id,
            "config": {"max_rows": 0},
        },
        headers=_manage(client, runtime, setup),
    )
    assert refused.status_code == 422
    assert "from 1 to 100,000" in refused.json()["detail"]


def test_the_importer_page_is_told_the_cap(
    client: TestClient, runtime: Runtime, setup: OrgSetup
) -> None:
    def config() -> Any:
        import json

        page = client.get(
            "/importer",
            params={
                "key": setup.org.publishable_key,
                "template": setup.template.id,
                "origin": HOST,
            },
        )
        found = CONFIG_SCRIPT.search(page.text)
        assert found is not None
        return json.loads(found.group(1))

    assert config()["hostPage"] is None
    _host_page(client, runtime, setup, 250)
    assert config()["hostPage"] == {"maxRows": 250}


def test_rows_go_to_the_page_and_only_its_ack_delivers_them(
    client: TestClient, runtime: Runtime, setup: OrgSetup, batch_factory: BatchFactory
) -> None:
    _host_page(client, runtime, setup, 50)
    import_id, token = _submitted(client, setup, batch_factory)
    handed = client.get(f"/api/v1/imports/{import_id}/handoff", headers=_auth(token))
    assert handed.status_code == 200, handed.text
    body = handed.json()
    assert body["importId"] == import_id and body["total"] == 3
    assert [r["full_name"] for r in body["rows"]] == [
        "Zyxwab Quorth",
        "Mirela Okonkwo-Vass",
        "Brunhild Eskaton",
    ]
    assert "Notes" not in body["rows"][0] and "notes" not in body["rows"][0]
    # Handed, not acknowledged: not delivered, and a worker cannot deliver it either.
    status = client.get(f"/api/v1/imports/{import_id}", headers=_auth(token)).json()
    assert status["status"] == "delivering"
    with runtime.sessions() as session:
        (delivery_id,) = session.scalars(
            select(db.Delivery.id).where(db.Delivery.import_id == import_id)
        ).all()
    assert deliveries._attempt(runtime, delivery_id).startswith("retry")
    with runtime.sessions() as session:
        delivery = session.get(db.Delivery, delivery_id)
        assert delivery is not None and delivery.status == "pending"
        assert (
            delivery.last_error
            == "Waiting for the host page to acknowledge the rows it was handed."
        )

    acked = client.post(f"/api/v1/imports/{import_id}/handoff/ack", json={}, headers=_auth(token))
    assert acked.status_code == 200, acked.text
    assert acked.json()["settled"] == 1
    assert acked.json()["state"]["status"] == "delivered"
    again = client.post(f"/api/v1/imports/{import_id}/handoff/ack", json={}, headers=_auth(token))
    assert again.json()["settled"] == 0


def test_the_handoff_needs_the_upload_token_and_the_cap(
    client: TestClient, runtime: Runtime, setup: OrgSetup, batch_factory: BatchFactory
) -> None:
    _host_page(client, runtime, setup, 2)
    import_id, token = _submitted(client, setup, batch_factory)
    forged = client.get(f"/api/v1/imports/{import_id}/handoff", headers=_auth("nope"))
    assert forged.status_code == 401
    over = client.get(f"/api/v1/imports/{import_id}/handoff", headers=_auth(token))
    assert over.status_code == 422
    assert over.json()["error"]["message"].startswith(
        "This import has 3 rows; the page can be handed at most 2."
    )
    ack = client.post(f"/api/v1/imports/{import_id}/handoff/ack", json={}, headers=_auth("nope"))
    assert ack.status_code == 401


def test_no_queue_job_is_made_for_a_host_page_delivery(
    client: TestClient,
    runtime: Runtime,
    demo_org: DemoOrgFactory,
    batch_factory: BatchFactory,
    receiver: Receiver,
) -> None:
    """Relayed deliveries wait for the page's ack: neither the submit route nor the sweeper
    puts them on the queue, while the webhook delivery of the same import is enqueued."""
    from server import sweeper

    setup = demo_org(runtime, origins=[HOST], webhook_urls=[receiver.url])
    _host_page(client, runtime, setup, 50)
    import_id, token = _submitted(client, setup, batch_factory)
    with runtime.sessions() as session:
        rows = session.execute(
            select(db.Delivery.id, db.Delivery.attempts, db.Destination.kind)
            .join(db.Destination, db.Destination.id == db.Delivery.destination_id)
            .where(db.Delivery.import_id == import_id)
        ).all()
    kinds = {row.kind: row for row in rows}
    assert sorted(kinds) == ["host-page", "webhook"]
    page, hook = kinds["host-page"], kinds["webhook"]
    assert runtime.queue.statuses([deliveries.job_id(page.id, 1)]) == [None]
    assert runtime.queue.statuses([deliveries.job_id(hook.id, 1)]) != [None]
    assert deliveries.job_id(page.id, 1) not in runtime.queue.queued_ids()
    assert deliveries.enqueue_all(runtime, [page.id]) == 0  # a replayed submit: none either
    sweeper.sweep(runtime, db.utcnow())
    assert runtime.queue.statuses([deliveries.job_id(page.id, 1)]) == [None]
    with runtime.sessions() as session:
        delivery = session.get(db.Delivery, page.id)
        assert delivery is not None and delivery.status == "pending" and delivery.attempts == 0
    acked = client.post(f"/api/v1/imports/{import_id}/handoff/ack", json={}, headers=_auth(token))
    assert acked.json()["settled"] == 1


def test_a_failed_host_page_delivery_is_not_retried_from_the_server(
    client: TestClient, runtime: Runtime, setup: OrgSetup, batch_factory: BatchFactory
) -> None:
    """Only the end user's page can deliver host-page rows: a retry would queue a job no
    worker can complete, so it is refused with what to do instead."""
    from server.errors import Conflict

    _host_page(client, runtime, setup, 50)
    import_id, _ = _submitted(client, setup, batch_factory)
    with runtime.sessions.begin() as session:
        delivery = session.scalars(
            select(db.Delivery).where(db.Delivery.import_id == import_id)
        ).one()
        delivery.status = "failed"
        delivery_id = delivery.id
    with pytest.raises(Conflict, match="the user imports the file again"):
        deliveries.retry(runtime, delivery_id)
    assert runtime.queue.statuses([deliveries.job_id(delivery_id, 0)]) == [None]
    with runtime.sessions() as session:
        assert session.get(db.Delivery, delivery_id).status == "failed"  # type: ignore[union-attr]
