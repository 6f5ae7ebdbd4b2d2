"""The demo receiver's page stays bounded however much it was sent (#16: with the page
open, it verified and parsed every body of every import each 5 s refresh)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from starlette.testclient import TestClient

from destinations.webhook import WebhookDestination
from server import db, imports, jobs, uploads
from server.app import create_app
from server.demo import routes as demo_routes
from server.demo import state as demo

if TYPE_CHECKING:
    from tests.conftest import BatchFactory, RuntimeFactory

PUBLIC = "https://127.0.0.1:8443"


@pytest.mark.parametrize("store", ["sqlite"])
def test_the_receiver_page_shows_the_newest_and_renders_each_once(
    runtime_factory: RuntimeFactory,
    batch_factory: BatchFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rt = runtime_factory(demo=True)
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
    batches = demo_routes.RECEIPTS_SHOWN + 2
    for seq in range(batches):
        body = batch_factory(f"Full name,Email\nPerson {seq},p{seq}@example.com\n")
        uploads.receive_batch(rt, created.import_id, created.upload_token, seq, seq + 2, body)
    ids = imports.submit(rt, created.import_id, created.upload_token, batches, batches)
    assert [jobs.deliver(i) for i in ids] == ["delivered"] * batches

    demo_routes._section.cache_clear()
    page = client.get("/demo/receiver").text
    assert f"{batches} deliveries received. The newest 10 are shown." in page
    assert page.count("signature verified") == 10
    assert f"<td>Person {batches - 1}</td>" in page  # the newest first
    assert "<td>Person 0</td>" not in page and "<td>Person 1</td>" not in page
    assert demo_routes._section.cache_info().misses == 10

    again = client.get("/demo/receiver").text
    assert again == page
    info = demo_routes._section.cache_info()
    assert (info.misses, info.hits) == (10, 10)  # a refresh parses no body again
    assert len(client.get("/demo/receipts.json").json()) == batches  # the JSON keeps them all
