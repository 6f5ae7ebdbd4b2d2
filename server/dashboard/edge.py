"""The dashboard's edge: every page passes here. It counts the request against the
address limit, finds the session, asks server.permissions what the route needs, checks a
state-changing request's Origin and CSRF token, applies the organisation's IP allowlist,
reads a form within its cap, and turns domain errors into a page that says what to do."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from server import db, permissions, security, sessions
from server.errors import Forbidden, Invalid, ServiceError, Unauthorized
from server.http.auth import client_address, dashboard_session, own_origin, route_path, runtime_of
from server.http.limits import Limiter
from server.http.responses import status_of
from server.permissions import PENDING, PUBLIC
from server.runtime import Runtime

log = logging.getLogger("loadbay.dashboard")
FORM_BYTES = 64 * 1024
# Each password check costs an argon2id hash (19 MiB, tens of ms): one address gets this many.
HASHES_PER_ADDRESS = "30/minute"
MAX_FIELDS = 200
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "cache-control": "no-store",
    "referrer-policy": "same-origin",
}
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
)


@dataclass
class Page:
    """What the edge established for one dashboard request."""

    request: Request
    rt: Runtime
    now: dt.datetime
    address: str
    me: sessions.Current | None
    form: dict[str, list[str]] = field(default_factory=dict)

    @property
    def user(self) -> sessions.Current:
        assert self.me is not None
        return self.me

    def field(self, name: str, limit: int = 500) -> str:
        values = self.form.get(name) or [""]
        return values[0][:limit]

    def lines(self, name: str) -> list[str]:
        return [line for line in self.field(name, 20_000).splitlines() if line.strip()]

    def password_check(self) -> None:
        """Count one password check by this address (RateLimited past HASHES_PER_ADDRESS)."""
        limiter: Limiter = self.request.app.state.limiter
        limiter.hit("password-check", self.address, HASHES_PER_ADDRESS)

    def param(self, name: str) -> str:
        return str(self.request.path_params.get(name, ""))[:100]

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = TEMPLATES.get_template(template).render(me=self.me, page=self, **values)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def redirect(self, path: str, *, token: str | None = None, clear: bool = False) -> Response:
        response = RedirectResponse(path, status_code=303, headers=HEADERS)
        if token is not None:
            response.set_cookie(
                sessions.COOKIE,
                token,
                max_age=int(sessions.ABSOLUTE.total_seconds()),
                path="/",
                secure=True,
                httponly=True,
                samesite="lax",
            )
        if clear:
            response.delete_cookie(
                sessions.COOKIE, path="/", secure=True, httponly=True, samesite="lax"
            )
        return response


# What a half-finished sign-in may reach: its own step first (where it is sent), and
# signing out.
STAGE_PAGES: dict[str, tuple[str, ...]] = {
    sessions.MFA: ("/dashboard/sign-in/code", "/dashboard/sign-out"),
    sessions.ENROL: ("/dashboard/two-factor", "/dashboard/sign-out"),
}
Handler = Callable[[Page], Awaitable[Response]]


def clock(request: Request) -> dt.datetime:
    now: Callable[[], dt.datetime] = getattr(request.app.state, "clock", db.utcnow)
    return now()


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        rt = runtime_of(request)
        now = clock(request)
        call = Page(request, rt, now, client_address(request), None)
        try:
            return await _run(call, handler)
        except ServiceError as exc:
            return call.render(
                "error.html",
                status=status_of(exc),
                message=exc.message,
                retry_after=exc.retry_after,
            )
        except Exception:  # noqa: BLE001 - shown as a page, logged with its trace
            log.exception("unexpected error on %s %s", request.method, request.url.path)
            return call.render(
                "error.html",
                status=500,
                message="Something went wrong on our side; try again in a moment.",
            )

    return endpoint


def route(path: str, handler: Handler, method: str) -> Route:
    """A dashboard route: `handler` behind `page` (session, CSRF, errors as pages)."""
    return Route(path, page(handler), methods=[method])


async def _run(call: Page, handler: Handler) -> Response:
    request = call.request
    limiter: Limiter = request.app.state.limiter
    limiter.address(request)
    needed = permissions.needed(request.method, route_path(request))
    if needed is None:
        raise Forbidden("This page is not in the permission matrix.")
    unsafe = request.method not in ("GET", "HEAD")
    if unsafe and request.headers.get("origin") != own_origin(request):
        raise Forbidden("This form must be sent from the loadbay dashboard itself.")
    if unsafe:
        call.form = await _form(request, limiter)
    if needed == PUBLIC:
        call.me = await run_in_threadpool(dashboard_session, request, call.now)
        return await handler(call)
    call.me = await run_in_threadpool(dashboard_session, request, call.now)
    if call.me is None:
        if unsafe:
            raise Unauthorized("Your session has ended; sign in again.")
        return call.redirect("/dashboard/sign-in")
    if unsafe and not call.me.csrf_ok(call.field("csrf", 200)):
        raise Forbidden(
            "This form is out of date (its CSRF token does not match); reload the page."
        )
    await run_in_threadpool(security.check_address, call.rt, call.me.org_id, call.address)
    stage = call.me.stage
    if stage != sessions.FULL and route_path(request) not in STAGE_PAGES[stage]:
        return call.redirect(STAGE_PAGES[stage][0])
    if needed != PENDING and not permissions.granted(call.me.role, needed):
        raise Forbidden(f"Your role ({call.me.role}) may not open this page or do this.")
    return await handler(call)


async def _form(request: Request, limiter: Limiter) -> dict[str, list[str]]:
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        raise Invalid("Send the form as application/x-www-form-urlencoded.")
    raw = await limiter.body(request, FORM_BYTES)
    try:
        return parse_qs(
            raw.decode(), keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        raise Invalid("The form could not be read; send it again from the page.") from None
