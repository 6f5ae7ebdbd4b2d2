"""Invitations by e-mail link: a 128-bit token (only its SHA-256 is kept), valid 7 days
and once, limited to the organisation's e-mail domains when it lists any; accepting one
creates the account, or adds the membership to an existing account proven by its
password."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from server import audit, db, mail, passwords, security
from server.errors import Conflict, Forbidden, Gone, Invalid, NotFound, Unauthorized
from server.models.accounts import Invitation, Membership, User
from server.permissions import Role
from server.runtime import Runtime
from server.users import Actor, digest, may_touch, normal_email, role_of

INVITATION_LIFETIME = dt.timedelta(days=7)


@dataclass(frozen=True)
class InvitationView:
    org_id: str
    org_name: str
    email: str
    role: str
    existing_user: bool


def invite(rt: Runtime, actor: Actor, email: str, role: str) -> Invitation:
    """An invitation row and its e-mail (a link holding a 128-bit token, of which only the
    digest is kept). Refused for an address outside the organisation's e-mail domains."""
    address = normal_email(email)
    wanted = role_of(role)
    may_touch(actor, Role.VIEWER, wanted)
    token = secrets.token_urlsafe(16)
    now = db.utcnow()
    with rt.sessions.begin() as session:
        if not security.rules_in(session, actor.org_id).admits_email(address):
            raise Invalid(
                f"{address} is outside this organisation's e-mail domains; invite an address "
                "at one of them, or change the domains in Security."
            )
        org = session.get(db.Organisation, actor.org_id)
        assert org is not None
        already = session.scalar(
            select(Membership)
            .join(User, User.id == Membership.user_id)
            .where(Membership.org_id == actor.org_id, User.email == address)
        )
        if already is not None:
            raise Conflict(f"{address} is already a member.")
        row = Invitation(
            id=db.new_id("inv"),
            org_id=actor.org_id,
            email=address,
            role=wanted.value,
            token_hash=digest(token),
            invited_by=actor.name,
            created_at=now,
            expires_at=now + INVITATION_LIFETIME,
        )
        session.add(row)
        audit.record(
            session,
            action="member.invited",
            actor=actor.name,
            org_id=actor.org_id,
            target=row.id,
            address=actor.address,
            detail={"role": wanted.value},
        )
        org_name = org.name
    link = f"{rt.settings.public_url}/dashboard/invitations/{token}"
    try:
        mail.send(
            rt.settings.smtp,
            address,
            f"You are invited to {org_name} on loadbay",
            f"You have been invited to join {org_name} on loadbay as {wanted.value}.\n\n"
            f"Accept the invitation within 7 days:\n{link}\n",
        )
    except Exception:
        with rt.sessions.begin() as session:
            session.execute(delete(Invitation).where(Invitation.id == row.id))
        raise
    return row


def _live_invitation(session: Session, token: str, now: dt.datetime) -> Invitation:
    row = session.scalar(select(Invitation).where(Invitation.token_hash == digest(token[:100])))
    if row is None:
        raise NotFound("This invitation link is not valid; ask for a new invitation.")
    if row.accepted_at is not None:
        raise Gone("This invitation was already accepted; sign in instead.")
    if row.expires_at <= now:
        raise Gone("This invitation has expired; ask for a new invitation.")
    return row


def invitation(rt: Runtime, token: str) -> InvitationView:
    with rt.sessions() as session:
        row = _live_invitation(session, token, db.utcnow())
        org = session.get(db.Organisation, row.org_id)
        existing = session.scalar(select(User.id).where(User.email == row.email))
        return InvitationView(
            row.org_id, org.name if org else "", row.email, row.role, bool(existing)
        )


def accept(rt: Runtime, token: str, name: str, password: str, address: str) -> User:
    """Join the organisation: a new account with this password, or (the address already
    has one) the existing account, proven by its password."""
    now = db.utcnow()
    with rt.sessions.begin() as session:
        row = _live_invitation(session, token, now)
        if not security.rules_in(session, row.org_id).admits_email(row.email):
            raise Forbidden(f"{row.email} is outside this organisation's e-mail domains.")
        user = session.scalar(select(User).where(User.email == row.email))
        if user is None:
            passwords.check_policy(password)
            user = User(
                id=db.new_id("usr"),
                email=row.email,
                name=name.strip()[:200] or row.email,
                password_hash=passwords.hash_password(password),
                created_at=now,
            )
            session.add(user)
            session.flush()
        elif not passwords.verify(user.password_hash, password):
            raise Unauthorized(f"Give the password of your existing account {row.email}.")
        if session.get(Membership, (row.org_id, user.id)) is None:
            session.add(Membership(org_id=row.org_id, user_id=user.id, role=row.role))
        row.accepted_at = now
        audit.record(
            session,
            action="member.joined",
            actor=f"user:{user.id}",
            org_id=row.org_id,
            target=user.id,
            address=address,
            detail={"invitation": row.id, "role": row.role},
        )
        return user
