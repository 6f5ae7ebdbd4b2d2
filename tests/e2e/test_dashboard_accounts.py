"""The dashboard's accounts flow in a real Chromium over HTTPS (uvicorn, TLS), with a real
SMTP server: the owner invites a developer from the members page; the invitation is read
from the SMTP server; the developer signs up from its link, enrols two-factor (the QR code
drawn locally), signs out, signs in again with a TOTP code computed here, sees their
sessions; the owner reads the audit entries of each step. Keyboard only where it counts."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect

from server import audit
from server.runtime import Runtime
from tests.e2e.conftest import serving
from tests.server.users_support import (  # noqa: F401 - inbox is a fixture
    PASSWORD,
    Inbox,
    OrgWithOwner,
    free_port,
    inbox,
    org_with_owner,
)

if TYPE_CHECKING:
    from tests.conftest import RuntimeFactory

pytestmark = pytest.mark.e2e
NEW_PASSWORD = "a developer's own long passphrase"


@pytest.fixture
def store() -> str:
    return "sqlite"


@dataclass(frozen=True)
class Served:
    origin: str
    rt: Runtime
    acme: OrgWithOwner


@pytest.fixture
def served(runtime_factory: RuntimeFactory, inbox: Inbox) -> Iterator[Served]:  # noqa: F811
    port = free_port()
    origin = f"https://127.0.0.1:{port}"
    rt = runtime_factory(smtp=inbox.settings, public_url=origin)
    acme = org_with_owner(rt)
    with serving(rt, port):
        yield Served(origin, rt, acme)


def _sign_in(page: Page, origin: str, email: str, password: str) -> None:
    """With the keyboard alone: Tab to the skip link, the e-mail, the password; Enter."""
    page.goto(f"{origin}/dashboard/sign-in")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("E-mail")).to_be_focused()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(password)
    page.keyboard.press("Enter")


def test_invite_sign_up_enrol_sign_in_with_totp_and_audit(
    browser: Browser,
    served: Served,
    inbox: Inbox,  # noqa: F811
) -> None:
    origin = served.origin
    owner = browser.new_context(ignore_https_errors=True).new_page()
    _sign_in(owner, origin, served.acme.email, PASSWORD)
    expect(owner.get_by_text("Signed in as owner@acme.example, owner")).to_be_visible()
    owner.get_by_role("link", name="Members").click()
    owner.get_by_label("E-mail").fill("dev@acme.example")
    owner.get_by_label("Role", exact=True).select_option("developer")
    owner.get_by_role("button", name="Send invitation").click()
    expect(owner.get_by_role("status")).to_have_text("Invitation sent.")

    link = inbox.invitation_link("dev@acme.example")
    assert link.startswith(f"{origin}/dashboard/invitations/")
    dev = browser.new_context(ignore_https_errors=True).new_page()
    dev.goto(link)
    expect(dev.get_by_role("heading", name="Join Acme")).to_be_visible()
    dev.get_by_label("Your name").fill("Dev")
    dev.get_by_label("Choose a password").fill("password1234")
    dev.get_by_role("button", name="Join").click()
    expect(dev.get_by_role("alert")).to_contain_text("most common breached passwords")
    dev.get_by_label("Your name").fill("Dev")
    dev.get_by_label("Choose a password").fill(NEW_PASSWORD)
    dev.get_by_role("button", name="Join").click()
    expect(dev.get_by_text("Signed in as dev@acme.example, developer")).to_be_visible()

    dev.get_by_role("link", name="Two-factor").click()
    dev.get_by_role("button", name="Set up two-factor sign-in").click()
    expect(dev.locator("figure.qr svg")).to_be_visible()
    secret = dev.locator("#secret").inner_text()
    totp = pyotp.TOTP(secret)
    dev.get_by_label("The 6-digit code your app shows").fill(totp.now())
    dev.get_by_role("button", name="Turn on").click()
    expect(dev.locator("#recovery-codes li")).to_have_count(10)
    enrolled_at = time.time()

    dev.get_by_role("button", name="Sign out").click()
    expect(dev.get_by_role("status")).to_have_text("You are signed out.")
    _sign_in(dev, origin, "dev@acme.example", NEW_PASSWORD)
    expect(dev.get_by_role("heading", name="Your two-factor code")).to_be_visible()
    # The enrolment's code is spent: the next step's code is computed here.
    code = dev.get_by_label("The 6-digit code from your app, or a recovery code")
    code.fill(totp.at(enrolled_at + 30))
    code.press("Enter")
    expect(dev.get_by_text("Signed in as dev@acme.example, developer")).to_be_visible()

    dev.get_by_role("link", name="Sessions").click()
    rows = dev.locator("table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("(this one)")
    expect(rows.first).to_contain_text("127.0.0.1")
    dev.goto(f"{origin}/dashboard/audit")
    expect(dev.get_by_role("alert")).to_contain_text("Your role (developer) may not")

    owner.get_by_role("link", name="Audit log").click()
    table = owner.locator("#audit")
    for action in (
        "member.invited",
        "member.joined",
        "two-factor.enabled",
        "session.ended",
        "sign-in.succeeded",
    ):
        expect(table.get_by_role("cell", name=action, exact=True).first).to_be_visible()
    owner.get_by_label("Action").fill("two-factor.enabled")
    owner.get_by_role("button", name="Filter").click()
    expect(owner.locator("#audit tbody tr")).to_have_count(1)
    dev_id = re.search(r"user:(usr_\w+)", owner.locator("#audit tbody tr").inner_text())
    assert dev_id is not None
    assert audit.verify(served.rt).intact
    actions = [e.action for e in audit.entries(served.rt, served.acme.org.id)]
    assert actions.count("sign-in.succeeded") == 3  # owner; dev on joining; dev after the code
