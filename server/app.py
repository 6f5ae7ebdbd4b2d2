"""create_app mounts the surfaces and registers error handlers; it holds no logic."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipeline.errors import PipelineError
from server import health
from server.dashboard import routes as dashboard
from server.errors import ServiceError
from server.http.limits import Limiter
from server.http.responses import SecurityHeaders, error_response, server_error
from server.importer import routes as importer
from server.importer.assets import AssetManifest
from server.logs import describe
from server.manage import routes as manage
from server.manage.edge import http_problem
from server.runtime import Runtime

log = logging.getLogger("loadbay.server")


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError | PipelineError)  # noqa: S101 - registered so
    return error_response(exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # By type and frames only: an exception's text may quote a cell (server.logs).
    log.error("unexpected error on %s %s\n%s", request.method, request.url.path, describe(exc))
    return server_error()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered so
    if request.url.path.startswith("/api/"):
        return http_problem(request, exc)
    return JSONResponse(
        {"error": {"code": "http-error", "message": exc.detail}}, status_code=exc.status_code
    )


def create_app(rt: Runtime, limiter: Limiter | None = None) -> Starlette:
    # The management API's paths and methods coincide with the importer's once, on
    # GET /api/v1/imports/{id}, which dispatches by credential: so it is matched first.
    routes = [
        *manage.routes,
        *importer.routes,
        *dashboard.routes,
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
    ]
    if rt.settings.demo:
        from server.demo import routes as demo

        routes.extend(demo.routes)
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={
            ServiceError: _service_error,
            PipelineError: _service_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )
    app.state.runtime = rt
    app.state.manifest = AssetManifest.load(rt.settings.assets_dir)
    app.state.limiter = limiter or Limiter(
        body_timeout=rt.settings.body_timeout,
        imports_per_key=f"{rt.settings.imports_per_minute}/minute",
    )
    return app
