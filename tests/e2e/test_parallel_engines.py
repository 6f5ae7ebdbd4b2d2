"""A large CSV read and validated by two engines in the real importer shows what one engine
shows (issue #20): the same problems, the same review grid, after an edit too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Worker, expect

from pipeline.chunking import SPLIT_BYTES, cuts, read_in_parts
from pipeline.delimited import read_head
from pipeline.session import ImportSession
from pipeline.sheet import ReadOptions
from pipeline.template import parse_template
from tests.e2e.conftest import Demo

pytestmark = pytest.mark.e2e

TEMPLATE: dict[str, Any] = {
    "fields": [
        {"name": "id", "type": "integer", "constraints": {"required": True, "unique": True}},
        {"name": "email", "format": "email"},
        {"name": "note"},
        {"name": "amount", "type": "number", "constraints": {"minimum": 0}},
    ]
}
ROWS = 200_000


def big_csv(path: Path) -> int:
    """About 9 MB: a wrong e-mail and a negative amount every 997 rows, an id of the first
    half repeated in the second, a quoted line break a few rows before the cut, a ragged row
    after it. Returns the row (1-based, as the user sees it) of the quoted line break."""
    lines = ["id,email,note,amount"]
    for i in range(1, ROWS + 1):
        email = "not an e-mail" if i % 997 == 0 else f"user{i}@example.com"
        amount = "-1" if i % 991 == 0 else f"{i % 500}.25"
        lines.append(f"{i},{email},note number {i:06d},{amount}")
    middle = ROWS // 2
    lines[middle - 3] = f'{middle - 3},u@example.com,"a line\nbreak",1'
    lines[middle + 40] = f"{middle + 40},v@example.com,extra,2,SURPLUS"
    lines[ROWS - 10] = f"{ROWS // 4},w@example.com,again,3"  # id repeats one of the first part
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return middle - 3 + 1


def workers_started(page: Page) -> list[Worker]:
    """The workers the page starts from now on, as they start."""
    seen: list[Worker] = []

    def started(worker: Worker) -> None:
        seen.append(worker)

    page.on("worker", started)
    return seen


def open_review(page: Page, demo: Demo, template_id: str, file: Path) -> dict[str, str]:
    page.goto(f"{demo.host_page}?template={template_id}")
    frame = page.frame_locator("iframe")
    expect(frame.locator("#engine-status")).to_have_text("Ready.", timeout=90_000)
    frame.locator("#file-input").set_input_files(file)
    frame.locator("#map-continue").click(timeout=120_000)
    summary = frame.locator("#summary")
    expect(summary).to_contain_text("problems in", timeout=120_000)
    shown = {"summary": summary.inner_text(), "grid": frame.locator("#grid").inner_text()}
    frame.locator("#next-error").click()
    # the focus moves to the first error once the engine has answered (a busy machine: later)
    expect(frame.locator("#cell-detail")).not_to_contain_text("no problems", timeout=30_000)
    shown["detail"] = frame.locator("#cell-detail").inner_text()
    return shown


def test_two_engines_show_what_one_shows(browser: Browser, demo: Demo, tmp_path: Path) -> None:
    file = tmp_path / "people.csv"
    quoted_row = big_csv(file)
    size = file.stat().st_size
    assert size > SPLIT_BYTES
    head = read_head(str(file), file.name, ReadOptions(), size)
    assert head is not None
    cut = cuts(str(file), head.start, size, 2)[1]
    assert file.read_bytes()[:cut].count(b"\n") - 1 > quoted_row  # the quoted row is before it
    joined = read_in_parts(str(file), file.name, ReadOptions(), 2)
    assert len(joined.starts) == 2  # the cut is exact: both engines' parts are used
    template = parse_template(TEMPLATE)
    expected = ImportSession.open(str(file), file.name, template).report()
    codes = {e.code for e in expected.errors}
    assert {"type-error", "constraint-error", "extra-cell"} <= codes
    assert any(e.constraint == "unique" for e in expected.errors)
    template_id = demo.add_template(TEMPLATE)

    shown = []
    for cores in (1, 2):
        context = browser.new_context(ignore_https_errors=True)
        context.add_init_script(
            f"Object.defineProperty(navigator, 'hardwareConcurrency', {{get: () => {cores}}})"
        )
        page = context.new_page()
        started = workers_started(page)
        shown.append(open_review(page, demo, template_id, file))
        # 2 cores: the helper engine read a part, was ended and replaced by a fresh one
        assert len(started) == (1 if cores == 1 else 3), started
        context.close()
    one, two = shown
    assert f"{len(expected.errors):,}" in one["summary"], one["summary"]
    assert two == one  # the summary, the grid's first window and the first error's detail
