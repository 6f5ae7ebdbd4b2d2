"""Liveness and readiness (server/health.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Engine, create_engine
from starlette.testclient import TestClient

from server.app import create_app

if TYPE_CHECKING:
    from tests.conftest import RuntimeFactory

BASE = "https://127.0.0.1:8443"


@pytest.fixture
def store() -> str:
    return "sqlite"


def test_a_receiver_with_its_database_and_redis_is_ready(runtime_factory: RuntimeFactory) -> None:
    with TestClient(create_app(runtime_factory()), base_url=BASE) as client:
        live = client.get("/healthz")
        ready = client.get("/readyz")
    assert (live.status_code, live.json()) == (200, {"ok": True})
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"database": "ok", "queue": "ok"}}
    assert ready.headers["cache-control"] == "no-store"


def test_without_redis_it_is_alive_but_not_ready(
    runtime_factory: RuntimeFactory, tmp_path: Path
) -> None:
    rt = runtime_factory(redis_url=f"unix://{tmp_path}/no-redis.sock")
    with TestClient(create_app(rt), base_url=BASE) as client:
        live = client.get("/healthz")
        ready = client.get("/readyz")
    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.json() == {"ready": False, "checks": {"database": "ok", "queue": "unreachable"}}
    assert ready.headers["retry-after"] == "5"


def test_without_its_database_it_is_not_ready(
    runtime_factory: RuntimeFactory, tmp_path: Path
) -> None:
    rt = runtime_factory()
    with TestClient(create_app(rt), base_url=BASE) as client:
        rt.sessions.kw["bind"].dispose()
        rt.sessions.configure(bind=_unreachable_engine())
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": "unreachable", "queue": "ok"}


def _unreachable_engine() -> Engine:
    # A port nothing listens on, on loopback: the connection is refused at once.
    return create_engine("postgresql+psycopg://postgres@127.0.0.1:9/none?connect_timeout=2")
