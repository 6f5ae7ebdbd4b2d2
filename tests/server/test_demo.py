"""The demo seed: one organisation, the contacts template, a webhook to the built-in receiver."""

from __future__ import annotations

import base64
import json
import stat
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from destinations.webhook import WebhookDestination
from server import db, imports, jobs, uploads
from server.app import create_app
from server.demo import state as demo
from server.runtime import Runtime

if TYPE_CHECKING:
    from tests.conftest import BatchFactory, RuntimeFactory

PUBLIC = "https://127.0.0.1:8443"


def _count(rt: Runtime, model: type[db.Base]) -> int:
    with rt.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_seed_creates_the_demo_organisation(runtime: Runtime) -> None:
    state = demo.seed(runtime)
    assert state.importer_origin == PUBLIC
    assert state.host_origin == "https://localhost:8443"
    assert state.host_origin != state.importer_origin
    assert state.host_page == "https://localhost:8443/demo/host"
    assert state.receiver_page == f"{PUBLIC}/demo/receiver"
    with runtime.sessions() as session:
        org = session.get(db.Organisation, state.org_id)
        template = session.get(db.Template, state.template_id)
        destination = session.get(db.Destination, state.destination_id)
        assert org is not None and template is not None and destination is not None
        assert org.allowed_origins == [state.host_origin]
        assert org.publishable_key == state.publishable_key
        assert template.schema == json.loads(demo.TEMPLATE_FILE.read_text())
        assert (destination.kind, destination.enabled, destination.template_id) == (
            "webhook",
            True,
            template.id,
        )
        config = runtime.vault.open_config(
            org.id, org.wrapped_key, destination.id, destination.sealed_config
        )
    assert config == {"url": f"{PUBLIC}/demo/webhook", "secret": state.webhook_secret}
    assert state.webhook_secret.startswith("whsec_")
    assert len(base64.b64decode(state.webhook_secret.removeprefix("whsec_"))) >= 24


def test_seed_is_idempotent(runtime: Runtime) -> None:
    first = demo.seed(runtime)
    second = demo.seed(runtime)
    assert second == first
    counts = [_count(runtime, m) for m in (db.Organisation, db.Template, db.Destination)]
    assert counts == [1, 1, 1]


def test_state_file_is_private(runtime: Runtime) -> None:
    state = demo.seed(runtime)
    path = demo.state_file(runtime)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["webhook_secret"] == state.webhook_secret


def test_a_new_public_url_gets_a_new_organisation(runtime_factory: RuntimeFactory) -> None:
    first = demo.seed(runtime_factory())
    rt = runtime_factory(public_url="https://127.0.0.1:9443")
    second = demo.seed(rt)
    assert second.org_id != first.org_id
    assert (second.importer_origin, second.host_origin) == (
        "https://127.0.0.1:9443",
        "https://localhost:9443",
    )
    assert demo.load_state(rt) == second


