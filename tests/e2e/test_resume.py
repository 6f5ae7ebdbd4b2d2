"""Resuming an upload in real Chromium: the page is closed in the middle of uploading a
200k-row file, reopened, the same file picked again, and every row arrives exactly once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Response, expect
from standardwebhooks.webhooks import Webhook

from bench.chromium import regular_window
from tests.e2e.conftest import Demo
from tests.e2e.test_demo_flow import _contacts, _write_csv

pytestmark = pytest.mark.e2e

ROWS = 200_000  # four batches of at most 65,536 rows
BATCHES = 4
PUT = re.compile(r"/api/v1/imports/(imp_[0-9a-z]+)/batches/(\d+)\?")


def test_a_page_closed_mid_upload_resumes_and_every_row_arrives_once(
    playwright: Playwright, demo: Demo, tmp_path: Path
) -> None:
    expected = _contacts(ROWS, seed=16)
    csv_path = tmp_path / "contacts-200k.csv"
    _write_csv(csv_path, expected)
    # The embedded importer keeps its record in its own IndexedDB, which a browser blocking
    # third-party storage denies it (README, "The upload protocol"): a regular window.
    context = regular_window(playwright, tmp_path / "profile")
    second = _close_mid_upload_and_resume(context, demo, csv_path, expected)

    # Done: nothing is left to resume.
    second.reload()
    frame = second.frame_locator("iframe")
    expect(frame.locator("#engine-status")).to_have_text("Ready.", timeout=60_000)
    expect(frame.locator("#resume-note")).to_be_hidden()
    importer = next(f for f in second.frames if f.url.startswith(demo.importer_origin))
    stored = importer.evaluate(
        """() => new Promise((resolve) => {
          const open = indexedDB.open("loadbay", 1);
          open.onsuccess = () => {
            const all = open.result.transaction("uploads").objectStore("uploads").getAll();
            all.onsuccess = () => resolve(JSON.stringify(all.result));
          };
        })"""
    )
    assert json.loads(stored) == []
    assert _kept_by_host(second) == {}  # the frame had its IndexedDB: the page kept nothing
    context.close()


def _kept_by_host(page: Page) -> dict[str, object]:
    """The resume records the host page keeps for the importer (browser/sdk/embed.js)."""
    return page.evaluate(
        """() => Object.fromEntries(Object.keys(localStorage)
             .filter((k) => k.startsWith("loadbay:resume:"))
             .map((k) => [k, JSON.parse(localStorage.getItem(k))]))"""
    )


def test_where_the_frame_is_refused_indexeddb_the_host_page_keeps_the_record(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    """A browser that blocks third-party storage (Playwright's own contexts do): the init
    script makes every IndexedDB open of the importer page fail; the record goes to the host
    page through embed.js, and the upload still resumes."""
    expected = _contacts(ROWS, seed=19)
    csv_path = tmp_path / "contacts-200k.csv"
    _write_csv(csv_path, expected)
    context = browser.new_context(ignore_https_errors=True)
    context.add_init_script(
        f"""if (location.origin === {json.dumps(demo.importer_origin)}) {{
          IDBFactory.prototype.open = function () {{
            throw new DOMException("The user denied permission.", "SecurityError");
          }};
        }}"""
    )
    kept: list[dict[str, object]] = []
    second = _close_mid_upload_and_resume(context, demo, csv_path, expected, kept)
    # While the upload was interrupted the host page held the record: ids, token, mapping,
    # fingerprint; never a cell of the file.
    [(name, record)] = kept[0].items()
    assert name.startswith(f"loadbay:resume:{demo.importer_origin}:")
    assert record["fileName"] == "contacts-200k.csv"  # type: ignore[index]
    text = json.dumps(record)
    assert not [row for row in expected[:50] if row["email"] in text]
    assert _kept_by_host(second) == {}  # delivered: deleted
    context.close()


def _close_mid_upload_and_resume(
    context: BrowserContext,
    demo: Demo,
    csv_path: Path,
    expected: list[dict[str, object]],
    kept: list[dict[str, object]] | None = None,
) -> Page:
    """Close the page once batch 0 has arrived, open it again, pick the same file: every row
    arrives once. `kept`: gets the host page's resume records while interrupted."""
    sent: list[tuple[int, str, int, int]] = []  # (page, import id, batch, status)
    pages = [0]

    def on_response(response: Response) -> None:
        found = PUT.search(response.url)
        if found and response.request.method == "PUT":
            sent.append((pages[0], found[1], int(found[2]), response.status))

    context.on("response", on_response)

    first = context.new_page()
    first.goto(demo.host_page)
    frame = first.frame_locator("iframe")
    expect(frame.locator("#engine-status")).to_have_text("Ready.", timeout=60_000)
    expect(frame.locator("#resume-note")).to_be_hidden()
    frame.locator("#file-input").set_input_files(csv_path)
    frame.locator("#map-continue").click()
    expect(frame.locator("#summary")).to_have_text(f"All {ROWS:,} rows are valid.", timeout=120_000)
    with first.expect_response(
        lambda r: r.request.method == "PUT" and "/batches/0?" in r.url, timeout=120_000
    ):
        frame.locator("#submit").click()
    first.close()  # mid-upload: batch 0 has arrived, the rest has not all been sent
    [import_id] = {imp for _, imp, _, _ in sent}
    assert not [r for r in demo.receipts() if r["headers"]["webhook-id"].startswith(import_id)]
    before = {seq for _, _, seq, status in sent if status == 200}
    assert 0 in before and len(before) < BATCHES

    pages[0] = 1
    second = context.new_page()
    second.goto(demo.host_page)
    if kept is not None:
        kept.append(_kept_by_host(second))
    frame = second.frame_locator("iframe")
    expect(frame.locator("#engine-status")).to_have_text("Ready.", timeout=60_000)
    expect(frame.locator("#resume-note")).to_have_text(
        "The upload of contacts-200k.csv was interrupted. Pick the same file again to send "
        "the rest; nothing is sent twice."
    )
    frame.locator("#file-input").set_input_files(csv_path)  # no mapping, no review: it carries on
    expect(frame.locator("#done")).to_have_text(f"Delivered {ROWS:,} rows.", timeout=180_000)
    expect(second.locator("#host-status")).to_contain_text(f"delivered ({ROWS} rows)")

    resent = [(imp, seq, status) for page, imp, seq, status in sent if page == 1]
    assert {imp for imp, _, _ in resent} == {import_id}  # the same import, not a new one
    again = {seq for _, seq, _ in resent}
    # Only what the server lacked: never a batch it answered 200 for (one whose answer was
    # lost when the page closed may be held too, and is then skipped as well).
    assert again and not again & before and again <= set(range(BATCHES))
    assert all(status == 200 for _, _, status in resent)

    receipts = [r for r in demo.receipts() if r["headers"]["webhook-id"].startswith(import_id)]
    secret = demo.state["webhook_secret"]
    datas = [Webhook(secret).verify(r["body"], r["headers"])["data"] for r in receipts]
    counts = {d["batch"]: d["part_count"] for d in datas}
    assert set(counts) == set(range(BATCHES))
    # Each batch delivered once: each of its parts (1,000-row requests) once, none missing.
    keys = sorted((d["batch"], d["part"]) for d in datas)
    assert keys == [(b, part) for b in range(BATCHES) for part in range(counts[b])]
    received: list[dict[str, object]] = []
    for data in sorted(datas, key=lambda d: (d["batch"], d["part"])):
        received.extend(data["rows"])
    assert len(received) == ROWS
    assert received == expected  # every row once, in order, with its values
    return second
