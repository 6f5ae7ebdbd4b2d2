"""Credentials at the edge: the upload token, the publishable key, the page's own origin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from server.errors import Forbidden, Unauthorized
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

    Note for the imports API to come: `GET /api/v1/imports/{id}` is today the importer's
    status route (upload token, server/importer/routes.py). When the management API adds
    its own `GET /api/v1/imports/{id}`, that one route dispatches by credential:
    `lb_sk_` -> the management answer, anything else -> the importer's."""
    value = request.headers.get("authorization", "")
    if not value.startswith("Bearer ") or len(value) > 200:
        raise Unauthorized("Send a secret key: Authorization: Bearer lb_sk_...")
    return value.removeprefix("Bearer ").strip()
