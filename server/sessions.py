"""Dashboard sessions: a 128-bit random token in a `__Host-` cookie (Secure, HttpOnly,
SameSite=Lax), stored as its SHA-256; 30 minutes idle and 12 hours absolute; a CSRF token
per session (the synchronizer pattern: every state-changing form carries it). A session
is `mfa` until its TOTP code is given, `enrol` while two-factor is required but not set
up, `full` after; moving on gives a new token (no session fixation)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import CursorResult, select, update

from server import audit, db
from server.errors import NotFound
from server.models.accounts import Membership, User, UserSession
from server.runtime import Runtime

COOKIE = "__Host-loadbay_session"
IDLE = dt.timedelta(minutes=30)
ABSOLUTE = dt.timedelta(hours=12)
TOUCH_EVERY = dt.timedelta(seconds=60)  # last_seen_at is written at most this often
FULL, MFA, ENROL = "full", "mfa", "enrol"


@dataclass(frozen=True)
class Current:
    """A live session and who it is: the user, their role in the session's organisation."""

    session_id: str
    user_id: str
    email: str
    org_id: str
    role: str
    stage: str
    csrf_token: str

    def csrf_ok(self, given: str) -> bool:
        return hmac.compare_digest(self.csrf_token.encode(), given.encode()[:200])


@dataclass(frozen=True)
class Listed:
    id: str
    created_at: dt.datetime
    last_seen_at: dt.datetime
    address: str
    user_agent: str
    current: bool


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(
    rt: Runtime,
    user_id: str,
    org_id: str,
    stage: str,
    *,
    address: str,
    user_agent: str,
    now: dt.datetime,
) -> str:
    """A new session; its token (for the cookie), the only time it is seen."""
    token = secrets.token_urlsafe(16)  # 128 bits
    with rt.sessions.begin() as session:
        row = UserSession(
            id=db.new_id("ses"),
            token_hash=_digest(token),
            csrf_token=secrets.token_urlsafe(24),
            user_id=user_id,
            org_id=org_id,
            stage=stage,
            created_at=now,
            last_seen_at=now,
            address=address[:64],
            user_agent=user_agent[:200],
        )
        session.add(row)
        if stage == FULL:
            audit.record(
                session,
                action="sign-in.succeeded",
                actor=f"user:{user_id}",
                org_id=org_id,
                target=row.id,
                address=address,
                at=now,
            )
    return token


def current(rt: Runtime, token: str | None, now: dt.datetime) -> Current | None:
    """The session this token opens, or None (unknown, ended, idle over 30 min, older than
    12 h, or its user no longer a member)."""
    if not token or len(token) > 64:
        return None
    with rt.sessions.begin() as session:
        found = session.execute(
            select(UserSession, User.email, Membership.role)
            .join(User, User.id == UserSession.user_id)
            .join(
                Membership,
                (Membership.user_id == UserSession.user_id)
                & (Membership.org_id == UserSession.org_id),
            )
            .where(UserSession.token_hash == _digest(token), UserSession.ended_at.is_(None))
        ).first()
        if found is None:
            return None
        row, email, role = found
        if now - row.last_seen_at >= IDLE or now - row.created_at >= ABSOLUTE:
            row.ended_at = now
            return None
        if now - row.last_seen_at >= TOUCH_EVERY:
            row.last_seen_at = now
        return Current(row.id, row.user_id, email, row.org_id, role, row.stage, row.csrf_token)


def advance(
    rt: Runtime, now_session: Current, stage: str, *, address: str, now: dt.datetime
) -> str:
    """Move a session on (code given, or enrolment done): the old token ends, a new one
    carries the new stage."""
    with rt.sessions.begin() as session:
        row = session.get(UserSession, now_session.session_id)
        assert row is not None
        row.ended_at = now
        user_agent = row.user_agent
    return start(
        rt,
        now_session.user_id,
        now_session.org_id,
        stage,
        address=address,
        user_agent=user_agent,
        now=now,
    )


def listed(rt: Runtime, me: Current, now: dt.datetime) -> list[Listed]:
    with rt.sessions() as session:
        rows = session.scalars(
            select(UserSession)
            .where(
                UserSession.user_id == me.user_id,
                UserSession.ended_at.is_(None),
                UserSession.last_seen_at > now - IDLE,
                UserSession.created_at > now - ABSOLUTE,
            )
            .order_by(UserSession.created_at.desc())
        )
        return [
            Listed(
                r.id, r.created_at, r.last_seen_at, r.address, r.user_agent, r.id == me.session_id
            )
            for r in rows
        ]


def end(rt: Runtime, me: Current, session_id: str, *, address: str) -> None:
    """Sign out one of one's own sessions (another user's is not found)."""
    with rt.sessions.begin() as session:
        row = session.get(UserSession, session_id[:40])
        if row is None or row.user_id != me.user_id or row.ended_at is not None:
            raise NotFound("That session does not exist or has already ended.")
        row.ended_at = db.utcnow()
        audit.record(
            session,
            action="session.ended",
            actor=f"user:{me.user_id}",
            org_id=me.org_id,
            target=row.id,
            address=address,
        )


def end_all(rt: Runtime, me: Current, *, address: str) -> int:
    with rt.sessions.begin() as session:
        result = session.execute(
            update(UserSession)
            .where(UserSession.user_id == me.user_id, UserSession.ended_at.is_(None))
            .values(ended_at=db.utcnow())
        )
        assert isinstance(result, CursorResult)
        ended = result.rowcount
        audit.record(
            session,
            action="session.ended-all",
            actor=f"user:{me.user_id}",
            org_id=me.org_id,
            target=me.user_id,
            address=address,
            detail={"sessions": ended},
        )
    return int(ended)
