"""A survey export 20,000 columns wide, through the real importer in Chromium (issue 20).

The engine crashed on 4,000 columns before ("capacity overflow" in arrow-rs's CSV reader,
which sized a batch's buffers at 64k rows times the columns); only mapped columns travel.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import Demo

pytestmark = pytest.mark.e2e

WIDTH = 20_000
TEMPLATE = {
    "name": "survey",
    "title": "survey",
    "fields": [
        {"name": "name", "title": "Full name", "constraints": {"required": True}},
        {"name": "email", "title": "Email", "format": "email"},
    ],
}


def test_a_20000_column_csv_is_imported_keeping_the_mapped_columns(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    questions = [f"Q{i}: how likely are you to recommend us?" for i in range(WIDTH - 2)]
    rows = [
        ["Full name", "Email", *questions],
        ["Ada", "ada@example.com", *(["9"] * (WIDTH - 2))],
        ["Grace", "not-an-address", *(["7"] * (WIDTH - 2))],
        ["Alan", "alan@example.com", *(["3"] * (WIDTH - 2))],
    ]
    path = tmp_path / "survey.csv"
    path.write_text("\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")
    assert path.stat().st_size > 800_000

    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    page.goto(f"{demo.host_page}?template={demo.add_template(TEMPLATE)}")
    frame = page.frame_locator("iframe")
    expect(frame.locator("#engine-status")).to_have_text("Ready.", timeout=60_000)
    frame.locator("#file-input").set_input_files(path)
    expect(frame.locator("#map-name")).to_have_value("0", timeout=120_000)
    expect(frame.locator("#map-email")).to_have_value("1")
    frame.locator("#map-continue").click()
    expect(frame.locator("#summary")).to_contain_text("1 problem", timeout=120_000)
    expect(frame.locator("#summary")).to_contain_text("3")
    grid = frame.locator("#grid")
    expect(grid.locator('[data-field="email"][data-row="3"]')).to_have_attribute(
        "data-error", '"not-an-address" is not an e-mail address.'
    )
    expect(grid.locator(".grid-head .cell")).to_have_count(4)  # check box, row, two fields
    context.close()
