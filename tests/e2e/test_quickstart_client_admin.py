"""docs/quickstart-client-admin.md, followed literally in Chromium: each label the test
uses is quoted in the doc (checked first), then sign in, a template, a webhook destination,
the allowed origin, the keys, and the doc's own embed code on a page of that origin opens
the importer, which reads and checks a file against the new template."""

from __future__ import annotations

import functools
import re
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from destinations.webhook import new_secret
from tests.conftest import REPO, Receiver, free_port
from tests.e2e.test_dashboard_config import Served, _sign_in, served, store  # noqa: F401
from tests.e2e.test_sdk import QuietHandler

pytestmark = pytest.mark.e2e
DOC = REPO / "docs" / "quickstart-client-admin.md"
LABELS = [
    "E-mail",
    "Password",
    "Templates",
    "Name",
    "Title",
    "First field's name",
    "First field's type",
    "Create template",
    "Template created.",
    "Destinations",
    "Kind",
    "Continue",
    "Destination name",
    "Template",
    "url (required)",
    "secret",
    "Create destination",
    "Destination created: its check passed.",
    "Settings",
    "Allowed origins (one a line)",
    "Save settings",
    "Settings saved.",
    "API keys",
    "Publishable key",
    "Key name",
    "Create secret key",
]


def test_the_doc_quotes_every_label_the_test_follows() -> None:
    text = " ".join(DOC.read_text(encoding="utf-8").split())  # a quote may span a line break
    quoted = set(re.findall(r"\"([^\"]+)\"", text))
    assert [label for label in LABELS if label not in quoted] == []


def test_the_client_admin_quick_start_ends_with_an_importer_on_the_app(
    browser: Browser,
    served: Served,  # noqa: F811 - the fixture imported above
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    site_port = free_port()
    app_origin = f"http://127.0.0.1:{site_port}"
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    # 1. Sign in.
    _sign_in(page, served.origin, served.acme.email)
    # 2. A template.
    page.get_by_role("link", name="Templates", exact=True).click()
    page.get_by_label("Name", exact=True).fill("contacts")
    page.get_by_label("Title", exact=True).fill("Contacts")
    page.get_by_label("First field's name").fill("email")
    page.get_by_label("First field's type").select_option("string")
    page.get_by_role("button", name="Create template").click()
    expect(page.get_by_role("status")).to_have_text("Template created.")
    template_id = page.url.split("?")[0].rsplit("/", 1)[1]
    assert template_id.startswith("tpl_")
    # 3. A destination.
    page.get_by_role("link", name="Destinations", exact=True).click()
    page.get_by_label("Kind").select_option("webhook")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Destination name").fill("crm")
    page.get_by_label("Template").select_option(template_id)
    page.get_by_label("url (required)").fill(receiver.url)
    page.get_by_label("secret — secret, not set").fill(new_secret())
    page.get_by_role("button", name="Create destination").click()
    expect(page.get_by_role("status")).to_have_text("Destination created: its check passed.")
    # 4. The app's origin.
    page.get_by_role("link", name="Settings", exact=True).click()
    page.get_by_label("Allowed origins (one a line)").fill(app_origin)
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_have_text("Settings saved.")
    # 5. Keys.
    page.get_by_role("link", name="API keys", exact=True).click()
    publishable = page.locator("#publishable-key").inner_text()
    assert publishable.startswith("pk_")
    page.get_by_label("Key name").fill("backend")
    page.get_by_role("button", name="Create secret key").click()
    expect(page.locator("#new-secret")).to_have_text(re.compile(r"^lb_sk_"))
    # 6. The doc's embed code, its three values filled in, on a page of the app's origin.
    [snippet] = re.findall(r"```html\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    html = (
        snippet.replace("https://import.example.com", served.origin)
        .replace("pk_...", publishable)
        .replace("tpl_...", template_id)
    )
    (tmp_path / "app.html").write_text(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>App</title>'
        f"</head><body>{html}</body></html>",
        encoding="utf-8",
    )
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    site = ThreadingHTTPServer(("127.0.0.1", site_port), handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        app = context.new_page()
        app.goto(f"{app_origin}/app.html")
        frame = app.frame_locator('iframe[title="Data importer"]')
        expect(frame.locator("h1")).to_have_text("Import Contacts")
        expect(frame.locator("#engine-status")).to_have_text("Ready.", timeout=90_000)
        csv_path = tmp_path / "contacts.csv"
        csv_path.write_text("email\nada@example.com\ngrace@example.com\n", encoding="utf-8")
        frame.locator("#file-input").set_input_files(csv_path)
        frame.locator("#map-continue").click()
        expect(frame.locator("#summary")).to_have_text("All 2 rows are valid.", timeout=60_000)
    finally:
        site.shutdown()
        site.server_close()
        context.close()
