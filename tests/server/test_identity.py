"""End-user identity: an HS256 token the client's backend signs with its secret key,
checked when the importer creates an import, recorded with it, shown by the management API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from starlette.testclient import TestClient

from server import db, keys
from server.app import create_app
from server.runtime import Runtime
from tests.conftest import CONTACTS_SCHEMA

if TYPE_CHECKING:
    from tests.conftest import DemoOrgFactory, OrgSetup

BASE = "https://127.0.0.1:8443"
REQUIRED = {**CONTACTS_SCHEMA, "x-loadbay": {"identity": "required"}}


@pytest.fixture
def store() -> str:
    return "sqlite"


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), base_url=BASE) as client:
        yield client


def _signed(secret: str, key_id: str | None, **claims: Any) -> str:
    payload = {"user": "user-42", "metadata": {"plan": "pro"}, "exp": int(time.time()) + 600}
    payload.update(claims)
    headers = {"kid": key_id} if key_id else None
    return jwt.encode(payload, secret, algorithm="HS256", headers=headers)


def _create(client: TestClient, setup: OrgSetup, identity: Any = None) -> Any:
    body: dict[str, Any] = {
        "publishableKey": setup.org.publishable_key,
        "templateId": setup.template.id,
        "fileName": "contacts.csv",
    }
    if identity is not None:
        body["identity"] = identity
    return client.post("/api/v1/imports", json=body, headers={"origin": BASE})


def _identity_of(rt: Runtime, import_id: str) -> Any:
    with rt.sessions() as session:
        imp = session.get(db.Import, import_id)
        assert imp is not None
        return imp.identity


def test_a_signed_identity_is_recorded_and_shown_in_the_import_detail(
    runtime: Runtime, client: TestClient, demo_org: DemoOrgFactory
) -> None:
    setup = demo_org(runtime, schema=REQUIRED)
    created = keys.create_key(runtime, setup.org.id, "backend")
    token = _signed(created.secret, created.key.id)
    response = _create(client, setup, token)
    assert response.status_code == 201, response.text
    import_id = response.json()["id"]
    expected = {"user": "user-42", "metadata": {"plan": "pro"}, "key_id": created.key.id}
    assert _identity_of(runtime, import_id) == expected
    detail = client.get(
        f"/api/v1/imports/{import_id}", headers={"authorization": f"Bearer {created.secret}"}
    )
    assert detail.status_code == 200, detail.text
    assert detail.json()["identity"] == expected


def test_a_token_without_kid_is_tried_against_every_live_key(
    runtime: Runtime, client: TestClient, demo_org: DemoOrgFactory
) -> None:
    setup = demo_org(runtime)
    keys.create_key(runtime, setup.org.id, "other")
    signer = keys.create_key(runtime, setup.org.id, "backend")
    response = _create(client, setup, _signed(signer.secret, None, user="u-7", metadata={}))
    assert response.status_code == 201, response.text
    assert _identity_of(runtime, response.json()["id"]) == {
        "user": "u-7",
        "metadata": {},
        "key_id": signer.key.id,
    }


def test_without_a_token_an_optional_identity_is_none(
    runtime: Runtime, client: TestClient, demo_org: DemoOrgFactory
) -> None:
    setup = demo_org(runtime)
    response = _create(client, setup)
    assert response.status_code == 201
    assert _identity_of(runtime, response.json()["id"]) is None


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("missing", 401, "This importer needs a signed identity"),
        ("expired", 401, "The identity token has expired"),
        ("wrong-key", 401, "signature does not verify with any of the organisation's"),
        ("revoked", 401, "signature does not verify with any of the organisation's"),
        ("other-org", 401, "signature does not verify with any of the organisation's"),
        ("none-alg", 401, "must be signed with HS256"),
        ("no-exp", 401, 'Token is missing the "exp" claim'),
        ("not-a-jwt", 401, "not a signed JWT"),
        ("no-user", 422, 'needs "user"'),
        ("bad-metadata", 422, '"metadata" must be a JSON object'),
    ],
)
def test_a_required_identity_refuses_what_does_not_verify(
    runtime: Runtime,
    client: TestClient,
    demo_org: DemoOrgFactory,
    case: str,
    status: int,
    message: str,
) -> None:
    setup = demo_org(runtime, schema=REQUIRED)
    created = keys.create_key(runtime, setup.org.id, "backend")
    secret, kid = created.secret, created.key.id
    tokens: dict[str, Any] = {
        "missing": None,
        "expired": _signed(secret, kid, exp=int(time.time()) - 3600),
        "wrong-key": _signed(keys.PREFIX + "x" * 43, kid),
        "none-alg": jwt.encode({"user": "u", "exp": int(time.time()) + 60}, None, algorithm="none"),
        "no-exp": jwt.encode({"user": "u"}, secret, algorithm="HS256"),
        "not-a-jwt": "hello",
        "no-user": _signed(secret, kid, user=""),
        "bad-metadata": _signed(secret, kid, metadata=["a"]),
    }
    if case == "revoked":
        tokens[case] = _signed(secret, kid)
        keys.revoke_key(runtime, kid)
    if case == "other-org":
        other = demo_org(runtime)
        foreign = keys.create_key(runtime, other.org.id, "theirs")
        tokens[case] = _signed(foreign.secret, foreign.key.id)
    response = _create(client, setup, tokens[case])
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]
    with runtime.sessions() as session:
        assert session.query(db.Import).count() == 0


def test_keys_made_before_identities_cannot_sign_them(
    runtime: Runtime, client: TestClient, demo_org: DemoOrgFactory
) -> None:
    setup = demo_org(runtime, schema=REQUIRED)
    created = keys.create_key(runtime, setup.org.id, "old")
    with runtime.sessions.begin() as session:
        row = session.get(db.SecretKey, created.key.id)
        assert row is not None and row.sealed_secret is not None
        assert created.secret.encode() not in row.sealed_secret  # sealed, not in clear
        row.sealed_secret = None  # as a key created before migration 0018
    response = _create(client, setup, _signed(created.secret, created.key.id))
    assert response.status_code == 401
    assert "create a new one" in response.json()["error"]["message"]
