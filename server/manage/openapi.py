"""The management API's OpenAPI 3.1 document, generated from the endpoint table in
server.manage.routes and the pydantic models in server.manage.schemas (nothing is
written by hand but the summaries)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from server.manage import schemas

REF = "#/components/schemas/{model}"
PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Query:
    name: str
    schema: dict[str, Any]
    description: str


PAGE = (
    Query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}, "Page size."),
    Query("cursor", {"type": "string", "maxLength": 200}, "next_cursor of the previous page."),
    Query("include_deleted", {"type": "boolean", "default": False}, "List deleted ones too."),
)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Callable[..., Awaitable[Any]]
    summary: str
    answer: type[BaseModel] | None
    status: int = 200
    body: type[BaseModel] | None = None
    query: Sequence[Query] = ()
    errors: tuple[int, ...] = field(default=(401, 404, 422, 429))
    public: bool = False  # no secret key needed (the document itself)
    media: tuple[str, ...] = ()  # a file answered in one of these types, not JSON
    form: bool = False  # a multipart/form-data body: the handler is its own edge (a Request)


def operation_id(endpoint: Endpoint) -> str:
    words = re.sub(r"[{}]", "", endpoint.path.removeprefix("/api/v1/")).replace("-", "_")
    return endpoint.method.lower() + "_" + "_".join(w for w in words.split("/") if w)


def statuses(e: Endpoint) -> list[int]:
    """The problems an operation may answer: its own, plus what the edge adds (a key
    refused, a rate limit, a body too large or too slow, an Idempotency-Key misused)."""
    found = {*e.errors, 401, 429}
    if e.body is not None or e.method in ("POST", "PUT", "PATCH"):
        found |= {408, 413, 422}
    if e.method == "POST":
        found |= {409, 422}
    if e.query:
        found.add(422)
    return sorted(found)


def document(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    answers = {e.answer for e in endpoints if e.answer is not None} | {schemas.Problem}
    bodies = {e.body for e in endpoints if e.body is not None}
    wanted = [(m, "serialization") for m in sorted(answers, key=lambda m: m.__name__)] + [
        (m, "validation") for m in sorted(bodies, key=lambda m: m.__name__)
    ]
    refs, definitions = models_json_schema(wanted, ref_template=REF)  # type: ignore[arg-type]

    def ref(model: type[BaseModel], mode: str) -> dict[str, Any]:
        return dict(refs[(model, mode)])  # type: ignore[index]

    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        operation: dict[str, Any] = {"operationId": operation_id(e), "summary": e.summary}
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)}", e.path)
        ] + [
            {
                "name": q.name,
                "in": "query",
                "required": False,
                "schema": q.schema,
                "description": q.description,
            }
            for q in e.query
        ]
        if e.method == "POST" and not (e.public or e.form):
            params.append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "maxLength": 255},
                    "description": "Kept 24 h: a retry with the same key and body gets the "
                    "first answer; another body is refused (422); a concurrent one gets 409.",
                }
            )
        if params:
            operation["parameters"] = params
        if e.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "multipart/form-data" if e.form else "application/json": {
                        "schema": ref(e.body, "validation")
                    }
                },
            }
        responses: dict[str, Any] = {}
        if e.media:
            binary = {"schema": {"type": "string", "format": "binary"}}
            responses[str(e.status)] = {
                "description": "The file (Content-Disposition names it).",
                "content": {media: binary for media in e.media},
            }
        elif e.answer is None:
            responses[str(e.status)] = {"description": "Done."}
        else:
            responses[str(e.status)] = {
                "description": "OK",
                "content": {"application/json": {"schema": ref(e.answer, "serialization")}},
            }
        problem = {"content": {PROBLEM: {"schema": ref(schemas.Problem, "serialization")}}}
        for status in () if e.public else statuses(e):
            responses[str(status)] = {"description": "Problem details.", **problem}
        operation["responses"] = responses
        if e.public:
            operation["security"] = []
        paths.setdefault(e.path, {})[e.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "loadbay management API",
            "version": "1",
            "description": "Authenticate with `Authorization: Bearer lb_sk_...` (a secret "
            "key: `loadbay keys create`). Errors are RFC 9457 problem details with a stable "
            "`code`; lists are paged with `?limit=&cursor=`.",
        },
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"secretKey": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"secretKey": []}],
    }
