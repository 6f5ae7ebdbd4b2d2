"""create_app wires settings, routes and error handling; it holds no logic of its own."""

from __future__ import annotations

import logging
import mimetypes

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from pipeline.errors import PipelineError
from server import api, demo, mappings
from server.errors import ServiceError
from server.importer.assets import AssetManifest
from server.queue import connect, delivery_queue
from server.runtime import Runtime

log = logging.getLogger("loadbay.server")

IMMUTABLE = "public, max-age=31536000, immutable"
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")


def create_app(rt: Runtime) -> Starlette:
    manifest = AssetManifest.load(rt.settings.assets_dir)

    async def asset(request: Request) -> Response:
        path = request.path_params["path"]
        if request.path_params["build_id"] != manifest.build_id or path not in manifest.files:
            return Response("Not found", status_code=404)
        return FileResponse(
            rt.settings.assets_dir / path,
            media_type=mimetypes.guess_type(path)[0] or "application/octet-stream",
            headers={
                "cache-control": IMMUTABLE,
                "x-content-type-options": "nosniff",
                "cross-origin-resource-policy": "cross-origin",
                "access-control-allow-origin": "*",
                "content-security-policy": (
                    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'"
                ),
            },
        )

    async def service_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceError | PipelineError)  # noqa: S101 - registered so
        return api.error_response(exc)

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {
                "error": {
                    "code": "server-error",
                    "message": "Something went wrong on our side; "
                    "nothing was lost. Try again in a moment.",
                }
            },
            status_code=500,
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)  # noqa: S101 - registered so
        return JSONResponse(
            {"error": {"code": "http-error", "message": exc.detail}}, status_code=exc.status_code
        )

    routes = [
        *api.routes,
        *mappings.routes,
        Route("/assets/{build_id}/{path:path}", asset, methods=["GET", "HEAD"]),
        Route("/healthz", lambda request: JSONResponse({"ok": True}), methods=["GET"]),
    ]
    if rt.settings.demo:
        routes.extend(demo.routes)
    app = Starlette(
        routes=routes,
        exception_handlers={
            ServiceError: service_error,
            PipelineError: service_error,
            HTTPException: http_error,
            Exception: unexpected,
        },
    )
    app.state.runtime = rt
    app.state.manifest = manifest
    app.state.queue = delivery_queue(rt.settings, connect(rt.settings))
    return app
