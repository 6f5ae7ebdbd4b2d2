"""The embed SDK in real Chromium: the plain-HTML and React quick starts (browser/examples),
served on the client's origin, the host-page destination's hand-off and acknowledgement,
the row cap, cancelling, theming and the protocol's origin checks."""

from __future__ import annotations

import functools
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, FrameLocator, Page, expect
from sqlalchemy import select

from tests.conftest import free_port
from tests.e2e.conftest import Demo

pytestmark = pytest.mark.e2e

BROWSER = Path(__file__).resolve().parents[2] / "browser"
EXAMPLES = BROWSER / "examples"
PEOPLE = {
    "name": "people",
    "title": "people",
    "fields": [
        {"name": "name", "title": "Name", "type": "string"},
        {"name": "age", "title": "Age", "type": "integer"},
    ],
}
CSV = "Name,Age\nAda,36\nGrace,45\nKatherine,101\n"
ROWS = [
    {"name": "Ada", "age": 36},
    {"name": "Grace", "age": 45},
    {"name": "Katherine", "age": 101},
]


def _runtime(demo: Demo) -> Any:
    from server.runtime import Runtime
    from server.settings import Settings

    env = {**os.environ, "LOADBAY_DATA_DIR": str(demo.data_dir)}
    env.pop("DATABASE_URL", None)
    return Runtime.from_settings(Settings.from_env(env))


def _host_page_template(demo: Demo, max_rows: int) -> str:
    """A template of the demo organisation whose one destination is the host page."""
    from server import db, destinations

    template_id = demo.add_template(PEOPLE)
    rt = _runtime(demo)
    with rt.sessions() as session:
        org = session.get(db.Organisation, demo.state["org_id"])
    destinations.create_destination(
        rt, org, template_id, "host-page", "the page", {"max_rows": max_rows}
    )
    return template_id


def _deliveries(demo: Demo, import_id: str) -> list[tuple[str, list[str]]]:
    from server import db

    with _runtime(demo).sessions() as session:
        found = []
        for delivery in session.scalars(
            select(db.Delivery).where(db.Delivery.import_id == import_id)
        ):
            outcomes = session.scalars(
                select(db.DeliveryAttempt.outcome).where(
                    db.DeliveryAttempt.delivery_id == delivery.id
                )
            ).all()
            found.append((delivery.status, list(outcomes)))
        return found


def _filled(text: str, demo: Demo, template_id: str) -> str:
    return (
        text.replace("{{LOADBAY_URL}}", demo.importer_origin)
        .replace("{{PUBLISHABLE_KEY}}", demo.state["publishable_key"])
        .replace("{{TEMPLATE_ID}}", template_id)
    )


@dataclass(frozen=True)
class Site:
    """The client's site: the examples served as files, from an origin of their own."""

    origin: str
    root: Path


