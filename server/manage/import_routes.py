"""The management API's imports and deliveries: list and inspect an organisation's imports,
download their rows, delete them now, see every delivery attempt and retry a failed one.

`GET /api/v1/imports/{id}` is shared with the importer's status route: `by_credential`
sends a secret key here and anything else to the importer (server.http.auth)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import BinaryIO, cast
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from server import (
    attempts,
    db,
    deliveries,
    exports,
    import_views,
    imports,
    permissions,
    previews,
    retention,
)
from server.errors import Invalid, NotFound
from server.http.auth import client_address, is_secret_key, uses_session
from server.importer import routes as importer
from server.manage import schemas
from server.manage.edge import Call, bad_query
from server.manage.openapi import Endpoint, Query
from server.runtime import Runtime

log = logging.getLogger("loadbay.manage")
IMPORTS = "/api/v1/imports"
SHARED = ("GET", IMPORTS + "/{id}")  # the importer's status route too
CHUNK = 64 * 1024
QUEUED = 8  # chunks a download holds ahead of the client: memory bounded per download
DOWNLOADS = threading.BoundedSemaphore(4)  # exports running at once in this process
ATTEMPT_PAGE = 100
MAX_ATTEMPT_PAGE = 1000
STATUSES = tuple(s.value for s in imports.ImportStatus)


def by_credential(
    management: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """A secret key, or a dashboard session without any bearer credential, gets the
    management answer; an upload token (or nothing) the importer's, in its own shape.
    Neither opens the other's answers."""

    async def endpoint(request: Request) -> Response:
        if is_secret_key(request) or uses_session(request):
            return await management(request)
        request.scope["path_params"] = {"import_id": request.path_params["id"]}
        return await importer.import_status(request)

    return endpoint


# --- imports -----------------------------------------------------------------------------------


async def list_imports(call: Call) -> schemas.ImportList:
    limit, cursor = call.limit_and_cursor()
    status = call.choice("status", STATUSES)
    where = import_views.ImportFilter(
        template_id=call.text("template_id", 40),
        status=imports.ImportStatus(status) if status is not None else None,
        created_after=call.moment("created_after"),
        created_before=call.moment("created_before"),
        search=call.text("search", 200),
    )
    views, next_cursor = await run_in_threadpool(
        import_views.list_imports, call.rt, call.org.id, limit, cursor, where
    )
    return schemas.ImportList(
        items=[schemas.ImportOut.of(v) for v in views], next_cursor=next_cursor
    )


async def get_import(call: Call) -> schemas.ImportDetail:
    found = await run_in_threadpool(import_views.import_detail, call.rt, call.org.id, call.id)
    return schemas.ImportDetail.of_detail(found, db.utcnow())


async def delete_import(call: Call) -> schemas.EventOut:
    event = await run_in_threadpool(
        retention.delete_import,
        call.rt,
        call.org.id,
        call.id,
        call.actor,
        client_address(call.request),
    )
    return schemas.EventOut.of(event)


async def import_rows(call: Call) -> Response:
    fmt = call.request.query_params.get("format", "csv")
    if fmt not in exports.WRITERS:
        raise bad_query("format", f"is one of {', '.join(exports.WRITERS)}")
    clear = permissions.sees_personal_data(call.role)
    plan = await run_in_threadpool(
        lambda: exports.plan_export(call.rt, call.id, fmt, org_id=call.org.id, clear=clear)
    )
    headers = {"content-disposition": attachment(plan.file_name), "cache-control": "no-store"}
    if call.request.method == "HEAD":  # what a GET would answer, without exporting anything
        return Response(media_type=plan.media_type, headers=headers)
    await run_in_threadpool(
        lambda: exports.record_download(
            call.rt,
            plan,
            org_id=call.org.id,
            actor=call.actor,
            address=client_address(call.request),
        )
    )
    return StreamingResponse(
        _stream(call.rt, plan, call.org.id), media_type=plan.media_type, headers=headers
    )


async def preview_import(call: Call) -> schemas.PreviewOut:
    query = call.request.query_params
    first, limit = query.get("first_row", "1"), query.get("limit", str(previews.PREVIEW_ROWS))
    if not (first.isascii() and first.isdigit() and len(first) <= 10 and int(first) >= 1):
        raise bad_query("first_row", "is a row number from 1")
    fits = limit.isascii() and limit.isdigit() and len(limit) <= 3
    if not (fits and 1 <= int(limit) <= previews.MAX_ROWS):
        raise bad_query("limit", f"is a whole number from 1 to {previews.MAX_ROWS}")
    found = await run_in_threadpool(
        lambda: previews.preview(
            call.rt,
            call.org.id,
            call.id,
            **call.who,
            first_row=int(first),
            limit=int(limit),
        )
    )
    return schemas.PreviewOut.of(found)


