"""Dashboard pages for running an organisation: members and roles (invite, change role,
remove), security settings (two-factor required, e-mail domains, IP allowlist), and the
audit log with filters and CSV/JSON export."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from server import audit, invitations, permissions, security, users
from server.dashboard.edge import HEADERS, Page, route
from server.errors import Invalid
from server.permissions import Permission, Role

NOTICES = {
    "invited": "Invitation sent.",
    "role": "Role changed.",
    "removed": "Member removed.",
    "saved": "Security settings saved.",
}
PAGE_SIZE = 100


def _actor(call: Page) -> users.Actor:
    me = call.user
    return users.Actor(me.user_id, me.org_id, me.role, call.address)


async def members(call: Page, error: str | None = None, status: int = 200) -> Response:
    found = await run_in_threadpool(users.members, call.rt, call.user.org_id)
    return call.render(
        "members.html",
        status=status,
        members=found,
        roles=[r.value for r in Role],
        may_manage=permissions.granted(call.user.role, Permission.MEMBERS_MANAGE),
        notice=NOTICES.get(call.request.query_params.get("done", "")),
        error=error,
    )


async def invite(call: Page) -> Response:
    try:
        await run_in_threadpool(
            invitations.invite,
            call.rt,
            _actor(call),
            call.field("email", 320),
            call.field("role", 20),
        )
    except Invalid as exc:
        return await members(call, exc.message, 422)
    return call.redirect("/dashboard/members?done=invited")


async def change_role(call: Page) -> Response:
    await run_in_threadpool(
        users.change_role, call.rt, _actor(call), call.param("id"), call.field("role", 20)
    )
    return call.redirect("/dashboard/members?done=role")


async def remove(call: Page) -> Response:
    await run_in_threadpool(users.remove_member, call.rt, _actor(call), call.param("id"))
    return call.redirect("/dashboard/members?done=removed")


async def security_page(call: Page) -> Response:
    rules = await run_in_threadpool(security.rules, call.rt, call.user.org_id)
    return call.render(
        "security.html",
        rules=rules,
        notice=NOTICES.get(call.request.query_params.get("done", "")),
    )


async def security_save(call: Page) -> Response:
    try:
        rules = security.Rules(
            require_2fa=call.field("require_2fa", 10) == "on",
            email_domains=security.parse_domains(call.lines("email_domains")),
            ip_allowlist=security.parse_allowlist(call.lines("ip_allowlist")),
        )
        await run_in_threadpool(
            lambda: security.update(
                call.rt,
                call.user.org_id,
                rules,
                actor=f"user:{call.user.user_id}",
                address=call.address,
            )
        )
    except Invalid as exc:
        current = await run_in_threadpool(security.rules, call.rt, call.user.org_id)
        return call.render("security.html", status=422, rules=current, error=exc.message)
    return call.redirect("/dashboard/security?done=saved")


def _filters(call: Page) -> audit.Filters:
    return audit.Filters.parse(dict(call.request.query_params))


async def audit_page(call: Page) -> Response:
    filters = _filters(call)
    raw = call.request.query_params.get("before", "")
    if raw and not (raw.isascii() and raw.isdigit() and len(raw) < 19):
        raise Invalid("before is an entry number.")
    before = int(raw) if raw else None
    found = await run_in_threadpool(
        lambda: audit.entries(call.rt, call.user.org_id, filters, before=before, limit=PAGE_SIZE)
    )
    return call.render(
        "audit.html",
        entries=found,
        filters=filters,
        query=call.request.url.query,
        older=found[-1].seq if len(found) == PAGE_SIZE else None,
    )


async def audit_export(call: Page) -> Response:
    fmt = call.request.query_params.get("format", "csv")
    if fmt not in ("csv", "json"):
        raise Invalid("The audit log exports as csv or json.")
    filters = _filters(call)

    def build() -> bytes:
        found = audit.entries(call.rt, call.user.org_id, filters, limit=audit.EXPORT_LIMIT)
        body = audit.export(found, fmt)
        audit.write(
            call.rt,
            action="audit.exported",
            actor=f"user:{call.user.user_id}",
            org_id=call.user.org_id,
            address=call.address,
            detail={"format": fmt, "entries": len(found)},
        )
        return body

    body = await run_in_threadpool(build)
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    return Response(
        body,
        media_type=media,
        headers={**HEADERS, "content-disposition": f'attachment; filename="audit-log.{fmt}"'},
    )


routes = [
    route("/dashboard/members", members, "GET"),
    route("/dashboard/members/invite", invite, "POST"),
    route("/dashboard/members/{id}/role", change_role, "POST"),
    route("/dashboard/members/{id}/remove", remove, "POST"),
    route("/dashboard/security", security_page, "GET"),
    route("/dashboard/security", security_save, "POST"),
    route("/dashboard/audit", audit_page, "GET"),
    route("/dashboard/audit/export", audit_export, "GET"),
]
