"""Dashboard pages for an organisation's keys and settings: secret keys (create, shown
once; rotate; revoke), the publishable key (rotate), and the organisation's settings
(allowed origins, default retention, default invalid-row policy). Each calls server.keys
or server.orgs; every change is an audit entry naming the signed-in user."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from server import db, keys, orgs, permissions
from server.dashboard.edge import Page, route
from server.dashboard.templates_pages import who
from server.errors import Invalid
from server.permissions import Permission

# The grace periods the rotation form offers, in orgs.KEY_GRACE's order.
GRACES = {
    "now": "None: the old key stops now",
    "1h": "1 hour",
    "24h": "24 hours",
    "7d": "7 days",
}
NOTICES = {
    "revoked": "Key revoked: it opens nothing from now on.",
    "publishable": "Publishable key rotated: give your embed code the new one.",
    "previous-revoked": "The earlier publishable key opens nothing from now on.",
    "saved": "Settings saved.",
}


async def keys_page(
    call: Page,
    created: keys.CreatedKey | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    def load() -> tuple[list[db.SecretKey], orgs.OrganisationSettings]:
        org_id = call.user.org_id
        return keys.list_keys(call.rt, org_id), orgs.settings_of(call.rt, org_id)

    found, settings = await run_in_threadpool(load)
    org, previous = settings.organisation, settings.previous_key
    return call.render(
        "keys.html",
        status=status,
        keys=found,
        created=created,
        publishable=org.publishable_key,
        previous=previous[0] if previous else None,
        previous_expires=previous[1] if previous else None,
        graces=GRACES,
        default_grace=orgs.DEFAULT_KEY_GRACE,
        notice=NOTICES.get(call.request.query_params.get("done", "")),
        error=error,
    )


async def key_create(call: Page) -> Response:
    try:
        created = await run_in_threadpool(
            lambda: keys.create_key(call.rt, call.user.org_id, call.field("name", 300), **who(call))
        )
    except Invalid as exc:
        return await keys_page(call, error=exc.message, status=422)
    return await keys_page(call, created)


async def key_rotate(call: Page) -> Response:
    def rotate() -> keys.CreatedKey:
        row = keys.get_key(call.rt, call.user.org_id, call.param("id"))
        if row.revoked_at is not None:
            raise Invalid(f"Key {row.name} is revoked: create a new key instead.")
        return keys.rotate_key(call.rt, call.user.org_id, row.name, **who(call))

    try:
        created = await run_in_threadpool(rotate)
    except Invalid as exc:
        return await keys_page(call, error=exc.message, status=422)
    return await keys_page(call, created)


async def key_revoke(call: Page) -> Response:
    await run_in_threadpool(
        lambda: keys.revoke_key(call.rt, call.param("id"), org_id=call.user.org_id, **who(call))
    )
    return call.redirect("/dashboard/keys?done=revoked")


async def publishable_rotate(call: Page) -> Response:
    grace = call.field("grace", 10) or orgs.DEFAULT_KEY_GRACE
    try:
        await run_in_threadpool(
            lambda: orgs.rotate_publishable_key(call.rt, call.user.org_id, grace=grace, **who(call))
        )
    except Invalid as exc:
        return await keys_page(call, error=exc.message, status=422)
    return call.redirect("/dashboard/keys?done=publishable")


async def previous_revoke(call: Page) -> Response:
    await run_in_threadpool(
        lambda: orgs.revoke_previous_publishable_key(call.rt, call.user.org_id, **who(call))
    )
    return call.redirect("/dashboard/keys?done=previous-revoked")


async def settings_page(call: Page, error: str | None = None, status: int = 200) -> Response:
    found = await run_in_threadpool(orgs.settings_of, call.rt, call.user.org_id)
    return call.render(
        "settings.html",
        status=status,
        settings=found,
        policies=orgs.INVALID_ROW_POLICIES,
        may_manage=permissions.granted(call.user.role, Permission.SETTINGS_MANAGE),
        notice=NOTICES.get(call.request.query_params.get("done", "")),
        error=error,
    )


async def settings_save(call: Page) -> Response:
    raw = call.field("default_retention_days", 10).strip()
    try:
        if not (raw.isascii() and raw.isdigit()):
            raise Invalid(
                f"The default retention is a whole number of days from "
                f"{orgs.MIN_RETENTION_DAYS} to {orgs.MAX_RETENTION_DAYS}."
            )
        await run_in_threadpool(
            lambda: orgs.update_settings(
                call.rt,
                call.user.org_id,
                allowed_origins=call.lines("allowed_origins"),
                default_retention_days=int(raw),
                invalid_row_policy=call.field("invalid_row_policy", 20),
                **who(call),
            )
        )
    except Invalid as exc:
        return await settings_page(call, exc.message, 422)
    return call.redirect("/dashboard/settings?done=saved")


routes = [
    route("/dashboard/keys", keys_page, "GET"),
    route("/dashboard/keys", key_create, "POST"),
    route("/dashboard/keys/{id}/rotate", key_rotate, "POST"),
    route("/dashboard/keys/{id}/revoke", key_revoke, "POST"),
    route("/dashboard/publishable-key/rotate", publishable_rotate, "POST"),
    route("/dashboard/publishable-key/previous/revoke", previous_revoke, "POST"),
    route("/dashboard/settings", settings_page, "GET"),
    route("/dashboard/settings", settings_save, "POST"),
]
