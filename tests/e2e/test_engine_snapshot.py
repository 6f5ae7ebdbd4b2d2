"""The engine's memory snapshot in the real importer (issue #19, warm start): the first
engine of a build keeps a snapshot in the importer origin's IndexedDB, and the next
page load's engine restores it instead of starting Python afresh (browser/src/snapshot.js,
browser/src/wheels.js). A snapshot of another build, or a damaged one, is never restored:
the engine starts afresh, and the importer works either way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect

from bench.chromium import regular_window
from bench.warm_start import SNAPSHOT_STORE, build_id, importer_frame, kept_snapshot
from tests.e2e.conftest import Demo

pytestmark = pytest.mark.e2e

VECTORS = Path(__file__).parent.parent / "conformance" / "vectors"
BOOT_MS = 120_000

# Replace the kept snapshot: `build` for its build id, `damage` flips bytes in its middle
# (its SHA-256 then differs), `garbage` keeps only junk under a matching SHA-256.
_REPLACE = f"""async ({{build, damage, garbage}}) => {{ {SNAPSHOT_STORE}
  const kept = await store("readonly", (s) => s.get("engine"));
  let bytes = new Uint8Array(await kept.bytes.arrayBuffer());
  if (build) kept.build = build;
  if (damage) for (let i = 0; i < 64; i++) bytes[(bytes.length >> 1) + i] ^= 0xff;
  if (garbage) {{
    bytes = new Uint8Array(4096).fill(7);
    kept.sha256 = await sha256(bytes);
  }}
  kept.bytes = new Blob([bytes]);
  await store("readwrite", (s) => s.put(kept));
}}"""


def _open(page: Page, url: str) -> str:
    """Load the host page; how its importer's engine started."""
    page.goto(url)
    frame = page.frame_locator("iframe")
    expect(frame.locator("#engine-status")).to_have_text("Ready.", timeout=BOOT_MS)
    boot: str = importer_frame(page).evaluate("() => document.documentElement.dataset.engineBoot")
    return boot


def _reads(page: Page, vector: str, data: str) -> None:
    """The vector's file is read and checked as its expected.json says."""
    expected = json.loads((VECTORS / vector / "expected.json").read_text())
    frame = page.frame_locator("iframe")
    frame.locator("#file-input").set_input_files(VECTORS / vector / data)
    frame.locator("#map-continue").click(timeout=60_000)
    errors = len(expected["errors"])
    expect(frame.locator("#summary")).to_contain_text(f"{errors} problems in", timeout=60_000)


@pytest.fixture
def context(playwright: Playwright, tmp_path: Path) -> BrowserContext:
    # The embedded importer's IndexedDB, which a browser blocking third-party storage denies.
    return regular_window(playwright, tmp_path / "profile")


def test_a_second_page_load_restores_the_snapshot_and_reads_files(
    context: BrowserContext, demo: Demo
) -> None:
    csv = demo.add_template(json.loads((VECTORS / "type_errors" / "template.json").read_text()))
    ods = demo.add_template(json.loads((VECTORS / "file_ods" / "template.json").read_text()))
    page = context.new_page()
    assert _open(page, f"{demo.host_page}?template={csv}") == "fresh"
    kept = kept_snapshot(page, build_id(page))
    assert int(str(kept["size"])) > 10_000_000  # the engine's memory, packages and all
    assert _open(page, f"{demo.host_page}?template={csv}") == "snapshot"
    _reads(page, "type_errors", "data.csv")
    # A spreadsheet: its reader's package (python-calamine) loads into the restored engine.
    assert _open(page, f"{demo.host_page}?template={ods}") == "snapshot"
    _reads(page, "file_ods", "data.ods")
    context.close()


def test_a_snapshot_of_another_build_or_damaged_is_not_restored(
    context: BrowserContext, demo: Demo
) -> None:
    template = demo.add_template(
        json.loads((VECTORS / "type_errors" / "template.json").read_text())
    )
    url = f"{demo.host_page}?template={template}"
    page = context.new_page()
    assert _open(page, url) == "fresh"
    build = build_id(page)
    kept_snapshot(page, build)
    # An older build's snapshot: started afresh, and this build's replaces it.
    importer_frame(page).evaluate(_REPLACE, {"build": "0123456789abcdef"})
    assert _open(page, url) == "fresh"
    kept_snapshot(page, build)
    # Damaged bytes: their SHA-256 differs.
    importer_frame(page).evaluate(_REPLACE, {"damage": True})
    assert _open(page, url) == "fresh"
    kept_snapshot(page, build)
    # A sound hash over something that is not a snapshot: it fails to restore, the engine
    # starts afresh in the same worker and reads the file.
    importer_frame(page).evaluate(_REPLACE, {"garbage": True})
    assert _open(page, url) == "fresh"
    _reads(page, "type_errors", "data.csv")
    assert int(str(kept_snapshot(page, build)["size"])) > 10_000_000
    context.close()


def test_where_the_importer_may_keep_nothing_the_engine_starts_afresh_and_says_why(
    browser: Browser, demo: Demo
) -> None:
    # Playwright's contexts block third-party storage: the embedded importer has no IndexedDB.
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    said: list[str] = []
    page.on("console", lambda message: said.append(message.text))
    assert _open(page, demo.host_page) == "fresh"
    assert _open(page, demo.host_page) == "fresh"
    started = [text for text in said if text.startswith("loadbay: the engine started afresh (")]
    assert len(started) == 2, said
    assert "denied" in started[1], started
    context.close()
