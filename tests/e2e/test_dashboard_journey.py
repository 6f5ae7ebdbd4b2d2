"""Issue #18's journey, in one test, in a real Chromium against a real `loadbay demo`: an
invitation read from a real SMTP server (aiosmtpd), sign-up, two-factor enrolment,
sign-out, sign-in with a TOTP code computed here; a template made in the editor (its edits
gather in a draft, one Save makes one version) and a webhook destination made in its form,
whose "Test connection" result is read; an import run through the embedded importer on the
demo host page with that template; then, in the dashboard, finding it, downloading it,
revealing its masked personal field, deleting it, and reading the audit entry of each
step. axe-core checks each screen; screenshots go to tests/e2e/artifacts/."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from server import audit, invitations, users
from server.models.accounts import User
from server.runtime import Runtime
from server.settings import Settings
from tests.e2e.conftest import Demo, axe_violations, serious
from tests.server.users_support import Inbox, inbox  # noqa: F401 - inbox is a fixture

pytestmark = pytest.mark.e2e
ARTIFACTS = Path(__file__).parent / "artifacts"
EMAIL = "admin@demo.example"
PASSWORD = "an admin's own long passphrase"
CSV = (
    "Full name,E-mail,Country\nAda Lovelace,ada@example.com,GB\nGrace Hopper,grace@example.com,US\n"
)


def _runtime(demo: Demo, box: Inbox) -> Runtime:
    """The demo's database and settings, in this process, sending mail to the test's SMTP
    server and linking to the demo's origin."""
    env = {
        **os.environ,
        "LOADBAY_DATA_DIR": str(demo.data_dir),
        "LOADBAY_PUBLIC_URL": demo.importer_origin,
        "LOADBAY_SMTP_HOST": box.settings.host,
        "LOADBAY_SMTP_PORT": str(box.settings.port),
        "LOADBAY_SMTP_FROM": box.settings.sender,
    }
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    return Runtime.from_settings(Settings.from_env(env))


def _axe(checker: Page, url: str) -> None:
    """axe-core finds no serious or critical violation on `url`. The checker's context
    bypasses the dashboard's CSP (which allows no injected script) and shares the member's
    session; the member's own context keeps every CSP, the importer's included."""
    checker.goto(url)
    origin = url.split("/dashboard/", 1)[0]
    bad = serious(axe_violations(checker, origin))
    assert bad == [], f"{url}: {bad}"


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _sign_in(page: Page, origin: str) -> None:
    page.goto(f"{origin}/dashboard/sign-in")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_label("E-mail")).to_be_focused()
    page.keyboard.type(EMAIL)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")


def _template_in_the_editor(page: Page, checker: Page) -> str:
    """contacts-personal: full name, e-mail (personal data) and country, made in the
    editor with its draft saved once; the template's id."""
    page.get_by_role("link", name="Templates", exact=True).click()
    page.get_by_label("Name", exact=True).fill("contacts-personal")
    page.get_by_label("Title", exact=True).fill("Contacts")
    page.get_by_label("First field's name").fill("full_name")
    page.get_by_role("button", name="Create template").click()
    expect(page.get_by_role("status")).to_have_text("Template created.")
    template_id = page.url.split("/")[-1].split("?")[0]
    page.get_by_role("link", name="Edit field full_name").click()
    page.get_by_label("Field title").fill("Full name")
    page.get_by_label("Required").check()
    page.get_by_role("button", name="Apply the field").click()
    page.get_by_role("link", name="Add a field").click()
    page.get_by_label("Field name").fill("email")
    page.get_by_label("Format").fill("email")
    page.get_by_label("Synonyms (column headings").fill("E-mail")
    page.get_by_label("Classification", exact=True).select_option(label="personal data")
    page.get_by_role("button", name="Apply the field").click()
    page.get_by_role("link", name="Add a field").click()
    page.get_by_label("Field name").fill("country")
    page.get_by_role("button", name="Apply the field").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Template contacts-personal (version 1, with unsaved changes)"
    )
    _axe(checker, page.url)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Saved: a new version.")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Template contacts-personal (version 2)"
    )
    expect(page.locator("#versions tbody tr")).to_have_count(2)  # three edits, one version
    fields = page.locator("#fields tbody tr")
    expect(fields).to_have_count(3)
    expect(fields.nth(1)).to_contain_text("personal data")
    _shot(page, "template-editor")
    return template_id


