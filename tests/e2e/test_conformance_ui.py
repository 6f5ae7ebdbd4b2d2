"""A subset of the conformance vectors, through the real importer UI in Chromium.

Each vector's template is added to the demo organisation; its file is picked in the
importer, the proposed mapping accepted, and the errors the grid shows must be exactly
the vector's expected errors (the same ones pytest and Pyodide under Node produce).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import Demo

pytestmark = pytest.mark.e2e

VECTORS = Path(__file__).parent.parent / "conformance" / "vectors"
SUBSET = [
    "type_errors",
    "enum",
    "required_missing",
    "unique_primary_key",
    "string_formats",
    "range_length_pattern",
    "dates_times_patterns",
    "file_xlsx",  # python-calamine loaded on demand
    "file_ods",
    "transforms_phone_dates",  # phonenumbers loaded on demand
    "file_windows1252",
]


@pytest.mark.parametrize("name", SUBSET)
def test_the_grid_shows_the_vectors_errors(browser: Browser, demo: Demo, name: str) -> None:
    folder = VECTORS / name
    expected = json.loads((folder / "expected.json").read_text())
    data = next(p for p in folder.iterdir() if p.name.startswith("data."))
    template_id = demo.add_template(json.loads((folder / "template.json").read_text()))

    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    page.goto(f"{demo.host_page}?template={template_id}")
    frame = page.frame_locator("iframe")
    expect(frame.locator("#engine-status")).to_have_text("Ready.", timeout=60_000)
    frame.locator("#file-input").set_input_files(data)
    frame.locator("#map-continue").click()
    summary = frame.locator("#summary")
    if expected["errors"]:
        count = len(expected["errors"])
        said = f"{count:,} problem{'' if count == 1 else 's'} in"
        expect(summary).to_contain_text(said, timeout=30_000)
    elif expected["rows"] == 1:
        expect(summary).to_have_text("The row is valid.", timeout=30_000)
    else:
        expect(summary).to_have_text(f"All {expected['rows']:,} rows are valid.", timeout=30_000)

    want: dict[tuple[str, str], list[str]] = defaultdict(list)
    for error in expected["errors"]:
        # A problem of the whole row (no field) is shown on the row's number; a repeated
        # key on the key's cells as well.
        want[(str(error["row"]), error["field"])].append(error["message"])
        for name in error.get("fields", []) if error["field"] is None else []:
            want[(str(error["row"]), name)].append(error["message"])
    cells = frame.locator("#grid .cell-error")
    expect(cells).to_have_count(len(want))
    shown = {
        (cell.get_attribute("data-row"), cell.get_attribute("data-field")): cell.get_attribute(
            "data-error"
        )
        for cell in cells.all()
    }
    assert shown == {key: " ".join(messages) for key, messages in want.items()}
    context.close()
