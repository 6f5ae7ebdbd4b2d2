"""The importer's HTTP API and page. Exceptions become JSON answers here, at the edge."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from pipeline.errors import PipelineError
from pipeline.template import Template
from server import imports, orgs
from server.errors import Forbidden, Invalid, ServiceError, Unauthorized
from server.importer.page import (
    ImporterConfig,
    content_security_policy,
    importer_page,
    message_page,
)
from server.queue import enqueue_delivery
from server.runtime import Runtime

_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def bearer_token(request: Request) -> str:
    value = request.headers.get("authorization", "")
    if not value.startswith("Bearer "):
        raise Unauthorized("Missing upload token.")
    return value.removeprefix("Bearer ")


async def json_body(request: Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Invalid("The request body must be JSON.") from exc
    if not isinstance(data, dict):
        raise Invalid("The request body must be a JSON object.")
    return data


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Invalid(f"{name} must be a whole number.")
    try:
        number = int(value)
    except ValueError as exc:
        raise Invalid(f"{name} must be a whole number.") from exc
    if number < 0:
        raise Invalid(f"{name} must not be negative.")
    return number


def require_same_origin(request: Request) -> None:
    """State-changing calls come from the importer page itself, never from another site."""
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    if origin is not None and origin != own:
        raise Forbidden("Requests must come from the loadbay importer page.")


async def importer(request: Request) -> Response:
    rt = runtime_of(request)
    key = request.query_params.get("key", "")
    template_id = request.query_params.get("template", "")
    parent = request.query_params.get("origin", "").rstrip("/")
    try:
        org = await run_in_threadpool(orgs.organisation_by_key, rt, key)
        template = await run_in_threadpool(orgs.template_for, rt, org, template_id)
    except ServiceError as exc:
        return HTMLResponse(message_page("Importer unavailable", exc.message), status_code=404)
    if not _ORIGIN.match(parent) or parent not in org.allowed_origins:
        return HTMLResponse(
            message_page(
                "Importer unavailable",
                f"This importer is not enabled for {parent or 'this page'}. "
                "Add the page's origin to the organisation's allowed origins.",
            ),
            status_code=403,
        )
    config = ImporterConfig(
        publishable_key=key,
        template_id=template.id,
        template=template.schema,
        fields=tuple(
            {
                "name": f.name,
                "label": f.label,
                "required": f.required,
                "description": f.description or None,
            }
            for f in Template.from_dict(template.schema).fields
        ),
        parent_origin=parent,
        max_file_bytes=rt.settings.max_file_bytes,
    )
    page = importer_page(request.app.state.manifest, config)
    return HTMLResponse(
        page,
        headers={
            "content-security-policy": content_security_policy(org.allowed_origins),
            "referrer-policy": "no-referrer",
            "x-content-type-options": "nosniff",
            "cache-control": "no-store",
        },
    )


async def create_import(request: Request) -> Response:
    require_same_origin(request)
    rt = runtime_of(request)
    body = await json_body(request)
    org = await run_in_threadpool(orgs.organisation_by_key, rt, str(body.get("publishableKey", "")))
    created = await run_in_threadpool(
        imports.create_import,
        rt,
        org,
        str(body.get("templateId", "")),
        str(body.get("fileName", "")),
    )
    return JSONResponse(
        {"id": created.import_id, "uploadToken": created.upload_token}, status_code=201
    )


async def put_batch(request: Request) -> Response:
    require_same_origin(request)
    rt = runtime_of(request)
    seq = _int(request.path_params["seq"], "The batch number")
    first_row = _int(request.query_params.get("first_row", "2"), "first_row")
    body = await request.body()
    if request.headers.get("content-encoding", "identity") == "gzip":
        body = imports.inflate(body, rt.settings.max_batch_bytes)
    elif request.headers.get("content-encoding", "identity") != "identity":
        raise Invalid("Batches may be sent as they are or gzip-compressed.")
    rows = await run_in_threadpool(
        imports.receive_batch,
        rt,
        request.path_params["import_id"],
        bearer_token(request),
        seq,
        first_row,
        body,
    )
    return JSONResponse({"seq": seq, "rows": rows})


async def submit_import(request: Request) -> Response:
    require_same_origin(request)
    rt = runtime_of(request)
    body = await json_body(request)
    delivery_ids = await run_in_threadpool(
        imports.submit,
        rt,
        request.path_params["import_id"],
        bearer_token(request),
        _int(body.get("batches"), "batches"),
        _int(body.get("rows"), "rows"),
    )
    queue = request.app.state.queue
    for delivery_id in delivery_ids:
        await run_in_threadpool(enqueue_delivery, queue, delivery_id)
    state = await run_in_threadpool(
        imports.status, rt, request.path_params["import_id"], bearer_token(request)
    )
    return JSONResponse(state.to_dict(), status_code=202)


async def import_status(request: Request) -> Response:
    rt = runtime_of(request)
    state = await run_in_threadpool(
        imports.status, rt, request.path_params["import_id"], bearer_token(request)
    )
    return JSONResponse(state.to_dict(), headers={"cache-control": "no-store"})


def error_response(exc: ServiceError | PipelineError) -> JSONResponse:
    if isinstance(exc, ServiceError):
        error: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if exc.details is not None:
            error["details"] = exc.details
        return JSONResponse({"error": error}, status_code=exc.status)
    return JSONResponse({"error": {"code": "invalid", "message": str(exc)}}, status_code=422)


routes = [
    Route("/importer", importer, methods=["GET"]),
    Route("/api/v1/imports", create_import, methods=["POST"]),
    Route("/api/v1/imports/{import_id}", import_status, methods=["GET"]),
    Route("/api/v1/imports/{import_id}/batches/{seq}", put_batch, methods=["PUT"]),
    Route("/api/v1/imports/{import_id}/submit", submit_import, methods=["POST"]),
]