async def reveal_import(call: Call) -> schemas.PreviewOut:
    body = call.parse(schemas.RevealIn)
    count = body.last_row - body.first_row + 1
    if not 1 <= count <= previews.MAX_ROWS:
        raise Invalid(
            f"Reveal 1 to {previews.MAX_ROWS} rows at a time: rows {body.first_row} to "
            f"{body.last_row} are {count}.",
            details=[{"loc": ["body", "last_row"], "msg": "out of range"}],
        )
    found = await run_in_threadpool(
        lambda: previews.preview(
            call.rt,
            call.org.id,
            call.id,
            **call.who,
            reveal=body.fields,
            first_row=body.first_row,
            limit=count,
        )
    )
    return schemas.PreviewOut.of(found)


def attachment(file_name: str) -> str:
    """Content-Disposition for a name that came from an end user's file (RFC 6266)."""
    plain = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in file_name)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(file_name, safe='')}"


# --- deliveries --------------------------------------------------------------------------------


async def import_deliveries(call: Call) -> schemas.AttemptList:
    query = call.request.query_params
    raw_limit = query.get("limit", str(ATTEMPT_PAGE))
    fits = raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 5
    if not (fits and 1 <= int(raw_limit) <= MAX_ATTEMPT_PAGE):
        raise bad_query("limit", f"is a whole number from 1 to {MAX_ATTEMPT_PAGE}")
    raw_cursor = query.get("cursor", "0")
    if not (raw_cursor.isascii() and raw_cursor.isdigit() and len(raw_cursor) <= 12):
        raise bad_query("cursor", "is the next_cursor of the previous page")
    limit, start = int(raw_limit), int(raw_cursor)
    found = await run_in_threadpool(attempts.attempts_of, call.rt, call.id, org_id=call.org.id)
    page = found[start : start + limit]
    more = start + limit < len(found)
    return schemas.AttemptList(
        items=[schemas.AttemptOut.of(a) for a in page],
        next_cursor=str(start + limit) if more else None,
    )


async def retry_delivery(call: Call) -> schemas.RetryOut:
    if not (call.id.isascii() and call.id.isdigit() and len(call.id) <= 12):
        raise NotFound(f"Delivery {call.id} does not exist.")
    delivery_id = int(call.id)
    enqueued = await run_in_threadpool(
        lambda: deliveries.retry(call.rt, delivery_id, org_id=call.org.id)
    )
    return schemas.RetryOut(delivery_id=delivery_id, status="pending", enqueued=enqueued)


# --- a download, streamed ----------------------------------------------------------------------


class _Cancelled(Exception):
    """The client went away: the export stops writing."""


