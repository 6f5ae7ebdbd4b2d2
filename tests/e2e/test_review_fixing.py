"""Fixing a messy file in the review step, in real Chromium: list values mapped in one
screen, ambiguous dates read one way, counts before and after each change, the ARIA grid
with the keyboard alone, a phone-sized screen, and the rows left out as a download."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from playwright.sync_api import Browser, FrameLocator, Locator, Page, expect

from tests.e2e.conftest import Demo

pytestmark = pytest.mark.e2e

TEMPLATE = {
    "name": "members",
    "title": "members",
    "fields": [
        {"name": "name", "title": "Name", "constraints": {"required": True}},
        {
            "name": "country",
            "title": "Country",
            "description": "Where the member lives, as a two-letter code.",
            "constraints": {"enum": ["DE", "FR", "GB"]},
            "x-loadbay": {"valueSynonyms": {"DE": ["Germany", "Deutschland"]}},
        },
        {"name": "joined", "title": "Joined", "type": "date"},
    ],
    "x-loadbay": {"invalidRowPolicy": "valid-only"},
}

MESSY = (
    "Name,Country,Joined\n"
    "Ada,germany,2024-01-05\n"
    "Bea,Deutschland,05/06/2024\n"
    "Cy,Deutschland,13/06/2024\n"
    "Di,FR,07/08/2024\n"
    "Ed,Germny,2024-02-01\n"
    "Flo,Mars,2024-02-02\n"
    "Gus,GB,2024-02-03\n"
)


def _open(
    browser: Browser, demo: Demo, template_id: str, path: Path, **context: object
) -> tuple[Page, FrameLocator]:
    page = browser.new_context(ignore_https_errors=True, **context).new_page()  # type: ignore[arg-type]
    page.goto(f"{demo.host_page}?template={template_id}")
    frame = page.frame_locator("iframe")
    expect(frame.locator("#engine-status")).to_have_text("Ready.", timeout=60_000)
    frame.locator("#file-input").set_input_files(path)
    return page, frame


def _cell(frame: FrameLocator, row: int, field: str) -> Locator:
    return frame.locator(f'#grid .cell[data-row="{row}"][data-field="{field}"]')


@pytest.fixture(scope="module")
def members(demo: Demo) -> str:
    return demo.add_template(TEMPLATE)


def test_list_values_are_mapped_in_one_screen_and_dates_read_one_way(
    browser: Browser, demo: Demo, members: str, tmp_path: Path
) -> None:
    path = tmp_path / "members.csv"
    path.write_text(MESSY, encoding="utf-8")
    page, frame = _open(browser, demo, members, path)
    frame.locator("#map-continue").click()
    summary = frame.locator("#summary")
    expect(summary).to_have_text(
        "8 problems in 6 of 7 rows. Fix them below, or delete those rows.", timeout=30_000
    )
    # No raw codes in the problem filter.
    options = frame.locator("#filter-code option").all_text_contents()
    assert options == ["Any problem", "Not an allowed value (5)", "Wrong kind of value (3)"]

    opener = frame.locator("#map-values-country")
    expect(opener).to_have_text("Fix values in Country (5 cells)")
    opener.click()
    rows = frame.locator("#value-map tbody tr")
    expect(rows).to_have_count(4)
    texts = [rows.nth(i).locator("td").all_text_contents() for i in range(4)]
    assert [[t[0], t[1], t[3]] for t in texts] == [
        ["Deutschland", "2", "another name for it"],
        ["Germny", "1", "spelled alike (92%)"],
        ["Mars", "1", "no suggestion"],
        ["germany", "1", "another name for it"],
    ]
    expect(frame.locator("#value-map-0")).to_have_value("DE")
    expect(frame.locator("#value-map-2")).to_have_value("")  # Mars: left as it is
    frame.locator("#value-map-2").select_option("FR")
    frame.locator("#value-map-apply").click()
    expect(frame.locator("#review-status")).to_have_text("Changed 5 cells.")
    expect(summary).to_contain_text("3 problems in 3 of 7 rows")
    expect(_cell(frame, 7, "country")).to_have_text("FR")
    expect(frame.locator("#map-values-country")).to_have_count(0)
    frame.locator("#undo").click()  # one step: every mapped cell back
    expect(_cell(frame, 7, "country")).to_have_text("Mars")
    expect(_cell(frame, 3, "country")).to_have_text("Deutschland")
    expect(summary).to_contain_text("8 problems in 6 of 7 rows")
    frame.locator("#map-values-country").click()
    frame.locator("#value-map-apply").click()
    expect(frame.locator("#review-status")).to_have_text("Changed 4 cells.")

    # Dates: asked once for the column, with examples from the file.
    expect(frame.locator("#dates-ask-joined")).to_have_text(
        "Dates in Joined such as 05/06/2024 can be read two ways. "
        "Is the day first or the month first?"
    )
    expect(frame.locator(".question li").first).to_have_text(
        "05/06/2024: June 5, 2024 (day first) or May 6, 2024 (month first)"
    )
    expect(frame.locator(".question")).to_contain_text("suggest: day first")
    frame.locator("#dates-day-first-joined").click()
    expect(frame.locator("#review-status")).to_have_text("Changed 3 cells.")
    expect(_cell(frame, 3, "joined")).to_have_text("2024-06-05")
    expect(_cell(frame, 5, "joined")).to_have_text("2024-08-07")
    expect(frame.locator("#dates-ask-joined")).to_have_count(0)
    expect(summary).to_contain_text("1 problem in 1 of 7 rows")

    # A list field edits with a select; the field's description and values are shown.
    _cell(frame, 7, "country").click()
    expect(frame.locator("#field-help")).to_have_text(
        "Country: Where the member lives, as a two-letter code. Allowed values: DE, FR, GB."
    )
    _cell(frame, 7, "country").dblclick()
    editor = frame.locator("#grid select.cell-input")
    expect(editor).to_be_visible()
    editor.select_option("GB")
    editor.press("Enter")
    expect(summary).to_have_text("All 7 rows are valid.")
    page.context.close()


def test_counts_before_and_after_changes_next_error_and_confirmed_deletes(
    browser: Browser, demo: Demo, members: str, tmp_path: Path
) -> None:
    lines = ["Name,Country,Joined"]
    lines += [f"P{i},XX,2024-01-{i + 1:02d}" for i in range(12)]
    lines += ["=HYPERLINK(1),DE,2024-02-01", "Ok,GB,2024-02-02"]
    path = tmp_path / "many.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    page, frame = _open(browser, demo, members, path)
    frame.locator("#map-continue").click()
    summary = frame.locator("#summary")
    expect(summary).to_contain_text("12 problems in 12 of 14 rows", timeout=30_000)

    # Replace says how many cells it will change, then how many it did; Enter replaces.
    frame.locator("#replace-field").select_option("name")
    frame.locator("#find").fill("P1")
    expect(frame.locator("#replace-count")).to_have_text("Will change 3 cells.")  # P1, P10, P11
    frame.locator("#replace-with").fill("Q1")
    frame.locator("#replace-with").press("Enter")
    expect(frame.locator("#review-status")).to_have_text("Changed 3 cells.")
    expect(_cell(frame, 3, "name")).to_have_text("Q1")

    # Next and previous problem move the focus; the detail line follows it.
    frame.locator("#next-error").click()
    focused = frame.locator("#grid [role=gridcell]:focus")
    expect(focused).to_have_attribute("data-row", "3")
    expect(focused).to_have_attribute("data-field", "country")
    expect(frame.locator("#cell-detail")).to_contain_text("Row 3, Country:")
    frame.locator("#next-error").click()
    expect(frame.locator("#cell-detail")).to_contain_text("Row 4, Country:")
    frame.locator("#previous-error").click()
    expect(frame.locator("#cell-detail")).to_contain_text("Row 3, Country:")
    expect(frame.locator("#grid-announce")).to_contain_text("Row 3, Country:")

    # Deleting many rows is confirmed first; keeping them changes nothing.
    frame.locator("#delete-error-rows").click()
    dialog = frame.locator("#confirm-delete")
    expect(dialog).to_contain_text("Delete 12 rows? You can undo this.")
    frame.locator("#confirm-no").click()
    expect(dialog).to_have_count(0)
    expect(summary).to_contain_text("12 problems in 12 of 14 rows")
    frame.locator('#grid .grid-row[data-index="13"] input[type=checkbox]').check()
    frame.locator("#delete-selected").click()  # one row: no question
    expect(frame.locator("#review-status")).to_have_text("Deleted 1 row.")
    frame.locator("#undo").click()

    # Submit: the valid rows go, the rest are counted and can be downloaded.
    frame.locator('#grid .grid-row[data-index="13"] input[type=checkbox]').check()
    frame.locator("#delete-selected").click()
    expect(summary).to_contain_text("of 13 rows")
    frame.locator("#submit").click()
    done = frame.locator("#done")
    expect(done).to_have_text(
        "Delivered 1 row. 12 rows with problems were left out. 1 row you deleted was left out.",
        timeout=60_000,
    )
    with page.expect_download() as info:
        frame.locator("#download-rejected").click()
    text = Path(info.value.path()).read_text(encoding="utf-8-sig")
    got = list(csv.reader(io.StringIO(text)))
    assert got[0] == ["Row", "Name", "Country", "Joined", "Why it was left out"]
    assert got[1][:4] == ["2", "P0", "XX", "2024-01-01"]
    assert "not one of the allowed values" in got[1][4]
    assert got[-1] == ["15", "Ok", "GB", "2024-02-02", "Deleted during review."]
    assert len(got) == 14
    assert not any(line[1].startswith("=") for line in got)
    page.context.close()


def test_the_review_step_with_the_keyboard_alone_ends_at_submit(
    browser: Browser, demo: Demo, members: str, tmp_path: Path
) -> None:
    path = tmp_path / "keys.csv"
    path.write_text("Name,Country,Joined\nAda,DE,2024-01-01\n,GB,2024-01-02\n", encoding="utf-8")
    page, frame = _open(browser, demo, members, path)
    expect(frame.locator("#map-continue")).to_be_visible(timeout=30_000)

    def tab_to(selector: str) -> None:
        for _ in range(60):
            page.keyboard.press("Tab")
            if frame.locator(f"{selector}:focus").count():
                return
        raise AssertionError(f"Tab never reached {selector}")

    # The file was picked (a file dialog is the system's); from here on, keys only.
    tab_to("#map-continue")
    page.keyboard.press("Enter")
    summary = frame.locator("#summary")
    expect(summary).to_contain_text("1 problem in 1 of 2 rows", timeout=30_000)

    tab_to("#grid [role=gridcell]")
    grid = frame.locator("#grid")
    expect(grid).to_have_attribute("role", "grid")
    expect(frame.locator("#grid [role=columnheader]")).to_have_count(5)
    focused = frame.locator("#grid [role=gridcell]:focus")
    expect(focused).to_have_attribute("data-row", "2")
    expect(focused).to_have_attribute("data-field", "name")
    page.keyboard.press("ArrowDown")
    expect(focused).to_have_attribute("data-row", "3")
    expect(focused).to_have_attribute("aria-invalid", "true")
    expect(frame.locator("#grid-announce")).to_have_text(
        "Row 3, Name: Name is required, but this cell is empty."
    )
    page.keyboard.press("ArrowRight")
    expect(focused).to_have_attribute("data-field", "country")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("F2")
    editor = frame.locator("#grid input.cell-input")
    expect(editor).to_be_focused()
    page.keyboard.type("Wrong")
    page.keyboard.press("Escape")  # cancels
    expect(editor).to_have_count(0)
    expect(_cell(frame, 3, "name")).to_have_text("")
    expect(_cell(frame, 3, "name")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.type("Bea")
    page.keyboard.press("Enter")
    expect(summary).to_have_text("All 2 rows are valid.")
    expect(_cell(frame, 3, "name")).to_have_text("Bea")
    expect(_cell(frame, 3, "name")).to_be_focused()  # focus stays where the edit was
    # The detail line follows the cell: its problem is gone, not left behind.
    expect(frame.locator("#cell-detail")).to_have_text("Row 3, Name: no problems.")

    # No trap: Tab leaves the grid for the controls after it, and reaches Submit.
    page.keyboard.press("Tab")
    assert not grid.evaluate("g => g.contains(document.activeElement)")
    tab_to("#submit")
    page.keyboard.press("Enter")
    expect(frame.locator("#done")).to_have_text("Delivered 2 rows.", timeout=60_000)
    page.context.close()


def test_on_a_phone_the_row_number_stays_and_one_tap_edits(
    browser: Browser, demo: Demo, members: str, tmp_path: Path
) -> None:
    path = tmp_path / "phone.csv"
    rows = [f"Person {i},XX,2024-01-{i % 28 + 1:02d}" for i in range(40)]
    path.write_text("Name,Country,Joined\n" + "\n".join(rows) + "\n", encoding="utf-8")
    page, frame = _open(
        browser, demo, members, path, viewport={"width": 390, "height": 800}, has_touch=True
    )
    frame.locator("#map-continue").click()
    expect(frame.locator("#summary")).to_contain_text("40 problems", timeout=30_000)
    grid = frame.locator("#grid")
    number = frame.locator('#grid .grid-row[data-index="0"] .cell-num')
    check = frame.locator('#grid .grid-row[data-index="0"] .cell-check')
    before = (number.bounding_box(), check.bounding_box())
    grid.evaluate("g => { g.scrollLeft = 300; }")
    page.wait_for_timeout(200)
    after = (number.bounding_box(), check.bounding_box())
    assert before[0] and after[0] and before[1] and after[1]
    assert after[0]["x"] == before[0]["x"] and after[1]["x"] == before[1]["x"]
    assert grid.evaluate("g => g.scrollLeft") > 0  # the cells did scroll

    # The message line is in the importer's view (sticky to its bottom edge).
    line = frame.locator(".message-line")
    assert line.evaluate("n => getComputedStyle(n).position") == "sticky"
    assert line.evaluate("n => n.getBoundingClientRect().bottom <= innerHeight")

    _cell(frame, 2, "country").tap()
    editor = frame.locator("#grid select.cell-input")
    expect(editor).to_be_visible()
    editor.select_option("FR")
    editor.press("Enter")
    expect(frame.locator("#summary")).to_contain_text("39 problems")
    page.context.close()


def test_a_row_with_an_extra_cell_is_a_problem_of_the_row_shown_by_its_number(
    browser: Browser, demo: Demo, members: str, tmp_path: Path
) -> None:
    """Issue #20: a row longer than the header was read as valid, its extra cell dropped.
    It is a problem of the whole row: marked on the row number, reached by "next problem",
    its text (with the extra cell) in the detail line, and it blocks nothing but that row."""
    path = tmp_path / "ragged.csv"
    path.write_text("Name,Country,Joined\nAda,DE,2024-01-05\nBea,FR,2024-01-06,surplus\n")
    page, frame = _open(browser, demo, members, path)
    frame.locator("#map-continue").click()
    number = frame.locator('#grid .cell-num:text-is("3")')
    expect(number).to_have_attribute("aria-invalid", "true", timeout=30_000)
    expect(frame.locator('#grid .cell-num:text-is("2")')).not_to_have_attribute(
        "aria-invalid", "true"
    )
    frame.locator("#next-error").click()
    expect(frame.locator("#cell-detail")).to_contain_text("Row 3: ")
    expect(frame.locator("#cell-detail")).to_contain_text("surplus")
    page.context.close()
