"""The demo flow in real Chromium: host page -> iframe importer -> Pyodide -> server -> webhook."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, FrameLocator, Page, expect
from standardwebhooks.webhooks import Webhook

from tests.e2e.conftest import Demo

pytestmark = pytest.mark.e2e

ROWS = 70_000  # more than one 65,536-row batch, so two batches travel
COUNTRIES = ["DE", "FR", "GB", "IT", "NL", "US"]


def _contacts(rows: int, seed: int = 7) -> list[dict[str, object]]:
    rng = random.Random(seed)
    out = []
    for i in range(rows):
        out.append(
            {
                "full_name": f"Person {i} O'Hara, Jr.",
                "email": f"person{i}@example.com",
                "phone": None if i % 5 == 0 else f"+44 20 7946 {i % 10000:04d}",
                "country": COUNTRIES[i % len(COUNTRIES)],
                "signup_date": (dt.date(2024, 1, 1) + dt.timedelta(days=i % 365)).isoformat(),
                "amount": round(rng.uniform(0, 10_000), 2),
            }
        )
    return out


def _write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    lines = ["Full Name,E-mail,Telephone,Country,Signup Date,Amount,Internal notes"]
    for i, r in enumerate(rows):
        phone = r["phone"] or ""
        lines.append(
            f'"{r["full_name"]}",{r["email"]},{phone},{r["country"]},'
            f"{r['signup_date']},{r['amount']},SECRET-NOTE-{i}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _open_importer(browser: Browser, demo: Demo) -> tuple[Page, FrameLocator, list[str]]:
    context = browser.new_context(ignore_https_errors=True)
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    page.goto(demo.host_page)
    frame = page.frame_locator("iframe")
    expect(frame.locator("#engine-status")).to_have_text("Ready.", timeout=60_000)
    return page, frame, requests


def test_rows_arrive_at_the_webhook_exactly(browser: Browser, demo: Demo, tmp_path: Path) -> None:
    expected = _contacts(ROWS)
    csv_path = tmp_path / "contacts.csv"
    _write_csv(csv_path, expected)
    page, frame, requests = _open_importer(browser, demo)

    frame.locator("#file-input").set_input_files(csv_path)
    # Headers matched by synonym/normalised name; the extra column stays unmapped.
    expect(frame.locator("#map-email")).to_have_value("1")
    expect(frame.locator("#map-phone")).to_have_value("2")
    frame.locator("#map-continue").click()
    expect(frame.locator("#summary")).to_have_text(f"All {ROWS} rows are valid.", timeout=60_000)
    frame.locator("#submit").click()
    expect(frame.locator("#done")).to_have_text(f"Delivered {ROWS} rows.", timeout=120_000)
    expect(frame.locator("#done")).to_have_attribute("data-status", "delivered")
    expect(page.locator("#host-status")).to_contain_text(f"delivered ({ROWS} rows)")

    receipts = demo.receipts()
    assert len(receipts) == 2
    received: list[dict[str, object]] = []
    secret = demo.state["webhook_secret"]
    for seq, receipt in enumerate(sorted(receipts, key=lambda r: r["headers"]["webhook-id"])):
        headers, body = receipt["headers"], receipt["body"]
        payload = Webhook(secret).verify(body, headers)  # raises unless the signature is valid
        assert payload["type"] == "import.batch"
        assert payload["data"]["batch"] == seq
        assert payload["data"]["batch_count"] == 2
        assert headers["webhook-id"] == f"{payload['data']['import_id']}-{seq}"
        assert "SECRET-NOTE" not in body  # unmapped columns never leave the browser
        received.extend(payload["data"]["rows"])
    assert received == expected  # values and JSON types: str, float, ISO date, null
    assert all(isinstance(r["amount"], float) for r in received)

    origins = {f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in requests}
    assert origins == {demo.host_origin, demo.importer_origin}
    # The host page (and the browser's favicon probe) are the host's; everything the
    # importer and its worker load or send goes to loadbay's own origin.
    host_requests = {u for u in requests if u.startswith(demo.host_origin)}
    assert host_requests <= {demo.host_page, f"{demo.host_origin}/favicon.ico"}
    assert any(u.endswith("pyodide.asm.wasm") for u in requests)
    assert any(u.endswith(".whl") for u in requests)
    assert sum("/batches/" in u for u in requests) == 2
    page.context.close()


def test_invalid_cells_are_shown_and_block_submission(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text(
        "Full name,Email,Country,Signup date,Amount\n"
        "Ada,ada@example.com,GB,2024-01-15,12.5\n"
        ",grace@example.com,US,2024-02-30,7\n"
        "Alan,alan@example.com,Atlantis,2024-03-01,lots\n",
        encoding="utf-8",
    )
    page, frame, _ = _open_importer(browser, demo)
    frame.locator("#file-input").set_input_files(csv_path)
    frame.locator("#map-continue").click()
    expect(frame.locator("#summary")).to_contain_text("4 problem(s) in 3 rows", timeout=30_000)
    rows = frame.locator("#errors tbody tr")
    expect(rows).to_have_count(4)
    texts = [rows.nth(i).inner_text().split("\t") for i in range(4)]
    assert texts == [
        ["3", "Full name", "Full name is required, but this cell is empty."],
        ["3", "Signup date", '"2024-02-30" is not a date (use YYYY-MM-DD).'],
        ["4", "Country", '"Atlantis" is not one of the allowed values: DE, FR, GB, IT, NL, US.'],
        ["4", "Amount", '"lots" is not a number.'],
    ]
    expect(frame.locator("#submit")).to_have_count(0)
    page.context.close()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "contains binary data"),
        ("Name,Email\nJosé,j@example.com\n".encode("latin-1"), "is not UTF-8 encoded"),
    ],
)
def test_unreadable_files_get_a_clear_message(
    browser: Browser, demo: Demo, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "upload.csv"
    path.write_bytes(content)
    page, frame, _ = _open_importer(browser, demo)
    frame.locator("#file-input").set_input_files(path)
    expect(frame.locator("#error")).to_contain_text(message, timeout=30_000)
    expect(frame.locator("#error")).to_contain_text("upload.csv")
    assert "Traceback" not in frame.locator("body").inner_text()
    page.context.close()


def test_importer_refuses_unregistered_origins(browser: Browser, demo: Demo) -> None:
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    query = f"key={demo.state['publishable_key']}&template={demo.state['template_id']}"
    response = page.goto(f"{demo.importer_origin}/importer?{query}&origin=https://evil.test")
    assert response is not None and response.status == 403
    expect(page.locator("body")).to_contain_text("not enabled for https://evil.test")
    context.close()
