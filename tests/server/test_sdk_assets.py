"""What embed.js needs from the server: a stable address, the warm start's preload page,
and one bundle in which the protocol module is the importer page's own."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.importer.assets import AssetManifest
from server.runtime import Runtime
from tools.build_assets import bundle_sdk

BASE = "https://127.0.0.1:8443"
BROWSER = Path(__file__).resolve().parents[2] / "browser"


@pytest.fixture
def store() -> str:
    return "sqlite"


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), base_url=BASE) as client:
        yield client


def test_embed_js_has_a_stable_address_cached_briefly(client: TestClient, runtime: Runtime) -> None:
    manifest = AssetManifest.load(runtime.settings.assets_dir)
    stable = client.get("/embed.js")
    assert stable.status_code == 200
    assert stable.headers["content-type"].startswith("text/javascript")
    assert stable.headers["cache-control"] == "public, max-age=300"
    assert stable.headers["cross-origin-resource-policy"] == "cross-origin"
    assert stable.content == client.get(manifest.url("app/embed.js")).content


def test_the_preload_page_prefetches_the_runtime_and_holds_nothing_else(
    client: TestClient, runtime: Runtime
) -> None:
    manifest = AssetManifest.load(runtime.settings.assets_dir)
    page = client.get("/importer/preload")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors *" in page.headers["content-security-policy"]
    assert "<script" not in page.text
    fetched = set(re.findall(r'<link rel="prefetch" href="([^"]+)">', page.text))
    for path in [
        "pyodide/pyodide.asm.wasm",
        "pyodide/python_stdlib.zip",
        "app/worker.mjs",
        "app/importer.js",
        "app/src/protocol.js",
        "wheels/pyodide-lock.json",
    ]:
        assert manifest.url(path) in fetched, path
    wheels = [u for u in fetched if u.endswith(".whl")]
    assert any("loadbay_pipeline" in u for u in wheels)
    assert not any("calamine" in u for u in wheels)  # loaded on demand, not at boot


def test_embed_js_is_one_classic_script_with_the_protocol_inside(tmp_path: Path) -> None:
    first, second = tmp_path / "a.js", tmp_path / "b.js"
    bundle_sdk(BROWSER, BROWSER / "sdk" / "embed.js", first)
    bundle_sdk(BROWSER, BROWSER / "sdk" / "embed.js", second)
    text = first.read_text(encoding="utf-8")
    assert first.read_bytes() == second.read_bytes()  # same sources, same bytes
    assert not re.search(r"^\s*(import|export)\b", text, re.M)
    assert "// src/protocol.js" in text and "// sdk/embed.js" in text
    assert 'var PROTOCOL = "loadbay";' in text
