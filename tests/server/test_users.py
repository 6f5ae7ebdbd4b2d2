"""Accounts: the password policy and argon2id, invitations by e-mail (a real SMTP server)
limited to the organisation's domains, roles changed under the owner rules, the sign-in
lockout, TOTP single use and recovery codes, and session idle and absolute expiry (an
injected clock, no sleeps)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import pyotp
import pytest
from sqlalchemy import select

from server import invitations, passwords, security, sessions, twofactor, users
from server.errors import Conflict, Forbidden, Invalid, Unauthorized, Unavailable
from server.models.accounts import RecoveryCode, User, UserSession
from server.permissions import Role
from server.runtime import Runtime
from tests.server.users_support import PASSWORD, Inbox, inbox, org_with_owner  # noqa: F401

if TYPE_CHECKING:
    from tests.conftest import RuntimeFactory

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


# --- passwords -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short pass", "at least 12"),
        ("x" * 129, "at most 128"),
        ("qazwsxedcrfv", "most common breached"),
        ("QWERTY123456", "most common breached"),
    ],
)
def test_weak_passwords_are_refused_with_what_to_do(password: str, message: str) -> None:
    with pytest.raises(passwords.WeakPassword, match=message):
        passwords.check_policy(password)


def test_no_composition_rules_and_argon2id_hashes() -> None:
    for good in ("all lower case words", "x" * 64, "ünïcödé pässwörd ✓"):
        passwords.check_policy(good)
    stored = passwords.hash_password("all lower case words")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert passwords.verify(stored, "all lower case words")
    assert not passwords.verify(stored, "all lower case wordz")
    assert len(passwords.common_passwords()) == 30_000


# --- invitations ---------------------------------------------------------------------------


def _actor(rt: Runtime, org_id: str, user_id: str, role: str = "owner") -> users.Actor:
    return users.Actor(user_id, org_id, role, "127.0.0.1")


def test_invitation_arrives_by_smtp_and_signs_up(
    runtime_factory: RuntimeFactory,
    inbox: Inbox,  # noqa: F811
) -> None:
    rt = runtime_factory(smtp=inbox.settings, public_url="https://loadbay.test")
    acme = org_with_owner(rt)
    invitations.invite(rt, _actor(rt, acme.org.id, acme.owner_id), "Dev@Acme.example", "developer")
    message = inbox.wait_for("dev@acme.example")
    assert message["From"] == "loadbay@test.example"
    assert message["Subject"] == "You are invited to Acme on loadbay"
    link = inbox.invitation_link("dev@acme.example")
    assert link.startswith("https://loadbay.test/dashboard/invitations/")
    token = link.rsplit("/", 1)[1]
    view = invitations.invitation(rt, token)
    assert (view.org_name, view.email, view.role, view.existing_user) == (
        "Acme",
        "dev@acme.example",
        "developer",
        False,
    )
    user = invitations.accept(rt, token, "Dev", "a long enough passphrase", "127.0.0.1")
    assert users.membership(rt, user.id, acme.org.id).role == "developer"
    with pytest.raises(Exception, match="already accepted"):
        invitations.accept(rt, token, "Dev", "a long enough passphrase", "127.0.0.1")
    with rt.sessions() as session:  # only the digest of the token is kept
        row = session.scalar(select(User).where(User.email == "dev@acme.example"))
        assert row is not None and token not in row.password_hash


def test_email_domains_limit_invitations_and_sign_up(
    runtime_factory: RuntimeFactory,
    inbox: Inbox,  # noqa: F811
) -> None:
    rt = runtime_factory(smtp=inbox.settings)
    acme = org_with_owner(rt)
    owner = _actor(rt, acme.org.id, acme.owner_id)
    security.update(
        rt,
        acme.org.id,
        security.Rules(email_domains=("acme.example",)),
        actor="user:x",
        address="127.0.0.1",
    )
    with pytest.raises(Invalid, match="outside this organisation's e-mail domains"):
        invitations.invite(rt, owner, "someone@gmail.example", "viewer")
    invitations.invite(rt, owner, "ok@acme.example", "viewer")
    token = inbox.invitation_link("ok@acme.example").rsplit("/", 1)[1]
    # The domains narrowed after the invitation went out: sign-up is refused too.
    security.update(
        rt,
        acme.org.id,
        security.Rules(email_domains=("other.example",)),
        actor="user:x",
        address="127.0.0.1",
    )
    with pytest.raises(Forbidden, match="outside this organisation's e-mail domains"):
        invitations.accept(rt, token, "Ok", "a long enough passphrase", "127.0.0.1")


def test_roles_follow_the_owner_rules(runtime: Runtime) -> None:
    acme = org_with_owner(runtime)
    admin = users.add_user(
        runtime, acme.org.id, "admin@acme.example", "A", PASSWORD, Role.ADMIN, actor="cli"
    )
    dev = users.add_user(
        runtime, acme.org.id, "dev@acme.example", "D", PASSWORD, Role.DEVELOPER, actor="cli"
    )
    as_admin = _actor(runtime, acme.org.id, admin.id, "admin")
    users.change_role(runtime, as_admin, dev.id, "viewer")
    with pytest.raises(Forbidden, match="Only an owner"):
        users.change_role(runtime, as_admin, dev.id, "owner")
    with pytest.raises(Forbidden, match="Only an owner"):
        users.remove_member(runtime, as_admin, acme.owner_id)
    as_owner = _actor(runtime, acme.org.id, acme.owner_id)
    with pytest.raises(Conflict, match="at least one owner"):
        users.change_role(runtime, as_owner, acme.owner_id, "admin")
    with pytest.raises(Invalid, match="one of owner, admin, developer, viewer"):
        users.change_role(runtime, as_owner, dev.id, "root")
    users.remove_member(runtime, as_owner, dev.id)
    assert [(m.email, m.role) for m in users.members(runtime, acme.org.id)] == [
        ("owner@acme.example", "owner"),
        ("admin@acme.example", "admin"),
    ]


# --- signing in ----------------------------------------------------------------------------


def test_lockout_after_100_failures_in_an_hour(runtime: Runtime) -> None:
    acme = org_with_owner(runtime)
    for i in range(users.MAX_FAILURES):
        with pytest.raises(Unauthorized, match="do not match"):
            users.sign_in(
                runtime, acme.email, "wrong password!", "10.0.0.1", NOW + dt.timedelta(seconds=i)
            )
    later = NOW + dt.timedelta(minutes=10)
    with pytest.raises(users.LockedOut, match="locked until 13:00 UTC") as locked:
        users.sign_in(runtime, acme.email, PASSWORD, "10.0.0.1", later)
    assert locked.value.retry_after == 50 * 60
    # An hour after the first failure the account opens again, to the right password.
    assert (
        users.sign_in(
            runtime, acme.email, PASSWORD, "10.0.0.1", NOW + dt.timedelta(hours=1, seconds=1)
        ).id
        == acme.owner_id
    )


def test_unknown_email_and_wrong_password_read_the_same(runtime: Runtime) -> None:
    acme = org_with_owner(runtime)
    with pytest.raises(Unauthorized) as unknown:
        users.sign_in(runtime, "nobody@acme.example", PASSWORD, "10.0.0.1", NOW)
    with pytest.raises(Unauthorized) as wrong:
        users.sign_in(runtime, acme.email, "not the password", "10.0.0.1", NOW)
    assert unknown.value.message == wrong.value.message


# --- two-factor ----------------------------------------------------------------------------


def test_totp_codes_are_single_use_and_recovery_codes_once(runtime: Runtime) -> None:
    acme = org_with_owner(runtime)
    enrolment = twofactor.begin(runtime, acme.owner_id)
    assert enrolment.uri.startswith("otpauth://totp/loadbay:owner%40acme.example?secret=")
    assert enrolment.qr_svg.startswith("<svg")
    totp = pyotp.TOTP(enrolment.secret)
    codes = twofactor.confirm(runtime, acme.owner_id, totp.at(NOW), address="a", now=NOW)
    assert len(codes) == 10 and len(set(codes)) == 10
    later = NOW + dt.timedelta(seconds=30)
    code = totp.at(later)
    assert twofactor.check(runtime, acme.owner_id, code, address="a", now=later)
    assert not twofactor.check(runtime, acme.owner_id, code, address="a", now=later)
    # A code of an earlier step than one already used is refused too.
    assert not twofactor.check(runtime, acme.owner_id, totp.at(NOW), address="a", now=later)
    assert twofactor.check(runtime, acme.owner_id, codes[0], address="a", now=later)
    assert not twofactor.check(runtime, acme.owner_id, codes[0], address="a", now=later)
    with runtime.sessions() as session:
        stored = set(session.scalars(select(RecoveryCode.code_hash)))
        user = session.get(User, acme.owner_id)
    assert hashlib.sha256(codes[1].replace("-", "").encode()).hexdigest() in stored
    assert user is not None and enrolment.secret.encode() not in (user.totp_sealed or b"")


# --- sessions ------------------------------------------------------------------------------


def test_sessions_end_after_30_idle_minutes_and_12_hours(runtime: Runtime) -> None:
    acme = org_with_owner(runtime)

    def start(at: dt.datetime) -> str:
        return sessions.start(
            runtime, acme.owner_id, acme.org.id, sessions.FULL, address="a", user_agent="ua", now=at
        )

    idle = start(NOW)
    assert sessions.current(runtime, idle, NOW + dt.timedelta(minutes=29)) is not None
    assert sessions.current(runtime, idle, NOW + dt.timedelta(minutes=58)) is not None
    assert sessions.current(runtime, idle, NOW + dt.timedelta(minutes=88, seconds=1)) is None
    assert sessions.current(runtime, idle, NOW + dt.timedelta(minutes=60)) is None  # ended for good
    busy = start(NOW)
    at = NOW
    while at < NOW + dt.timedelta(hours=12) - dt.timedelta(minutes=20):
        at += dt.timedelta(minutes=20)
        assert sessions.current(runtime, busy, at) is not None
    assert sessions.current(runtime, busy, NOW + dt.timedelta(hours=12)) is None
    with runtime.sessions() as session:
        hashes = set(session.scalars(select(UserSession.token_hash)))
    assert idle not in hashes and hashlib.sha256(idle.encode()).hexdigest() in hashes
    assert len(idle) >= 22  # 128 bits, URL-safe base64


def test_demo_owner_gets_a_new_password_each_start(runtime: Runtime) -> None:
    from server.demo.owner import demo_owner
    from server.orgs import create_organisation

    org = create_organisation(runtime, "Demo Inc.", [])
    email, first = demo_owner(runtime, org.id)
    user = users.sign_in(runtime, email, first, "127.0.0.1", NOW)
    assert users.membership(runtime, user.id, org.id).role == "owner"
    again, second = demo_owner(runtime, org.id)
    assert again == email and second != first and len(second) == 20
    with pytest.raises(Unauthorized):
        users.sign_in(runtime, email, first, "127.0.0.1", NOW)
    assert users.sign_in(runtime, email, second, "127.0.0.1", NOW).id == user.id


def test_smtp_with_starttls_checks_the_certificate(tmp_path: Path) -> None:
    import ssl

    from aiosmtpd.controller import Controller

    from server.mail import SmtpSettings, send
    from server.tls import ensure_certificate
    from tests.server.users_support import free_port

    cert, key = ensure_certificate(tmp_path / "tls")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    port = free_port()
    box = Inbox(SmtpSettings(host="127.0.0.1", port=port))
    controller = Controller(
        box, hostname="127.0.0.1", port=port, tls_context=server_tls, require_starttls=True
    )
    controller.start()
    try:
        plain = SmtpSettings(host="127.0.0.1", port=port)
        with pytest.raises(Unavailable, match="could not be sent"):
            send(plain, "a@acme.example", "s", "t")  # the server requires STARTTLS
        untrusted = SmtpSettings(host="127.0.0.1", port=port, starttls=True)
        with pytest.raises(Unavailable, match="SSLCertVerificationError"):
            send(untrusted, "a@acme.example", "s", "t")
        trusted = SmtpSettings(host="127.0.0.1", port=port, starttls=True, ca_file=str(cert))
        send(trusted, "a@acme.example", "Subject", "Body")
        assert box.wait_for("a@acme.example")["Subject"] == "Subject"
    finally:
        controller.stop()
