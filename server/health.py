"""Liveness and readiness, for a supervisor or a load balancer.

`/healthz` says the process answers; `/readyz` says it can do its work: the metadata
database answers a query and Redis a PING, each within a few seconds. A receiver that is
not ready is taken out of rotation by its load balancer rather than failing uploads.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.http.auth import runtime_of
from server.queue import REDIS_ERRORS
from server.runtime import Runtime

log = logging.getLogger("loadbay.health")


def readiness(rt: Runtime) -> dict[str, str]:
    """ "ok" or what is wrong, for the database and the queue."""
    checks: dict[str, str] = {}
    try:
        with rt.sessions() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        log.warning("readiness: the database does not answer (%s)", type(exc).__name__)
        checks["database"] = "unreachable"
    try:
        rt.queue.connection.ping()
        checks["queue"] = "ok"
    except REDIS_ERRORS as exc:
        log.warning("readiness: Redis does not answer (%s)", type(exc).__name__)
        checks["queue"] = "unreachable"
    return checks


async def healthz(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def readyz(request: Request) -> Response:
    checks = await run_in_threadpool(readiness, runtime_of(request))
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"ready": ready, "checks": checks},
        status_code=200 if ready else 503,
        headers={"cache-control": "no-store"} | ({} if ready else {"retry-after": "5"}),
    )
