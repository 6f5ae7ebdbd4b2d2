"""Dashboard pages for one's own account: signing in (password, then the TOTP code),
signing out, accepting an invitation, two-factor enrolment and the sessions list.
Each parses its form, calls one domain function, and renders or redirects."""

from __future__ import annotations

from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from server import invitations, security, sessions, twofactor, users
from server.dashboard import (
    admin,
    destinations_pages,
    import_pages,
    keys_pages,
    templates_pages,
)
from server.dashboard.edge import HEADERS, Page, route
from server.errors import Invalid, Unauthorized
from server.models.accounts import User

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"dashboard.css": "text/css"}


async def home(call: Page) -> Response:
    return call.render("home.html")


async def sign_in_form(call: Page) -> Response:
    if call.me is not None and call.me.stage == sessions.FULL:
        return call.redirect("/dashboard/")
    signed_out = call.request.query_params.get("done") == "signed-out"
    return call.render("sign_in.html", notice="You are signed out." if signed_out else None)


def _stage_for(call: Page, user: User, org_id: str) -> str:
    if user.totp_enabled_at is not None:
        return sessions.MFA
    if security.rules(call.rt, org_id).require_2fa:
        return sessions.ENROL
    return sessions.FULL


def _open_session(call: Page, user: User) -> str:
    found = users.first_membership(call.rt, user.id)
    if found is None:
        raise Unauthorized("This account belongs to no organisation any more.")
    security.check_address(call.rt, found.org_id, call.address)
    return sessions.start(
        call.rt,
        user.id,
        found.org_id,
        _stage_for(call, user, found.org_id),
        address=call.address,
        user_agent=call.request.headers.get("user-agent", ""),
        now=call.now,
    )


async def sign_in(call: Page) -> Response:
    email, password = call.field("email", 320), call.field("password", 1000)
    call.password_check()
    try:
        user = await run_in_threadpool(
            users.sign_in, call.rt, email, password, call.address, call.now
        )
    except Unauthorized as exc:
        return call.render("sign_in.html", status=401, error=exc.message, email=email)
    token = await run_in_threadpool(_open_session, call, user)
    return call.redirect("/dashboard/", token=token)


async def code_form(call: Page) -> Response:
    return call.render("code.html")


def _second_step(call: Page, code: str) -> str:
    me = call.user
    users.check_not_locked(call.rt, me.user_id, call.address, call.now)
    if not twofactor.check(call.rt, me.user_id, code, address=call.address, now=call.now):
        users.record_failure(call.rt, me.user_id, call.address, call.now, "code")
        raise Invalid("That code is not valid or was already used; give the next one.")
    return sessions.advance(call.rt, me, sessions.FULL, address=call.address, now=call.now)


async def code(call: Page) -> Response:
    try:
        token = await run_in_threadpool(_second_step, call, call.field("code", 40))
    except Invalid as exc:
        return call.render("code.html", status=422, error=exc.message)
    return call.redirect("/dashboard/", token=token)


async def sign_out(call: Page) -> Response:
    await run_in_threadpool(
        sessions.end, call.rt, call.user, call.user.session_id, address=call.address
    )
    return call.redirect("/dashboard/sign-in?done=signed-out", clear=True)


async def invitation_form(call: Page) -> Response:
    found = await run_in_threadpool(invitations.invitation, call.rt, call.param("token"))
    return call.render("invitation.html", invitation=found)


async def accept_invitation(call: Page) -> Response:
    token = call.param("token")
    found = await run_in_threadpool(invitations.invitation, call.rt, token)
    call.password_check()
    try:
        user = await run_in_threadpool(
            invitations.accept,
            call.rt,
            token,
            call.field("name", 200),
            call.field("password", 1000),
            call.address,
        )
    except (Invalid, Unauthorized) as exc:
        return call.render("invitation.html", status=422, invitation=found, error=exc.message)
    session_token = await run_in_threadpool(_open_session, call, user)
    return call.redirect("/dashboard/", token=session_token)


