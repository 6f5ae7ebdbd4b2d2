"""The edge every management route goes through, `managed()`: the address and key rate
limits, the secret key (-> the organisation and the key), the body read within its cap,
Idempotency-Key on POST, and errors as problem details. A handler gets a `Call` and
returns a pydantic answer (or a ready Response, for a download)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipeline.errors import PipelineError
from server import db, templates
from server.errors import Invalid, ServiceError
from server.http.auth import client_address, management_org, runtime_of
from server.http.limits import JSON_BYTES, Limiter
from server.http.responses import problem, problem_response, server_problem
from server.logs import describe
from server.manage import idempotency
from server.runtime import Runtime

log = logging.getLogger("loadbay.manage")
M = TypeVar("M", bound=BaseModel)
DEFAULT_PAGE = 20
RFC3339 = re.compile(
    r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)", re.ASCII
)


def bad_query(name: str, accepted: str) -> Invalid:
    """A query parameter refused: which one, and what it accepts."""
    return Invalid(
        f"The query parameter {name} {accepted}.",
        details=[{"loc": ["query", name], "msg": accepted}],
    )


@dataclass(frozen=True)
class Call:
    """What the edge established for one request."""

    request: Request
    rt: Runtime
    org: db.Organisation
    actor: str  # who: api-key:<key id>, or user:<user id> for a dashboard session
    raw: bytes
    role: str | None = None  # a dashboard session's role; None for a secret key

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

    def limit_and_cursor(self) -> tuple[int, str | None]:
        query = self.request.query_params
        raw = query.get("limit", str(DEFAULT_PAGE))
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw[:4]) <= templates.MAX_PAGE):
            raise bad_query("limit", f"is a whole number from 1 to {templates.MAX_PAGE}")
        cursor = query.get("cursor") or None
        if cursor is not None and len(cursor) > 200:
            raise Invalid("The cursor is not one this API gave out.")
        return int(raw), cursor

    def page(self) -> tuple[int, str | None, bool]:
        limit, cursor = self.limit_and_cursor()
        deleted = self.request.query_params.get("include_deleted", "false")
        if deleted not in ("true", "false"):
            raise bad_query("include_deleted", "is true or false")
        return limit, cursor, deleted == "true"

    def text(self, name: str, max_length: int) -> str | None:
        value = self.request.query_params.get(name)
        if value is not None and not 0 < len(value) <= max_length:
            raise bad_query(name, f"holds 1 to {max_length} characters")
        return value

    def choice(self, name: str, choices: tuple[str, ...]) -> str | None:
        value = self.request.query_params.get(name)
        if value is not None and value not in choices:
            raise bad_query(name, f"is one of {', '.join(choices)}")
        return value

    def moment(self, name: str) -> dt.datetime | None:
        """An RFC 3339 date and time with its offset (2026-12-01T13:05:00Z)."""
        value = self.request.query_params.get(name)
        if value is None:
            return None
        accepted = "is an RFC 3339 date and time with an offset, like 2026-12-01T13:05:00Z"
        if len(value) > 40 or not RFC3339.fullmatch(value):
            raise bad_query(name, accepted)
        try:
            return dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        except ValueError:  # a day or hour that does not exist (2026-02-30, 25:00)
            raise bad_query(name, accepted) from None

    @property
    def who(self) -> dict[str, str]:
        """The actor and client address an audited change records."""
        return {"actor": self.actor, "address": client_address(self.request)}

    @property
    def id(self) -> str:
        return str(self.request.path_params["id"])[:100]


Handler = Callable[[Call], Awaitable[Any]]


def answer(model: BaseModel | Response | None, status: int = 200) -> Response:
    if isinstance(model, Response):
        return model
    if model is None:
        return Response(status_code=status)
    return JSONResponse(model.model_dump(mode="json", by_alias=True), status_code=status)


def managed(handler: Handler, status: int) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await _run(request, handler, status)
        except (ServiceError, PipelineError) as exc:
            return problem_response(exc)
        except Exception as exc:  # noqa: BLE001 - answered as a problem, logged with its trace
            # By type and frames only: an exception's text may quote a cell (server.logs).
            path = request.url.path
            log.error("unexpected error on %s %s\n%s", request.method, path, describe(exc))
            return server_problem()

    return endpoint


async def _run(request: Request, handler: Handler, status: int) -> Response:
    rt = runtime_of(request)
    limiter: Limiter = request.app.state.limiter
    limiter.address(request)
    org, actor, role = await management_org(request, limiter)
    raw = b""
    if request.method in ("POST", "PUT", "PATCH"):
        raw = await limiter.body(request, JSON_BYTES)
    call = Call(request, rt, org, actor, raw, role)
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


def http_problem(request: Request, exc: HTTPException) -> Response:
    """The router's own 404 and 405 under /api/, as problem details (a 405 lists every
    method the path answers)."""
    if exc.status_code == 405:
        path = request.url.path
        methods = {
            m
            for r in request.app.routes
            if isinstance(r, Route) and r.path_regex.match(path)
            for m in r.methods or ()
        }
        allow = ", ".join(sorted(methods))
        return problem(
            405,
            "method-not-allowed",
            f"{request.method} is not answered here; this path answers {allow}.",
            headers={"allow": allow},
        )
    if exc.status_code == 404:
        return problem(
            404, "not-found", "No such API path; the routes are listed in /api/openapi.json."
        )
    return problem(exc.status_code, "http-error", str(exc.detail))
