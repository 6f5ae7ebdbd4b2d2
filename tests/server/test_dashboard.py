"""The dashboard over HTTP: signing in with the TOTP step, two-factor required of every
member, CSRF (token and Origin) on every state-changing form, the IP allowlist on the
dashboard and the secret-key API, the strict CSP, the audit page's filters and exports."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator

import pyotp
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from server import db, keys, security, twofactor
from server.app import create_app
from server.models.accounts import UserSession
from server.runtime import Runtime
from tests.server.users_support import BASE, PASSWORD, Dashboard, OrgWithOwner, org_with_owner

ADDRESS = ("203.0.113.7", 50000)


@pytest.fixture
def store() -> str:
    return "sqlite"


@pytest.fixture
def acme(runtime: Runtime) -> OrgWithOwner:
    return org_with_owner(runtime)


@pytest.fixture
def browser(runtime: Runtime) -> Iterator[Dashboard]:
    with TestClient(create_app(runtime), base_url=BASE, client=ADDRESS) as client:
        yield Dashboard(client)


def test_sign_in_sets_a_host_only_secure_cookie_and_a_strict_csp(
    browser: Dashboard, acme: OrgWithOwner
) -> None:
    page = browser.get("/dashboard/sign-in")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    response = browser.post("/dashboard/sign-in", {"email": acme.email, "password": PASSWORD})
    assert response.status_code == 303 and response.headers["location"] == "/dashboard/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-loadbay_session=")
    for attribute in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"):
        assert attribute in cookie
    assert "Domain" not in cookie
    home = browser.get("/dashboard/")
    assert "Signed in as owner@acme.example, owner" in home.text


def test_a_wrong_password_says_so_without_saying_which(
    browser: Dashboard, acme: OrgWithOwner
) -> None:
    response = browser.post("/dashboard/sign-in", {"email": acme.email, "password": "x" * 12})
    assert response.status_code == 401
    assert "That e-mail and password do not match an account." in response.text


def test_totp_step_then_full_session(
    runtime: Runtime, browser: Dashboard, acme: OrgWithOwner
) -> None:
    enrolment = twofactor.begin(runtime, acme.owner_id)
    totp = pyotp.TOTP(enrolment.secret)
    past = db.utcnow() - dt.timedelta(minutes=2)
    twofactor.confirm(runtime, acme.owner_id, totp.at(past), address="x", now=past)
    response = browser.sign_in(acme.email)
    assert response.headers["location"] == "/dashboard/"
    # Half signed in: every page leads to the code step.
    assert browser.get("/dashboard/members").headers["location"] == "/dashboard/sign-in/code"
    assert browser.get("/dashboard/sign-in/code").status_code == 200
    wrong = browser.post("/dashboard/sign-in/code", {"code": "000000"})
    assert wrong.status_code == 422 and "not valid or was already used" in wrong.text
    code = totp.now()
    done = browser.post("/dashboard/sign-in/code", {"code": code})
    assert done.status_code == 303 and done.headers["location"] == "/dashboard/"
    assert browser.get("/dashboard/members").status_code == 200
    # The same code again, in a new sign-in, is refused.
    again = Dashboard(browser.client)
    browser.client.cookies.clear()
    again.sign_in(acme.email)
    assert again.post("/dashboard/sign-in/code", {"code": code}).status_code == 422


def test_required_two_factor_sends_members_to_enrol(
    runtime: Runtime, browser: Dashboard, acme: OrgWithOwner
) -> None:
    security.update(runtime, acme.org.id, security.Rules(require_2fa=True), actor="t", address="x")
    browser.sign_in(acme.email)
    assert browser.get("/dashboard/audit").headers["location"] == "/dashboard/two-factor"
    page = browser.post("/dashboard/two-factor", {"action": "begin"})
    assert page.status_code == 200 and "<svg" in page.text
    secret = page.text.split('<code id="secret">')[1].split("<")[0]
    done = browser.post(
        "/dashboard/two-factor", {"action": "confirm", "code": pyotp.TOTP(secret).now()}
    )
    assert done.status_code == 200 and done.text.count("<li><code>") == 10
    assert browser.get("/dashboard/audit").status_code == 200


@pytest.mark.parametrize(
    ("origin", "csrf", "message"),
    [
        (None, True, "must be sent from the loadbay dashboard"),
        ("https://evil.example", True, "must be sent from the loadbay dashboard"),
        (BASE, False, "CSRF token does not match"),
    ],
)
def test_state_changing_forms_need_origin_and_csrf_token(
    runtime: Runtime,
    browser: Dashboard,
    acme: OrgWithOwner,
    origin: str | None,
    csrf: bool,
    message: str,
) -> None:
    browser.sign_in(acme.email)
    response = browser.post(
        "/dashboard/security",
        {"require_2fa": "on"} if csrf else {"require_2fa": "on", "csrf": "forged"},
        origin=origin,
    )
    assert response.status_code == 403 and message in response.text
    assert security.rules(runtime, acme.org.id).require_2fa is False
    ok = browser.post("/dashboard/security", {"require_2fa": "on"})
    assert ok.status_code == 303
    assert security.rules(runtime, acme.org.id).require_2fa is True


def test_ip_allowlist_guards_the_dashboard_and_the_api(
    runtime: Runtime, browser: Dashboard, acme: OrgWithOwner
) -> None:
    secret = keys.create_key(runtime, acme.org.id, "k").secret
    browser.sign_in(acme.email)
    refused = browser.post("/dashboard/security", {"ip_allowlist": "10.0.0.0/8"})
    assert refused.status_code == 422 and "does not include your own address" in refused.text
    bad = browser.post("/dashboard/security", {"ip_allowlist": "10.0.0.300/8"})
    assert bad.status_code == 422 and "is not an address or CIDR range" in bad.text
    saved = browser.post("/dashboard/security", {"ip_allowlist": "203.0.113.0/24\n2001:db8::/32"})
    assert saved.status_code == 303
    assert security.rules(runtime, acme.org.id).ip_allowlist == ("203.0.113.0/24", "2001:db8::/32")
    assert browser.get("/dashboard/members").status_code == 200
    api = browser.client.get("/api/v1/organisation", headers={"authorization": f"Bearer {secret}"})
    assert api.status_code == 200
    security.update(
        runtime,
        acme.org.id,
        security.Rules(ip_allowlist=("198.51.100.0/24",)),
        actor="t",
        address="198.51.100.1",
    )
    page = browser.get("/dashboard/members")
    assert (
        page.status_code == 403
        and "Your address 203.0.113.7 is not on this organisation" in page.text
    )
    api = browser.client.get("/api/v1/organisation", headers={"authorization": f"Bearer {secret}"})
    assert api.status_code == 403 and "IP allowlist" in api.json()["detail"]
    browser.client.cookies.clear()
    assert browser.sign_in(acme.email).status_code == 403


def test_email_domains_are_checked_on_the_form(browser: Dashboard, acme: OrgWithOwner) -> None:
    browser.sign_in(acme.email)
    bad = browser.post("/dashboard/security", {"email_domains": "not a domain"})
    assert bad.status_code == 422 and "is not an e-mail domain" in bad.text
    assert (
        browser.post(
            "/dashboard/security", {"email_domains": "@Acme.example\nacme.example"}
        ).status_code
        == 303
    )
    page = browser.get("/dashboard/security")
    assert ">acme.example</textarea>" in page.text


def test_audit_page_filters_and_exports(
    runtime: Runtime, browser: Dashboard, acme: OrgWithOwner
) -> None:
    browser.client.cookies.clear()
    browser.post("/dashboard/sign-in", {"email": acme.email, "password": "x" * 12})
    browser.sign_in(acme.email)
    page = browser.get("/dashboard/audit?action=sign-in.failed")
    assert page.status_code == 200
    assert page.text.count("<td>sign-in.failed</td>") == 1 and "sign-in.succeeded" not in page.text
    assert "203.0.113.7" in page.text and "reason=password" in page.text
    exported = browser.get("/dashboard/audit/export?format=json&action=sign-in.succeeded")
    assert exported.headers["content-disposition"] == 'attachment; filename="audit-log.json"'
    [entry] = json.loads(exported.text)
    assert (entry["actor"], entry["address"]) == (f"user:{acme.owner_id}", "203.0.113.7")
    csv_text = browser.get("/dashboard/audit/export?format=csv").text
    assert csv_text.startswith("seq,at,org_id,actor,action,target,address,detail")
    assert "audit.exported" in browser.get("/dashboard/audit").text
    assert browser.get("/dashboard/audit?since=yesterday").status_code == 422


def test_password_checks_are_limited_per_address(browser: Dashboard, acme: OrgWithOwner) -> None:
    for _ in range(30):
        assert (
            browser.post(
                "/dashboard/sign-in", {"email": acme.email, "password": "x" * 12}
            ).status_code
            == 401
        )
    response = browser.post("/dashboard/sign-in", {"email": acme.email, "password": PASSWORD})
    assert response.status_code == 429 and "Too many requests" in response.text
    assert "Try again in" in response.text


def test_sessions_page_ends_one_or_all(
    runtime: Runtime, browser: Dashboard, acme: OrgWithOwner
) -> None:
    other = Dashboard(TestClient(browser.client.app, base_url=BASE, client=ADDRESS))
    other.sign_in(acme.email)
    browser.sign_in(acme.email)
    with runtime.sessions() as session:
        first = session.scalars(select(UserSession.id).order_by(UserSession.created_at)).first()
    page = browser.get("/dashboard/sessions")
    assert len(re.findall(r"/dashboard/sessions/ses_\w+/end", page.text)) == 2
    assert page.text.count("(this one)") == 1
    assert (
        browser.post(f"/dashboard/sessions/{first}/end").headers["location"]
        == "/dashboard/sessions"
    )
    assert other.get("/dashboard/members").headers["location"] == "/dashboard/sign-in"
    assert browser.get("/dashboard/members").status_code == 200
    missing = browser.post("/dashboard/sessions/ses_000000000000000000000000/end")
    assert missing.status_code == 404 and "does not exist or has already ended" in missing.text
    done = browser.post("/dashboard/sessions/end-all")
    assert done.headers["location"] == "/dashboard/sign-in?done=signed-out"
    assert browser.get("/dashboard/members").headers["location"] == "/dashboard/sign-in"


def test_odd_requests_get_a_page_that_says_what_to_do(
    browser: Dashboard, acme: OrgWithOwner
) -> None:
    client = browser.client
    multipart = client.post(
        "/dashboard/sign-in",
        files={"email": ("a", b"x")},
        headers={"origin": BASE},
    )
    assert multipart.status_code == 422 and "application/x-www-form-urlencoded" in multipart.text
    huge = client.post(
        "/dashboard/sign-in",
        content=b"a=" + b"x" * 70_000,
        headers={
            "origin": BASE,
            "content-type": "application/x-www-form-urlencoded",
        },
    )
    assert huge.status_code == 413 and "at most 65536 bytes" in huge.text
    browser.sign_in(acme.email)
    assert browser.get("/dashboard/audit?before=x").status_code == 422
    assert browser.get("/dashboard/audit/export?format=xml").status_code == 422
    unknown = browser.get("/dashboard/invitations/nope")
    assert unknown.status_code == 404 and "not valid; ask for a new invitation" in unknown.text
