"""The management REST API under /api/v1/ (secret key): templates, destinations,
destination kinds, organisation settings, and its OpenAPI document.

The edge of each route is `managed()`: the address and key rate limits, the secret key
(-> the organisation), the body read within its cap, Idempotency-Key on POST, and errors
as problem details. Each handler then parses, calls one domain function, and serialises.
These paths and methods never coincide with the importer's (server/importer/routes.py);
`GET /api/v1/imports/{id}` stays the importer's status route for now (see
server.http.auth.secret_key for how the imports API will share it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipeline.errors import PipelineError
from server import db, orgs, templates
from server import destinations as dests
from server.errors import Invalid, ServiceError
from server.http.auth import management_org, runtime_of
from server.http.limits import JSON_BYTES, Limiter
from server.http.responses import problem_response, server_problem
from server.manage import idempotency, schemas
from server.manage.openapi import PAGE, Endpoint, document
from server.runtime import Runtime

log = logging.getLogger("loadbay.manage")
M = TypeVar("M", bound=BaseModel)
DEFAULT_PAGE = 20


@dataclass(frozen=True)
class Call:
    """What the edge established for one request."""

    request: Request
    rt: Runtime
    org: db.Organisation
    raw: bytes

    def parse(self, model: type[M]) -> M:
        try:
            data = json.loads(self.raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise Invalid("The request body must be JSON.") from exc
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            # Locations and messages only: a value sent may be a secret.
            details = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
            raise Invalid("The request body does not match its schema.", details=details) from None

    def page(self) -> tuple[int, str | None, bool]:
        query = self.request.query_params
        raw = query.get("limit", str(DEFAULT_PAGE))
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw[:4]) <= templates.MAX_PAGE):
            raise Invalid(f"limit is a whole number from 1 to {templates.MAX_PAGE}.")
        cursor = query.get("cursor") or None
        if cursor is not None and len(cursor) > 200:
            raise Invalid("The cursor is not one this API gave out.")
        deleted = query.get("include_deleted", "false")
        if deleted not in ("true", "false"):
            raise Invalid("include_deleted is true or false.")
        return int(raw), cursor, deleted == "true"

    @property
    def id(self) -> str:
        return str(self.request.path_params["id"])[:100]


Handler = Callable[[Call], Awaitable[Any]]


def answer(model: BaseModel | None, status: int = 200) -> Response:
    if model is None:
        return Response(status_code=status)
    return JSONResponse(model.model_dump(mode="json", by_alias=True), status_code=status)


def managed(handler: Handler, status: int) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await _run(request, handler, status)
        except (ServiceError, PipelineError) as exc:
            return problem_response(exc)
        except Exception:  # noqa: BLE001 - answered as a problem, logged with its trace
            log.exception("unexpected error on %s %s", request.method, request.url.path)
            return server_problem()

    return endpoint


async def _run(request: Request, handler: Handler, status: int) -> Response:
    rt = runtime_of(request)
    limiter: Limiter = request.app.state.limiter
    limiter.address(request)
    org = await management_org(request, limiter)
    raw = b""
    if request.method in ("POST", "PUT", "PATCH"):
        raw = await limiter.body(request, JSON_BYTES)
    call = Call(request, rt, org, raw)
    idempotency_key = request.headers.get("idempotency-key")
    if request.method != "POST" or idempotency_key is None:
        return answer(await handler(call), status)
    claim = await run_in_threadpool(
        idempotency.claim, rt, org.id, idempotency_key, request.url.path, raw
    )
    if claim.replay is not None:
        return claim.replay
    try:
        response = answer(await handler(call), status)
    except (ServiceError, PipelineError) as exc:
        response = problem_response(exc)
    except BaseException:
        await run_in_threadpool(idempotency.release, rt, org.id, idempotency_key)
        raise
    await run_in_threadpool(idempotency.finish, rt, org.id, idempotency_key, response)
    return response


# --- templates -----------------------------------------------------------------------------


async def list_templates(call: Call) -> schemas.TemplateList:
    limit, cursor, deleted = call.page()
    page = await run_in_threadpool(
        templates.list_templates, call.rt, call.org.id, limit, cursor, deleted
    )
    return schemas.TemplateList(
        items=[schemas.TemplateOut.of(t) for t in page.items], next_cursor=page.next_cursor
    )


async def create_template(call: Call) -> schemas.TemplateOut:
    body = call.parse(schemas.TemplateIn)
    row = await run_in_threadpool(templates.create_template, call.rt, call.org.id, body.schema_)
    return schemas.TemplateOut.of(row)


async def get_template(call: Call) -> schemas.TemplateOut:
    row = await run_in_threadpool(templates.get_template, call.rt, call.org.id, call.id)
    return schemas.TemplateOut.of(row)


async def put_template(call: Call) -> schemas.TemplateOut:
    body = call.parse(schemas.TemplateIn)
    row = await run_in_threadpool(
        templates.replace_template, call.rt, call.org.id, call.id, body.schema_
    )
    return schemas.TemplateOut.of(row)


async def delete_template(call: Call) -> schemas.TemplateOut:
    row = await run_in_threadpool(templates.delete_template, call.rt, call.org.id, call.id)
    return schemas.TemplateOut.of(row)


async def restore_template(call: Call) -> schemas.TemplateOut:
    row = await run_in_threadpool(templates.restore_template, call.rt, call.org.id, call.id)
    return schemas.TemplateOut.of(row)


# --- destinations --------------------------------------------------------------------------


async def list_destinations(call: Call) -> schemas.DestinationList:
    limit, cursor, deleted = call.page()
    page = await run_in_threadpool(
        dests.list_destinations, call.rt, call.org, limit, cursor, deleted
    )
    return schemas.DestinationList(
        items=[schemas.DestinationOut.of(v) for v in page.items], next_cursor=page.next_cursor
    )


async def create_destination(call: Call) -> schemas.DestinationOut:
    body = call.parse(schemas.DestinationIn)
    view = await run_in_threadpool(
        dests.create_destination,
        call.rt,
        call.org,
        body.template_id,
        body.kind,
        body.name,
        body.config,
    )
    return schemas.DestinationOut.of(view)


async def get_destination(call: Call) -> schemas.DestinationOut:
    view = await run_in_threadpool(dests.get_destination, call.rt, call.org, call.id)
    return schemas.DestinationOut.of(view)


async def patch_destination(call: Call) -> schemas.DestinationOut:
    body = call.parse(schemas.DestinationPatch)
    view = await run_in_threadpool(
        lambda: dests.update_destination(
            call.rt, call.org, call.id, name=body.name, enabled=body.enabled, config=body.config
        )
    )
    return schemas.DestinationOut.of(view)


async def delete_destination(call: Call) -> schemas.DestinationOut:
    view = await run_in_threadpool(dests.delete_destination, call.rt, call.org, call.id)
    return schemas.DestinationOut.of(view)


async def restore_destination(call: Call) -> schemas.DestinationOut:
    view = await run_in_threadpool(dests.restore_destination, call.rt, call.org, call.id)
    return schemas.DestinationOut.of(view)


async def test_destination(call: Call) -> schemas.DestinationTest:
    await run_in_threadpool(dests.check_destination, call.rt, call.org, call.id)
    return schemas.DestinationTest(ok=True, detail="The destination's check passed.")


async def destination_kinds(call: Call) -> schemas.DestinationKindList:
    specs = await run_in_threadpool(dests.kind_list)
    return schemas.DestinationKindList(items=[schemas.DestinationKind.of(s) for s in specs])


# --- organisation --------------------------------------------------------------------------


async def get_organisation(call: Call) -> schemas.OrganisationOut:
    found = await run_in_threadpool(orgs.settings_of, call.rt, call.org.id)
    return schemas.OrganisationOut.of(found)


async def patch_organisation(call: Call) -> schemas.OrganisationOut:
    body = call.parse(schemas.OrganisationPatch)
    found = await run_in_threadpool(
        lambda: orgs.update_settings(
            call.rt,
            call.org.id,
            allowed_origins=body.allowed_origins,
            default_retention_days=body.default_retention_days,
            invalid_row_policy=body.invalid_row_policy,
        )
    )
    return schemas.OrganisationOut.of(found)


# --- the document --------------------------------------------------------------------------


async def openapi_json(request: Request) -> Response:
    return JSONResponse(OPENAPI, headers={"cache-control": "public, max-age=300"})


T, D = "/api/v1/templates", "/api/v1/destinations"
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", T, list_templates, "List templates", schemas.TemplateList, query=PAGE),
    Endpoint(
        "POST",
        T,
        create_template,
        "Create a template",
        schemas.TemplateOut,
        201,
        schemas.TemplateIn,
    ),
    Endpoint("GET", T + "/{id}", get_template, "Get a template", schemas.TemplateOut),
    Endpoint(
        "PUT",
        T + "/{id}",
        put_template,
        "Replace a template (a new version)",
        schemas.TemplateOut,
        body=schemas.TemplateIn,
        errors=(401, 404, 409, 422, 429),
    ),
    Endpoint(
        "DELETE",
        T + "/{id}",
        delete_template,
        "Delete a template (restorable for 30 days)",
        schemas.TemplateOut,
    ),
    Endpoint(
        "POST",
        T + "/{id}/restore",
        restore_template,
        "Restore a deleted template",
        schemas.TemplateOut,
        errors=(401, 404, 409, 429),
    ),
    Endpoint("GET", D, list_destinations, "List destinations", schemas.DestinationList, query=PAGE),
    Endpoint(
        "POST",
        D,
        create_destination,
        "Create a destination (its check must pass)",
        schemas.DestinationOut,
        201,
        schemas.DestinationIn,
    ),
    Endpoint("GET", D + "/{id}", get_destination, "Get a destination", schemas.DestinationOut),
    Endpoint(
        "PATCH",
        D + "/{id}",
        patch_destination,
        "Change a destination (settings merged)",
        schemas.DestinationOut,
        body=schemas.DestinationPatch,
        errors=(401, 404, 409, 422, 429),
    ),
    Endpoint(
        "DELETE",
        D + "/{id}",
        delete_destination,
        "Delete a destination (restorable for 30 days)",
        schemas.DestinationOut,
    ),
    Endpoint(
        "POST",
        D + "/{id}/restore",
        restore_destination,
        "Restore a deleted destination",
        schemas.DestinationOut,
        errors=(401, 404, 409, 429),
    ),
    Endpoint(
        "POST",
        D + "/{id}/test",
        test_destination,
        "Run the destination's check()",
        schemas.DestinationTest,
    ),
    Endpoint(
        "GET",
        "/api/v1/destination-kinds",
        destination_kinds,
        "Destination kinds and their settings' JSON Schema",
        schemas.DestinationKindList,
        errors=(401, 429),
    ),
    Endpoint(
        "GET",
        "/api/v1/organisation",
        get_organisation,
        "The organisation's settings",
        schemas.OrganisationOut,
        errors=(401, 429),
    ),
    Endpoint(
        "PATCH",
        "/api/v1/organisation",
        patch_organisation,
        "Change the organisation's settings",
        schemas.OrganisationOut,
        body=schemas.OrganisationPatch,
        errors=(401, 422, 429),
    ),
    Endpoint("GET", "/api/v1/openapi.json", openapi_json, "This document", None, public=True),
)
OPENAPI = document(ENDPOINTS)

routes = [
    Route(
        e.path,
        e.handler if e.public else managed(e.handler, e.status),
        methods=[e.method],
    )
    for e in ENDPOINTS
]
