"""The configuration screens in a real Chromium over HTTPS (uvicorn, TLS): an owner creates
a template in the editor (with the keyboard alone), classifies a field, exports its Table
Schema JSON and imports it as a second template, edits it (the edits gather in a draft;
one Save makes one new version in the history),
deletes and restores it; creates a webhook destination to a loopback receiver and a
PostgreSQL one to the local server, tests each and reads the result; creates, rotates and
revokes secret keys; and finds each step's audit entry on the audit page. axe-core runs on
every screen: no serious or critical violation; each is then screenshotted into
tests/e2e/artifacts/config-NN.png."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Browser, Page, expect

from destinations.webhook import new_secret
from server import audit, keys, templates
from server.runtime import Runtime
from tests.conftest import PG_ADMIN_URL, Receiver
from tests.e2e.conftest import axe_violations, serious, serving
from tests.server.users_support import PASSWORD, OrgWithOwner, free_port, org_with_owner

if TYPE_CHECKING:
    from tests.conftest import RuntimeFactory

pytestmark = pytest.mark.e2e
ARTIFACTS = Path(__file__).parent / "artifacts"  # screenshots of the screens (gitignored)


@pytest.fixture
def store() -> str:
    return "sqlite"


@dataclass(frozen=True)
class Served:
    origin: str
    rt: Runtime
    acme: OrgWithOwner


@pytest.fixture
def served(runtime_factory: RuntimeFactory) -> Iterator[Served]:
    port = free_port()
    origin = f"https://127.0.0.1:{port}"
    rt = runtime_factory(public_url=origin)
    acme = org_with_owner(rt)
    with serving(rt, port):
        yield Served(origin, rt, acme)


class Axe:
    """axe-core on each screen (tests.e2e.conftest.axe_violations: the test's context
    bypasses the dashboard's CSP for this script only), screenshotted after."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.checked: list[str] = []

    def check(self, page: Page) -> None:
        bad = serious(axe_violations(page, self.origin))
        assert bad == [], f"{page.url}: {bad}"
        self.checked.append(page.url)
        ARTIFACTS.mkdir(exist_ok=True)
        name = f"config-{len(self.checked):02d}.png"
        page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def _sign_in(page: Page, origin: str, email: str) -> None:
    page.goto(f"{origin}/dashboard/sign-in")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_text(f"Signed in as {email}, owner")).to_be_visible()


def _templates(page: Page, axe: Axe, served: Served, tmp_path: Path) -> str:
    page.get_by_role("link", name="Templates", exact=True).click()
    expect(page.get_by_role("heading", name="Templates", exact=True)).to_be_visible()
    axe.check(page)
    # The new-template form, with the keyboard alone: type, Tab, choose, Enter.
    page.get_by_label("Name", exact=True).focus()
    page.keyboard.type("people")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Title", exact=True)).to_be_focused()
    page.keyboard.type("People")
    page.keyboard.press("Tab")
    expect(page.get_by_label("First field's name")).to_be_focused()
    page.keyboard.type("email")
    page.keyboard.press("Tab")
    expect(page.get_by_label("First field's type")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Create template")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Template created.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Template people (version 1)")
    editor_url = page.url.split("?")[0]
    axe.check(page)

    page.get_by_role("link", name="Edit field email").click()
    axe.check(page)
    page.get_by_label("Format").fill("email")
    page.get_by_label("Required").check()
    page.get_by_label("Synonyms (column headings").fill("E-mail\nMail")
    page.get_by_label("Trim spaces").check()
    page.get_by_label("Classification", exact=True).select_option(label="personal data")
    page.get_by_role("button", name="Apply the field").click()
    expect(page.get_by_role("status")).to_have_text(
        "Field changed in the draft: Save makes the changes a new version."
    )
    page.get_by_role("link", name="Add a field").click()
    page.get_by_label("Field name").fill("age")
    page.get_by_label("Type").select_option("integer")
    page.get_by_label("Minimum").fill("0")
    page.get_by_role("button", name="Apply the field").click()
    fields = page.locator("#fields tbody tr")
    expect(fields).to_have_count(2)
    expect(fields.first).to_contain_text("personal data")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Template people (version 1, with unsaved changes)"
    )
    page.get_by_role("button", name="Save", exact=True).click()  # two edits: one version
    expect(page.get_by_role("status")).to_have_text("Saved: a new version.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Template people (version 2)")

    with page.expect_download() as download:
        page.get_by_role("link", name="Export Table Schema JSON").click()
    saved = tmp_path / "people.schema.json"
    download.value.save_as(saved)
    exported = json.loads(saved.read_text())
    assert [f["name"] for f in exported["fields"]] == ["email", "age"]
    assert exported["fields"][0]["x-loadbay"]["classification"] == "personal"

    page.get_by_role("link", name="All templates").click()
    page.get_by_label("Table Schema JSON (a new template)").fill(
        json.dumps({**exported, "name": "people-copy"})
    )
    page.get_by_role("button", name="Import as a new template").click()
    expect(page.get_by_role("status")).to_have_text("Imported: a new version.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Template people-copy (version 1)")
    copy_id = page.url.split("/")[-1].split("?")[0]
    copied = templates.get_template(served.rt, served.acme.org.id, copy_id)
    assert copied.schema == {**exported, "name": "people-copy"}

    page.goto(editor_url)
    page.get_by_label("Keep imported rows for (days)").fill("14")
    page.get_by_label("Invalid rows").select_option("valid-only")
    page.get_by_role("button", name="Apply the settings").click()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Saved: a new version.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Template people (version 3)")
    page.get_by_role("button", name="Save", exact=True).click()  # nothing changed since
    expect(page.get_by_role("status")).to_have_text(
        "Nothing to save: the draft holds no change, so no new version."
    )
    history = page.locator("#versions tbody tr")
    expect(history).to_have_count(3)
    expect(history.first).to_contain_text("email, age")
    expect(history.last).to_contain_text("email")

    page.get_by_role("button", name="Delete template").click()
    expect(page.locator("#deleted")).to_contain_text("restored for 30 days")
    axe.check(page)
    page.get_by_role("button", name="Restore template").click()
    expect(page.get_by_role("status")).to_have_text("Template restored.")
    return editor_url.rsplit("/", 1)[1]


