"""Dashboard pages for destinations: the list, a form drawn from each kind's declared
settings (destinations.base.ConfigField: secrets write-only, shown as set / not set),
"test connection" (the kind's check()), soft delete and restore. Each calls
server.destinations, as the management API does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from destinations import ConfigField
from server import db, orgs, templates
from server import destinations as dests
from server.dashboard.edge import Page, route
from server.dashboard.templates_pages import may_manage, who
from server.errors import Invalid

NOTICES = {
    "created": "Destination created: its check passed.",
    "saved": "Destination saved.",
    "deleted": "Destination deleted: nothing is delivered to it; restore it within 30 days.",
    "restored": "Destination restored.",
}
PREFIX = "cfg."  # the settings' form names, apart from the form's own (name, csrf)


@dataclass(frozen=True)
class Input:
    """One setting as the form draws it."""

    field: ConfigField
    value: str  # the current value as text ("" for a secret: never shown)
    checked: bool
    is_set: bool  # a secret has a value

    @property
    def id(self) -> str:
        return "cfg-" + self.field.name


def _text(value: Any, f: ConfigField) -> str:
    if value is None:
        return ""
    if f.type == "array":
        return "\n".join(str(v) for v in value)
    return str(value)


def inputs(fields: tuple[ConfigField, ...], shown: dict[str, Any]) -> list[Input]:
    """`shown` is a redacted config (a secret is {"set": bool}) or the submitted values."""
    out = []
    for f in fields:
        value = shown.get(f.name, f.default)
        if f.secret:
            is_set = isinstance(value, dict) and bool(value.get("set"))
            out.append(Input(f, "", False, is_set))
        else:
            out.append(Input(f, _text(value, f), value is True, False))
    return out


def config_from_form(
    fields: tuple[ConfigField, ...], call: Page, *, creating: bool
) -> dict[str, Any]:
    """The settings sent: a secret left empty is not sent (kept); another setting left
    empty is left out of a new destination and removed (its default) from a stored one."""
    config: dict[str, Any] = {}
    for f in fields:
        key = PREFIX + f.name
        if f.type == "boolean":
            config[f.name] = call.field(key, 10) == "on"
            continue
        raw = call.field(key, 20_000).strip()
        if not raw:
            if not f.secret and not creating:
                config[f.name] = None
            continue
        config[f.name] = _parsed(f, raw)
    return config


def _parsed(f: ConfigField, raw: str) -> Any:
    if f.type == "array":
        return [line.strip() for line in raw.splitlines() if line.strip()]
    if f.type == "integer":
        if not raw.lstrip("-").isdigit() or len(raw) > 12:
            raise Invalid(f'"{f.name}" is a whole number.')
        return int(raw)
    if f.type == "number":
        try:
            return float(raw)
        except ValueError:
            raise Invalid(f'"{f.name}" is a number.') from None
    return raw


def _concurrency(call: Page) -> int | None:
    raw = call.field("max_concurrency", 10).strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise Invalid(f"Batches at once is a whole number from 1 to {dests.MAX_CONCURRENCY}.")
    return int(raw)


def _org(call: Page) -> db.Organisation:
    return orgs.settings_of(call.rt, call.user.org_id).organisation


def _live_templates(call: Page) -> list[db.Template]:
    return list(templates.list_templates(call.rt, call.user.org_id, templates.MAX_PAGE, None).items)


async def destination_list(call: Page) -> Response:
    deleted = call.request.query_params.get("deleted") == "1"

    def load() -> tuple[list[dests.DestinationView], dict[str, str]]:
        found = dests.list_destinations(
            call.rt, _org(call), templates.MAX_PAGE, None, include_deleted=deleted
        )
        names = {t.id: t.name for t in _live_templates(call)}
        return list(found.items), names

    found, names = await run_in_threadpool(load)
    return call.render(
        "destinations.html",
        destinations=found,
        template_names=names,
        kinds=[(s.kind, s.title) for s in dests.kind_list()],
        deleted=deleted,
        may_manage=may_manage(call),
        notice=NOTICES.get(call.request.query_params.get("done", "")),
    )


def _new_page(
    call: Page, kind: str, shown: dict[str, Any], error: str | None = None, status: int = 200
) -> Response:
    spec = dests.kind_spec(kind)
    return call.render(
        "destination_new.html",
        status=status,
        spec=spec,
        inputs=inputs(spec.fields, shown),
        templates=_live_templates(call),
        chosen=call.field("template_id", 40),
        name=call.field("name", 200),
        max_concurrency=call.field("max_concurrency", 10) or db.DEFAULT_CONCURRENCY,
        error=error,
    )


async def destination_new(call: Page) -> Response:
    kind = call.request.query_params.get("kind", "")[:40]
    if not kind:
        return call.redirect("/dashboard/destinations")
    return await run_in_threadpool(_new_page, call, kind, {})


async def destination_create(call: Page) -> Response:
    kind = call.field("kind", 40)
    spec = dests.kind_spec(kind)
    try:
        config = config_from_form(spec.fields, call, creating=True)
        concurrency = _concurrency(call) or db.DEFAULT_CONCURRENCY
        view = await run_in_threadpool(
            lambda: dests.create_destination(
                call.rt,
                _org(call),
                call.field("template_id", 40),
                kind,
                call.field("name", 200).strip(),
                config,
                max_concurrency=concurrency,
                **who(call),
            )
        )
    except Invalid as exc:
        shown = {f.name: _echo(call, f) for f in spec.fields if not f.secret}
        return await run_in_threadpool(_new_page, call, kind, shown, exc.message, 422)
    return call.redirect(f"/dashboard/destinations/{view.row.id}?done=created")


def _echo(call: Page, f: ConfigField) -> Any:
    """What was typed, to draw the form again (secrets are not echoed)."""
    if f.type == "boolean":
        return call.field(PREFIX + f.name, 10) == "on"
    return call.field(PREFIX + f.name, 20_000)


async def destination_page(
    call: Page,
    error: str | None = None,
    status: int = 200,
    tested: tuple[bool, str] | None = None,
) -> Response:
    def load() -> tuple[dests.DestinationView, str]:
        view = dests.get_destination(call.rt, _org(call), call.param("id"))
        template = templates.get_template(call.rt, call.user.org_id, view.row.template_id)
        return view, template.name

    view, template_name = await run_in_threadpool(load)
    spec = dests.kind_spec(view.row.kind)
    return call.render(
        "destination.html",
        status=status,
        destination=view.row,
        spec=spec,
        inputs=inputs(spec.fields, view.config),
        template_name=template_name,
        may_manage=may_manage(call),
        tested=tested,
        notice=NOTICES.get(call.request.query_params.get("done", "")),
        error=error,
    )


async def destination_save(call: Page) -> Response:
    def save() -> None:
        org = _org(call)
        row = dests.get_destination(call.rt, org, call.param("id")).row
        spec = dests.kind_spec(row.kind)
        name = call.field("name", 200).strip()
        dests.update_destination(
            call.rt,
            org,
            row.id,
            name=name or None,
            enabled=call.field("enabled", 10) == "on",
            config=config_from_form(spec.fields, call, creating=False),
            max_concurrency=_concurrency(call),
            **who(call),
        )

    try:
        await run_in_threadpool(save)
    except Invalid as exc:
        return await destination_page(call, exc.message, 422)
    return call.redirect(f"/dashboard/destinations/{call.param('id')}?done=saved")


async def destination_test(call: Page) -> Response:
    try:
        found = await run_in_threadpool(
            lambda: dests.check_destination(call.rt, _org(call), call.param("id"), **who(call))
        )
    except Invalid as exc:
        return await destination_page(call, tested=(False, exc.message))
    return await destination_page(call, tested=(True, found))


async def destination_delete(call: Page) -> Response:
    await run_in_threadpool(
        lambda: dests.delete_destination(call.rt, _org(call), call.param("id"), **who(call))
    )
    return call.redirect(f"/dashboard/destinations/{call.param('id')}?done=deleted")


async def destination_restore(call: Page) -> Response:
    await run_in_threadpool(
        lambda: dests.restore_destination(call.rt, _org(call), call.param("id"), **who(call))
    )
    return call.redirect(f"/dashboard/destinations/{call.param('id')}?done=restored")


D = "/dashboard/destinations"
routes = [
    route(D, destination_list, "GET"),
    route(D + "/new", destination_new, "GET"),
    route(D, destination_create, "POST"),
    route(D + "/{id}", destination_page, "GET"),
    route(D + "/{id}", destination_save, "POST"),
    route(D + "/{id}/test", destination_test, "POST"),
    route(D + "/{id}/delete", destination_delete, "POST"),
    route(D + "/{id}/restore", destination_restore, "POST"),
]