@pytest.fixture(scope="module")
def site(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A static file server on loopback standing for the client's web server, its origin
    added to the demo organisation's allowed origins (as its admin would)."""
    from server import db

    root = tmp_path_factory.mktemp("site")
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    with _runtime(demo).sessions.begin() as session:
        org = session.get(db.Organisation, demo.state["org_id"])
        assert org is not None
        org.allowed_origins = [*org.allowed_origins, origin]
    handler = functools.partial(QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Site(origin, root)
    server.shutdown()
    server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


@pytest.fixture
def plain(browser: Browser, demo: Demo, site: Site) -> Iterator[Any]:
    """Open browser/examples/plain.html, as is but for its three values, on the site."""
    contexts = []

    def open_example(template_id: str) -> tuple[Page, list[str]]:
        context = browser.new_context(ignore_https_errors=True)
        contexts.append(context)
        requests: list[str] = []
        context.on("request", lambda request: requests.append(f"{request.method} {request.url}"))
        html = _filled((EXAMPLES / "plain.html").read_text(encoding="utf-8"), demo, template_id)
        (site.root / f"plain-{template_id}.html").write_text(html, encoding="utf-8")
        page = context.new_page()
        page.goto(f"{site.origin}/plain-{template_id}.html")
        return page, requests

    yield open_example
    for context in contexts:
        context.close()


def _importer(page: Page) -> FrameLocator:
    frame = page.frame_locator('iframe[title="Data importer"]')
    expect(frame.locator("#engine-status")).to_have_text("Ready.", timeout=60_000)
    return frame


def _pick_and_submit(frame: FrameLocator, path: Path) -> None:
    frame.locator("#file-input").set_input_files(path)
    frame.locator("#map-continue").click()
    expect(frame.locator("#summary")).to_have_text("All 3 rows are valid.", timeout=30_000)
    frame.locator("#submit").click()


def _picked(
    plain: Any, demo: Demo, tmp_path: Path, max_rows: int = 50
) -> tuple[Page, list[str], FrameLocator, Path]:
    """The plain example for a host-page template, opened, ready, with people.csv picked."""
    template_id = _host_page_template(demo, max_rows=max_rows)
    page, requests = plain(template_id)
    page.locator("#import").click()
    frame = _importer(page)
    csv_path = tmp_path / "people.csv"
    csv_path.write_text(CSV, encoding="utf-8")
    frame.locator("#file-input").set_input_files(csv_path)
    return page, requests, frame, csv_path


def test_the_plain_example_is_handed_the_rows_and_its_ack_delivers_the_import(
    plain: Any, demo: Demo, tmp_path: Path
) -> None:
    template_id = _host_page_template(demo, max_rows=50)
    page, requests = plain(template_id)
    # Warm start: loading embed.js framed the preload page before anything was opened.
    preload = page.locator('iframe[data-loadbay="preload"]')
    expect(preload).to_have_attribute("src", f"{demo.importer_origin}/importer/preload")
    page.locator("#import").click()
    expect(page.locator('[data-loadbay="modal"]')).to_be_visible()
    expect(preload).to_have_count(0)
    frame = _importer(page)
    # The example's theme and wording reached the importer page.
    expect(frame.locator("h1")).to_have_text("Import your people")
    primary = frame.locator("html").evaluate(
        "(e) => getComputedStyle(e).getPropertyValue('--loadbay-primary').trim()"
    )
    assert primary == "#0b6e4f"

    csv_path = tmp_path / "people.csv"
    csv_path.write_text(CSV, encoding="utf-8")
    frame.locator("#file-input").set_input_files(csv_path)
    button = frame.locator("#map-continue")
    assert button.evaluate("(b) => getComputedStyle(b).borderTopLeftRadius") == "10px"
    assert button.evaluate("(b) => getComputedStyle(b).backgroundColor") == "rgb(11, 110, 79)"
    button.click()
    expect(frame.locator("#summary")).to_have_text("All 3 rows are valid.", timeout=30_000)
    frame.locator("#submit").click()
    expect(frame.locator("#done")).to_have_text("Delivered 3 rows.", timeout=60_000)
    expect(frame.locator("#done")).to_have_attribute("data-status", "delivered")
    assert page.evaluate("() => window.received") == ROWS
    expect(page.locator("#status")).to_contain_text(": delivered (3 rows)")
    steps = page.locator("#log li").all_text_contents()
    assert steps[0] == "step: ready"
    assert "step: engine-ready" in steps
    assert any(s.startswith("data: 3 rows of imp_") for s in steps)

    import_id = page.locator("#status").text_content().split()[1].rstrip(":")  # type: ignore[union-attr]
    # Delivered by the page's acknowledgement, after the importer fetched the rows.
    assert _deliveries(demo, import_id) == [("delivered", ["delivered"])]
    assert any(r.endswith(f"/api/v1/imports/{import_id}/handoff/ack") for r in requests)


def test_on_step_reports_every_step_of_a_whole_import(
    plain: Any, demo: Demo, tmp_path: Path
) -> None:
    page, _, frame, csv_path = _picked(plain, demo, tmp_path)
    expect(frame.locator("#map-continue")).to_be_visible()
    # A screen drawn again (here: the header row confirmed) is not a new step.
    frame.locator("#header-row-confirm").click()
    expect(frame.locator("#header-row-status")).to_be_visible()
    frame.locator("#map-continue").click()
    expect(frame.locator("#summary")).to_have_text("All 3 rows are valid.", timeout=30_000)
    frame.locator("#submit").click()
    expect(frame.locator("#done")).to_have_text("Delivered 3 rows.", timeout=60_000)
    expect(page.locator("#status")).to_contain_text(": delivered (3 rows)")
    frame.locator("#import-another").click()
    expect(frame.locator("#file-input")).to_be_visible()
    expect(page.locator("#log li").last).to_have_text("step: start")
    steps = [s for s in page.locator("#log li").all_text_contents() if s.startswith("step: ")]
    assert steps.count("step: engine-ready") == 1
    assert [s for s in steps if s != "step: engine-ready"] == [
        "step: ready",
        "step: start",
        "step: mapping",
        "step: review",
        "step: submitting",
        "step: done",
        "step: start",
    ]


def test_above_the_cap_the_importer_says_so_before_anything_is_sent(
    plain: Any, demo: Demo, tmp_path: Path
) -> None:
    page, requests, frame, _ = _picked(plain, demo, tmp_path, max_rows=2)
    frame.locator("#map-continue").click()
    # The review screen says so before the user submits, and Submit is off.
    expect(frame.locator("#summary")).to_have_text("All 3 rows are valid.")
    expect(frame.locator("#host-page-cap")).to_have_text(
        "This file has 3 rows to import; this page can take at most 2 at once. "
        "Split the file, or remove rows, and try again."
    )
    expect(frame.locator("#submit")).to_be_disabled()
    expect(page.locator("#log li").last).to_have_text("step: over-host-page-cap")
    # Deleting a row brings it under the cap: the warning goes and Submit comes back.
    frame.locator("#grid .cell-check input").first.check()
    frame.locator("#delete-selected").click()
    expect(frame.locator("#host-page-cap")).to_be_hidden()
    expect(frame.locator("#submit")).to_be_enabled()
    assert not [r for r in requests if r.startswith("POST ") and "/api/v1/imports" in r]
    assert page.evaluate("() => window.received") == []


def test_closing_the_modal_cancels_at_any_step(plain: Any, demo: Demo, tmp_path: Path) -> None:
    page, _, frame, csv_path = _picked(plain, demo, tmp_path)
    expect(frame.locator("#map-continue")).to_be_visible()
    page.locator('[data-loadbay="close"]').click()
    modal = page.locator('[data-loadbay="modal"]')
    expect(modal).to_be_hidden()
    expect(page.locator("#status")).to_have_text("Import cancelled.")
    # Warm start: the closed importer was kept, hidden, with its booted engine; opening
    # again shows that one at the file picker (the file dropped), ready, not a new frame.
    logged = page.locator("#log li").count()
    page.locator("#import").click()
    expect(modal).to_be_visible()
    expect(page.locator('iframe[title="Data importer"]')).to_have_count(1)
    expect(frame.locator("#engine-status")).to_have_text("Ready.")
    expect(frame.locator("#file-input")).to_be_visible()
    expect(frame.locator("#map-continue")).to_have_count(0)
    steps = page.locator("#log li").all_text_contents()[logged:]
    assert steps == ["step: ready", "step: engine-ready", "step: start"]
    expect(page.locator('[data-loadbay="close"]')).to_be_focused()
    # Escape cancels too; and the reopened importer imports as a new one does.
    page.locator('[data-loadbay="close"]').press("Escape")
    expect(modal).to_be_hidden()
    page.locator("#import").click()
    _pick_and_submit(frame, csv_path)
    expect(frame.locator("#done")).to_have_text("Delivered 3 rows.", timeout=60_000)
    assert page.evaluate("() => window.received") == ROWS


def test_messages_from_anywhere_but_the_importer_are_ignored(plain: Any, demo: Demo) -> None:
    template_id = _host_page_template(demo, max_rows=50)
    page, _ = plain(template_id)
    page.locator("#import").click()
    _importer(page)
    # The right shape, from the wrong window and origin (the page itself): ignored.
    page.evaluate(
        """() => window.postMessage({protocol: "loadbay", version: 1, type: "complete",
             importId: "imp_forged", rows: 1, status: "delivered"}, "*")"""
    )
    page.evaluate(
        """() => window.postMessage({protocol: "loadbay", version: 1, type: "data",
             importId: "imp_forged", rows: [{name: "x"}], total: 1}, "*")"""
    )
    page.wait_for_timeout(300)
    expect(page.locator("#status")).to_have_text("No import yet.")
    assert page.evaluate("() => window.received") == []
    # The importer ignores an ack that is not its page's: it posts to the validated origin.
    importer = next(f for f in page.frames if f.url.startswith(f"{demo.importer_origin}/importer?"))
    assert "origin=http%3A%2F%2F127.0.0.1%3A" in importer.url


def test_the_react_example_runs_the_importer_inline(
    browser: Browser, demo: Demo, site: Site, tmp_path: Path
) -> None:
    template_id = _host_page_template(demo, max_rows=50)
    bundle = site.root / "react-app.js"
    subprocess.run(  # noqa: S603 - fixed argv
        [
            str(BROWSER / "node_modules" / ".bin" / "esbuild"),
            str(EXAMPLES / "react" / "app.tsx"),
            "--bundle",
            "--format=iife",
            "--jsx=automatic",
            '--define:process.env.NODE_ENV="production"',
            f"--outfile={bundle}",
            "--log-level=warning",
        ],
        check=True,
        cwd=BROWSER,
    )
    config = (
        f'{{"server": "{demo.importer_origin}", "publishableKey": '
        f'"{demo.state["publishable_key"]}", "template": "{template_id}"}}'
    )
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>React</title>'
        f"<script>window.LOADBAY = {config};</script></head>"
        '<body><div id="root"></div><script src="/react-app.js"></script></body></html>'
    )
    (site.root / "react.html").write_text(html, encoding="utf-8")
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    page.goto(f"{site.origin}/react.html")
    expect(page.locator('[data-loadbay="react"] iframe')).to_have_count(1, timeout=30_000)
    frame = _importer(page)
    primary = frame.locator("html").evaluate(
        "(e) => getComputedStyle(e).getPropertyValue('--loadbay-primary').trim()"
    )
    assert primary == "#6b2fa3"
    csv_path = tmp_path / "people.csv"
    csv_path.write_text(CSV, encoding="utf-8")
    _pick_and_submit(frame, csv_path)
    expect(frame.locator("#done")).to_have_text("Delivered 3 rows.", timeout=60_000)
    expect(page.locator("#status")).to_have_text("Import delivered (3 rows)")
    assert page.evaluate("() => window.received") == ROWS
    assert page.locator("#steps li").first.text_content() == "ready"
    context.close()


def test_an_importer_booted_ahead_opens_ready(browser: Browser, demo: Demo) -> None:
    """loadbay.preload(options) boots the importer hidden; open() shows that one, ready."""
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    page.goto(f"{demo.host_page}?open=click")
    page.wait_for_function(
        "() => window.loadbayTimes['engine-ready'] !== undefined", timeout=60_000
    )
    modal = page.locator('[data-loadbay="modal"]')
    expect(modal).to_be_hidden()
    assert page.locator("iframe").count() == 1  # the asset preload gave way to the importer
    booted_at = page.evaluate("() => window.loadbayTimes['engine-ready']")
    page.locator("#open-importer").click()
    expect(modal).to_be_visible()
    frame = page.frame_locator('iframe[title="Data importer"]')
    expect(frame.locator("#engine-status")).to_have_text("Ready.")
    times = page.evaluate("() => window.loadbayTimes")
    assert times["opened"] > booted_at
    assert times["engine-ready"] >= times["opened"]  # told again on open: it was ready
    expect(page.locator('[data-loadbay="close"]')).to_be_focused()
    context.close()


def test_the_custom_element_opens_inline_and_dispatches_events(
    browser: Browser, demo: Demo, site: Site
) -> None:
    template_id = _host_page_template(demo, max_rows=50)
    html = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Element</title>
<script src="{demo.importer_origin}/embed.js"></script></head><body>
<script>window.steps = []; document.addEventListener("loadbay-step",
  (e) => window.steps.push(e.detail));</script>
<loadbay-importer publishable-key="{demo.state["publishable_key"]}" template="{template_id}"
  theme='{{"primary": "#123456"}}' style="display:block;height:40rem"></loadbay-importer>
</body></html>"""
    (site.root / "element.html").write_text(html, encoding="utf-8")
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    page.goto(f"{site.origin}/element.html")
    expect(page.locator("loadbay-importer iframe")).to_have_count(1)
    frame = _importer(page)
    primary = frame.locator("html").evaluate(
        "(e) => getComputedStyle(e).getPropertyValue('--loadbay-primary').trim()"
    )
    assert primary == "#123456"
    steps = page.evaluate("() => window.steps")
    assert steps[0] == "ready" and "engine-ready" in steps
    page.evaluate("() => document.querySelector('loadbay-importer').remove()")
    expect(page.locator("iframe[title='Data importer']")).to_have_count(0)
    context.close()
