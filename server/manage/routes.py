"""The management REST API under /api/v1/ (secret key): templates, destinations,
destination kinds, organisation settings, imports and their deliveries
(server.manage.import_routes), and its OpenAPI document.

Every route goes through the edge, `server.manage.edge.managed()`; each handler then
parses, calls one domain function, and serialises. One path and method is shared with the
importer: `GET /api/v1/imports/{id}` dispatches by credential (a secret key gets the
management answer, an upload token the importer's status; see server.http.auth).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server import destinations as dests
from server import orgs, templates
from server.manage import files, import_routes, schemas
from server.manage.edge import Call, managed
from server.manage.openapi import PAGE, Endpoint, document

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
    row = await run_in_threadpool(
        lambda: templates.create_template(call.rt, call.org.id, body.schema_, **call.who)
    )
    return schemas.TemplateOut.of(row)


async def get_template(call: Call) -> schemas.TemplateOut:
    row = await run_in_threadpool(templates.get_template, call.rt, call.org.id, call.id)
    return schemas.TemplateOut.of(row)


async def put_template(call: Call) -> schemas.TemplateOut:
    body = call.parse(schemas.TemplateIn)
    row = await run_in_threadpool(
        lambda: templates.replace_template(call.rt, call.org.id, call.id, body.schema_, **call.who)
    )
    return schemas.TemplateOut.of(row)


async def delete_template(call: Call) -> schemas.TemplateOut:
    row = await run_in_threadpool(
        lambda: templates.delete_template(call.rt, call.org.id, call.id, **call.who)
    )
    return schemas.TemplateOut.of(row)


async def restore_template(call: Call) -> schemas.TemplateOut:
    row = await run_in_threadpool(
        lambda: templates.restore_template(call.rt, call.org.id, call.id, **call.who)
    )
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
        lambda: dests.create_destination(
            call.rt,
            call.org,
            body.template_id,
            body.kind,
            body.name,
            body.config,
            max_concurrency=body.max_concurrency,
            **call.who,
        )
    )
    return schemas.DestinationOut.of(view)


async def get_destination(call: Call) -> schemas.DestinationOut:
    view = await run_in_threadpool(dests.get_destination, call.rt, call.org, call.id)
    return schemas.DestinationOut.of(view)


async def patch_destination(call: Call) -> schemas.DestinationOut:
    body = call.parse(schemas.DestinationPatch)
    view = await run_in_threadpool(
        lambda: dests.update_destination(
            call.rt,
            call.org,
            call.id,
            name=body.name,
            enabled=body.enabled,
            config=body.config,
            max_concurrency=body.max_concurrency,
            **call.who,
        )
    )
    return schemas.DestinationOut.of(view)


async def delete_destination(call: Call) -> schemas.DestinationOut:
    view = await run_in_threadpool(
        lambda: dests.delete_destination(call.rt, call.org, call.id, **call.who)
    )
    return schemas.DestinationOut.of(view)


async def restore_destination(call: Call) -> schemas.DestinationOut:
    view = await run_in_threadpool(
        lambda: dests.restore_destination(call.rt, call.org, call.id, **call.who)
    )
    return schemas.DestinationOut.of(view)


async def test_destination(call: Call) -> schemas.DestinationTest:
    found = await run_in_threadpool(
        lambda: dests.check_destination(call.rt, call.org, call.id, **call.who)
    )
    return schemas.DestinationTest(ok=True, detail=found)


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
            kms_key_arn=body.kms_key_arn,
            **call.who,
        )
    )
    return schemas.OrganisationOut.of(found)


async def rotate_publishable_key(call: Call) -> schemas.OrganisationOut:
    body = call.parse(schemas.PublishableKeyRotate)
    found = await run_in_threadpool(
        lambda: orgs.rotate_publishable_key(call.rt, call.org.id, grace=body.grace, **call.who)
    )
    return schemas.OrganisationOut.of(found)


async def revoke_previous_publishable_key(call: Call) -> schemas.OrganisationOut:
    found = await run_in_threadpool(
        lambda: orgs.revoke_previous_publishable_key(call.rt, call.org.id, **call.who)
    )
    return schemas.OrganisationOut.of(found)


# --- the document --------------------------------------------------------------------------


async def openapi_json(request: Request) -> Response:
    return JSONResponse(OPENAPI, headers={"cache-control": "public, max-age=300"})


T, D = "/api/v1/templates", "/api/v1/destinations"
PK = "/api/v1/organisation/publishable-key"
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
    Endpoint(
        "POST",
        PK + "/rotate",
        rotate_publishable_key,
        "A new publishable key; the one it replaces keeps working for a grace period",
        schemas.OrganisationOut,
        body=schemas.PublishableKeyRotate,
        errors=(401, 422, 429),
    ),
    Endpoint(
        "DELETE",
        PK + "/previous",
        revoke_previous_publishable_key,
        "End the grace period of the publishable key before the last rotation now",
        schemas.OrganisationOut,
        errors=(401, 404, 429),
    ),
    *import_routes.ENDPOINTS,
    Endpoint("GET", "/api/openapi.json", openapi_json, "This document", None, public=True),
    *files.ENDPOINTS,
    Endpoint("GET", "/api/v1/openapi.json", openapi_json, "This document", None, public=True),
)
OPENAPI = document(ENDPOINTS)


def _endpoint(e: Endpoint) -> Any:
    if e.public or e.form:  # a form endpoint is its own edge (server/manage/files.py)
        return e.handler
    if (e.method, e.path) == import_routes.SHARED:
        return import_routes.by_credential(managed(e.handler, e.status))
    return managed(e.handler, e.status)


routes = [Route(e.path, _endpoint(e), methods=[e.method]) for e in ENDPOINTS]
