"""Dashboard pages for templates: the list, the editor (template-wide settings, one form a
field, the whole document as Table Schema JSON), export and import of that JSON, version
history, soft delete and restore. Each page calls server.templates, as the management API
does. Edits in the editor gather in the template's draft; one "Save" makes them one new
version and one audit entry naming the signed-in user (a save with no change makes none)."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from server import db, permissions, templates
from server.dashboard import template_form as forms
from server.dashboard.edge import HEADERS, Page, route
from server.errors import Conflict, Invalid
from server.permissions import Permission

NOTICES = {
    "created": "Template created.",
    "saved": "Saved: a new version.",
    "unchanged": "Nothing to save: the draft holds no change, so no new version.",
    "discarded": "Draft discarded: the template is as its last version.",
    "settings": "Settings changed in the draft: Save makes the changes a new version.",
    "field": "Field changed in the draft: Save makes the changes a new version.",
    "removed": "Field removed in the draft: Save makes the changes a new version.",
    "json": "JSON taken into the draft: Save makes the changes a new version.",
    "imported": "Imported: a new version.",
    "deleted": "Template deleted: restore it within 30 days.",
    "restored": "Template restored.",
}
MAX_JSON = 60_000  # the form's cap (64 KiB) less the rest of the form


def who(call: Page) -> dict[str, str]:
    """The signed-in user and their address: what an audited change records."""
    return {"actor": f"user:{call.user.user_id}", "address": call.address}


def may_manage(call: Page) -> bool:
    return permissions.granted(call.user.role, Permission.CONFIG_MANAGE)


def _notice(call: Page) -> str | None:
    return NOTICES.get(call.request.query_params.get("done", ""))


def _json(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text)
    except (ValueError, RecursionError):
        raise Invalid(
            "That is not JSON: paste a Table Schema document, such as one exported here."
        ) from None
    if not isinstance(found, dict):
        raise Invalid("A Table Schema is a JSON object with a fields list.")
    return found


async def template_list(call: Page, error: str | None = None, status: int = 200) -> Response:
    deleted = call.request.query_params.get("deleted") == "1"
    cursor = call.request.query_params.get("cursor") or None
    found = await run_in_threadpool(
        templates.list_templates, call.rt, call.user.org_id, templates.MAX_PAGE, cursor, deleted
    )
    return call.render(
        "templates.html",
        status=status,
        templates=found.items,
        next_cursor=found.next_cursor,
        deleted=deleted,
        types=forms.TYPES,
        may_manage=may_manage(call),
        notice=_notice(call),
        error=error,
        draft=call.form,
    )


async def template_create(call: Page) -> Response:
    try:
        schema = forms.new_schema(call.field)
        row = await run_in_threadpool(
            lambda: templates.create_template(call.rt, call.user.org_id, schema, **who(call))
        )
    except Invalid as exc:
        return await template_list(call, exc.message, 422)
    return call.redirect(f"/dashboard/templates/{row.id}?done=created")


async def template_import(call: Page) -> Response:
    try:
        schema = _json(call.field("schema", MAX_JSON))
        row = await run_in_threadpool(
            lambda: templates.create_template(call.rt, call.user.org_id, schema, **who(call))
        )
    except Invalid as exc:
        return await template_list(call, exc.message, 422)
    return call.redirect(f"/dashboard/templates/{row.id}?done=imported")


async def editor(call: Page, error: str | None = None, status: int = 200) -> Response:
    org_id, template_id = call.user.org_id, call.param("id")
    row = await run_in_threadpool(templates.get_template, call.rt, org_id, template_id)
    history = await run_in_threadpool(templates.versions, call.rt, org_id, template_id)
    schema = _editing(row)
    ext = schema.get("x-loadbay") or {}
    return call.render(
        "template.html",
        status=status,
        tpl=row,
        schema=schema,
        draft=row.draft is not None,
        fields=[forms.FieldValues.of(f) for f in schema.get("fields", [])],
        primary_key=_as_list(schema.get("primaryKey")),
        retention=ext.get("retentionDays"),
        policy=ext.get("invalidRowPolicy") or "",
        policies=forms.POLICIES,
        versions=history,
        document=json.dumps(schema, indent=2, ensure_ascii=False),
        labels=forms.CLASSIFICATION_LABELS,
        may_manage=may_manage(call),
        notice=_notice(call),
        error=error,
    )


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else []


def _editing(row: db.Template) -> dict[str, Any]:
    """What the editor shows and changes: the draft, else the current version."""
    return row.draft if row.draft is not None else row.schema


async def _edit(call: Page, change: Any) -> db.Template:
    """`change(what the editor shows)` kept as the draft (no version yet)."""
    org_id, template_id = call.user.org_id, call.param("id")

    def run() -> db.Template:
        row = templates.get_template(call.rt, org_id, template_id)
        return templates.save_draft(call.rt, org_id, template_id, change(_editing(row)))

    return await run_in_threadpool(run)


async def template_settings(call: Page) -> Response:
    keys = [k[:200] for k in call.form.get("primary_key", [])]
    try:
        await _edit(call, lambda schema: forms.settings_from_form(schema, call.field, keys))
    except Invalid as exc:
        return await editor(call, exc.message, 422)
    return call.redirect(f"/dashboard/templates/{call.param('id')}?done=settings")


async def template_save(call: Page) -> Response:
    """The draft as one new version; a save with no change makes none."""
    org_id, template_id = call.user.org_id, call.param("id")
    try:
        saved = await run_in_threadpool(
            lambda: templates.publish_draft(call.rt, org_id, template_id, **who(call))
        )
    except Conflict as exc:
        return await editor(call, exc.message, 409)
    done = "saved" if saved is not None else "unchanged"
    return call.redirect(f"/dashboard/templates/{template_id}?done={done}")


async def template_discard(call: Page) -> Response:
    org_id, template_id = call.user.org_id, call.param("id")
    await run_in_threadpool(templates.discard_draft, call.rt, org_id, template_id)
    return call.redirect(f"/dashboard/templates/{template_id}?done=discarded")


def _index(raw: str, count: int) -> int | None:
    """A field's position from the form or query (None: a new field)."""
    if raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and int(raw[:6]) < count):
        raise Invalid("That field is no longer in the template; reload the editor.")
    return int(raw)


