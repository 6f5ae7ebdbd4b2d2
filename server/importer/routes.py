"""The importer's HTTP surface: the page, import creation, batch upload, submit, status and
mapping memory. Each route checks the credential and the cost first, calls one domain
function, and serialises its answer."""

from __future__ import annotations

import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from pipeline.protocol import field_infos
from pipeline.template import parse_template, with_row_policy
from server import db, deliveries, handoff, identity, imports, mappings, orgs, templates, uploads
from server.errors import Invalid, ServiceError, Unavailable
from server.http.auth import bearer_token, publishable_key, require_same_origin, runtime_of
from server.http.digest import check_content_digest
from server.http.limits import Limiter
from server.importer.assets import asset, embed_script
from server.importer.page import (
    PRELOAD_CSP,
    ImporterConfig,
    content_security_policy,
    importer_page,
    message_page,
    preload_page,
)

_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")
# The importer's error pages are shown inside whatever iframe asked (that is where the user
# looks), so they may be framed; nothing in them may run.
MESSAGE_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'"


def limiter_of(request: Request) -> Limiter:
    limiter: Limiter = request.app.state.limiter
    return limiter


def whole_number(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Invalid(f"{name} must be a whole number.")
    if isinstance(value, str) and not (value.isascii() and value.isdigit() and len(value) < 20):
        raise Invalid(f"{name} must be a whole number.")
    number = int(value)
    if not 0 <= number <= uploads.MAX_INT:
        raise Invalid(f"{name} must be between 0 and {uploads.MAX_INT}.")
    return number


async def importer(request: Request) -> Response:
    rt = runtime_of(request)
    limiter_of(request).address(request)
    key = publishable_key(request)
    template_id = request.query_params.get("template", "")[:100]
    parent = request.query_params.get("origin", "").rstrip("/")
    try:
        org = await run_in_threadpool(orgs.organisation_by_key, rt, key)
        template = await run_in_threadpool(orgs.template_for, rt, org, template_id)
    except ServiceError as exc:
        return HTMLResponse(
            message_page("Importer unavailable", exc.message),
            status_code=404,
            headers={"content-security-policy": MESSAGE_CSP},
        )
    if not _ORIGIN.match(parent) or parent not in org.allowed_origins:
        return HTMLResponse(
            message_page(
                "Importer unavailable",
                f"This importer is not enabled for {parent or 'this page'}. "
                "Add the page's origin to the organisation's allowed origins.",
            ),
            status_code=403,
            headers={"content-security-policy": MESSAGE_CSP},
        )
    host_page_rows = await run_in_threadpool(_host_page_cap, rt, template.id)
    config = ImporterConfig(
        publishable_key=key,
        template_id=template.id,
        # the policy its imports follow, written in: the engine cannot know the org's default
        template=with_row_policy(template.schema, org.invalid_row_policy),
        fields=tuple(f.to_dict() for f in field_infos(parse_template(template.schema))),
        parent_origin=parent,
        max_file_bytes=rt.settings.max_file_bytes,
        retention_days=templates.retention_days(rt, org, template.schema),
        organisation=org.name,
        host_page_rows=host_page_rows,
        identity_required=identity.required(template.schema),
    )
    page = importer_page(request.app.state.manifest, config)
    return HTMLResponse(
        page,
        headers={
            "content-security-policy": content_security_policy(org.allowed_origins),
            "referrer-policy": "no-referrer",
            "cache-control": "no-store",
        },
    )


def _host_page_cap(rt: Any, template_id: str) -> int | None:
    with rt.sessions() as session:
        return handoff.host_page_cap(rt, session, template_id)


async def preload(request: Request) -> Response:
    """The warm start's hidden page (embed.js frames it when it loads): prefetches only."""
    limiter_of(request).address(request)
    return HTMLResponse(
        preload_page(request.app.state.manifest),
        headers={"content-security-policy": PRELOAD_CSP, "cache-control": "no-store"},
    )


async def create_import(request: Request) -> Response:
    require_same_origin(request)
    rt, limiter = runtime_of(request), limiter_of(request)
    limiter.address(request, limiter.creations_per_address)
    body = await limiter.json(request)
    key = str(body.get("publishableKey", ""))[:200]
    limiter.key(key)
    org = await run_in_threadpool(orgs.organisation_by_key, rt, key)
    limiter.import_created(org.publishable_key)
    template_id = str(body.get("templateId", ""))[:100]
    who = await run_in_threadpool(identity.verify, rt, org, template_id, body.get("identity"))
    created = await run_in_threadpool(
        imports.create_import,
        rt,
        org,
        template_id,
        str(body.get("fileName", "")),
        who,
    )
    return JSONResponse(
        {"id": created.import_id, "uploadToken": created.upload_token}, status_code=201
    )


async def _authorised_import(request: Request) -> tuple[str, str]:
    """The path's import and its token, checked before any body is read."""
    rt = runtime_of(request)
    import_id, token = request.path_params["import_id"][:100], bearer_token(request)
    limiter_of(request).address(request)
    limiter_of(request).key(import_id)

    def check() -> None:
        with rt.sessions() as session:
            imports.authorise(session, import_id, token)

    await run_in_threadpool(check)
    return import_id, token


async def put_batch(request: Request) -> Response:
    require_same_origin(request)
    rt, limiter = runtime_of(request), limiter_of(request)
    seq = whole_number(request.path_params["seq"], "The batch number")
    first_row = whole_number(request.query_params.get("first_row", "2"), "first_row")
    left_out = whole_number(request.query_params.get("left_out", "0"), "left_out")
    uploads.check_position(seq, first_row)
    encoding = request.headers.get("content-encoding", "identity")
    if encoding not in ("identity", "gzip"):
        raise Invalid("Batches may be sent as they are or gzip-compressed.")
    import_id, token = await _authorised_import(request)
    cap = rt.settings.max_batch_bytes
    async with limiter.upload_slot():
        body = await limiter.body(request, cap)
        check_content_digest(request.headers.get("content-digest"), body)
        if encoding == "gzip":
            body = await run_in_threadpool(uploads.inflate, body, cap)
        rows = await run_in_threadpool(
            uploads.receive_batch, rt, import_id, token, seq, first_row, body, left_out
        )
    return JSONResponse({"seq": seq, "rows": rows})


async def received_batches(request: Request) -> Response:
    """The batch numbers the server holds (a page at a time): what a resumed upload skips."""
    rt = runtime_of(request)
    limiter_of(request).address(request)
    start = whole_number(request.query_params.get("start", "0"), "start")
    held = await run_in_threadpool(
        uploads.received, rt, request.path_params["import_id"][:100], bearer_token(request), start
    )
    return JSONResponse(held.to_dict(), headers={"cache-control": "no-store"})


async def submit_import(request: Request) -> Response:
    require_same_origin(request)
    rt, limiter = runtime_of(request), limiter_of(request)
    import_id, token = await _authorised_import(request)
    body = await limiter.json(request)
    delivery_ids = await run_in_threadpool(
        imports.submit,
        rt,
        import_id,
        token,
        whole_number(body.get("batches"), "batches"),
        whole_number(body.get("rows"), "rows"),
    )
    try:
        await run_in_threadpool(deliveries.enqueue_all, rt, delivery_ids)
    except deliveries.QueueUnavailable:
        raise Unavailable(
            "The import is saved, but the delivery queue cannot be reached; "
            "submit again in a moment (nothing is sent twice).",
            retry_after=5,
        ) from None
    state = await run_in_threadpool(imports.status, rt, import_id, token)
    return JSONResponse(state.to_dict(), status_code=202)


async def import_status(request: Request) -> Response:
    rt = runtime_of(request)
    limiter_of(request).address(request)
    state = await run_in_threadpool(
        imports.status, rt, request.path_params["import_id"][:100], bearer_token(request)
    )
    return JSONResponse(state.to_dict(), headers={"cache-control": "no-store"})


# --- the host page: its rows, then its acknowledgement (destinations/host_page.py) ------


async def handoff_rows(request: Request) -> Response:
    import_id, token = await _authorised_import(request)
    rows = await run_in_threadpool(handoff.rows_for_page, runtime_of(request), import_id, token)
    return JSONResponse(rows.to_dict(), headers={"cache-control": "no-store"})


async def handoff_ack(request: Request) -> Response:
    require_same_origin(request)
    import_id, token = await _authorised_import(request)
    settled = await run_in_threadpool(handoff.acknowledge, runtime_of(request), import_id, token)
    state = await run_in_threadpool(imports.status, runtime_of(request), import_id, token)
    return JSONResponse({"settled": settled, "state": state.to_dict()})


# --- mapping memory: the importer page calls these with the organisation's publishable key --


async def _authorised_template(request: Request, key: str) -> db.Template:
    """The path's template, if it belongs to the organisation whose key this is."""
    rt = runtime_of(request)
    limiter_of(request).key(key)
    org = await run_in_threadpool(orgs.organisation_by_key, rt, key)
    template_id = request.path_params["template_id"][:100]
    return await run_in_threadpool(orgs.template_for, rt, org, template_id)


async def recall_mapping(request: Request) -> Response:
    """What enough users confirmed for these headers, as {label: field} for these labels.

    The page sends the headers only once its user has confirmed the header row (for a file
    without one, the first row holds cell values); nothing sent here is stored."""
    require_same_origin(request)
    limiter = limiter_of(request)
    limiter.address(request)
    body = await limiter.json(request)
    template = await _authorised_template(request, publishable_key(request, body))
    headers = mappings.checked_headers(body.get("headers"))
    rt = runtime_of(request)
    mapping = await run_in_threadpool(mappings.recall, rt, template.id, headers)
    return JSONResponse({"mapping": mapping}, headers={"cache-control": "no-store"})


async def post_mapping(request: Request) -> Response:
    """Count a confirmed mapping; the submitted import's upload token vouches for it, and
    the client's address is what is counted (as a keyed digest, see server/mappings.py)."""
    require_same_origin(request)
    limiter = limiter_of(request)
    limiter.address(request, limiter.creations_per_address)
    body = await limiter.json(request)
    template = await _authorised_template(request, publishable_key(request, body))
    headers = mappings.checked_headers(body.get("headers"))
    mapping: Any = body.get("mapping")  # checked against the template by remember()
    token, import_id = bearer_token(request), str(body.get("importId", ""))[:100]
    kept = await run_in_threadpool(
        mappings.remember,
        runtime_of(request),
        template.id,
        headers,
        mapping,
        request.client.host if request.client else "unknown",
        lambda session: imports.claim_mapping_memory(session, import_id, token, template.id),
    )
    return JSONResponse({"addresses": kept.addresses, "proposed": kept.proposed})


routes = [
    Route("/importer", importer, methods=["GET"]),
    Route("/importer/preload", preload, methods=["GET"]),
    Route("/api/v1/imports", create_import, methods=["POST"]),
    Route("/api/v1/imports/{import_id}", import_status, methods=["GET"]),
    Route("/api/v1/imports/{import_id}/batches", received_batches, methods=["GET"]),
    Route("/api/v1/imports/{import_id}/batches/{seq}", put_batch, methods=["PUT"]),
    Route("/api/v1/imports/{import_id}/submit", submit_import, methods=["POST"]),
    Route("/api/v1/imports/{import_id}/handoff", handoff_rows, methods=["GET"]),
    Route("/api/v1/imports/{import_id}/handoff/ack", handoff_ack, methods=["POST"]),
    Route("/api/v1/templates/{template_id}/mappings", post_mapping, methods=["POST"]),
    Route("/api/v1/templates/{template_id}/mappings/recall", recall_mapping, methods=["POST"]),
    Route("/assets/{build_id}/{path:path}", asset, methods=["GET", "HEAD"]),
    Route("/embed.js", embed_script, methods=["GET", "HEAD"]),
]
