"""Accounts: people, their memberships and roles, invitations, dashboard sessions,
two-factor material, sign-in failures, organisation security settings and the audit log.

Secrets are never stored as given: passwords as argon2id hashes, session and invitation
tokens and recovery codes as SHA-256 digests (they are 128+ random bits), TOTP secrets
sealed under a key derived from the master key and bound to their user.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, utcnow


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # lower-cased
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Two-factor: the sealed secret once enrolment has started, enabled once confirmed;
    # the last 30-second step a code was accepted for (a code is good once).
    totp_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    totp_enabled_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, default=None)


class Membership(Base):
    __tablename__ = "memberships"
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Invitation(Base):
    __tablename__ = "invitations"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    accepted_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class UserSession(Base):
    """A dashboard session. `stage` is `full`, or `mfa` (password given, TOTP code still
    due) or `enrol` (the organisation requires two-factor and the user has none yet)."""

    __tablename__ = "user_sessions"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    stage: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime]
    address: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(200))
    ended_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class SignInFailure(Base):
    __tablename__ = "sign_in_failures"
    __table_args__ = (Index("ix_sign_in_failures_user_id_at", "user_id", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime]


class OrgSecurity(Base):
    """An organisation's access rules: two-factor for everyone, the e-mail domains
    members may have (empty: any), the client addresses (CIDRs) that may reach its
    dashboard and its secret-key API (empty: any)."""

    __tablename__ = "org_security"
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    require_2fa: Mapped[bool] = mapped_column(default=False)
    email_domains: Mapped[list[str]]
    ip_allowlist: Mapped[list[str]]


class AuditEntry(Base):
    """One entry of the hash chain: `hash` is SHA-256 over the canonical JSON of every
    other column, `prev_hash` included (server.audit)."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_org_id_seq", "org_id", "seq"),)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime]
    org_id: Mapped[str | None] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str | None] = mapped_column(String(120))
    address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's newest entry (one row): appending locks it, so entries are numbered
    without gaps under concurrency, and a deleted last entry is noticed."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
