"""The demo flow in real Chromium: host page -> iframe importer -> Pyodide -> server -> webhook."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, FrameLocator, Locator, Page, expect
from standardwebhooks.webhooks import Webhook

from tests.e2e.conftest import Demo
from tests.pipeline.hostile import bomb_xlsx

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).parent.parent / "fixtures" / "files"
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


def _open_importer(
    browser: Browser, demo: Demo, grid_max_px: int | None = None
) -> tuple[Page, FrameLocator, list[str]]:
    context = browser.new_context(ignore_https_errors=True)
    if grid_max_px is not None:  # the grid's scaled scrolling, without a million rows
        context.add_init_script(f"globalThis.LOADBAY_GRID_MAX_PX = {grid_max_px};")
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    page.goto(demo.host_page)
    frame = page.frame_locator("iframe")
    expect(frame.locator("#engine-status")).to_have_text("Ready.", timeout=60_000)
    return page, frame, requests


def _pick_file(
    browser: Browser, demo: Demo, path: Path, grid_max_px: int | None = None
) -> tuple[Page, FrameLocator]:
    """The importer, ready, with `path` picked in its file input."""
    page, frame, _ = _open_importer(browser, demo, grid_max_px)
    frame.locator("#file-input").set_input_files(path)
    return page, frame


def test_rows_arrive_at_the_webhook_exactly(browser: Browser, demo: Demo, tmp_path: Path) -> None:
    expected = _contacts(ROWS)
    csv_path = tmp_path / "contacts.csv"
    _write_csv(csv_path, expected)
    page, frame, requests = _open_importer(browser, demo)
    importer = next(f for f in page.frames if f.url.startswith(demo.importer_origin))
    importer.evaluate(
        """() => {
          window.progressSeen = [];
          new MutationObserver(() => {
            const busy = document.getElementById("busy");
            if (busy) window.progressSeen.push(busy.textContent);
          }).observe(document.body, { subtree: true, childList: true, characterData: true });
        }"""
    )

    frame.locator("#file-input").set_input_files(csv_path)
    # Headers matched by synonym/normalised name; the extra column stays unmapped.
    expect(frame.locator("#map-email")).to_have_value("1")
    expect(frame.locator("#map-phone")).to_have_value("2")
    frame.locator("#map-continue").click()
    expect(frame.locator("#summary")).to_have_text(f"All {ROWS:,} rows are valid.", timeout=60_000)
    seen = importer.evaluate("() => window.progressSeen")
    assert "Reading… 65,536 rows so far" in seen  # counts while parsing, batch by batch
    assert "Checking… 6 of 6 columns" in seen
    frame.locator("#submit").click()
    expect(frame.locator("#done")).to_have_text(f"Delivered {ROWS:,} rows.", timeout=120_000)
    expect(frame.locator("#done")).to_have_attribute("data-status", "delivered")
    expect(page.locator("#host-status")).to_contain_text(f"delivered ({ROWS} rows)")

    receipts = demo.receipts()
    # Two batches (65,536 and 4,464 rows), each sent in requests of 1,000 rows.
    assert len(receipts) == 66 + 5
    received: list[dict[str, object]] = []
    secret = demo.state["webhook_secret"]
    payloads = []
    for receipt in receipts:
        headers, body = receipt["headers"], receipt["body"]
        payload = Webhook(secret).verify(body, headers)  # raises unless the signature is valid
        data = payload["data"]
        assert payload["type"] == "import.batch"
        assert headers["webhook-id"] == f"{data['import_id']}-{data['batch']}-{data['part']}"
        assert "SECRET-NOTE" not in body  # unmapped columns never leave the browser
        payloads.append(data)
    payloads.sort(key=lambda d: (d["batch"], d["part"]))
    assert [(d["batch"], d["part"]) for d in payloads] == [(0, p) for p in range(66)] + [
        (1, p) for p in range(5)
    ]
    assert {(d["batch"], d["part_count"], d["batch_count"]) for d in payloads} == {
        (0, 66, 2),
        (1, 5, 2),
    }
    for data in payloads:
        received.extend(data["rows"])
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


BAD_CSV = (
    "Full name,Email,Country,Signup date,Amount\n"
    "Ada,ada@example.com,GB,2024-01-15,12.5\n"
    ",grace@example.com,US,2024-02-30,7\n"
    "Alan,alan@example.com,Atlantis,2024-03-01,lots\n"
)


def _cell(frame: FrameLocator, row: int, field: str) -> Locator:
    return frame.locator(f'#grid .cell[data-row="{row}"][data-field="{field}"]')


def _edit(frame: FrameLocator, row: int, field: str, value: str) -> None:
    _cell(frame, row, field).dblclick()
    editor = frame.locator("#grid .cell-input")
    if editor.evaluate("e => e.tagName") == "SELECT":  # a list field edits with a select
        editor.select_option(value)
    else:
        editor.fill(value)
    editor.press("Enter")


def test_invalid_cells_are_shown_fixed_in_the_grid_and_delivered(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text(BAD_CSV, encoding="utf-8")
    page, frame = _pick_file(browser, demo, csv_path)
    frame.locator("#map-continue").click()
    summary = frame.locator("#summary")
    expect(summary).to_have_text(
        "4 problems in 2 of 3 rows. Fix them below, or delete those rows.", timeout=30_000
    )
    expect(frame.locator("#submit")).to_be_disabled()
    errors = frame.locator("#grid .cell-error")
    expect(errors).to_have_count(4)
    expect(_cell(frame, 3, "full_name")).to_have_attribute(
        "data-error", "Full name is required, but this cell is empty."
    )
    expect(_cell(frame, 3, "signup_date")).to_have_attribute(
        "data-error", '"2024-02-30" is not a date (use YYYY-MM-DD).'
    )
    expect(_cell(frame, 4, "country")).to_have_attribute(
        "data-error", '"Atlantis" is not one of the allowed values: DE, FR, GB, IT, NL, US.'
    )
    _cell(frame, 4, "amount").click()
    expect(frame.locator("#cell-detail")).to_have_text('Row 4, Amount: "lots" is not a number.')

    # Filters: rows with errors, then one column, then one problem code.
    frame.locator("#view-filter").select_option("errors")
    expect(frame.locator("#grid .grid-rows .grid-row")).to_have_count(2)
    frame.locator("#filter-field").select_option("country")
    expect(frame.locator("#grid .grid-rows .grid-row")).to_have_count(1)
    frame.locator("#filter-field").select_option("")
    frame.locator("#filter-code").select_option("type-error")
    expect(frame.locator("#grid .grid-rows .grid-row")).to_have_count(2)
    frame.locator("#filter-code").select_option("")
    frame.locator("#view-filter").select_option("all")
    expect(frame.locator("#grid .grid-rows .grid-row")).to_have_count(3)

    # Inline edits re-validate at once.
    _edit(frame, 3, "full_name", "Grace Hopper")
    expect(summary).to_contain_text("3 problems in 2 of 3 rows")
    expect(_cell(frame, 3, "full_name")).to_have_text("Grace Hopper")
    _edit(frame, 3, "signup_date", "2024-02-29")
    expect(summary).to_contain_text("2 problems in 1 of 3 rows")

    # Find and replace in one column, then undo and redo it.
    frame.locator("#replace-field").select_option("amount")
    frame.locator("#find").fill("lots")
    frame.locator("#replace-with").fill("99.5")
    frame.locator("#replace-apply").click()
    expect(summary).to_contain_text("1 problem in 1 of 3 rows")
    frame.locator("#undo").click()
    expect(summary).to_contain_text("2 problems in 1 of 3 rows")
    expect(_cell(frame, 4, "amount")).to_have_text("lots")
    frame.locator("#replace-apply").click()
    expect(summary).to_contain_text("1 problem in 1 of 3 rows")

    # Delete the row that is still wrong; submitting is then allowed.
    frame.locator('#grid .grid-row[data-index="0"] input[type=checkbox]').check()
    frame.locator("#delete-selected").click()
    expect(summary).to_contain_text("1 problem in 1 of 2 rows")
    frame.locator("#undo").click()
    expect(summary).to_contain_text("1 problem in 1 of 3 rows")
    frame.locator("#delete-error-rows").click()
    expect(summary).to_have_text("All 2 rows are valid.")
    expect(frame.locator("#submit")).to_be_enabled()
    before = len(demo.receipts())
    frame.locator("#submit").click()
    expect(frame.locator("#done")).to_have_text(
        "Delivered 2 rows. 1 row you deleted was left out.", timeout=60_000
    )

    receipts = demo.receipts()[before:]
    assert len(receipts) == 1
    payload = Webhook(demo.state["webhook_secret"]).verify(
        receipts[0]["body"], receipts[0]["headers"]
    )
    assert payload["data"]["rows"] == [
        {
            "full_name": "Ada",
            "email": "ada@example.com",
            "phone": None,
            "country": "GB",
            "signup_date": "2024-01-15",
            "amount": 12.5,
        },
        {
            "full_name": "Grace Hopper",
            "email": "grace@example.com",
            "phone": None,
            "country": "US",
            "signup_date": "2024-02-29",
            "amount": 7.0,
        },
    ]
    page.context.close()


UNREADABLE: dict[str, tuple[Callable[[], bytes], str]] = {
    "empty": (lambda: b"", "is empty"),
    "png-renamed": (lambda: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "contains binary data"),
    "corrupt-zip": (lambda: b"PK\x03\x04" + b"\x00" * 64, "is damaged or incomplete"),
    "protected-xlsx": (
        lambda: (FIXTURES / "protected.xlsx").read_bytes(),
        "is password-protected",
    ),
    "zip-bomb-xlsx": (bomb_xlsx, "That is how a zip bomb looks"),
    "50mb-single-line": (
        lambda: b"Full name,Email\n" + b"x" * (50 * 1024 * 1024) + b",a@example.com\n",
        "is larger than the limit of 128 KiB",
    ),
}


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_unreadable_files_get_a_clear_message(
    browser: Browser, demo: Demo, tmp_path: Path, case: str
) -> None:
    make, message = UNREADABLE[case]
    path = tmp_path / "upload.csv"
    path.write_bytes(make())
    page, frame = _pick_file(browser, demo, path)
    expect(frame.locator("#error")).to_contain_text(message, timeout=30_000)
    expect(frame.locator("#error")).to_contain_text("upload.csv")
    assert "Traceback" not in frame.locator("body").inner_text()
    page.context.close()


def test_a_file_over_the_size_limit_is_refused_before_reading(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    huge = tmp_path / "huge.csv"
    with huge.open("wb") as fh:  # sparse: 2 GiB on paper, nothing on disk
        fh.truncate(2 * 1024**3)
    page, frame = _pick_file(browser, demo, huge)
    expect(frame.locator("#error")).to_have_text(
        "huge.csv is 2.0 GB; this importer takes files up to 1.0 GB. "
        "Split the file or remove columns you don't need, and try again.",
        timeout=10_000,
    )
    page.context.close()


def test_importer_refuses_unregistered_origins(browser: Browser, demo: Demo) -> None:
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    query = f"key={demo.state['publishable_key']}&template={demo.state['template_id']}"
    response = page.goto(f"{demo.importer_origin}/importer?{query}&origin=https://evil.test")
    assert response is not None and response.status == 403
    expect(page.locator("body")).to_contain_text("not enabled for https://evil.test")
    context.close()


def _confirm_mapping_from(
    demo: Demo, address: str, headers: list[str], mapping: dict[str, str]
) -> dict[str, object]:
    """Another user, at another address, submits an import of the demo template and confirms
    `mapping` (the demo listens on 127.0.0.1; any 127/8 address reaches it from here)."""
    transport = httpx.HTTPTransport(verify=False, local_address=address)
    key, template = demo.state["publishable_key"], demo.state["template_id"]
    with httpx.Client(base_url=demo.importer_origin, transport=transport) as client:
        body = {"publishableKey": key, "templateId": template, "fileName": "x.csv"}
        created = client.post("/api/v1/imports", json=body).raise_for_status().json()
        auth = {"authorization": f"Bearer {created['uploadToken']}"}
        submit = f"/api/v1/imports/{created['id']}/submit"
        client.post(submit, json={"batches": 0, "rows": 0}, headers=auth).raise_for_status()
        body = {"publishableKey": key, "headers": headers, "mapping": mapping}
        response = client.post(
            f"/api/v1/templates/{template}/mappings",
            json={**body, "importId": created["id"]},
            headers=auth,
        )
        answer: dict[str, object] = response.raise_for_status().json()
        return answer


def _mapping_requests(requests: list[str]) -> list[str]:
    return [url for url in requests if "/mappings" in urlsplit(url).path]


def test_confirmed_mappings_are_proposed_next_time(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    """Issue #15: the header row the engine proposes may be the first row of data, so no
    label leaves the browser before the user confirms it; and a mapping is proposed only
    once three addresses confirmed it."""
    path = tmp_path / "francais.csv"
    path.write_text(
        "Nom complet,Courriel,Pays\nAmélie Poulain,amelie@example.fr,FR\n", encoding="utf-8"
    )
    page, frame, requests = _open_importer(browser, demo)
    frame.locator("#file-input").set_input_files(path)
    expect(frame.locator("#map-full_name")).to_have_value("")
    assert _mapping_requests(requests) == []  # opening the file sent nothing
    expect(frame.locator("#header-row-question")).to_contain_text("Is row 1 the row")
    frame.locator("#header-row-confirm").click()
    expect(frame.locator("#header-row-status")).to_have_text("Row 1 holds the column names.")
    expect(frame.locator("#header-row-status")).to_be_focused()
    assert [urlsplit(u).path.rsplit("/", 1)[1] for u in _mapping_requests(requests)] == ["recall"]
    frame.locator("#map-continue").click()
    expect(frame.locator("#mapping-error")).to_have_text(
        "Map a column to each required field: Full name, Email."
    )
    frame.locator("#map-full_name").select_option("0")
    frame.locator("#map-email").select_option("1")
    frame.locator("#map-country").select_option("2")
    frame.locator("#map-continue").click()
    frame.locator("#submit").click()
    expect(frame.locator("#done")).to_have_text("Delivered 1 row.", timeout=60_000)
    # The finish screen offers the next file (issue #19): back to a ready start screen.
    frame.locator("#import-another").click()
    expect(frame.locator("#file-input")).to_be_attached()
    expect(frame.locator("#done")).to_have_count(0)
    page.context.close()

    # A second user, at another address, confirms the same mapping: two addresses, too few.
    headers = ["Nom complet", "Courriel", "Pays"]
    mapping = {"full_name": "Nom complet", "email": "Courriel", "country": "Pays"}
    assert _confirm_mapping_from(demo, "127.0.0.2", headers, mapping) == {
        "addresses": 2,
        "proposed": False,
    }
    page, frame, requests = _open_importer(browser, demo)
    frame.locator("#file-input").set_input_files(path)
    frame.locator("#header-row-confirm").click()
    expect(frame.locator("#header-row-status")).to_be_visible()
    expect(frame.locator("#map-full_name")).to_have_value("")

    # A third: now it is proposed, once the header row is confirmed (choosing it counts).
    assert _confirm_mapping_from(demo, "127.0.0.3", headers, mapping)["proposed"] is True
    frame.locator("#header-row").fill("1")
    frame.locator("#header-row-apply").click()
    expect(frame.locator("#map-full_name")).to_have_value("0")
    expect(frame.locator("#map-email")).to_have_value("1")
    expect(frame.locator("#map-country")).to_have_value("2")
    expect(frame.locator("#match-full_name")).to_have_text("as last time")
    page.context.close()


def test_no_cell_reaches_mapping_memory_before_the_header_row_is_confirmed(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    """Issue #15: with no header row, the engine takes the first row of data as headers. None
    of it reaches the server unless the user says that row is the header row: a user who maps
    and submits without confirming it is neither offered nor taught a remembered mapping."""
    path = tmp_path / "no-header.csv"
    path.write_text(
        "Cellvalue Ada,ada.secret@example.com,GB\nBob,bob@example.com,FR\n", encoding="utf-8"
    )
    page, frame, requests = _open_importer(browser, demo)
    frame.locator("#file-input").set_input_files(path)
    expect(frame.locator(".preview thead")).to_contain_text("Cellvalue Ada")
    frame.locator("#map-full_name").select_option("0")  # mapped, header row not confirmed
    frame.locator("#map-email").select_option("1")
    frame.locator("#map-continue").click()
    expect(frame.locator("#summary")).to_be_visible(timeout=30_000)
    frame.locator("#submit").click()
    expect(frame.locator("#done")).to_contain_text("Delivered", timeout=60_000)
    assert _mapping_requests(requests) == []  # neither recalled nor remembered
    page.context.close()


def test_spreadsheet_sheet_choice_and_typed_cells(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    page, frame = _pick_file(browser, demo, FIXTURES / "people.xlsx")
    # Title rows above the header are skipped; the header row is proposed.
    expect(frame.locator("#header-row")).to_have_value("3")
    expect(frame.locator("#sheet-select")).to_have_value("People")
    expect(frame.locator(".preview tbody tr").first).to_contain_text("Ada Lovelace")
    expect(frame.locator(".preview tbody tr").nth(1)).to_contain_text("2024-02-29T13:30:05")
    frame.locator("#sheet-select").select_option("Notes")
    expect(frame.locator(".preview thead")).to_contain_text("Note")
    expect(frame.locator(".preview tbody tr").first).to_contain_text("This sheet is not the data")
    frame.locator("#sheet-select").select_option("People")
    expect(frame.locator("#header-row")).to_have_value("3")
    frame.locator("#header-row").fill("4")
    frame.locator("#header-row-apply").click()
    expect(frame.locator(".preview thead")).to_contain_text("Ada Lovelace")
    page.context.close()


def test_a_windows_1252_file_is_read_and_the_encoding_can_be_chosen(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    path = tmp_path / "legacy.csv"
    path.write_bytes("Full name,Email\nJosé Müller,jose@example.com\n".encode("cp1252"))
    page, frame = _pick_file(browser, demo, path)
    expect(frame.locator(".preview tbody tr").first).to_contain_text("José Müller")
    frame.locator("#encoding").select_option("utf-8")
    expect(frame.locator("#error")).to_contain_text("legacy.csv")
    page.context.close()


def test_one_click_fixes(browser: Browser, demo: Demo, tmp_path: Path) -> None:
    path = tmp_path / "fixable.csv"
    path.write_text(
        "Full name,Email,Country,Signup date,Amount\n"
        'Ada,ada@example.com, gb ,15/01/2024,"1,200.50"\n'
        "Bob,bob@example.com,fr,31/12/2023,7\n",
        encoding="utf-8",
    )
    page, frame = _pick_file(browser, demo, path)
    frame.locator("#map-continue").click()
    summary = frame.locator("#summary")
    expect(summary).to_contain_text("5 problems in 2 of 2 rows", timeout=30_000)
    _cell(frame, 2, "amount").click()
    expect(frame.locator("#fix-proposal")).to_have_text(" Suggested: “1200.50”.")
    frame.locator("#fix-apply").click()
    expect(summary).to_contain_text("4 problems in 2 of 2 rows")
    _cell(frame, 2, "signup_date").click()
    frame.locator("#fix-column").click()  # both dates, one step
    expect(summary).to_contain_text("2 problems in 2 of 2 rows")
    expect(_cell(frame, 3, "signup_date")).to_have_text("2023-12-31")
    _cell(frame, 3, "country").click()
    frame.locator("#fix-column").click()
    expect(summary).to_have_text("All 2 rows are valid.")
    expect(_cell(frame, 2, "country")).to_have_text("GB")
    frame.locator("#undo").click()
    expect(summary).to_contain_text("2 problems in 2 of 2 rows")
    page.context.close()


def test_the_grid_reaches_every_row_past_the_browsers_height_limit(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    """Past the height a browser allows, the scrollbar is scaled and every row still shows."""
    rows = 3000
    csv_path = tmp_path / "many.csv"
    _write_csv(csv_path, _contacts(rows))
    page, frame = _pick_file(browser, demo, csv_path, grid_max_px=30_000)  # 1,000 rows high
    frame.locator("#map-continue").click()
    expect(frame.locator("#summary")).to_have_text(f"All {rows:,} rows are valid.", timeout=60_000)
    grid = frame.locator("#grid")
    assert grid.evaluate("g => g.scrollHeight") < 31_000  # not 3,000 rows x 30 px
    grid.evaluate("g => { g.scrollTop = g.scrollHeight; }")
    last = _cell(frame, rows + 1, "email")  # row 1 is the header
    expect(last).to_have_text(f"person{rows - 1}@example.com")
    cell_box, grid_box = last.bounding_box(), grid.bounding_box()
    assert cell_box is not None and grid_box is not None
    assert grid_box["y"] < cell_box["y"] < grid_box["y"] + grid_box["height"]

    # Half way down the scrollbar is half way through the rows.
    height = grid.evaluate("g => g.clientHeight")
    grid.evaluate("g => { g.scrollTop = (g.scrollHeight - g.clientHeight) / 2; }")
    top = int(0.5 * (rows - (height - 30) / 30))
    middle = _cell(frame, top + 2, "email")
    expect(middle).to_have_text(f"person{top}@example.com")
    middle_box = middle.bounding_box()
    assert middle_box is not None
    assert abs(middle_box["y"] - (grid_box["y"] + 30)) <= 30  # just under the header
    page.context.close()


def test_a_blank_line_is_left_out_and_later_rows_keep_their_numbers(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    csv_path = tmp_path / "gaps.csv"
    csv_path.write_text(
        "Full name,Email,Country,Signup date,Amount\n"
        "Ada,ada@example.com,GB,2024-01-15,12.5\n"
        "\n"
        "Alan,alan@example.com,Atlantis,2024-03-01,7\n",
        encoding="utf-8",
    )
    page, frame = _pick_file(browser, demo, csv_path)
    expect(frame.locator("#map-continue")).to_be_visible(timeout=60_000)
    expect(frame.get_by_text("Row 3 is blank.")).to_be_visible()
    frame.locator("#map-continue").click()
    summary = frame.locator("#summary")
    expect(summary).to_have_text(
        "1 problem in 1 of 2 rows. Fix it below, or delete the row.", timeout=60_000
    )
    expect(frame.locator("#grid .grid-rows .grid-row")).to_have_count(2)  # row 3 is not there
    expect(_cell(frame, 4, "country")).to_have_attribute(
        "data-error", '"Atlantis" is not one of the allowed values: DE, FR, GB, IT, NL, US.'
    )  # row 4 of the file, as a spreadsheet app shows it
    _edit(frame, 4, "country", "GB")
    expect(summary).to_have_text("All 2 rows are valid.")
    frame.locator("#submit").click()
    expect(frame.locator("#done")).to_have_text("Delivered 2 rows.", timeout=120_000)
    page.context.close()
