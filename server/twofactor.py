"""Two-factor sign-in: TOTP (RFC 6238: SHA-1, 6 digits, 30 s) with pyotp, the enrolment QR
code drawn locally by segno, and one-time recovery codes.

A code is good once: the step it was accepted for is kept, and a code of that step or an
earlier one is refused afterwards. One step of clock drift either way is accepted.
Recovery codes are 10 random codes of 40 bits, shown once, stored as SHA-256 digests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import pyotp
import segno
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from server import audit, db
from server.errors import Conflict, Invalid, NotFound
from server.models.accounts import Membership, RecoveryCode, User
from server.runtime import Runtime

ISSUER = "loadbay"
STEP = 30
RECOVERY_CODES = 10


@dataclass(frozen=True)
class Enrolment:
    secret: str  # base32, for typing into an app by hand
    uri: str  # otpauth://
    qr_svg: str  # the same URI as an inline SVG


def _code_digest(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").strip().lower().encode()).hexdigest()


def _totp(rt: Runtime, user: User) -> pyotp.TOTP:
    assert user.totp_sealed is not None
    secret = rt.vault.open_user_secret(user.id, user.totp_sealed).decode()
    return pyotp.TOTP(secret, interval=STEP)


def begin(rt: Runtime, user_id: str) -> Enrolment:
    """A fresh secret for a user without two-factor (replacing one not yet confirmed)."""
    secret = pyotp.random_base32(32)
    with rt.sessions.begin() as session:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound(f"User {user_id} does not exist.")
        if user.totp_enabled_at is not None:
            raise Conflict("Two-factor sign-in is already on; turn it off first to re-enrol.")
        user.totp_sealed = rt.vault.seal_user_secret(user.id, secret.encode())
        email = user.email
    return enrolment_of(secret, email)


def enrolment_of(secret: str, email: str) -> Enrolment:
    uri = pyotp.TOTP(secret, interval=STEP).provisioning_uri(name=email, issuer_name=ISSUER)
    svg = segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff")
    return Enrolment(secret, uri, svg)


def pending(rt: Runtime, user_id: str) -> Enrolment | None:
    """The enrolment under way (the secret stored, not yet confirmed), to show it again."""
    with rt.sessions() as session:
        user = session.get(User, user_id)
    if user is None or user.totp_sealed is None or user.totp_enabled_at is not None:
        return None
    return enrolment_of(_totp(rt, user).secret, user.email)


def _accept_totp(rt: Runtime, user: User, code: str, now: dt.datetime) -> bool:
    """Checks a 6-digit code within one step of now and not used before; records its step."""
    code = code.strip().replace(" ", "")
    if not (len(code) == 6 and code.isdigit()) or user.totp_sealed is None:
        return False
    totp = _totp(rt, user)
    current = int(now.timestamp()) // STEP
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.at(step * STEP), code):
            if user.totp_last_step is not None and step <= user.totp_last_step:
                return False
            user.totp_last_step = step
            return True
    return False


def confirm(
    rt: Runtime, user_id: str, code: str, *, address: str, now: dt.datetime | None = None
) -> list[str]:
    """Turn two-factor on with a first code from the app; the recovery codes, shown once."""
    now = now or db.utcnow()
    codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
    with rt.sessions.begin() as session:
        user = session.get(User, user_id, with_for_update=True)
        if user is None or user.totp_sealed is None:
            raise Invalid("Start enrolment first: scan the QR code, then give a code.")
        if user.totp_enabled_at is not None:
            raise Conflict("Two-factor sign-in is already on.")
        if not _accept_totp(rt, user, code, now):
            raise Invalid("That code is not the one your app shows now; try the next one.")
        user.totp_enabled_at = now
        session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        session.add_all(RecoveryCode(user_id=user_id, code_hash=_code_digest(c)) for c in codes)
        audit.record(
            session,
            action="two-factor.enabled",
            actor=f"user:{user_id}",
            target=user_id,
            org_id=_org(session, user_id),
            address=address,
            at=now,
        )
    return codes


def check(
    rt: Runtime, user_id: str, code: str, *, address: str, now: dt.datetime | None = None
) -> bool:
    """A sign-in's second step: a TOTP code, or a recovery code (spent by its use)."""
    now = now or db.utcnow()
    with rt.sessions.begin() as session:
        user = session.get(User, user_id, with_for_update=True)
        if user is None or user.totp_enabled_at is None:
            return False
        if _accept_totp(rt, user, code, now):
            return True
        wanted = _code_digest(code[:40])
        spare = session.scalar(
            select(RecoveryCode).where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.code_hash == wanted,
                RecoveryCode.used_at.is_(None),
            )
        )
        if spare is None:
            return False
        spare.used_at = now
        audit.record(
            session,
            action="two-factor.recovery-code-used",
            actor=f"user:{user_id}",
            target=user_id,
            org_id=_org(session, user_id),
            address=address,
            at=now,
        )
        return True


def disable(rt: Runtime, user_id: str, code: str, *, address: str) -> None:
    """Off again, proven by a current code (a stolen session alone cannot turn it off)."""
    if not check(rt, user_id, code, address=address):
        raise Invalid("That code is not valid; give the code your app shows now.")
    with rt.sessions.begin() as session:
        user = session.get(User, user_id)
        assert user is not None
        user.totp_sealed = None
        user.totp_enabled_at = None
        session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        audit.record(
            session,
            action="two-factor.disabled",
            actor=f"user:{user_id}",
            target=user_id,
            org_id=_org(session, user_id),
            address=address,
        )


def _recovery_code() -> str:
    raw = secrets.token_hex(5)  # 40 bits, printed as xxxxx-xxxxx
    return f"{raw[:5]}-{raw[5:]}"


def _org(session: Session, user_id: str) -> str | None:
    return session.scalar(select(Membership.org_id).where(Membership.user_id == user_id).limit(1))
