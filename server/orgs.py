"""Organisations, templates and destinations: what a client configures."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select

from server import audit, db, kms, templates
from server import destinations as server_destinations
from server.errors import Invalid, NotFound
from server.runtime import Runtime

INVALID_ROW_POLICIES = ("reject", "valid-only", "with-errors")
MIN_RETENTION_DAYS, MAX_RETENTION_DAYS = 1, 365
MAX_ORIGINS = 100
# How long a rotated publishable key keeps opening the importer, as the form offers it.
KEY_GRACE = {
    "now": dt.timedelta(0),
    "1h": dt.timedelta(hours=1),
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
}
DEFAULT_KEY_GRACE = "24h"
_HOST = re.compile(r"[a-z0-9.\-]+|[0-9a-f:.]+")


class InvalidOrigin(Invalid):
    code = "invalid-origin"


def create_organisation(rt: Runtime, name: str, allowed_origins: list[str]) -> db.Organisation:
    org_id = db.new_id("org")
    org = db.Organisation(
        id=org_id,
        name=name,
        publishable_key="pk_" + secrets.token_urlsafe(24),
        allowed_origins=[o.rstrip("/") for o in allowed_origins],
        wrapped_key=rt.vault.new_org_key(org_id),
    )
    with rt.sessions.begin() as session:
        session.add(org)
    return org


def create_template(rt: Runtime, org: db.Organisation, schema: dict[str, Any]) -> db.Template:
    return templates.create_template(rt, org.id, schema)


def create_destination(
    rt: Runtime,
    org: db.Organisation,
    template: db.Template,
    kind: str,
    name: str,
    config: dict[str, Any],
) -> db.Destination:
    """A destination whose settings parse and pass check() (the address is one loadbay may
    reach)."""
    return server_destinations.create_destination(rt, org, template.id, kind, name, config).row


def list_organisations(rt: Runtime) -> list[db.Organisation]:
    """Every organisation, oldest first (deleted ones leave only a tombstone)."""
    with rt.sessions() as session:
        return list(session.scalars(select(db.Organisation).order_by(db.Organisation.created_at)))


def organisation_by_key(
    rt: Runtime, publishable_key: str, now: dt.datetime | None = None
) -> db.Organisation:
    """The organisation a publishable key opens: its current key, or the one before the
    last rotation until its grace period ends."""
    now = now or db.utcnow()
    with rt.sessions() as session:
        org = session.scalar(
            select(db.Organisation).where(
                or_(
                    db.Organisation.publishable_key == publishable_key,
                    db.Organisation.previous_publishable_key == publishable_key,
                )
            )
        )
    if org is not None and org.publishable_key != publishable_key:
        if previous_key(org, now) is None:
            raise NotFound(
                "This publishable key was rotated and its grace period is over: give your "
                "embed code the organisation's current key."
            )
    if org is None:
        raise NotFound("Unknown publishable key. Check the key in your embed code.")
    return org


def template_for(rt: Runtime, org: db.Organisation, template_id: str) -> db.Template:
    """A template the importer may serve: the organisation's, and not deleted."""
    with rt.sessions() as session:
        return templates.live_template(session, org.id, template_id)


def previous_key(
    org: db.Organisation, now: dt.datetime | None = None
) -> tuple[str, dt.datetime] | None:
    """The publishable key before the last rotation and its expiry, while it still opens
    the importer (its grace period: `rotate_publishable_key`)."""
    key, expires = org.previous_publishable_key, org.previous_key_expires_at
    if key is None or expires is None or expires <= (now or db.utcnow()):
        return None
    return key, expires


@dataclass(frozen=True)
class OrganisationSettings:
    organisation: db.Organisation
    default_retention_days: int  # the organisation's, else the operator's default

    @property
    def previous_key(self) -> tuple[str, dt.datetime] | None:
        return previous_key(self.organisation)


def settings_of(rt: Runtime, org_id: str) -> OrganisationSettings:
    with rt.sessions() as session:
        org = session.get(db.Organisation, org_id)
    if org is None:
        raise NotFound(f"Organisation {org_id} does not exist.")
    return OrganisationSettings(org, templates.default_retention_days(rt, org))