async def two_factor(call: Page) -> Response:
    user = await run_in_threadpool(users.get_user, call.rt, call.user.user_id)
    pending = await run_in_threadpool(twofactor.pending, call.rt, user.id)
    return call.render(
        "two_factor.html", enabled=user.totp_enabled_at is not None, enrolment=pending
    )


async def two_factor_post(call: Page) -> Response:
    me = call.user
    if call.field("action", 20) == "begin":
        enrolment = await run_in_threadpool(twofactor.begin, call.rt, me.user_id)
        return call.render("two_factor.html", enabled=False, enrolment=enrolment)
    try:
        codes = await run_in_threadpool(
            lambda: twofactor.confirm(
                call.rt, me.user_id, call.field("code", 40), address=call.address
            )
        )
    except Invalid as exc:
        pending = await run_in_threadpool(twofactor.pending, call.rt, me.user_id)
        return call.render(
            "two_factor.html", status=422, enabled=False, enrolment=pending, error=exc.message
        )
    response = call.render("recovery_codes.html", codes=codes)
    if me.stage == sessions.ENROL:
        token = await run_in_threadpool(
            lambda: sessions.advance(call.rt, me, sessions.FULL, address=call.address, now=call.now)
        )
        response.set_cookie(
            sessions.COOKIE,
            token,
            max_age=int(sessions.ABSOLUTE.total_seconds()),
            path="/",
            secure=True,
            httponly=True,
            samesite="lax",
        )
    return response


def _disable(call: Page) -> None:
    if security.rules(call.rt, call.user.org_id).require_2fa:
        raise Invalid("Your organisation requires two-factor sign-in; it cannot be turned off.")
    twofactor.disable(call.rt, call.user.user_id, call.field("code", 40), address=call.address)


async def two_factor_disable(call: Page) -> Response:
    await run_in_threadpool(_disable, call)
    return call.redirect("/dashboard/two-factor")


async def sessions_page(call: Page) -> Response:
    listed = await run_in_threadpool(sessions.listed, call.rt, call.user, call.now)
    return call.render("sessions.html", sessions=listed)


async def end_session(call: Page) -> Response:
    session_id = call.param("id")
    await run_in_threadpool(
        lambda: sessions.end(call.rt, call.user, session_id, address=call.address)
    )
    if session_id == call.user.session_id:
        return call.redirect("/dashboard/sign-in?done=signed-out", clear=True)
    return call.redirect("/dashboard/sessions")


async def end_all(call: Page) -> Response:
    await run_in_threadpool(lambda: sessions.end_all(call.rt, call.user, address=call.address))
    return call.redirect("/dashboard/sign-in?done=signed-out", clear=True)


async def static(request: Request) -> Response:
    name = str(request.path_params["name"])
    if name not in STATIC_FILES:
        return Response("Not found", status_code=404, headers=HEADERS)
    return FileResponse(
        STATIC / name, media_type=STATIC_FILES[name], headers={"cache-control": "max-age=3600"}
    )


routes = [
    route("/dashboard/", home, "GET"),
    route("/dashboard/sign-in", sign_in_form, "GET"),
    route("/dashboard/sign-in", sign_in, "POST"),
    route("/dashboard/sign-in/code", code_form, "GET"),
    route("/dashboard/sign-in/code", code, "POST"),
    route("/dashboard/sign-out", sign_out, "POST"),
    route("/dashboard/invitations/{token}", invitation_form, "GET"),
    route("/dashboard/invitations/{token}", accept_invitation, "POST"),
    route("/dashboard/two-factor", two_factor, "GET"),
    route("/dashboard/two-factor", two_factor_post, "POST"),
    route("/dashboard/two-factor/disable", two_factor_disable, "POST"),
    route("/dashboard/sessions", sessions_page, "GET"),
    route("/dashboard/sessions/{id}/end", end_session, "POST"),
    route("/dashboard/sessions/end-all", end_all, "POST"),
    Route("/dashboard/static/{name}", static, methods=["GET"]),
    *admin.routes,
    *import_pages.routes,
    *templates_pages.routes,
    *destinations_pages.routes,
    *keys_pages.routes,
]
