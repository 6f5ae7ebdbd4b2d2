"""The importer's start and mapping steps in real Chromium: what the user sees, the keyboard,
every language, and axe-core's accessibility rules on each step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Frame, FrameLocator, Page, expect

from tests.e2e.conftest import Demo, axe_violations

pytestmark = pytest.mark.e2e

EN = Path(__file__).resolve().parents[2] / "browser" / "src" / "i18n" / "en.js"
CLEAN = (
    "Full Name,E-mail,Telephone,Country,Signup Date,Amount,Notes\n"
    "Ann Lee,ann@example.com,+44 20 7946 0001,DE,2024-01-02,1.5,private one\n"
    "Bob Ray,bob@example.com,,FR,2024-02-03,2,private two\n"
    "Cy Dunn,cy@example.com,+44 20 7946 0003,GB,2024-03-04,3,private three\n"
    "Di Fox,di@example.com,+44 20 7946 0004,IT,2024-04-05,4,private four\n"
)


def _open(browser: Browser, demo: Demo, locale: str = "en-GB") -> tuple[Page, FrameLocator, Frame]:
    context = browser.new_context(ignore_https_errors=True, locale=locale)
    page = context.new_page()
    page.goto(demo.host_page)
    frame = page.frame_locator("iframe")
    expect(frame.locator("#engine-status")).not_to_have_text(re.compile(r"…$"), timeout=60_000)
    importer = next(f for f in page.frames if f.url.startswith(demo.importer_origin))
    return page, frame, importer


def _csv(tmp_path: Path, text: str = CLEAN, name: str = "contacts.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _english_strings() -> set[str]:
    """en.js's texts without parameters, long enough not to be a name or a shared word."""
    texts = re.findall(r':\s*"((?:[^"\\]|\\.)*)"', EN.read_text("utf-8"))
    return {t for t in texts if "{" not in t and len(t) > 5 and " " in t}


