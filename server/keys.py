"""Secret keys: an organisation's credential for the management API.

A key is `lb_sk_` + 32 random bytes (URL-safe base64), shown once when created. Its
SHA-256 authenticates it: the key holds 256 random bits, so no slow hash is needed, and the
digest is compared in constant time. A copy sealed under the organisation key (never
shown) verifies the end-user identities the client's backend signs with it
(server/identity.py). Keys are named, revocable and remember when they
were last used.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select

from server import audit, db
from server.errors import Invalid, NotFound, Unauthorized
from server.runtime import Runtime

PREFIX = "lb_sk_"
KEY_BYTES = 32
KEY_LENGTH = len(PREFIX) + 43  # 32 bytes are 43 base64 characters without padding
LAST_USED_EVERY = dt.timedelta(minutes=1)  # last_used_at is written at most this often


@dataclass(frozen=True)
class CreatedKey:
    key: db.SecretKey
    secret: str  # the only time the key is seen


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    rt: Runtime, org_id: str, name: str, *, actor: str = "cli", address: str | None = None
) -> CreatedKey:
    name = name.strip()
    if not 0 < len(name) <= 200:
        raise Invalid("A key needs a name of 1 to 200 characters.")
    secret = PREFIX + secrets.token_urlsafe(KEY_BYTES)
    row = db.SecretKey(
        id=db.new_id("key"),
        org_id=org_id,
        name=name,
        key_hash=digest(secret),
        hint=secret[-4:],
        created_at=db.utcnow(),
    )
    with rt.sessions.begin() as session:
        org = session.get(db.Organisation, org_id)
        if org is None:
            raise NotFound(f"Organisation {org_id} does not exist.")
        row.sealed_secret = rt.vault.seal_key_secret(org.id, org.wrapped_key, row.id, secret)
        session.add(row)
        audit.record(
            session,
            action="key.created",
            actor=actor,
            org_id=org_id,
            target=row.id,
            address=address,
            detail={"name": name},
        )
    return CreatedKey(row, secret)


def list_keys(rt: Runtime, org_id: str) -> list[db.SecretKey]:
    with rt.sessions() as session:
        return list(
            session.scalars(
                select(db.SecretKey)
                .where(db.SecretKey.org_id == org_id)
                .order_by(db.SecretKey.created_at, db.SecretKey.id)
            )
        )


def revoke_key(
    rt: Runtime,
    key_id: str,
    *,
    actor: str = "cli",
    org_id: str | None = None,
    address: str | None = None,
) -> db.SecretKey:
    """Revoke a key (of `org_id`, when given: another organisation's is NotFound)."""
    with rt.sessions.begin() as session:
        row = session.get(db.SecretKey, key_id)
        if row is None or (org_id is not None and row.org_id != org_id):
            raise NotFound(f"Key {key_id} does not exist.")
        if row.revoked_at is None:
            row.revoked_at = db.utcnow()
            audit.record(
                session,
                action="key.revoked",
                actor=actor,
                org_id=row.org_id,
                target=row.id,
                address=address,
            )
        return row


def get_key(rt: Runtime, org_id: str, key_id: str) -> db.SecretKey:
    with rt.sessions() as session:
        row = session.get(db.SecretKey, key_id)
    if row is None or row.org_id != org_id:
        raise NotFound(f"Key {key_id} does not exist.")
    return row


def authenticate(rt: Runtime, secret: str) -> db.Organisation:
    """The organisation whose live key this is; Unauthorized for anything else (unknown,
    revoked, malformed: one answer, so nothing is learnt about which)."""
    return identify(rt, secret)[0]


def identify(rt: Runtime, secret: str) -> tuple[db.Organisation, db.SecretKey]:
    """`authenticate`, with the key itself (what an event names as its actor)."""
    if not (secret.startswith(PREFIX) and len(secret) == KEY_LENGTH):
        raise Unauthorized("Unknown or revoked secret key.")
    wanted = digest(secret)
    with rt.sessions.begin() as session:
        row = session.scalar(select(db.SecretKey).where(db.SecretKey.key_hash == wanted))
        if (
            row is None
            or not hmac.compare_digest(row.key_hash, wanted)
            or row.revoked_at is not None
        ):
            raise Unauthorized("Unknown or revoked secret key.")
        org = session.get(db.Organisation, row.org_id)
        if org is None:
            raise Unauthorized("Unknown or revoked secret key.")
        now = db.utcnow()
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
            row.last_used_at = now
        return org, row


def rotate_key(
    rt: Runtime, org_id: str, name: str, *, actor: str = "cli", address: str | None = None
) -> CreatedKey:
    """A new key named `name`, the organisation's earlier live keys of that name revoked
    (what `loadbay demo` does at each start: it shows a key once, so it needs a new one)."""
    created = create_key(rt, org_id, name, actor=actor, address=address)
    with rt.sessions.begin() as session:
        for row in session.scalars(
            select(db.SecretKey).where(
                db.SecretKey.org_id == org_id,
                db.SecretKey.name == created.key.name,
                db.SecretKey.id != created.key.id,
                db.SecretKey.revoked_at.is_(None),
            )
        ):
            row.revoked_at = db.utcnow()
            audit.record(
                session,
                action="key.revoked",
                actor=actor,
                org_id=org_id,
                target=row.id,
                address=address,
            )
    return created
