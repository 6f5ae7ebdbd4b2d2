"""Credentials at the edge: the upload token, the publishable key, the secret key, the
page's own origin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from server.errors import Forbidden, Unauthorized
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
