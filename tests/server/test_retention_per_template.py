"""Retention per template: the template's x-loadbay retentionDays, else the organisation's
default, else the operator's; each import records it, the page shows it, and once the
rows are shredded the importer's data routes answer 410 with the date and the reason."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from typing import TYPE_CHECKING, Any

import pytest
from starlette.testclient import TestClient

from server import db, imports, orgs, retention, templates
from server.app import create_app
from server.http.digest import content_digest_header
from server.runtime import Runtime
from tests.conftest import CONTACTS_SCHEMA, HOST_ORIGIN

if TYPE_CHECKING:
    from tests.conftest import BatchFactory, DemoOrgFactory, OrgSetup, RuntimeFactory

pytestmark = pytest.mark.parametrize("store", ["sqlite"])

BASE = "https://127.0.0.1:8443"
CSV = "Full name,Email\nRetention Probe,probe@example.com\n"
CONFIG = re.compile(r'<script type="application/json" id="loadbay-config">(.*?)</script>', re.S)


def schema_with(days: int | None) -> dict[str, Any]:
    schema = copy.deepcopy(CONTACTS_SCHEMA)
    if days is not None:
        schema["x-loadbay"] = {"retentionDays": days}
    return schema


def _recorded(rt: Runtime, import_id: str) -> tuple[int | None, dt.timedelta]:
    with rt.sessions() as session:
        imp = session.get(db.Import, import_id)
        assert imp is not None
        return imp.retention_days, imp.expires_at - imp.created_at


@pytest.mark.parametrize(
    ("template_days", "org_days", "expected"),
    [(7, 12, 7), (None, 12, 12), (None, None, 45), (365, None, 365)],
)
def test_an_import_records_the_retention_it_was_created_under(
    runtime_factory: RuntimeFactory,
    demo_org: DemoOrgFactory,
    template_days: int | None,
    org_days: int | None,
    expected: int,
) -> None:
    rt = runtime_factory(retention_days=45)
    setup = demo_org(rt, schema=schema_with(template_days))
    if org_days is not None:
        orgs.update_settings(rt, setup.org.id, default_retention_days=org_days)
    created = imports.create_import(rt, setup.org, setup.template.id, "people.csv")
    assert _recorded(rt, created.import_id) == (expected, dt.timedelta(days=expected))
    # A later change of the template does not move an import already created.
    templates.replace_template(rt, setup.org.id, setup.template.id, schema_with(3))
    assert _recorded(rt, created.import_id) == (expected, dt.timedelta(days=expected))
    later = imports.create_import(rt, setup.org, setup.template.id, "people.csv")
    assert _recorded(rt, later.import_id) == (3, dt.timedelta(days=3))


def test_a_template_with_a_retention_out_of_range_is_refused(runtime: Runtime) -> None:
    org = orgs.create_organisation(runtime, "Org", [HOST_ORIGIN])
    with pytest.raises(templates.InvalidTemplate, match="from 0 to 365"):
        templates.create_template(runtime, org.id, schema_with(400))


@pytest.fixture
def client(runtime: Runtime) -> Any:
    with TestClient(create_app(runtime), base_url=BASE) as made:
        yield made


def _page_config(client: TestClient, setup: OrgSetup) -> dict[str, Any]:
    page = client.get(
        "/importer",
        params={
            "key": setup.org.publishable_key,
            "template": setup.template.id,
            "origin": HOST_ORIGIN,
        },
    )
    assert page.status_code == 200, page.text
    match = CONFIG.search(page.text)
    assert match is not None
    config: dict[str, Any] = json.loads(match.group(1))
    return config


@pytest.mark.parametrize(
    ("days", "told"),
    [
        (None, {"days": 30, "passthrough": False, "organisation": "Test Org"}),
        (90, {"days": 90, "passthrough": False, "organisation": "Test Org"}),
        (0, {"days": 0, "passthrough": True, "organisation": "Test Org"}),
    ],
)
def test_the_importer_page_is_told_the_retention(
    runtime: Runtime,
    demo_org: DemoOrgFactory,
    client: TestClient,
    days: int | None,
    told: dict[str, Any],
) -> None:
    setup = demo_org(runtime, schema=schema_with(days))
    assert _page_config(client, setup)["retention"] == told


def test_after_expiry_the_data_routes_answer_410_with_the_date_and_reason(
    runtime: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory, client: TestClient
) -> None:
    setup = demo_org(runtime, schema=schema_with(2))
    created = imports.create_import(runtime, setup.org, setup.template.id, "probe.csv")
    auth = {"authorization": f"Bearer {created.upload_token}", "origin": BASE}
    with runtime.sessions.begin() as session:
        imp = session.get(db.Import, created.import_id)
        assert imp is not None
        imp.expires_at = db.utcnow() - dt.timedelta(seconds=1)
        days = imp.retention_days
    assert retention.purge_expired(runtime) == [created.import_id]
    with runtime.sessions() as session:
        [event] = session.query(db.Event).filter_by(import_id=created.import_id).all()
        when = event.at

    body = batch_factory(CSV)
    url = f"/api/v1/imports/{created.import_id}"
    digest = {"content-digest": content_digest_header(body)}
    put = client.put(f"{url}/batches/0", content=body, headers=auth | digest)
    assert put.status_code == 410
    error = put.json()["error"]
    assert error["code"] == "gone"
    assert error["details"]["reason"] == "expired"
    assert error["details"]["at"] == when.isoformat()
    assert (
        f"expired after {days} days retention on {when:%Y-%m-%d at %H:%M} UTC" in error["message"]
    )
    submit = client.post(f"{url}/submit", json={"batches": 0, "rows": 0}, headers=auth)
    assert submit.status_code == 410 and submit.json()["error"]["details"]["reason"] == "expired"
    # The status stays answerable, and says why.
    status = client.get(url, headers=auth)
    assert status.status_code == 200
    assert status.json()["status"] == "expired" and status.json()["final"] is True
    assert status.json()["dataGone"] == {
        "at": when.isoformat(),
        "reason": "expired",
        "message": error["message"],
    }


def test_after_a_deletion_the_reason_is_the_deletion(
    runtime: Runtime, demo_org: DemoOrgFactory, batch_factory: BatchFactory
) -> None:
    setup = demo_org(runtime)
    created = imports.create_import(runtime, setup.org, setup.template.id, "probe.csv")
    assert retention.delete_import_data(runtime, created.import_id) is True
    state = imports.status(runtime, created.import_id, created.upload_token)
    assert state.gone is not None and state.gone.reason == "deleted"
    assert "was deleted by cli on" in state.gone.message
    with runtime.sessions() as session:
        imp = session.get(db.Import, created.import_id)
        assert imp is not None
        assert imports.data_state(session, imp) == state.gone