def update_settings(
    rt: Runtime,
    org_id: str,
    *,
    allowed_origins: list[str] | None = None,
    default_retention_days: int | None = None,
    invalid_row_policy: str | None = None,
    kms_key_arn: str | None = None,
    actor: str = "cli",
    address: str | None = None,
) -> OrganisationSettings:
    """Change what was sent; every value is checked before anything is stored (a KMS key
    only once loadbay has generated and unwrapped a data key with it). A new KMS key wraps
    the data keys of imports created from then on; earlier imports keep theirs."""
    origins = None if allowed_origins is None else checked_origins(allowed_origins)
    if kms_key_arn is not None:
        kms_key_arn = kms.checked_arn(kms_key_arn)
        rt.vault.kms.check(kms_key_arn, org_id)
    if default_retention_days is not None and not (
        MIN_RETENTION_DAYS <= default_retention_days <= MAX_RETENTION_DAYS
    ):
        raise Invalid(
            f"The default retention is {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS} days."
        )
    if invalid_row_policy is not None and invalid_row_policy not in INVALID_ROW_POLICIES:
        raise Invalid(f"The invalid-row policy is one of {', '.join(INVALID_ROW_POLICIES)}.")
    with rt.sessions.begin() as session:
        org = session.get(db.Organisation, org_id)
        if org is None:
            raise NotFound(f"Organisation {org_id} does not exist.")
        current = {
            "allowed_origins": list(org.allowed_origins or []),
            "default_retention_days": templates.default_retention_days(rt, org),
            "invalid_row_policy": org.invalid_row_policy,
            "kms_key_arn": org.kms_key_arn,
        }
        sent = {
            "allowed_origins": origins,
            "default_retention_days": default_retention_days,
            "invalid_row_policy": invalid_row_policy,
            "kms_key_arn": kms_key_arn,
        }
        # What differs from what is stored: a form saved unchanged changes (and logs) nothing.
        changed = {
            name: value
            for name, value in sent.items()
            if value is not None and value != current[name]
        }
        if origins is not None and "allowed_origins" in changed:
            org.allowed_origins = origins
        if "default_retention_days" in changed:
            org.retention_days = default_retention_days
        if invalid_row_policy is not None and "invalid_row_policy" in changed:
            org.invalid_row_policy = invalid_row_policy
        if "kms_key_arn" in changed:
            org.kms_key_arn = kms_key_arn
        if changed:
            audit.record(
                session,
                action="settings.updated",
                actor=actor,
                org_id=org_id,
                address=address,
                detail=changed,
            )
    return settings_of(rt, org_id)


def rotate_publishable_key(
    rt: Runtime,
    org_id: str,
    *,
    grace: str = DEFAULT_KEY_GRACE,
    actor: str = "cli",
    address: str | None = None,
) -> OrganisationSettings:
    """A new publishable key. The old one keeps opening the importer for `grace` (a key
    of KEY_GRACE; "now" ends it at once) so embed code can be updated meanwhile. Only the
    key before the last rotation is kept: rotating again ends an earlier grace period."""
    if grace not in KEY_GRACE:
        raise Invalid(f"The grace period is one of {', '.join(KEY_GRACE)}, not {grace!r}.")
    now = db.utcnow()
    with rt.sessions.begin() as session:
        org = session.get(db.Organisation, org_id)
        if org is None:
            raise NotFound(f"Organisation {org_id} does not exist.")
        period = KEY_GRACE[grace]
        expires = now + period if period else None
        org.previous_publishable_key = org.publishable_key if expires else None
        org.previous_key_expires_at = expires
        org.publishable_key = "pk_" + secrets.token_urlsafe(24)
        detail = {"grace": grace, "previous_expires_at": expires.isoformat() if expires else None}
        audit.record(
            session,
            action="publishable-key.rotated",
            actor=actor,
            org_id=org_id,
            address=address,
            detail=detail,
        )
    return settings_of(rt, org_id)


def revoke_previous_publishable_key(
    rt: Runtime, org_id: str, *, actor: str = "cli", address: str | None = None
) -> OrganisationSettings:
    """End the grace period of the key before the last rotation now (NotFound when none
    is in its grace period)."""
    with rt.sessions.begin() as session:
        org = session.get(db.Organisation, org_id)
        if org is None:
            raise NotFound(f"Organisation {org_id} does not exist.")
        if previous_key(org) is None:
            raise NotFound("No earlier publishable key is in its grace period.")
        org.previous_publishable_key = None
        org.previous_key_expires_at = None
        audit.record(
            session,
            action="publishable-key.previous-revoked",
            actor=actor,
            org_id=org_id,
            address=address,
        )
    return settings_of(rt, org_id)


def checked_origins(values: list[str]) -> list[str]:
    """Web origins (scheme://host[:port]), lower-cased, without a trailing slash; anything
    with a path, query, fragment or credentials is refused."""
    if len(values) > MAX_ORIGINS:
        raise Invalid(f"At most {MAX_ORIGINS} allowed origins.")
    checked: list[str] = []
    for value in values:
        origin = _origin(value)
        if origin is None:
            raise InvalidOrigin(
                f"{value[:200]!r} is not an origin: give scheme://host[:port], "
                "for example https://app.example.com."
            )
        if origin not in checked:
            checked.append(origin)
    return checked


def _origin(value: str) -> str | None:
    if not isinstance(value, str) or len(value) > 300 or not value.isascii():
        return None
    try:
        parts = urlsplit(value.strip().removesuffix("/"))
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if (
        parts.scheme not in ("http", "https")
        or not host
        or parts.username is not None
        or parts.password is not None
        or parts.path
        or parts.query
        or parts.fragment
        or "%" in parts.netloc
        or not _HOST.fullmatch(host)
    ):
        return None
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}" + (f":{port}" if port is not None else "")