def _destinations(page: Page, axe: Axe, template_id: str, receiver: Receiver) -> None:
    page.get_by_role("link", name="Destinations", exact=True).click()
    axe.check(page)
    page.get_by_label("Kind").select_option("webhook")
    page.get_by_role("button", name="Continue").click()
    expect(
        page.get_by_role("heading", name="New destination: Webhook (Standard Webhooks)")
    ).to_be_visible()
    axe.check(page)
    page.get_by_label("Destination name").fill("receiver")
    page.get_by_label("Template").select_option(template_id)
    page.get_by_label("url (required)").fill(receiver.url)
    page.get_by_label("secret — secret, not set").fill(new_secret())
    page.get_by_role("button", name="Create destination").click()
    expect(page.get_by_role("status")).to_have_text("Destination created: its check passed.")
    expect(page.get_by_label("secret — secret, set")).to_have_value("")
    axe.check(page)
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).to_have_text(
        "Connection test passed: The settings are valid and the address is allowed."
    )
    axe.check(page)
    page.get_by_label("Batches sent at once").fill("2")
    page.get_by_role("button", name="Save destination").click()
    expect(page.get_by_role("status")).to_have_text("Destination saved.")
    expect(page.get_by_label("Batches sent at once")).to_have_value("2")

    page.get_by_role("link", name="All destinations").click()
    page.get_by_label("Kind").select_option("postgresql")
    page.get_by_role("button", name="Continue").click()
    axe.check(page)
    admin = PG_ADMIN_URL.split("://", 1)[1]
    page.get_by_label("Destination name").fill("warehouse")
    page.get_by_label("dsn (required)").fill(f"postgresql://{admin}")
    page.get_by_label("table (required)").fill("people")
    page.get_by_label("sslmode").fill("disable")
    page.get_by_label("create_table").check()
    page.get_by_role("button", name="Create destination").click()
    expect(page.get_by_role("status")).to_have_text("Destination created: its check passed.")
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).to_contain_text("Connection test passed: Connected; ")
    page.get_by_role("link", name="All destinations").click()
    expect(page.locator("#destinations tbody tr")).to_have_count(2)


def _keys(page: Page, axe: Axe, served: Served) -> None:
    page.get_by_role("link", name="API keys").click()
    axe.check(page)
    page.get_by_label("Key name").fill("backend")
    page.get_by_role("button", name="Create secret key").click()
    first = page.locator("#new-secret").inner_text()
    assert keys.authenticate(served.rt, first).id == served.acme.org.id
    axe.check(page)
    page.get_by_role("button", name="Rotate key backend").click()
    second = page.locator("#new-secret").inner_text()
    assert second != first
    rows = page.locator("#keys tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("revoked")
    page.get_by_role("button", name="Revoke key backend").click()
    expect(page.get_by_role("status")).to_have_text("Key revoked: it opens nothing from now on.")
    expect(page.locator("#new-secret")).to_have_count(0)
    for secret in (first, second):
        with pytest.raises(Exception, match="Unknown or revoked"):
            keys.authenticate(served.rt, secret)


def test_templates_destinations_and_keys_with_their_audit_entries(
    browser: Browser, served: Served, receiver: Receiver, tmp_path: Path
) -> None:
    context = browser.new_context(ignore_https_errors=True, bypass_csp=True, accept_downloads=True)
    page = context.new_page()
    axe = Axe(served.origin)
    _sign_in(page, served.origin, served.acme.email)
    template_id = _templates(page, axe, served, tmp_path)
    _destinations(page, axe, template_id, receiver)
    _keys(page, axe, served)
    page.get_by_role("link", name="Settings", exact=True).click()
    axe.check(page)
    page.get_by_label("Default retention (days)").fill("21")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_have_text("Settings saved.")

    page.get_by_role("link", name="Audit log").click()
    table = page.locator("#audit")
    user = f"user:{served.acme.owner_id}"
    for action in (
        "template.created",
        "template.updated",
        "template.deleted",
        "template.restored",
        "destination.created",
        "destination.tested",
        "destination.updated",
        "key.created",
        "key.revoked",
        "settings.updated",
    ):
        row = table.locator("tbody tr", has=page.get_by_role("cell", name=action, exact=True))
        expect(row.first).to_contain_text(user)
    page.get_by_label("Action").fill("template.created")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit tbody tr")).to_have_count(2)  # people, and its copy
    assert audit.verify(served.rt).intact
    screens = {
        re.sub(r"/(tpl|dst)_\w+", "/{id}", u.split("://")[1].split("/", 1)[1]) for u in axe.checked
    }
    assert screens == {
        "dashboard/templates",
        "dashboard/templates/{id}?done=created",
        "dashboard/templates/{id}/field?n=0",
        "dashboard/templates/{id}?done=deleted",
        "dashboard/destinations",
        "dashboard/destinations/new?kind=webhook",
        "dashboard/destinations/new?kind=postgresql",
        "dashboard/destinations/{id}?done=created",
        "dashboard/destinations/{id}/test",
        "dashboard/keys",
        "dashboard/settings",
    }
    context.close()