def _destination_in_its_form(page: Page, checker: Page, demo: Demo, template_id: str) -> None:
    """The demo's webhook receiver as a destination of the template, made in its form;
    "Test connection" answers and its result is shown."""
    page.get_by_role("link", name="Destinations", exact=True).click()
    page.get_by_label("Kind").select_option("webhook")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Destination name").fill("Demo CRM")
    page.get_by_label("Template").select_option(template_id)
    page.get_by_label("url (required)").fill(f"{demo.importer_origin}/demo/webhook")
    page.get_by_label("secret — secret, not set").fill(demo.state["webhook_secret"])
    page.get_by_role("button", name="Create destination").click()
    expect(page.get_by_role("status")).to_have_text("Destination created: its check passed.")
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).to_have_text(
        "Connection test passed: The settings are valid and the address is allowed."
    )
    _axe(checker, page.url.split("/test")[0])
    _shot(page, "destination-tested")


def test_invite_2fa_template_destination_import_find_download_delete_and_audit(
    browser: Browser,
    demo: Demo,
    inbox: Inbox,  # noqa: F811
    tmp_path: Path,
) -> None:
    origin = demo.importer_origin
    rt = _runtime(demo, inbox)
    org_id = demo.state["org_id"]
    with rt.sessions() as session:
        owner_id = session.scalar(select(User.id).where(User.email == "owner@demo.example"))
    assert owner_id is not None
    invitations.invite(rt, users.Actor(owner_id, org_id, "owner", "127.0.0.1"), EMAIL, "admin")
    link = inbox.invitation_link(EMAIL)
    assert link.startswith(f"{origin}/dashboard/invitations/")

    context = browser.new_context(ignore_https_errors=True, accept_downloads=True)
    page = context.new_page()
    page.goto(link)
    page.get_by_label("Your name").fill("Ada Admin")
    page.get_by_label("Choose a password").fill(PASSWORD)
    page.get_by_role("button", name="Join").click()
    expect(page.get_by_text(f"Signed in as {EMAIL}, admin")).to_be_visible()

    page.get_by_role("link", name="Two-factor").click()
    page.get_by_role("button", name="Set up two-factor sign-in").click()
    totp = pyotp.TOTP(page.locator("#secret").inner_text())
    page.get_by_label("The 6-digit code your app shows").fill(totp.now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    enrolled_at = time.time()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    _sign_in(page, origin)
    code = page.get_by_label("The 6-digit code from your app, or a recovery code")
    code.fill(totp.at(enrolled_at + 30))  # the enrolment's code is spent: the next one
    code.press("Enter")
    expect(page.get_by_text(f"Signed in as {EMAIL}, admin")).to_be_visible()
    checker = browser.new_context(
        ignore_https_errors=True, bypass_csp=True, storage_state=context.storage_state()
    ).new_page()

    template_id = _template_in_the_editor(page, checker)
    _destination_in_its_form(page, checker, demo, template_id)

    host = context.new_page()
    host.goto(f"{demo.host_page}?template={template_id}")
    frame = host.frame_locator("iframe")
    expect(frame.locator("#engine-status")).to_have_text("Ready.", timeout=60_000)
    upload = tmp_path / "december-leads.csv"
    upload.write_text(CSV, encoding="utf-8")
    frame.locator("#file-input").set_input_files(upload)
    expect(frame.locator("#map-email")).to_have_value("1")
    frame.locator("#map-continue").click()
    expect(frame.locator("#summary")).to_have_text("All 2 rows are valid.", timeout=60_000)
    frame.locator("#submit").click()
    expect(frame.locator("#done")).to_have_text("Delivered 2 rows.", timeout=120_000)
    host.close()

    # Find it: the list, searched by file name, with the keyboard.
    page.get_by_role("link", name="Imports").click()
    _axe(checker, page.url)
    page.get_by_label("Search (import id or file name)").fill("december")
    page.get_by_label("Search (import id or file name)").press("Enter")
    rows = page.locator("#imports tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("december-leads.csv")
    expect(rows.first).to_contain_text("delivered")
    _shot(page, "imports-list")
    rows.first.get_by_role("link").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/dashboard/imports/imp_*")
    import_id = page.url.rsplit("/", 1)[-1]
    assert import_id.startswith("imp_")

    expect(page.locator("#status")).to_have_text("delivered")
    expect(page.locator("#timeline li")).to_have_count(4)
    expect(page.locator("#timeline")).to_contain_text("Delivered: 20")
    expect(page.locator("#deliveries")).to_contain_text("Demo CRM")
    preview = page.locator("#preview")
    expect(preview).to_contain_text("Ada Lovelace")
    expect(preview).not_to_contain_text("ada@example.com")
    expect(preview.locator("th").nth(1)).to_have_text("email (personal)")
    _axe(checker, page.url)
    _shot(page, "import-page")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    saved = tmp_path / "download.csv"
    download.value.save_as(saved)
    lines = saved.read_text(encoding="utf-8").splitlines()
    assert lines == [
        "full_name,email,country",
        "Ada Lovelace,ada@example.com,GB",
        "Grace Hopper,grace@example.com,US",
    ]  # an admin may reveal: in clear
    expect(page.locator("#download-masking")).to_contain_text("in clear")

    page.get_by_role("button", name="Reveal email for rows 1-2").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#preview")).to_contain_text("ada@example.com")
    expect(page.locator("#preview")).to_contain_text("grace@example.com")
    _shot(page, "import-revealed")

    page.goto(f"{origin}/dashboard/imports/{import_id}")
    page.get_by_label("I understand").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Delete now")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Import deleted: its rows are shredded.")
    expect(page.locator("#status")).to_have_text("deleted")
    expect(page.locator("#gone")).to_contain_text("was deleted by user:")
    expect(page.get_by_role("link", name="Download CSV")).to_have_count(0)

    page.get_by_role("link", name="Audit log").click()
    with rt.sessions() as session:
        admin_id = session.scalar(select(User.id).where(User.email == EMAIL))
    page.get_by_label("Actor").fill(f"user:{admin_id}")
    page.get_by_role("button", name="Filter").click()
    table = page.locator("#audit")
    for action in (
        "member.joined",
        "template.created",
        "template.updated",
        "destination.created",
        "destination.tested",
        "two-factor.enabled",
        "session.ended",
        "sign-in.succeeded",
        "import.previewed",
        "import.downloaded",
        "import.revealed",
        "import.deleted",
    ):
        expect(table.get_by_role("cell", name=action, exact=True).first).to_be_visible()
    _axe(checker, page.url)
    _shot(page, "audit-log")
    with page.expect_download() as exported:
        page.get_by_role("link", name="JSON").click()
    entries = json.loads(Path(exported.value.path()).read_text(encoding="utf-8"))
    mine = [e for e in entries if e["target"] == import_id]
    by_action = {e["action"]: e for e in mine}
    assert by_action["import.downloaded"]["detail"] == {"format": "csv", "rows": 2, "masked": []}
    assert by_action["import.revealed"]["detail"] == {"fields": ["email"], "rows": "1-2"}
    made = {(e["action"], e["target"]) for e in entries}
    assert {("template.created", template_id), ("template.updated", template_id)} <= made
    updates = [e for e in entries if e["action"] == "template.updated"]
    assert [e["detail"] for e in updates if e["target"] == template_id] == [{"version": 2}]
    tested = [e for e in entries if e["action"] == "destination.tested"]
    assert tested and tested[0]["detail"]["ok"] is True
    assert by_action["import.deleted"]["detail"] == {"rows": 2, "batches": 1}
    assert "ada@example.com" not in json.dumps(entries)
    assert audit.verify(rt).intact
    checker.context.close()
    context.close()
