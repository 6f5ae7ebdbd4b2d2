"""A real `loadbay demo` (HTTPS, worker, embedded Redis, SQLite) and a real Chromium."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import uvicorn
from playwright.sync_api import Browser, Frame, Page, Playwright, sync_playwright

from bench.chromium import CHROMIUM, CHROMIUM_FLAGS
from server.app import create_app
from server.runtime import Runtime
from server.tls import ensure_certificate
from tests.conftest import REPO, free_port

AXE = REPO / "browser" / "node_modules" / "axe-core" / "axe.min.js"
AXE_PATH = "/__tests__/axe.min.js"  # where the test serves it, on the screen's own origin


def axe_violations(target: Page | Frame, origin: str) -> list[dict[str, Any]]:
    """Every axe-core violation on `target`'s screen, as {id, impact, nodes}. axe-core comes
    from npm (node_modules), served by the test at `origin` + AXE_PATH through a route, so
    a page whose CSP allows its own scripts (the importer's) runs it as it is; the
    dashboard allows no script at all, so its tests open their context with bypass_csp."""
    page = target if isinstance(target, Page) else target.page
    url = origin + AXE_PATH
    page.context.route(url, lambda route: route.fulfill(path=AXE, content_type="text/javascript"))
    target.add_script_tag(url=url)
    found: list[dict[str, Any]] = target.evaluate(
        "async () => (await axe.run(document)).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return found


def serious(violations: list[dict[str, Any]]) -> list[tuple[str, str, list[str]]]:
    """The violations issue #18 forbids on any screen: serious or critical."""
    return [
        (v["id"], v["impact"], v["nodes"][:3])
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


@dataclass(frozen=True)
class Demo:
    importer_origin: str
    host_origin: str
    data_dir: Path
    state: dict[str, str]

    @property
    def host_page(self) -> str:
        return f"{self.host_origin}/demo/host"

    def add_template(self, schema: dict[str, object]) -> str:
        """Add a template to the demo organisation (through the domain, as the seed does)."""
        from server import db, orgs
        from server.runtime import Runtime
        from server.settings import Settings

        env = {**os.environ, "LOADBAY_DATA_DIR": str(self.data_dir)}
        env.pop("DATABASE_URL", None)
        rt = Runtime.from_settings(Settings.from_env(env))
        with rt.sessions() as session:
            org = session.get(db.Organisation, self.state["org_id"])
        assert org is not None
        return orgs.create_template(rt, org, schema).id

    def receipts(self) -> list[dict[str, object]]:
        response = httpx.get(f"{self.importer_origin}/demo/receipts.json", verify=False)
        response.raise_for_status()
        receipts: list[dict[str, object]] = response.json()
        return receipts


@contextlib.contextmanager
def serving(rt: Runtime, port: int) -> Iterator[None]:
    """loadbay's app for `rt` over HTTPS on 127.0.0.1:`port` (uvicorn in a thread, the
    runtime's own certificate) while the block runs."""
    cert, key = ensure_certificate(rt.settings.data_dir / "tls")
    config = uvicorn.Config(
        create_app(rt),
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    data_dir = tmp_path_factory.mktemp("demo")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    log = (data_dir / "demo.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "demo", "--port", str(port), "--data-dir", data_dir],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: nothing it starts can outlive it
    )
    origin = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{origin}/healthz", verify=False).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((data_dir / "demo.log").read_text())
        time.sleep(0.2)
    state = json.loads((data_dir / "demo.json").read_text())
    yield Demo(origin, f"https://localhost:{port}", data_dir, state)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    with contextlib.suppress(ProcessLookupError):  # the worker or cron left behind
        os.killpg(proc.pid, signal.SIGKILL)
    for server in psutil.process_iter(["name", "cwd"]):  # redis-server has its own session
        if server.info["name"] == "redis-server" and server.info["cwd"] == str(data_dir):
            with contextlib.suppress(psutil.NoSuchProcess):
                server.kill()
    log.close()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: `apt-get install -y chromium`")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    yield browser
    browser.close()
