"""The permission matrix, walked: every dashboard route and every /api/v1 endpoint, for
each role, a signed-out visitor, a member of another organisation and a secret key, must
be allowed or refused exactly as server.permissions says. A route the app serves that the
matrix does not name fails the first test."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from server import db, keys, permissions, sessions, users
from server.app import create_app
from server.permissions import PENDING, PUBLIC, Role
from server.runtime import Runtime
from tests.conftest import CONTACTS_SCHEMA
from tests.server.users_support import BASE, PASSWORD, org_with_owner

if TYPE_CHECKING:
    from tests.conftest import DemoOrgFactory

ADDRESS = ("203.0.113.7", 50000)
ROLES = [r.value for r in Role]


@pytest.fixture
def store() -> str:
    return "sqlite"


def served(rt: Runtime) -> list[tuple[str, str]]:
    app = create_app(rt)
    found = []
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith(("/dashboard", "/api/v1")):
            found.extend((m, route.path) for m in sorted(route.methods or ()) if m != "HEAD")
    return found


def test_every_route_is_in_the_matrix(runtime: Runtime) -> None:
    routes = served(runtime)
    missing = [r for r in routes if permissions.needed(*r) is None]
    assert missing == [], f"add these routes to server/permissions.py: {missing}"
    named = set(permissions.DASHBOARD) | set(permissions.API) | set(permissions.IMPORTER_ROUTES)
    assert named - set(routes) == set()
    assert len(routes) == len(named)


@dataclass
class World:
    rt: Runtime
    client: TestClient
    org_id: str
    template_id: str
    destination_id: str  # like the template, in an organisation nobody here belongs to
    key_id: str
    members: dict[str, str]  # role -> user id, in the organisation under test
    target_id: str  # a viewer the member routes act on
    other_user: str  # the owner of another organisation
    other_org: str
    key: str
    other_key: str


@pytest.fixture
def world(runtime: Runtime, demo_org: DemoOrgFactory) -> Iterator[World]:
    acme = org_with_owner(runtime)
    # Templates, destinations and keys belong to a second org: reuse ids.
    setup = demo_org(runtime, webhook_urls=["http://127.0.0.1:9/hook"])
    template = setup.template
    third_key = keys.create_key(runtime, setup.org.id, "k").key
    members = {"owner": acme.owner_id}
    for role in ROLES[1:]:
        members[role] = users.add_user(
            runtime, acme.org.id, f"{role}@acme.example", role, PASSWORD, Role(role), actor="cli"
        ).id
    target = users.add_user(
        runtime, acme.org.id, "target@acme.example", "t", PASSWORD, Role.VIEWER, actor="cli"
    )
    other = org_with_owner(runtime, "boss@other.example", "Other")
    own_template = template  # in demo_org's organisation: the "other org" for the API
    with TestClient(create_app(runtime), base_url=BASE, client=ADDRESS) as client:
        yield World(
            runtime,
            client,
            acme.org.id,
            own_template.id,
            setup.destination.id,
            third_key.id,
            members,
            target.id,
            other.owner_id,
            other.org.id,
            keys.create_key(runtime, acme.org.id, "k").secret,
            keys.create_key(runtime, other.org.id, "k").secret,
        )


def _session(w: World, user_id: str, org_id: str) -> tuple[str, str]:
    token = sessions.start(
        w.rt,
        user_id,
        org_id,
        sessions.FULL,
        address=ADDRESS[0],
        user_agent="t",
        now=db.utcnow(),
    )
    found = sessions.current(w.rt, token, db.utcnow())
    assert found is not None
    return token, found.csrf_token


def _path(w: World, path: str) -> str:
    ids = {"/templates/": w.template_id, "/members/": w.target_id}
    ids.update({"/destinations/": w.destination_id, "/keys/": w.key_id})
    values = {
        "id": next((v for k, v in ids.items() if k in path), "ses_none"),
        "token": "not-a-real-invitation",
        "name": "dashboard.css",
    }
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def _send(
    w: World,
    method: str,
    path: str,
    *,
    token: str | None = None,
    csrf: str = "",
    key: str | None = None,
) -> httpx.Response:
    url = _path(w, path)
    w.client.cookies.clear()
    headers = {"origin": BASE}
    if token:
        w.client.cookies.set(sessions.COOKIE, token, domain="127.0.0.1")
    if key:
        headers["authorization"] = f"Bearer {key}"
    if path.startswith("/api/"):
        headers["x-csrf-token"] = csrf
        body = b"{}" if method in ("POST", "PUT", "PATCH") else None
        if method == "PUT":  # a valid body, so the answer is about the template itself
            body = json.dumps({"schema": CONTACTS_SCHEMA}).encode()
        return w.client.request(method, url, content=body, headers=headers, follow_redirects=False)
    form: dict[str, str] = {"csrf": csrf}
    if path == "/dashboard/sign-in":
        form.update(email="owner@acme.example", password=PASSWORD)
    if path.endswith("/role"):
        form["role"] = "viewer"
    data = form if method == "POST" else None
    return w.client.request(method, url, data=data, headers=headers, follow_redirects=False)


def refused(response: httpx.Response) -> bool:
    if response.status_code in (401, 403):
        return True
    return response.status_code == 303 and response.headers["location"] == "/dashboard/sign-in"


def _routes(w: World) -> list[tuple[str, str]]:
    # What ends sessions goes last, so nothing later depends on it.
    order = {"/dashboard/sign-out": 2, "/dashboard/sessions/end-all": 2}
    ours = [r for r in served(w.rt) if r not in permissions.IMPORTER_ROUTES]
    return sorted(ours, key=lambda r: order.get(r[1], 0))


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_what_the_matrix_grants(world: World, role: str) -> None:
    wrong = []
    for method, path in _routes(world):
        needed = permissions.needed(method, path)
        token, csrf = _session(world, world.members[role], world.org_id)
        response = _send(world, method, path, token=token, csrf=csrf)
        expected = needed in (PUBLIC, PENDING) or permissions.granted(role, str(needed))
        if refused(response) == expected:
            wrong.append((method, path, response.status_code))
    assert wrong == [], f"{role}: allowed/refused differs from the matrix: {wrong}"


def test_a_signed_out_visitor_reaches_only_public_routes(world: World) -> None:
    wrong = []
    for method, path in _routes(world):
        response = _send(world, method, path)
        expected = permissions.needed(method, path) == PUBLIC
        if refused(response) == expected:
            wrong.append((method, path, response.status_code))
    assert wrong == []


def test_a_member_of_another_organisation_never_reaches_this_ones(world: World) -> None:
    checked = 0
    for method, path in _routes(world):
        if "{id}" not in path:
            continue
        if path.startswith("/api/"):
            response = _send(world, method, path, key=world.other_key)
        else:
            token, csrf = _session(world, world.other_user, world.other_org)
            response = _send(world, method, path, token=token, csrf=csrf)
        if any(part in path for part in ("/templates/", "/members/", "/destinations/", "/keys/")):
            checked += 1
            assert response.status_code == 404, (method, path, response.text[:200])
    # API: templates 4, destinations 5; dashboard: members 2, templates 11, destinations 5,
    # keys 2.
    assert checked == 29
    assert users.membership(world.rt, world.target_id, world.org_id) is not None


def test_a_secret_key_is_the_organisation_on_the_api_only(world: World) -> None:
    for method, path in _routes(world):
        if path.startswith("/api/"):
            response = _send(world, method, path, key=world.key)
            assert not refused(response), (method, path, response.status_code)
    response = world.client.get(
        "/dashboard/members",
        headers={"authorization": f"Bearer {world.key}"},
        follow_redirects=False,
    )
    assert refused(response)


def test_api_calls_from_a_session_need_its_csrf_token(world: World) -> None:
    token, csrf = _session(world, world.members["owner"], world.org_id)
    ok = _send(world, "PATCH", "/api/v1/organisation", token=token, csrf=csrf)
    assert ok.status_code == 200, ok.text
    bad = _send(world, "PATCH", "/api/v1/organisation", token=token, csrf="nope")
    assert bad.status_code == 403 and "X-CSRF-Token" in bad.json()["detail"]
    assert _send(world, "GET", "/api/v1/organisation", token=token).status_code == 200


def test_expired_sessions_are_refused(world: World) -> None:
    old = db.utcnow() - dt.timedelta(hours=13)
    token = sessions.start(
        world.rt,
        world.members["owner"],
        world.org_id,
        sessions.FULL,
        address="x",
        user_agent="t",
        now=old,
    )
    assert refused(_send(world, "GET", "/dashboard/members", token=token))
