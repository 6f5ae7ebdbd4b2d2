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
from server.manage import routes as manage
from server.runtime import Runtime

log = logging.getLogger("loadbay.server")


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError | PipelineError)  # noqa: S101 - registered so
    return error_response(exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return server_error()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered so
    return JSONResponse(
        {"error": {"code": "http-error", "message": exc.detail}}, status_code=exc.status_code
    )


def create_app(rt: Runtime, limiter: Limiter | None = None) -> Starlette:
    # The management API's paths and methods never coincide with the importer's.
    routes = [
        *importer.routes,
        *manage.routes,
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
    app.state.limiter = limiter or Limiter(body_timeout=rt.settings.body_timeout)
    return app
