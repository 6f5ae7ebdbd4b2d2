"""Domain errors -> HTTP answers, in one table; the security headers every answer carries."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.errors import PipelineError
from server import errors

STATUS: dict[type[errors.ServiceError], int] = {
    errors.Invalid: 422,
    errors.BadDigest: 400,
    errors.NotFound: 404,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.Conflict: 409,
    errors.Gone: 410,
    errors.TooLarge: 413,
    errors.TooSlow: 408,
    errors.RateLimited: 429,
    errors.Unavailable: 503,
}

HSTS = "max-age=63072000; includeSubDomains"
# For answers that are not pages (JSON, errors): nothing may run, nothing may frame them.
LOCKED_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def status_of(exc: errors.ServiceError) -> int:
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 400


def error_response(exc: errors.ServiceError | PipelineError) -> JSONResponse:
    if isinstance(exc, PipelineError):
        body = {"error": {"code": "invalid", "message": str(exc)}}
        return JSONResponse(body, status_code=422)
    error: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.details is not None:
        error["details"] = exc.details
    headers = {"retry-after": str(exc.retry_after)} if exc.retry_after is not None else None
    return JSONResponse({"error": error}, status_code=status_of(exc), headers=headers)


PROBLEM_TYPE = "urn:loadbay:problem:"
PROBLEM_TITLES: dict[int, str] = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    409: "Conflict",
    410: "Gone",
    413: "Content too large",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Server error",
    503: "Service unavailable",
}


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An RFC 9457 problem details answer (the management API's; the importer keeps its
    `{"error": ...}` shape, which the browser reads)."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + code,
        "title": PROBLEM_TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        **(extra or {}),
    }
    return JSONResponse(
        body, status_code=status, headers=headers, media_type="application/problem+json"
    )


def problem_response(exc: errors.ServiceError | PipelineError) -> JSONResponse:
    if isinstance(exc, PipelineError):
        return problem(422, "invalid", str(exc))
    status = status_of(exc)
    headers: dict[str, str] = {}
    if exc.retry_after is not None:
        headers["retry-after"] = str(exc.retry_after)
    if status == 401:
        headers["www-authenticate"] = 'Bearer realm="loadbay"'
    extra = {"errors": exc.details} if exc.details is not None else None
    return problem(status, exc.code, exc.message, extra=extra, headers=headers or None)


def server_problem() -> JSONResponse:
    return problem(
        500,
        "server-error",
        "Something went wrong on our side; nothing was changed. Try again in a moment.",
        headers={"content-security-policy": LOCKED_CSP, "strict-transport-security": HSTS},
    )


def server_error() -> JSONResponse:
    return JSONResponse(
        {
            "error": {
                "code": "server-error",
                "message": "Something went wrong on our side; "
                "nothing was lost. Try again in a moment.",
            }
        },
        status_code=500,
        headers={"content-security-policy": LOCKED_CSP, "strict-transport-security": HSTS},
    )


class SecurityHeaders:
    """HSTS and nosniff on every answer; a locked CSP on any answer that set none."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in (
                    (b"strict-transport-security", HSTS),
                    (b"x-content-type-options", "nosniff"),
                    (b"content-security-policy", LOCKED_CSP),
                ):
                    if name not in present:
                        headers.append((name, value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
