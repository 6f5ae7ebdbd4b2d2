"""Credentials at the edge: the upload token, the publishable key, the page's own origin,
the secret key, and the dashboard session."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from server import db, keys, permissions, security, sessions
from server.errors import Forbidden, Unauthorized
from server.http.limits import Limiter
from server.keys import PREFIX as SECRET_PREFIX
from server.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def bearer_token(request: Request) -> str:
    value = request.headers.get("authorization", "")
    if not value.startswith("Bearer ") or len(value) > 200:
        raise Unauthorized("Missing upload token.")
    return value.removeprefix("Bearer ")


def publishable_key(request: Request, body: Mapping[str, Any] | None = None) -> str:
    found = request.headers.get("x-loadbay-key") or request.query_params.get("key")
    return (found or str((body or {}).get("publishableKey", "")))[:200]


def require_same_origin(request: Request) -> None:
    """State-changing calls come from the importer page itself, never from another site."""
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    if origin is not None and origin != own:
        raise Forbidden("Requests must come from the loadbay importer page.")


def secret_key(request: Request) -> str:
    """The management API's credential: `Authorization: Bearer lb_sk_...`. Checking it
    (server.keys.authenticate) gives the organisation; an upload token or publishable key
    is never accepted here, nor a secret key on the importer's routes.

    One path and method is both: `GET /api/v1/imports/{id}` dispatches by credential
    (`is_secret_key`): `lb_sk_` -> the management answer, anything else -> the importer's
    status route (upload token, server/importer/routes.py)."""
    value = request.headers.get("authorization", "")
    if not value.startswith("Bearer ") or len(value) > 200:
        raise Unauthorized("Send a secret key: Authorization: Bearer lb_sk_...")
    return value.removeprefix("Bearer ").strip()


def is_secret_key(request: Request) -> bool:
    """Whether the request carries a secret key (not whether the key is live)."""
    return request.headers.get("authorization", "").startswith("Bearer " + SECRET_PREFIX)


def client_address(request: Request) -> str:
    """The client's address: uvicorn puts the forwarded one here only when the peer is one
    of LOADBAY_TRUSTED_PROXIES (server.cli runs it with forwarded_allow_ips)."""
    return request.client.host if request.client else "unknown"


def own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def dashboard_session(request: Request, now: dt.datetime) -> sessions.Current | None:
    """The dashboard session its cookie names, if live (server.sessions)."""
    return sessions.current(runtime_of(request), request.cookies.get(sessions.COOKIE), now)


def uses_session(request: Request) -> bool:
    """Whether the management API's caller is a dashboard session: a session cookie and no
    bearer credential (a bearer credential is always the one that counts)."""
    return "authorization" not in request.headers and sessions.COOKIE in request.cookies


def route_path(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", request.url.path))


async def management_org(
    request: Request, limiter: Limiter
) -> tuple[db.Organisation, str, str | None]:
    """The management API's caller and who it is, as events and the audit log name it: a
    secret key (the organisation itself; `api-key:<key id>`), or a dashboard session whose
    role holds the permission server.permissions names for this endpoint (`user:<user id>`;
    a state-changing call then also carries the session's `X-CSRF-Token` and comes from our
    origin). Either way the organisation's IP allowlist applies. The third value is the
    session's role, None for a secret key."""
    rt = runtime_of(request)
    if not uses_session(request):
        secret = secret_key(request)
        limiter.hit("secret-key", keys.digest(secret), limiter.per_key)
        org, key = await run_in_threadpool(keys.identify, rt, secret)
        actor, role = f"api-key:{key.id}", None
    else:
        me = await run_in_threadpool(dashboard_session, request, db.utcnow())
        if me is None or me.stage != sessions.FULL:
            raise Unauthorized("Sign in to the dashboard again, or send a secret key.")
        needed = permissions.API.get((request.method, route_path(request)))
        if needed is None or not permissions.granted(me.role, needed):
            raise Forbidden(f"Your role ({me.role}) may not do this.")
        if request.method not in ("GET", "HEAD"):
            if request.headers.get("origin") != own_origin(request) or not me.csrf_ok(
                request.headers.get("x-csrf-token", "")
            ):
                raise Forbidden("Send the session's X-CSRF-Token from the dashboard's origin.")
        org = await run_in_threadpool(_organisation, rt, me.org_id)
        actor, role = f"user:{me.user_id}", me.role
    await run_in_threadpool(security.check_address, rt, org.id, client_address(request))
    return org, actor, role


def _organisation(rt: Runtime, org_id: str) -> db.Organisation:
    with rt.sessions() as session:
        org = session.get(db.Organisation, org_id)
    if org is None:
        raise Unauthorized("Sign in to the dashboard again, or send a secret key.")
    return org