async def field_form(call: Page) -> Response:
    row = await run_in_threadpool(
        templates.get_template, call.rt, call.user.org_id, call.param("id")
    )
    raw_fields = _editing(row).get("fields", [])
    index = _index(call.request.query_params.get("n", ""), len(raw_fields))
    values = forms.FieldValues.of(raw_fields[index]) if index is not None else forms.FieldValues()
    return _field_page(call, row, index, values)


def _field_page(
    call: Page,
    row: db.Template,
    index: int | None,
    values: forms.FieldValues,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return call.render(
        "template_field.html",
        status=status,
        tpl=row,
        index=index,
        values=values,
        types=forms.TYPES,
        cases=forms.CASES_LIST,
        labels=forms.CLASSIFICATION_LABELS,
        may_manage=may_manage(call),
        error=error,
    )


async def field_save(call: Page) -> Response:
    row = await run_in_threadpool(
        templates.get_template, call.rt, call.user.org_id, call.param("id")
    )
    fields = list(_editing(row).get("fields", []))
    index = _index(call.field("n", 10), len(fields))
    base = fields[index] if index is not None else {}
    try:
        candidate = forms.field_from_form(base, call.field)
    except Invalid as exc:
        return _field_page(call, row, index, forms.FieldValues.of(base), exc.message, 422)

    def change(schema: dict[str, Any]) -> dict[str, Any]:
        updated = list(schema.get("fields", []))
        if index is None:
            updated.append(candidate)
        else:
            updated[index] = candidate
        return {**schema, "fields": updated}

    try:
        await _edit(call, change)
    except Invalid as exc:
        values = forms.FieldValues.of(candidate)
        return _field_page(call, row, index, values, exc.message, 422)
    return call.redirect(f"/dashboard/templates/{row.id}?done=field")


async def field_remove(call: Page) -> Response:
    def change(schema: dict[str, Any]) -> dict[str, Any]:
        fields = list(schema.get("fields", []))
        index = _index(call.field("n", 10), len(fields))
        if index is None:
            raise Invalid("Say which field to remove.")
        removed = fields.pop(index).get("name")
        key = [k for k in _as_list(schema.get("primaryKey")) if k != removed]
        out = {**schema, "fields": fields}
        if key:
            out["primaryKey"] = key
        else:
            out.pop("primaryKey", None)
        return out

    try:
        await _edit(call, change)
    except Invalid as exc:
        return await editor(call, exc.message, 422)
    return call.redirect(f"/dashboard/templates/{call.param('id')}?done=removed")


async def template_json(call: Page) -> Response:
    try:
        schema = _json(call.field("schema", MAX_JSON))
        await _edit(call, lambda _: schema)
    except Invalid as exc:
        return await editor(call, exc.message, 422)
    return call.redirect(f"/dashboard/templates/{call.param('id')}?done=json")


async def template_export(call: Page) -> Response:
    org_id, template_id = call.user.org_id, call.param("id")
    raw = call.request.query_params.get("version", "")
    if raw and not (raw.isascii() and raw.isdigit() and len(raw) < 10):
        raise Invalid("version is a version number of this template.")
    if raw:
        found = await run_in_threadpool(templates.version, call.rt, org_id, template_id, int(raw))
        schema, number, name = found.schema, found.version, str(found.schema.get("name", ""))
    else:
        row = await run_in_threadpool(templates.get_template, call.rt, org_id, template_id)
        schema, number, name = row.schema, row.version, row.name
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)[:80] or "template"
    return Response(
        json.dumps(schema, indent=2, ensure_ascii=False).encode(),
        media_type="application/json",
        headers={
            **HEADERS,
            "content-disposition": f'attachment; filename="{safe}-v{number}.schema.json"',
        },
    )


async def template_delete(call: Page) -> Response:
    await run_in_threadpool(
        lambda: templates.delete_template(call.rt, call.user.org_id, call.param("id"), **who(call))
    )
    return call.redirect(f"/dashboard/templates/{call.param('id')}?done=deleted")


async def template_restore(call: Page) -> Response:
    await run_in_threadpool(
        lambda: templates.restore_template(call.rt, call.user.org_id, call.param("id"), **who(call))
    )
    return call.redirect(f"/dashboard/templates/{call.param('id')}?done=restored")


T = "/dashboard/templates"
routes = [
    route(T, template_list, "GET"),
    route(T, template_create, "POST"),
    route(T + "/import", template_import, "POST"),
    route(T + "/{id}", editor, "GET"),
    route(T + "/{id}", template_settings, "POST"),
    route(T + "/{id}/save", template_save, "POST"),
    route(T + "/{id}/discard", template_discard, "POST"),
    route(T + "/{id}/field", field_form, "GET"),
    route(T + "/{id}/field", field_save, "POST"),
    route(T + "/{id}/field/remove", field_remove, "POST"),
    route(T + "/{id}/json", template_json, "POST"),
    route(T + "/{id}/schema.json", template_export, "GET"),
    route(T + "/{id}/delete", template_delete, "POST"),
    route(T + "/{id}/restore", template_restore, "POST"),
]
