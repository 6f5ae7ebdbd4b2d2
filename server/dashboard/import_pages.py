"""Dashboard pages for an organisation's imports: the list (filters, search), one import's
page (status timeline, error summary chart, deliveries with retry, a masked preview,
download in each format, delete now), revealing a personal-data field, retrying a
delivery. Each calls the domain function the management API calls, and nothing else."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from pipeline.template import personal_fields
from server import (
    attempts,
    deliveries,
    exports,
    import_views,
    imports,
    permissions,
    previews,
    retention,
)
from server import templates as template_store
from server.dashboard.edge import HEADERS, Page, route
from server.errors import Gone, Invalid, NotFound
from server.manage.import_routes import _stream, attachment
from server.permissions import Permission

PAGE_SIZE = 50
STATUSES = tuple(s.value for s in imports.ImportStatus)
NOTICES = {"deleted": "Import deleted: its rows are shredded.", "retried": "Delivery queued again."}
IMPORT_ID = re.compile(r"imp_[0-9a-f]{1,36}")
BAR_WIDTH = 300  # px, the longest bar of the error chart


@dataclass(frozen=True)
class Step:
    """One point of an import's status timeline."""

    label: str
    at: dt.datetime | None
    state: str  # done, failed, pending


@dataclass(frozen=True)
class Bar:
    code: str
    field: str  # "(whole row)" for a problem of no one field
    constraint: str | None
    count: int
    width: int


def _actor(call: Page) -> str:
    return f"user:{call.user.user_id}"


def _moment(call: Page, name: str) -> dt.datetime | None:
    raw = call.request.query_params.get(name, "").strip()[:40]
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise Invalid(f"{name} is a date or time such as 2026-12-01 or 2026-12-01T13:00.") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _filters(call: Page) -> import_views.ImportFilter:
    query = call.request.query_params
    status = query.get("status", "")
    if status and status not in STATUSES:
        raise Invalid(f"status is one of {', '.join(STATUSES)}.")
    return import_views.ImportFilter(
        template_id=query.get("template", "").strip()[:40] or None,
        status=imports.ImportStatus(status) if status else None,
        created_after=_moment(call, "created_after"),
        created_before=_moment(call, "created_before"),
        search=query.get("q", "").strip()[:200] or None,
    )


async def imports_list(call: Page) -> Response:
    org_id = call.user.org_id
    found = await run_in_threadpool(
        lambda: template_store.list_templates(call.rt, org_id, 200, None, include_deleted=True)
    )
    names = {t.id: template_store.template_name(t.schema) for t in found.items}
    error = None
    views: list[import_views.ImportView] = []
    next_cursor = None
    try:
        where = _filters(call)
        cursor = call.request.query_params.get("cursor", "")[:200] or None
        views, next_cursor = await run_in_threadpool(
            import_views.list_imports, call.rt, org_id, PAGE_SIZE, cursor, where
        )
    except Invalid as exc:
        where, error = import_views.ImportFilter(), exc.message
    query = {k: v for k, v in call.request.query_params.items() if k != "cursor"}
    return call.render(
        "imports.html",
        status=422 if error else 200,
        error=error,
        imports=views,
        where=where,
        raw=call.request.query_params,
        templates=names,
        statuses=STATUSES,
        next_query="&".join(f"{k}={v}" for k, v in query.items()),
        next_cursor=next_cursor,
    )


def _timeline(
    detail: import_views.ImportDetail,
    uploaded: dt.datetime | None,
    tried: list[attempts.Attempt],
) -> list[Step]:
    state = detail.state.status
    steps = [
        Step("Created", detail.row.created_at, "done"),
        Step("Uploaded", uploaded, "done" if uploaded else "pending"),
        Step("Submitted", detail.submitted_at, "done" if detail.submitted_at else "pending"),
    ]
    if state == imports.ImportStatus.FAILED:
        failed = [a.finished_at for a in tried if a.outcome in ("failed", "disabled")]
        steps.append(Step("Delivery failed", max(failed, default=None), "failed"))
    elif state == imports.ImportStatus.COMPLETE:
        steps.append(Step("Complete (no destination)", detail.submitted_at, "done"))
    else:
        delivered = detail.delivered_at
        steps.append(Step("Delivered", delivered, "done" if delivered else "pending"))
    gone = detail.gone
    if gone is not None:
        label = "Expired" if gone.reason != "deleted" else "Deleted"
        steps.append(Step(label + (f" by {gone.actor}" if gone.actor else ""), gone.at, "done"))
    return steps


