"""People and their organisations: users, memberships and roles, and signing in with a
password (with the per-account lockout). Invitations are server.invitations."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server import audit, db, passwords
from server.errors import Conflict, Forbidden, Invalid, NotFound, RateLimited, Unauthorized
from server.models.accounts import (
    Membership,
    SignInFailure,
    User,
    UserSession,
)
from server.permissions import OWNER_ONLY_ROLES, Role
from server.runtime import Runtime

MAX_FAILURES, FAILURE_WINDOW = 100, dt.timedelta(hours=1)
MAX_EMAIL = 254


class LockedOut(RateLimited):
    code = "account-locked"


@dataclass(frozen=True)
class Actor:
    """Who does something in the dashboard: a member, in one organisation, from an address."""

    user_id: str
    org_id: str
    role: str
    address: str

    @property
    def name(self) -> str:
        return f"user:{self.user_id}"


@dataclass(frozen=True)
class Member:
    user_id: str
    email: str
    name: str
    role: str
    two_factor: bool
    since: dt.datetime


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normal_email(email: str) -> str:
    value = email.strip().lower()
    local, _, domain = value.rpartition("@")
    if not local or "." not in domain or len(value) > MAX_EMAIL or any(c.isspace() for c in value):
        raise Invalid(f"{email[:100]!r} is not an e-mail address (name@example.com).")
    return value


def role_of(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise Invalid(f"The role is one of {', '.join(r.value for r in Role)}.") from None


def add_user(
    rt: Runtime, org_id: str, email: str, name: str, password: str, role: Role, *, actor: str
) -> User:
    """A new member with a password (the CLI's and the demo's way to make the first owner)."""
    email = normal_email(email)
    passwords.check_policy(password)
    user = User(
        id=db.new_id("usr"),
        email=email,
        name=name.strip()[:200] or email,
        password_hash=passwords.hash_password(password),
        created_at=db.utcnow(),
    )
    try:
        with rt.sessions.begin() as session:
            if session.scalar(select(User.id).where(User.email == email)) is not None:
                raise IntegrityError("users.email", None, Exception("taken"))
            session.add(user)
            session.flush()
            session.add(Membership(org_id=org_id, user_id=user.id, role=role.value))
            audit.record(
                session,
                action="member.added",
                actor=actor,
                org_id=org_id,
                target=user.id,
                detail={"role": role.value},
            )
    except IntegrityError:
        raise Conflict(f"A user with the e-mail {email} already exists.") from None
    return user


def membership(rt: Runtime, user_id: str, org_id: str) -> Membership | None:
    with rt.sessions() as session:
        return session.get(Membership, (org_id, user_id))


def first_membership(rt: Runtime, user_id: str) -> Membership | None:
    with rt.sessions() as session:
        return session.scalar(
            select(Membership).where(Membership.user_id == user_id).order_by(Membership.created_at)
        )


def get_user(rt: Runtime, user_id: str) -> User:
    with rt.sessions() as session:
        user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} does not exist.")
    return user


# --- signing in ----------------------------------------------------------------------------


def sign_in(rt: Runtime, email: str, password: str, address: str, now: dt.datetime) -> User:
    """The user whose password this is. Unauthorized (one message for an unknown e-mail
    and a wrong password) or LockedOut after MAX_FAILURES failures within the hour."""
    wanted = email.strip().lower()[:MAX_EMAIL]
    with rt.sessions() as session:
        user = session.scalar(select(User).where(User.email == wanted))
    if user is None:
        passwords.verify(passwords.dummy_hash(), password)
        audit.write(
            rt,
            action="sign-in.failed",
            actor="anonymous",
            address=address,
            detail={"reason": "unknown-email"},
            at=now,
        )
        raise Unauthorized("That e-mail and password do not match an account.")
    check_not_locked(rt, user.id, address, now)
    if not passwords.verify(user.password_hash, password):
        record_failure(rt, user.id, address, now, "password")
        raise Unauthorized("That e-mail and password do not match an account.")
    return user


def check_not_locked(rt: Runtime, user_id: str, address: str, now: dt.datetime) -> None:
    """LockedOut (saying until when) once the account has MAX_FAILURES failed sign-ins,
    passwords and second-step codes alike, within FAILURE_WINDOW."""
    with rt.sessions() as session:
        failures, oldest = session.execute(
            select(func.count(), func.min(SignInFailure.at)).where(
                SignInFailure.user_id == user_id, SignInFailure.at > now - FAILURE_WINDOW
            )
        ).one()
    if failures < MAX_FAILURES or oldest is None:
        return
    until = oldest + FAILURE_WINDOW
    audit.write(
        rt,
        action="sign-in.locked",
        actor=f"user:{user_id}",
        target=user_id,
        address=address,
        org_id=_org_of(rt, user_id),
        at=now,
    )
    raise LockedOut(
        f"Too many failed sign-ins for this account: it is locked until {until:%H:%M} UTC. "
        "Try again then, or ask an administrator.",
        retry_after=max(1, int((until - now).total_seconds())),
    )


def record_failure(rt: Runtime, user_id: str, address: str, now: dt.datetime, reason: str) -> None:
    with rt.sessions.begin() as session:
        session.add(SignInFailure(user_id=user_id, at=now))
        session.execute(
            delete(SignInFailure).where(
                SignInFailure.user_id == user_id, SignInFailure.at <= now - FAILURE_WINDOW
            )
        )
        audit.record(
            session,
            action="sign-in.failed",
            actor=f"user:{user_id}",
            target=user_id,
            org_id=_org_of(rt, user_id),
            address=address,
            detail={"reason": reason},
            at=now,
        )


def _org_of(rt: Runtime, user_id: str) -> str | None:
    found = first_membership(rt, user_id)
    return found.org_id if found else None


# --- members -------------------------------------------------------------------------------


def members(rt: Runtime, org_id: str) -> list[Member]:
    with rt.sessions() as session:
        rows = session.execute(
            select(User, Membership)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.org_id == org_id)
            .order_by(Membership.created_at, User.email)
        ).all()
    return [
        Member(u.id, u.email, u.name, m.role, u.totp_enabled_at is not None, m.created_at)
        for u, m in rows
    ]


def change_role(rt: Runtime, actor: Actor, user_id: str, new_role: str) -> None:
    role = role_of(new_role)
    with rt.sessions.begin() as session:
        target = session.get(Membership, (actor.org_id, user_id), with_for_update=True)
        if target is None:
            raise NotFound(f"User {user_id[:60]} is not a member of this organisation.")
        may_touch(actor, target.role, role)
        if target.role == Role.OWNER and role != Role.OWNER:
            _keep_an_owner(session, actor.org_id)
        old, target.role = target.role, role.value
        if old != role.value:
            audit.record(
                session,
                action="member.role-changed",
                actor=actor.name,
                org_id=actor.org_id,
                target=user_id,
                address=actor.address,
                detail={"from": old, "to": role.value},
            )


def remove_member(rt: Runtime, actor: Actor, user_id: str) -> None:
    with rt.sessions.begin() as session:
        target = session.get(Membership, (actor.org_id, user_id), with_for_update=True)
        if target is None:
            raise NotFound(f"User {user_id[:60]} is not a member of this organisation.")
        may_touch(actor, target.role, Role(target.role))
        if target.role == Role.OWNER:
            _keep_an_owner(session, actor.org_id)
        session.delete(target)
        session.execute(
            update(UserSession)
            .where(
                UserSession.user_id == user_id,
                UserSession.org_id == actor.org_id,
                UserSession.ended_at.is_(None),
            )
            .values(ended_at=db.utcnow())
        )
        audit.record(
            session,
            action="member.removed",
            actor=actor.name,
            org_id=actor.org_id,
            target=user_id,
            address=actor.address,
            detail={"role": target.role},
        )


def may_touch(actor: Actor, current: str, wanted: Role) -> None:
    if actor.role != Role.OWNER and (
        Role(current) in OWNER_ONLY_ROLES or wanted in OWNER_ONLY_ROLES
    ):
        raise Forbidden("Only an owner may make, change or remove an owner.")


def _keep_an_owner(session: Session, org_id: str) -> None:
    owners = session.scalar(
        select(func.count()).where(Membership.org_id == org_id, Membership.role == Role.OWNER)
    )
    if (owners or 0) <= 1:
        raise Conflict("An organisation keeps at least one owner: make someone else owner first.")


def set_password(rt: Runtime, user_id: str, password: str, *, actor: str) -> None:
    """A new password (checked against the policy); the user's sessions end."""
    passwords.check_policy(password)
    with rt.sessions.begin() as session:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound(f"User {user_id} does not exist.")
        user.password_hash = passwords.hash_password(password)
        session.execute(
            update(UserSession)
            .where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
            .values(ended_at=db.utcnow())
        )
        audit.record(
            session,
            action="password.changed",
            actor=actor,
            org_id=_org_in(session, user_id),
            target=user_id,
        )


def _org_in(session: Session, user_id: str) -> str | None:
    return session.scalar(select(Membership.org_id).where(Membership.user_id == user_id).limit(1))