class _Pipe(io.RawIOBase):
    """A write-only, unseekable file a worker thread's export writes into, read in chunks
    by the answer on the event loop (no thread waits for the client). At most QUEUED
    chunks wait for the client; the writer waits for room, and stops once cancelled."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        self._chunks: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        self._room = threading.Semaphore(QUEUED)
        self.cancelled = threading.Event()
        self._buffer = bytearray()
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        if self.cancelled.is_set():
            raise _Cancelled
        view = memoryview(data)  # type: ignore[arg-type]
        self._buffer += view
        self._written += view.nbytes
        if len(self._buffer) >= CHUNK:
            self._put(bytes(self._buffer))
            self._buffer.clear()
        return view.nbytes

    def tell(self) -> int:
        return self._written

    def finish(self, error: BaseException | None = None) -> None:
        if self._buffer and error is None:
            self._put(bytes(self._buffer))
        self._put(error)

    def _put(self, item: bytes | BaseException | None) -> None:
        while not self._room.acquire(timeout=0.5):
            if self.cancelled.is_set():
                raise _Cancelled
        if self.cancelled.is_set():
            raise _Cancelled
        self._loop.call_soon_threadsafe(self._chunks.put_nowait, item)

    async def next_chunk(self) -> bytes | BaseException | None:
        item = await self._chunks.get()
        self._room.release()
        return item


class DownloadBroken(Exception):
    """The export failed after its first byte: the connection is cut, never a short file
    that looks whole."""


async def _stream(rt: Runtime, plan: exports.ExportPlan, org_id: str) -> AsyncIterator[bytes]:
    """The export, run in a thread of its own once one of DOWNLOADS is free (a download
    beyond them waits its turn on the event loop, holding no thread and no batch)."""
    slots = DOWNLOADS
    while not slots.acquire(blocking=False):
        await asyncio.sleep(0.05)
    pipe = _Pipe(asyncio.get_running_loop())

    def produce() -> None:
        try:
            rows = exports.export_import(
                rt,
                plan.import_id,
                plan.fmt,
                cast(BinaryIO, pipe),
                org_id=org_id,
                clear=not plan.masked,
            )
            pipe.finish()
            log.info("import %s: %d rows downloaded as %s", plan.import_id, rows, plan.fmt)
        except _Cancelled:
            log.info("import %s: download stopped by the client", plan.import_id)
        except Exception as exc:  # noqa: BLE001 - handed to the answer, which cuts the stream
            log.exception("import %s: download failed", plan.import_id)
            with contextlib.suppress(_Cancelled, RuntimeError):  # RuntimeError: loop closed
                pipe.finish(exc)
        finally:
            slots.release()

    thread = threading.Thread(target=produce, name=f"export-{plan.import_id}", daemon=True)
    try:
        thread.start()
    except BaseException:
        slots.release()
        raise
    try:
        while True:
            item = await pipe.next_chunk()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise DownloadBroken(f"the export of {plan.import_id} failed") from item
            yield item
    finally:
        pipe.cancelled.set()


DATE = {"type": "string", "format": "date-time"}
LIST_QUERY = (
    Query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}, "Page size."),
    Query("cursor", {"type": "string", "maxLength": 200}, "next_cursor of the previous page."),
    Query("template_id", {"type": "string", "maxLength": 40}, "Imports of this template."),
    Query("status", {"type": "string", "enum": list(STATUSES)}, "Imports standing there now."),
    Query("created_after", DATE, "Created after this moment (RFC 3339)."),
    Query("created_before", DATE, "Created before this moment (RFC 3339)."),
    Query("search", {"type": "string", "maxLength": 200}, "An import id, or part of a file name."),
)
ROWS_QUERY = (
    Query(
        "format",
        {"type": "string", "enum": list(exports.WRITERS), "default": "csv"},
        "The file's format.",
    ),
)
PREVIEW_QUERY = (
    Query("first_row", {"type": "integer", "minimum": 1, "default": 1}, "1-based first row."),
    Query(
        "limit",
        {
            "type": "integer",
            "minimum": 1,
            "maximum": previews.MAX_ROWS,
            "default": previews.PREVIEW_ROWS,
        },
        "Rows on the page.",
    ),
)
ATTEMPTS_QUERY = (
    Query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_ATTEMPT_PAGE, "default": ATTEMPT_PAGE},
        "Page size.",
    ),
    Query("cursor", {"type": "string", "pattern": "^[0-9]{1,12}$"}, "next_cursor of the last."),
)
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", IMPORTS, list_imports, "List imports", schemas.ImportList, query=LIST_QUERY),
    Endpoint(
        "GET",
        IMPORTS + "/{id}",
        get_import,
        "An import: status, counts, template version, errors, timings (with an upload "
        "token instead, this path is the importer's status route)",
        schemas.ImportDetail,
        errors=(401, 404, 429),
    ),
    Endpoint(
        "GET",
        IMPORTS + "/{id}/rows",
        import_rows,
        "Download an import's rows (410 once deleted or expired)",
        None,
        query=ROWS_QUERY,
        errors=(401, 404, 410, 422, 429),
        media=tuple(exports.MEDIA_TYPES.values()),
    ),
    Endpoint(
        "GET",
        IMPORTS + "/{id}/preview",
        preview_import,
        "A page of an import's rows, personal-data fields masked (audited as a preview)",
        schemas.PreviewOut,
        query=PREVIEW_QUERY,
        errors=(401, 404, 410, 422, 429),
    ),
    Endpoint(
        "POST",
        IMPORTS + "/{id}/reveal",
        reveal_import,
        "Named personal-data fields in clear for a range of rows (audited as a reveal)",
        schemas.PreviewOut,
        body=schemas.RevealIn,
        errors=(401, 404, 410, 422, 429),
    ),
    Endpoint(
        "DELETE",
        IMPORTS + "/{id}",
        delete_import,
        "Delete an import's rows now (crypto-shredding); answers the deletion event",
        schemas.EventOut,
        errors=(401, 404, 410, 429),
    ),
    Endpoint(
        "GET",
        IMPORTS + "/{id}/deliveries",
        import_deliveries,
        "Every delivery attempt of an import",
        schemas.AttemptList,
        query=ATTEMPTS_QUERY,
    ),
    Endpoint(
        "POST",
        "/api/v1/deliveries/{id}/retry",
        retry_delivery,
        "Send a failed delivery again",
        schemas.RetryOut,
        errors=(401, 404, 409, 410, 429),
    ),
)
