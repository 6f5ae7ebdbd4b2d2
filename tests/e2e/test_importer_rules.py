"""One judge: the importer page shows what the server and the engine tell it, in Chromium.

Each test is a disagreement the page once had with the engine: it re-derived a rule (what
is required, when an import is over) instead of reading the answer it was given.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, FrameLocator, Page, Route, expect

from tests.e2e.conftest import Demo

pytestmark = pytest.mark.e2e

# A primary key not marked required: the engine requires it all the same (Table Schema).
KEYED = {
    "name": "products",
    "title": "products",
    "fields": [
        {"name": "sku", "title": "SKU", "type": "string"},
        {"name": "name", "title": "Name", "type": "string"},
    ],
    "primaryKey": ["sku"],
}


def _importer(
    browser: Browser, demo: Demo, template_id: str | None = None
) -> tuple[Page, FrameLocator]:
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    query = f"?template={template_id}" if template_id else ""
    page.goto(f"{demo.host_page}{query}")
    frame = page.frame_locator("iframe")
    expect(frame.locator("#engine-status")).to_have_text("Ready.", timeout=60_000)
    return page, frame


def test_a_primary_key_field_is_required_on_the_start_and_mapping_screens(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    page, frame = _importer(browser, demo, demo.add_template(KEYED))
    expect(frame.locator("li").first).to_have_text("SKU (required)")
    expect(frame.locator("li").nth(1)).to_have_text("Name")

    csv_path = tmp_path / "products.csv"
    csv_path.write_text("Item,Name\nA-1,Widget\nA-2,Gadget\n", encoding="utf-8")
    frame.locator("#file-input").set_input_files(csv_path)
    expect(frame.locator("#map-sku")).to_have_value("")
    expect(frame.locator(".mapping tbody th").first).to_have_text("SKU *")
    frame.locator("#map-continue").click()
    expect(frame.locator("#mapping-error")).to_have_text(
        "Map a column to each required field: SKU."
    )

    frame.locator("#map-sku").select_option("0")
    frame.locator("#map-continue").click()
    expect(frame.locator("#summary")).to_have_text("All 2 rows are valid.", timeout=30_000)
    page.context.close()


def test_a_busy_server_is_waited_for_and_the_import_still_arrives(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    page, frame = _importer(browser, demo)
    answered: list[int] = []

    def busy_once(route: Route) -> None:
        if not answered:
            answered.append(503)
            route.fulfill(
                status=503,
                headers={"retry-after": "2", "content-type": "application/json"},
                body='{"error": {"code": "unavailable", "message": "The queue is unreachable."}}',
            )
        else:
            answered.append(0)
            route.continue_()

    page.context.route("**/api/v1/imports/*/submit", busy_once)
    csv_path = tmp_path / "contacts.csv"
    csv_path.write_text(
        "Full Name,E-mail,Country\nAda Lovelace,ada@example.com,GB\n", encoding="utf-8"
    )
    frame.locator("#file-input").set_input_files(csv_path)
    frame.locator("#map-continue").click()
    expect(frame.locator("#summary")).to_have_text("The row is valid.", timeout=30_000)
    frame.locator("#submit").click()
    expect(frame.locator("#upload-status")).to_have_text(
        "The server is busy; retrying in 2 s…", timeout=30_000
    )
    expect(frame.locator("#done")).to_have_text("Delivered 1 row.", timeout=60_000)
    assert answered == [503, 0]
    page.context.close()