def _bars(detail: import_views.ImportDetail) -> list[Bar]:
    top = max((e.count for e in detail.errors), default=0)
    return [
        Bar(
            e.code,
            e.field or "(whole row)",
            e.constraint,
            e.count,
            max(2, round(BAR_WIDTH * e.count / top)),
        )
        for e in detail.errors
    ]


async def import_page(
    call: Page,
    reveal: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    org_id, import_id, role = call.user.org_id, call.param("id"), call.user.role
    detail = await run_in_threadpool(import_views.import_detail, call.rt, org_id, import_id)
    uploaded = await run_in_threadpool(import_views.last_upload_at, call.rt, import_id)
    rows = await run_in_threadpool(import_views.deliveries_of, call.rt, org_id, import_id)
    found_attempts = await run_in_threadpool(
        lambda: attempts.attempts_of(call.rt, import_id, org_id=org_id)
    )
    template = await run_in_threadpool(
        template_store.get_template, call.rt, org_id, detail.row.template_id
    )
    preview = None
    may_download = permissions.granted(role, Permission.DATA_DOWNLOAD)
    if may_download and detail.gone is None:
        try:
            preview = await run_in_threadpool(
                lambda: previews.preview(
                    call.rt,
                    org_id,
                    import_id,
                    actor=_actor(call),
                    address=call.address,
                    reveal=(reveal,) if reveal is not None else (),
                )
            )
        except Gone:
            preview = None  # a passthrough import: its rows are never stored
    return call.render(
        "import.html",
        status=status,
        error=error,
        notice=NOTICES.get(call.request.query_params.get("done", "")),
        imp=detail.row,
        template_name=template_store.template_name(template.schema),
        detail=detail,
        timeline=_timeline(detail, uploaded, found_attempts),
        bars=_bars(detail),
        bar_width=BAR_WIDTH,
        deliveries=rows,
        attempts=found_attempts,
        preview=preview,
        formats=list(exports.WRITERS),
        may_download=may_download,
        may_reveal=permissions.granted(role, Permission.DATA_REVEAL),
        personal=personal_fields(template.schema),
        may_delete=permissions.granted(role, Permission.DATA_DELETE),
        may_retry=permissions.granted(role, Permission.DATA_IMPORT),
    )


async def reveal(call: Page) -> Response:
    field = call.field("field", 200)
    try:
        return await import_page(call, reveal=field)
    except Invalid as exc:
        return await import_page(call, error=exc.message, status=422)


async def download(call: Page) -> Response:
    fmt = call.request.query_params.get("format", "csv")
    if fmt not in exports.WRITERS:
        raise Invalid(f"Choose a format among {', '.join(exports.WRITERS)}.")
    org_id, import_id = call.user.org_id, call.param("id")
    clear = permissions.sees_personal_data(call.user.role)
    plan = await run_in_threadpool(
        lambda: exports.plan_export(call.rt, import_id, fmt, org_id=org_id, clear=clear)
    )
    await run_in_threadpool(
        lambda: exports.record_download(
            call.rt, plan, org_id=org_id, actor=_actor(call), address=call.address
        )
    )
    return StreamingResponse(
        _stream(call.rt, plan, org_id),
        media_type=plan.media_type,
        headers={**HEADERS, "content-disposition": attachment(plan.file_name)},
    )


async def delete(call: Page) -> Response:
    import_id = call.param("id")
    if call.field("confirm", 10) != "yes":
        return await import_page(
            call,
            error="To delete, tick the box that confirms the rows are shredded for good.",
            status=422,
        )
    await run_in_threadpool(
        retention.delete_import, call.rt, call.user.org_id, import_id, _actor(call), call.address
    )
    return call.redirect(f"/dashboard/imports/{import_id}?done=deleted")


async def retry(call: Page) -> Response:
    raw = call.param("id")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12):
        raise NotFound(f"Delivery {raw} does not exist.")
    import_id = call.field("import", 40)
    await run_in_threadpool(lambda: deliveries.retry(call.rt, int(raw), org_id=call.user.org_id))
    own = IMPORT_ID.fullmatch(import_id)
    target = f"/dashboard/imports/{import_id}" if own else "/dashboard/imports"
    return call.redirect(f"{target}?done=retried")


routes = [
    route("/dashboard/imports", imports_list, "GET"),
    route("/dashboard/imports/{id}", import_page, "GET"),
    route("/dashboard/imports/{id}/reveal", reveal, "POST"),
    route("/dashboard/imports/{id}/download", download, "GET"),
    route("/dashboard/imports/{id}/delete", delete, "POST"),
    route("/dashboard/deliveries/{id}/retry", retry, "POST"),
]