@pytest.mark.parametrize("store", ["sqlite"])
def test_a_lost_database_is_reseeded(
    runtime_factory: RuntimeFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    first = demo.seed(runtime_factory())
    other_db = tmp_path_factory.mktemp("other") / "fresh.db"
    fresh = runtime_factory(database_url=f"sqlite:///{other_db}")
    second = demo.seed(fresh)
    assert second.org_id != first.org_id
    assert _count(fresh, db.Organisation) == 1


@pytest.mark.parametrize(
    ("public_url", "host"),
    [
        ("https://127.0.0.1:8443", "https://localhost:8443"),
        ("http://127.0.0.1:80", "http://localhost:80"),
    ],
)
def test_host_origin_is_another_origin(public_url: str, host: str) -> None:
    assert demo.host_origin_for(public_url) == host
    assert host != public_url


def _delivered_to_the_demo(
    rt: Runtime, body: bytes, monkeypatch: pytest.MonkeyPatch
) -> tuple[TestClient, imports.CreatedImport]:
    """One batch of the demo organisation's template, delivered by the real job to the demo
    app's receiver in process."""
    state = demo.seed(rt)
    client = TestClient(create_app(rt), base_url=PUBLIC)
    monkeypatch.setattr(jobs, "_runtime", lambda: rt)
    monkeypatch.setattr(
        WebhookDestination, "_client", lambda self: TestClient(client.app, base_url=PUBLIC)
    )
    with rt.sessions() as session:
        org = session.get(db.Organisation, state.org_id)
        assert org is not None
    created = imports.create_import(rt, org, state.template_id, "c.csv")
    uploads.receive_batch(rt, created.import_id, created.upload_token, 0, 2, body)
    [delivery_id] = imports.submit(rt, created.import_id, created.upload_token, 1, 1)
    assert jobs.deliver(delivery_id) == "delivered"
    return client, created


@pytest.mark.parametrize("store", ["sqlite"])
def test_the_demo_receiver_shows_a_verified_delivery(
    runtime_factory: RuntimeFactory,
    batch_factory: BatchFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real delivery job, its HTTP request answered by the demo app in process."""
    rt = runtime_factory(demo=True)
    client, created = _delivered_to_the_demo(
        rt,
        batch_factory("Full name,Email,Notes\nAda Lovelace,ada@example.com,unmapped\n"),
        monkeypatch,
    )

    [receipt] = client.get("/demo/receipts.json").json()
    assert receipt["headers"]["webhook-id"] == f"{created.import_id}-0-0"
    assert json.loads(receipt["body"])["data"]["rows"] == [
        {
            "full_name": "Ada Lovelace",
            "email": "ada@example.com",
            "phone": None,
            "country": None,
            "signup_date": None,
            "amount": None,
        }
    ]
    page = client.get("/demo/receiver").text
    assert "1 deliveries received." in page
    assert "signature verified" in page
    assert "<td>Ada Lovelace</td>" in page
    client.close()


def test_the_demo_pages_exist_only_in_demo_mode(
    runtime_factory: RuntimeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: `LOADBAY_DEMO=1 loadbay serve` mounted the receiver (readable without
    authentication) on a production server. Now only `loadbay demo` does."""
    monkeypatch.setenv("LOADBAY_DEMO", "1")
    from server.settings import Settings

    assert Settings.from_env().demo is False
    client = TestClient(create_app(runtime_factory()), base_url=PUBLIC)
    for path in ("/demo/host", "/demo/receiver", "/demo/receipts.json"):
        assert client.get(path).status_code == 404
    assert client.post("/demo/webhook", content=b"{}").status_code == 404


@pytest.mark.parametrize("store", ["sqlite"])
def test_a_forged_post_to_the_demo_receiver_is_refused_and_not_kept(
    runtime_factory: RuntimeFactory,
) -> None:
    rt = runtime_factory(demo=True)
    demo.seed(rt)
    client = TestClient(create_app(rt), base_url=PUBLIC)
    forged = client.post(
        "/demo/webhook",
        content=b'{"data": {"rows": [{"full_name": "forged"}]}}',
        headers={"webhook-id": "x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
    )
    assert forged.status_code == 401
    assert client.get("/demo/receipts.json").json() == []


@pytest.mark.parametrize("store", ["sqlite"])
def test_receipts_go_when_their_import_is_deleted(
    runtime_factory: RuntimeFactory,
    batch_factory: BatchFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The demo keeps receipts in its own database (not the product schema), and a receipt
    goes with its import's data."""
    from server import retention

    rt = runtime_factory(demo=True)
    body = batch_factory("Full name,Email\nAda Lovelace,ada@example.com\n")
    client, created = _delivered_to_the_demo(rt, body, monkeypatch)
    assert [r["import_id"] for r in client.get("/demo/receipts.json").json()] == [created.import_id]
    assert (rt.settings.data_dir / "demo-receiver.db").stat().st_mode & 0o777 == 0o600
    assert "demo_receipts" not in db.Base.metadata.tables

    assert retention.delete_import_data(rt, created.import_id)
    assert client.get("/demo/receipts.json").json() == []
    assert "Ada Lovelace" not in client.get("/demo/receiver").text
