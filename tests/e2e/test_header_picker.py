"""The header row picker shows the rows above the detected header row too: a user whose
header the engine placed too low clicks the right row instead of typing its number (#19)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import Demo
from tests.e2e.test_flow import _csv, _open

pytestmark = pytest.mark.e2e


def test_a_row_above_the_detected_header_is_picked_by_a_click(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    page, frame, _ = _open(browser, demo)
    # The engine takes row 2 for the header (row 1 is one cell: a title, it judges); this
    # user's column names are in row 1.
    text = "Full Name,,\nE-mail,Telephone,Notes\nann@example.com,555-0100,a\n"
    frame.locator("#file-input").set_input_files(_csv(tmp_path, text))
    preview = frame.locator("#file-preview")
    expect(preview.locator("tr.header-row th").nth(1)).to_have_text("E-mail")
    above = preview.locator("tr.above-header")
    expect(above).to_have_count(1)
    expect(above.locator("td").first).to_have_text("Full Name")
    # Above the header row, below it: each other row number is a button.
    expect(preview.locator("button.pick-header")).to_have_text(["1", "3"])
    preview.locator("button.pick-header[data-row='1']").click()
    expect(frame.locator("#header-row-status")).to_have_text("Row 1 holds the column names.")
    expect(preview.locator("tr.header-row th").nth(1)).to_have_text("Full Name")
    expect(preview.locator("tr.above-header")).to_have_count(0)
    page.context.close()
