"""The management API: secret-key authentication, problem details, templates and their
versions, destinations with write-only secrets, organisation settings, pagination,
Idempotency-Key, and the OpenAPI document covering every route."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from destinations.webhook import new_secret
from server import audit, db, keys, orgs
from server.app import create_app
from server.errors import NotFound
from server.importer import routes as importer_routes
from server.manage import routes as manage_routes
from server.runtime import Runtime
from tests.conftest import CONTACTS_SCHEMA

if TYPE_CHECKING:
    from tests.conftest import DemoOrgFactory, OrgSetup, Receiver, RuntimeFactory

BASE = "https://127.0.0.1:8443"
HOST = "https://host.example"
PROBLEM = "application/problem+json"


@pytest.fixture
def store() -> str:
    return "sqlite"


@pytest.fixture
def setup(runtime: Runtime, demo_org: DemoOrgFactory) -> OrgSetup:
    return demo_org(runtime, origins=[HOST])


@pytest.fixture
def secret(runtime: Runtime, setup: OrgSetup) -> str:
    return keys.create_key(runtime, setup.org.id, "tests").secret


@pytest.fixture
def api(runtime: Runtime, secret: str) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), base_url=BASE) as client:
        client.headers["authorization"] = f"Bearer {secret}"
        yield client


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:loadbay:problem:{code}"
    assert body["code"] == code
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def _schema(name: str = "contacts") -> dict[str, Any]:
    schema = copy.deepcopy(CONTACTS_SCHEMA)
    schema["name"] = schema["title"] = name
    return schema


# --- credentials ---------------------------------------------------------------------------


def test_management_routes_need_a_live_secret_key(
    runtime: Runtime, setup: OrgSetup, secret: str
) -> None:
    with TestClient(create_app(runtime), base_url=BASE) as client:
        body = _problem(client.get("/api/v1/templates"), 401, "unauthorized")
        assert "lb_sk_" in body["detail"]
        for credential in (setup.org.publishable_key, "lb_sk_" + "A" * 43, secret + "x"):
            response = client.get(
                "/api/v1/templates", headers={"authorization": f"Bearer {credential}"}
            )
            _problem(response, 401, "unauthorized")
            assert response.headers["www-authenticate"] == 'Bearer realm="loadbay"'
        ok = client.get("/api/v1/organisation", headers={"authorization": f"Bearer {secret}"})
        assert ok.status_code == 200
        (key,) = keys.list_keys(runtime, setup.org.id)
        keys.revoke_key(runtime, key.id)
        revoked = client.get("/api/v1/organisation", headers={"authorization": f"Bearer {secret}"})
        _problem(revoked, 401, "unauthorized")


def test_a_key_opens_its_own_organisation_only(
    runtime: Runtime, api: TestClient, demo_org: DemoOrgFactory
) -> None:
    other = demo_org(runtime, origins=["https://other.example"])
    _problem(api.get(f"/api/v1/templates/{other.template.id}"), 404, "not-found")
    listed = api.get("/api/v1/templates").json()
    assert other.template.id not in [t["id"] for t in listed["items"]]
    assert api.get("/api/v1/organisation").json()["allowed_origins"] == [HOST]


def test_the_importer_keeps_its_error_shape_and_routes(
    runtime: Runtime, api: TestClient, setup: OrgSetup, secret: str
) -> None:
    created = api.post(
        "/api/v1/imports",
        json={"publishableKey": setup.org.publishable_key, "templateId": setup.template.id},
        headers={"origin": BASE},
    )
    assert created.status_code == 201
    status = api.get(
        f"/api/v1/imports/{created.json()['id']}",
        headers={"authorization": f"Bearer {created.json()['uploadToken']}"},
    )
    assert status.status_code == 200
    assert set(status.json()) == {
        "id",
        "status",
        "final",
        "rows",
        "batches",
        "left_out",
        "deliveries",
    }
    # The one shared path dispatches by credential: a secret key gets the management answer.
    managed_answer = api.get(f"/api/v1/imports/{created.json()['id']}")
    assert managed_answer.status_code == 200
    assert managed_answer.json()["template_version"] == setup.template.version
    # A secret key is no upload token on the importer's own routes: its shape, refused.
    refused = api.post(
        f"/api/v1/imports/{created.json()['id']}/submit", json={}, headers={"origin": BASE}
    )
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"

    # No other management route shares a path and a method with an importer route.
    def shape(path: str) -> str:
        return re.sub(r"{\w+}", "{}", path)

    importer = {
        (shape(r.path), m)
        for r in importer_routes.routes
        if isinstance(r, Route)
        for m in r.methods or ()
    }
    managed = {
        (shape(r.path), m)
        for r in manage_routes.routes
        if isinstance(r, Route)
        for m in r.methods or ()
    }
    assert importer & managed == {("/api/v1/imports/{}", "GET"), ("/api/v1/imports/{}", "HEAD")}


# --- templates -----------------------------------------------------------------------------


def test_templates_are_versioned_and_imports_record_their_version(
    runtime: Runtime, api: TestClient, setup: OrgSetup
) -> None:
    created = api.post("/api/v1/templates", json={"schema": _schema("People")})
    assert created.status_code == 201, created.text
    template = created.json()
    assert template["version"] == 1
    assert template["name"] == "People"
    assert template["deleted_at"] is None
    assert template["id"].startswith("tpl_")
    first = api.post(
        "/api/v1/imports",
        json={"publishableKey": setup.org.publishable_key, "templateId": template["id"]},
        headers={"origin": BASE},
    ).json()["id"]
    replaced = api.put(f"/api/v1/templates/{template['id']}", json={"schema": _schema("Folk")})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["version"] == 2
    assert replaced.json()["name"] == "Folk"
    assert api.get(f"/api/v1/templates/{template['id']}").json()["schema"]["title"] == "Folk"
    second = api.post(
        "/api/v1/imports",
        json={"publishableKey": setup.org.publishable_key, "templateId": template["id"]},
        headers={"origin": BASE},
    ).json()["id"]
    with runtime.sessions() as session:
        assert session.get(db.Import, first).template_version == 1  # type: ignore[union-attr]
        assert session.get(db.Import, second).template_version == 2  # type: ignore[union-attr]
        versions = session.query(db.TemplateVersion).filter_by(template_id=template["id"]).all()
        assert sorted((v.version, v.schema["title"]) for v in versions) == [
            (1, "People"),
            (2, "Folk"),
        ]


def test_invalid_templates_are_refused_with_a_problem(api: TestClient) -> None:
    bad = _schema()
    bad["fields"] = [{"name": "x", "type": "no-such-type"}]
    body = _problem(api.post("/api/v1/templates", json={"schema": bad}), 422, "invalid-template")
    assert "not valid" in body["detail"]
    shape = _problem(api.post("/api/v1/templates", json={"schema": 3}), 422, "invalid")
    assert shape["errors"][0]["loc"] == ["schema"]
    extra = _problem(api.post("/api/v1/templates", json={"schema": {}, "x": 1}), 422, "invalid")
    assert ["x"] in [e["loc"] for e in extra["errors"]]
    _problem(api.post("/api/v1/templates", content=b"{not json"), 422, "invalid")
    _problem(api.put("/api/v1/templates/tpl_nope", json={"schema": _schema()}), 404, "not-found")


def test_a_deleted_template_is_restorable_for_30_days(
    runtime: Runtime, api: TestClient, setup: OrgSetup
) -> None:
    tid = setup.template.id
    page = {"key": setup.org.publishable_key, "template": tid, "origin": HOST}
    deleted = api.delete(f"/api/v1/templates/{tid}")
    assert deleted.status_code == 200
    assert deleted.json()["deleted_at"] is not None
    assert tid not in [t["id"] for t in api.get("/api/v1/templates").json()["items"]]
    everything = api.get("/api/v1/templates", params={"include_deleted": "true"}).json()
    assert tid in [t["id"] for t in everything["items"]]
    assert api.get("/importer", params=page).status_code == 404  # no longer served
    refused = api.post(
        "/api/v1/imports",
        json={"publishableKey": setup.org.publishable_key, "templateId": tid},
        headers={"origin": BASE},
    )
    assert refused.status_code == 404
    _problem(api.put(f"/api/v1/templates/{tid}", json={"schema": _schema()}), 409, "conflict")
    restored = api.post(f"/api/v1/templates/{tid}/restore")
    assert restored.status_code == 200
    assert restored.json()["deleted_at"] is None
    assert api.get("/importer", params=page).status_code == 200
    api.delete(f"/api/v1/templates/{tid}")
    with runtime.sessions.begin() as session:
        row = session.get(db.Template, tid)
        assert row is not None
        row.deleted_at = db.utcnow() - dt.timedelta(days=30, hours=1)
    body = _problem(api.post(f"/api/v1/templates/{tid}/restore"), 409, "restore-window-passed")
    assert "30 days" in body["detail"]


def test_lists_are_paged_by_cursor(api: TestClient, setup: OrgSetup) -> None:
    made = [setup.template.id] + [
        api.post("/api/v1/templates", json={"schema": _schema(f"T{i}")}).json()["id"]
        for i in range(4)
    ]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = api.get("/api/v1/templates", params=params).json()
        assert len(page["items"]) <= 2
        seen += [t["id"] for t in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made  # creation order, each once
    assert pages == 3
    one = api.get("/api/v1/templates", params={"limit": "5"}).json()
    assert one["next_cursor"] is None
    assert len(one["items"]) == 5
    for bad in ({"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"cursor": "garbage!"}):
        _problem(api.get("/api/v1/templates", params=bad), 422, "invalid")


# --- destinations --------------------------------------------------------------------------


def _webhook(api: TestClient, setup: OrgSetup, url: str, signing: str) -> dict[str, Any]:
    response = api.post(
        "/api/v1/destinations",
        json={
            "kind": "webhook",
            "name": "CRM",
            "template_id": setup.template.id,
            "config": {"url": url, "secret": signing},
        },
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_destination_secrets_are_write_only_and_kept_by_patch(
    runtime: Runtime, api: TestClient, setup: OrgSetup, receiver: Receiver
) -> None:
    signing = new_secret()
    created = _webhook(api, setup, receiver.url, signing)
    assert created["config"] == {
        "url": receiver.url,
        "secret": {"set": True},
        "secrets": {"set": False},
    }
    assert created["enabled"] is True
    did = created["id"]
    for response in (
        api.get(f"/api/v1/destinations/{did}"),
        api.get("/api/v1/destinations"),
    ):
        assert signing not in response.text
        assert signing.removeprefix("whsec_") not in response.text
    other_url = receiver.url.replace("/hook", "/other")
    patched = api.patch(f"/api/v1/destinations/{did}", json={"config": {"url": other_url}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["config"]["url"] == other_url
    assert patched.json()["config"]["secret"] == {"set": True}
    with runtime.sessions() as session:
        row = session.get(db.Destination, did)
        assert row is not None
        org = setup.org
        stored = runtime.vault.open_config(org.id, org.wrapped_key, did, row.sealed_config)
    assert stored == {"url": other_url, "secret": signing}
    renamed = api.patch(f"/api/v1/destinations/{did}", json={"name": "ERP", "enabled": False})
    assert renamed.json()["name"] == "ERP"
    assert renamed.json()["enabled"] is False
    unsigned = api.patch(f"/api/v1/destinations/{did}", json={"config": {"secret": None}})
    _problem(unsigned, 422, "invalid-destination")
    assert signing not in unsigned.text


def test_destination_test_runs_check_and_refuses_unsafe_addresses(
    runtime: Runtime,
    runtime_factory: RuntimeFactory,
    api: TestClient,
    setup: OrgSetup,
    receiver: Receiver,
    secret: str,
) -> None:
    did = _webhook(api, setup, receiver.url, new_secret())["id"]
    tested = api.post(f"/api/v1/destinations/{did}/test")
    assert tested.status_code == 200
    assert tested.json()["ok"] is True
    assert receiver.requests == []  # check() sends nothing
    # The same database under an operator who opened no private network.
    strict = runtime_factory(allow_private_networks=())
    with TestClient(create_app(strict), base_url=BASE) as client:
        client.headers["authorization"] = f"Bearer {secret}"
        body = _problem(client.post(f"/api/v1/destinations/{did}/test"), 422, "unsafe-address")
        assert "127.0.0.1" in body["detail"]
        created = client.post(
            "/api/v1/destinations",
            json={
                "kind": "webhook",
                "name": "x",
                "template_id": setup.template.id,
                "config": {"url": "https://2130706433/hook", "secret": new_secret()},
            },
        )
        _problem(created, 422, "unsafe-address")
    private = api.post(  # the tests' operator opened 127.0.0.0/8, not 10.0.0.0/8
        "/api/v1/destinations",
        json={
            "kind": "webhook",
            "name": "x",
            "template_id": setup.template.id,
            "config": {"url": "https://10.0.0.1/hook", "secret": new_secret()},
        },
    )
    assert "10.0.0.1 is a private address" in _problem(private, 422, "unsafe-address")["detail"]
    kind = api.post(
        "/api/v1/destinations",
        json={"kind": "nope", "name": "x", "template_id": setup.template.id, "config": {}},
    )
    _problem(kind, 422, "invalid-destination")


def test_a_deleted_destination_gets_nothing_until_restored(
    runtime: Runtime, api: TestClient, setup: OrgSetup, receiver: Receiver
) -> None:
    did = _webhook(api, setup, receiver.url, new_secret())["id"]
    deleted = api.delete(f"/api/v1/destinations/{did}").json()
    assert deleted["deleted_at"] is not None
    assert deleted["enabled"] is False
    assert api.get("/api/v1/destinations").json()["items"] == []
    _problem(api.patch(f"/api/v1/destinations/{did}", json={"name": "y"}), 409, "conflict")
    restored = api.post(f"/api/v1/destinations/{did}/restore").json()
    assert restored["deleted_at"] is None
    assert restored["enabled"] is True
    assert [d["id"] for d in api.get("/api/v1/destinations").json()["items"]] == [did]
    api.delete(f"/api/v1/destinations/{did}")
    with runtime.sessions.begin() as session:
        row = session.get(db.Destination, did)
        assert row is not None
        row.deleted_at = db.utcnow() - dt.timedelta(days=31)
    _problem(api.post(f"/api/v1/destinations/{did}/restore"), 409, "restore-window-passed")


def test_destination_kinds_carry_their_json_schema(api: TestClient) -> None:
    items = api.get("/api/v1/destination-kinds").json()["items"]
    webhook = next(k for k in items if k["kind"] == "webhook")
    assert webhook["json_schema"]["required"] == ["url"]
    assert webhook["json_schema"]["properties"]["secret"]["writeOnly"] is True


# --- organisation settings -----------------------------------------------------------------


def test_the_publishable_key_rotates_with_a_grace_period_through_the_api(
    api: TestClient, setup: OrgSetup, runtime: Runtime
) -> None:
    first = setup.org.publishable_key
    rotated = api.post("/api/v1/organisation/publishable-key/rotate", json={"grace": "1h"})
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    second = body["publishable_key"]
    assert second != first and second.startswith("pk_")
    assert body["previous_publishable_key"] == first
    expires = dt.datetime.fromisoformat(body["previous_key_expires_at"])
    assert dt.timedelta(minutes=59) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=1)
    # Both keys open the importer until the grace period ends; then only the new one.
    assert orgs.organisation_by_key(runtime, first).id == setup.org.id
    assert orgs.organisation_by_key(runtime, second).id == setup.org.id
    with pytest.raises(NotFound, match="grace period is over"):
        orgs.organisation_by_key(runtime, first, expires + dt.timedelta(seconds=1))
    ended = api.delete("/api/v1/organisation/publishable-key/previous")
    assert ended.status_code == 200 and ended.json()["previous_publishable_key"] is None
    with pytest.raises(NotFound):
        orgs.organisation_by_key(runtime, first)
    _problem(api.delete("/api/v1/organisation/publishable-key/previous"), 404, "not-found")
    _problem(
        api.post("/api/v1/organisation/publishable-key/rotate", json={"grace": "1y"}),
        422,
        "invalid",
    )
    now = api.post("/api/v1/organisation/publishable-key/rotate", json={"grace": "now"}).json()
    assert now["previous_publishable_key"] is None and now["publishable_key"] != second
    actions = [e.action for e in audit.entries(runtime, setup.org.id)[:3]]
    assert actions == [
        "publishable-key.rotated",
        "publishable-key.previous-revoked",
        "publishable-key.rotated",
    ]


def test_organisation_settings_are_validated(api: TestClient, setup: OrgSetup) -> None:
    got = api.get("/api/v1/organisation").json()
    assert got == {
        "id": setup.org.id,
        "name": "Test Org",
        "publishable_key": setup.org.publishable_key,
        "allowed_origins": [HOST],
        "default_retention_days": 30,
        "invalid_row_policy": "reject",
        "kms_key_arn": None,
        "previous_publishable_key": None,
        "previous_key_expires_at": None,
    }
    changed = api.patch(
        "/api/v1/organisation",
        json={
            "allowed_origins": ["https://App.Example.com/", "http://localhost:3000", HOST, HOST],
            "default_retention_days": 7,
            "invalid_row_policy": "valid-only",
        },
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["allowed_origins"] == [
        "https://app.example.com",
        "http://localhost:3000",
        HOST,
    ]
    assert changed.json()["default_retention_days"] == 7
    assert changed.json()["invalid_row_policy"] == "valid-only"
    for origin in (
        "https://a.example/path",
        "ftp://a.example",
        "https://user@a.example",
        "https://a.example?x=1",
        "a.example",
        "https://a.example:99999",
        "https://",
    ):
        body = _problem(
            api.patch("/api/v1/organisation", json={"allowed_origins": [origin]}),
            422,
            "invalid-origin",
        )
        assert "is not an origin" in body["detail"]
    for bad in (
        {"default_retention_days": 0},
        {"default_retention_days": 366},
        {"invalid_row_policy": "ignore"},
        {"name": "renamed"},
    ):
        _problem(api.patch("/api/v1/organisation", json=bad), 422, "invalid")
    assert api.get("/api/v1/organisation").json() == changed.json()  # nothing half-applied


# --- Idempotency-Key -----------------------------------------------------------------------


def test_idempotency_keys_replay_and_refuse_another_body(
    runtime: Runtime, api: TestClient, setup: OrgSetup
) -> None:
    headers = {"idempotency-key": "create-people-1"}
    first = api.post("/api/v1/templates", json={"schema": _schema("People")}, headers=headers)
    again = api.post("/api/v1/templates", json={"schema": _schema("People")}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    listed = api.get("/api/v1/templates").json()["items"]
    assert [t["name"] for t in listed].count("People") == 1
    other = api.post("/api/v1/templates", json={"schema": _schema("Other")}, headers=headers)
    _problem(other, 422, "idempotency-key-reused")
    with runtime.sessions() as session:
        (row,) = session.query(db.IdempotencyKey).all()
        assert "create-people-1" not in json.dumps([row.key_hash, row.request_hash])
    with runtime.sessions.begin() as session:
        session.query(db.IdempotencyKey).update(
            {"created_at": db.utcnow() - dt.timedelta(hours=25)}
        )
    later = api.post("/api/v1/templates", json={"schema": _schema("Other")}, headers=headers)
    assert later.status_code == 201  # kept 24 h, then the key is free again
    assert later.json()["id"] != first.json()["id"]


# --- OpenAPI -------------------------------------------------------------------------------


def test_openapi_documents_every_management_route(api: TestClient) -> None:
    response = api.get("/api/v1/openapi.json", headers={"authorization": ""})
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"] == "3.1.0"
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    served = {
        (r.path, m)
        for r in manage_routes.routes
        if isinstance(r, Route)
        for m in (r.methods or ())
        if m != "HEAD"
    }
    assert served == documented
    # with POST /api/v1/files, GET /api/v1/files/{id}, an import's preview and reveal, the
    # publishable key's rotation and the end of its grace period
    assert len(served) == 30
    assert api.get("/api/openapi.json", headers={"authorization": ""}).json() == doc
    schemas = doc["components"]["schemas"]
    assert {"TemplateOut", "DestinationOut", "Problem", "OrganisationPatch"} <= set(schemas)
    assert {"PreviewOut", "RevealIn", "PublishableKeyRotate"} <= set(schemas)
    reveal = doc["paths"]["/api/v1/imports/{id}/reveal"]["post"]
    assert reveal["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RevealIn"
    }
    op = doc["paths"]["/api/v1/destinations/{id}"]["patch"]
    assert op["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DestinationPatch"
    }
    assert "application/problem+json" in op["responses"]["404"]["content"]
    for path, ops in doc["paths"].items():
        for operation in ops.values():
            for ref in json.dumps(operation).split('"$ref": "')[1:]:
                assert ref.split('"')[0].removeprefix("#/components/schemas/") in schemas, path


def test_a_concurrent_duplicate_gets_409_and_a_server_error_frees_the_key(
    runtime: Runtime, api: TestClient, setup: OrgSetup
) -> None:
    from starlette.responses import Response

    from server.manage import idempotency

    org_id, body = setup.org.id, b'{"schema": {}}'
    assert idempotency.claim(runtime, org_id, "k1", "/api/v1/templates", body).replay is None
    with pytest.raises(idempotency.InProgress):  # the first is still running
        idempotency.claim(runtime, org_id, "k1", "/api/v1/templates", body)
    idempotency.finish(runtime, org_id, "k1", Response(status_code=500))
    assert idempotency.claim(runtime, org_id, "k1", "/api/v1/templates", body).replay is None
    _problem(
        api.post("/api/v1/templates", json={"schema": {}}, headers={"idempotency-key": "k1"}),
        409,
        "idempotency-key-in-use",
    )
    _problem(
        api.post("/api/v1/templates", json={"schema": {}}, headers={"idempotency-key": ""}),
        422,
        "invalid",
    )