def test_mapping_shows_samples_unimported_columns_and_no_null(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    page, frame, _ = _open(browser, demo)
    frame.locator("#file-input").set_input_files(_csv(tmp_path))
    expect(frame.locator("#map-email")).to_have_value("1")
    expect(frame.locator("#samples-email")).to_have_text(
        "“ann@example.com”, “bob@example.com”, “cy@example.com”"
    )
    # The unmapped column is named, with its values, and the user is told it stays here.
    unimported = frame.locator("#not-imported li")
    expect(unimported).to_have_count(1)
    expect(unimported).to_contain_text("Notes: not imported; it never leaves your computer")
    expect(unimported).to_contain_text("“private one”")
    # Unmapping a column lists it at once; mapping it again takes it off the list.
    frame.locator("#map-phone").select_option("")
    expect(unimported).to_have_count(2)
    expect(unimported.nth(0)).to_contain_text("Telephone: not imported")
    expect(frame.locator("#samples-phone")).to_have_text("")
    frame.locator("#map-phone").select_option("2")
    expect(unimported).to_have_count(1)
    # The template's description and allowed values are shown where the user maps.
    country = frame.locator("th", has=frame.locator("label[for='map-country']"))
    expect(country).to_contain_text("ISO 3166-1 alpha-2 code")
    expect(country).to_contain_text("Allowed values: DE, FR, GB, IT, NL, US")
    text = frame.locator("#app").inner_text()
    assert "null" not in text and "undefined" not in text
    # Every select has a label the screen reader reads.
    expect(frame.get_by_label("Email *")).to_have_value("1")
    page.context.close()


def test_an_unsure_match_is_proposed_and_taken_only_by_the_user(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    page, frame, _ = _open(browser, demo)
    text = CLEAN.replace("Telephone", "Mobile phone")
    frame.locator("#file-input").set_input_files(_csv(tmp_path, text))
    expect(frame.locator("#map-email")).to_have_value("1")
    expect(frame.locator("#map-phone")).to_have_value("")  # not pre-selected
    expect(frame.locator("#match-phone")).to_contain_text("Maybe “Mobile phone” (68%)?")
    frame.locator("#accept-phone").click()
    expect(frame.locator("#map-phone")).to_have_value("2")
    expect(frame.locator("#map-phone")).to_be_focused()
    page.context.close()


def test_the_header_row_is_picked_by_clicking_its_row_number(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    page, frame, _ = _open(browser, demo)
    # A file whose first data row the engine took for the header is set right by a click.
    text = "Full Name,E-mail\nAnn Lee,ann@example.com\nBob Ray,bob@example.com\n"
    frame.locator("#file-input").set_input_files(_csv(tmp_path, text))
    expect(frame.locator("#file-preview tr.header-row th").nth(1)).to_have_text("Full Name")
    frame.locator("#file-preview button.pick-header[data-row='2']").click()
    expect(frame.locator("#header-row-status")).to_have_text("Row 2 holds the column names.")
    expect(frame.locator("#file-preview tr.header-row th").nth(1)).to_have_text("Ann Lee")
    expect(frame.locator("#mapping-intro")).to_contain_text("1 row.")  # the plural form
    page.context.close()


def test_json_shows_no_header_row_and_back_returns_to_the_start(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    page, frame, _ = _open(browser, demo)
    path = tmp_path / "contacts.json"
    path.write_text('[{"full_name": "Ann", "email": "ann@example.com"}]', encoding="utf-8")
    frame.locator("#file-input").set_input_files(path)
    expect(frame.locator("#map-email")).to_have_value("1")
    expect(frame.locator("#header-row")).to_have_count(0)
    expect(frame.locator("#no-header-row")).to_have_count(0)
    assert "Header row" not in frame.locator("#app").inner_text()
    expect(frame.locator("#screen-heading")).to_be_focused()  # focus moves to the new screen
    frame.locator("#mapping-back").click()
    expect(frame.locator("#file-input")).to_be_visible()
    expect(frame.locator("#screen-heading")).to_have_text("Choose your file")
    expect(frame.locator("#screen-heading")).to_be_focused()
    page.context.close()


def test_back_from_the_review_asks_before_a_new_reading_drops_the_fixes(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    page, frame, _ = _open(browser, demo)
    frame.locator("#file-input").set_input_files(_csv(tmp_path))
    frame.locator("#map-continue").click()
    expect(frame.locator("#summary")).to_be_visible(timeout=60_000)
    frame.locator("#back").click()
    expect(frame.locator("#map-email")).to_have_value("1")
    # Another header row is another reading of the file: the user is asked first.
    frame.locator("#file-preview button.pick-header[data-row='2']").click()
    expect(frame.locator("#discard-dialog")).to_be_visible()
    expect(frame.locator("#discard-text")).to_contain_text("will be lost")
    frame.locator("#discard-no").click()
    expect(frame.locator("#discard-dialog")).to_be_hidden()
    expect(frame.locator("#file-preview tr.header-row th").nth(1)).to_have_text("Full Name")
    # Same mapping again: straight back to the review.
    frame.locator("#map-continue").click()
    expect(frame.locator("#summary")).to_be_visible(timeout=60_000)
    page.context.close()


@pytest.mark.parametrize("locale", ["en-GB", "de-DE", "fr-FR", "es-ES", "ja-JP"])
def test_every_step_in_every_language_passes_axe_with_no_english_left(
    browser: Browser, demo: Demo, tmp_path: Path, locale: str
) -> None:
    page, frame, importer = _open(browser, demo, locale)
    lang = locale.split("-")[0]
    assert importer.evaluate("() => document.documentElement.lang") == lang
    english = _english_strings()
    keys = re.findall(r'^\s*"([a-z-]+\.[\w.-]+)":', EN.read_text("utf-8"), re.MULTILINE)
    assert len(keys) > 100
    found: dict[str, list[str]] = {}

    def check(step: str) -> None:
        violations = axe_violations(importer, demo.importer_origin)
        assert violations == [], f"{locale} {step}: {violations}"
        text = importer.evaluate("() => document.body.innerText")
        if lang != "en":
            found[step] = sorted(e for e in english if e in text)
        assert [k for k in keys if k in text] == [], step  # no raw message key

    check("start")
    frame.locator("#file-input").set_input_files(_csv(tmp_path))
    expect(frame.locator("#map-email")).to_have_value("1")
    check("mapping")
    frame.locator("#map-continue").click()
    expect(frame.locator("#summary")).to_be_visible(timeout=60_000)
    check("review")
    assert all(v == [] for v in found.values()), found
    page.context.close()


def test_the_start_and_mapping_steps_work_with_the_keyboard_alone(
    browser: Browser, demo: Demo, tmp_path: Path
) -> None:
    page, frame, importer = _open(browser, demo)
    frame.locator("#file-input").set_input_files(_csv(tmp_path))
    expect(frame.locator("#screen-heading")).to_be_focused()
    # Tab walks every control of the step and on out of it (no trap) to Continue; Enter goes on.
    seen: list[str] = []
    for _ in range(80):
        page.keyboard.press("Tab")
        seen.append(importer.evaluate("() => document.activeElement?.id || ''"))
        if seen[-1] == "map-continue":
            break
    assert seen[-1] == "map-continue", seen
    assert {"encoding", "map-full_name", "map-email", "map-amount", "mapping-back"} <= set(seen)
    page.keyboard.press("Enter")
    expect(frame.locator("#summary")).to_be_visible(timeout=60_000)
    page.context.close()
