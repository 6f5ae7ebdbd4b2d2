"""A client's destinations: settings sealed per destination, secrets write-only (answered
through the kind's `redact` as set / not set), changes merged so an unsent secret is
kept, deleted softly and restorable like templates.

The top-level package `destinations` holds the kinds; this module is `server.destinations`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import destinations as kinds
from destinations.errors import DeliveryError
from destinations.network import UnsafeAddressError
from server import audit, db, templates
from server.errors import Conflict, Invalid, NotFound
from server.runtime import Runtime

DELETED_REASON = "deleted"
MAX_CONCURRENCY = 64  # batches sent to one destination at once, at most


class UnsafeDestination(Invalid):
    """The destination points where loadbay must not go (the SSRF guard refused it)."""

    code = "unsafe-address"


class InvalidDestination(Invalid):
    code = "invalid-destination"


@dataclass(frozen=True)
class DestinationView:
    """A destination as a client may see it: settings redacted."""

    row: db.Destination
    config: dict[str, Any]


def kind_spec(kind: str) -> kinds.DestinationSpec[Any]:
    try:
        return kinds.spec(kind)
    except DeliveryError as exc:
        raise InvalidDestination(str(exc)) from exc


def check(rt: Runtime, kind: str, config: dict[str, Any], *, connect: bool = False) -> str:
    """Parse the settings and run the kind's check(), and with `connect` its probe() (the
    connection test); what was found, errors saying what to change."""
    kind_spec(kind)
    try:
        made = kinds.validate(kind, config, rt.destination_context)
        found = kinds.probe(made) if connect else None
    except UnsafeAddressError as exc:
        raise UnsafeDestination(f"The destination cannot be used: {exc}") from exc
    except DeliveryError as exc:
        raise InvalidDestination(f"The destination cannot be used: {exc}") from exc
    return found or "The settings are valid and the address is allowed."


def _view(rt: Runtime, org: db.Organisation, row: db.Destination) -> DestinationView:
    config = rt.vault.open_config(org.id, org.wrapped_key, row.id, row.sealed_config)
    return DestinationView(row, kind_spec(row.kind).redact(config))


def checked_concurrency(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise InvalidDestination(
            f"max_concurrency is a whole number from 1 to {MAX_CONCURRENCY}: how many batches "
            "loadbay sends to this destination at once."
        )
    return value


def _audit(
    session: Session,
    action: str,
    row: db.Destination,
    actor: str,
    address: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Ids, the kind and setting names only: a setting's value may be a secret."""
    audit.record(
        session,
        action=action,
        actor=actor,
        org_id=row.org_id,
        target=row.id,
        address=address,
        detail=detail,
    )


def _owned(session: Session, org_id: str, destination_id: str) -> db.Destination:
    row = session.get(db.Destination, destination_id)
    if row is None or row.org_id != org_id:
        raise NotFound(f"Destination {destination_id} does not exist.")
    return row


def create_destination(
    rt: Runtime,
    org: db.Organisation,
    template_id: str,
    kind: str,
    name: str,
    config: dict[str, Any],
    *,
    max_concurrency: int = db.DEFAULT_CONCURRENCY,
    actor: str = "cli",
    address: str | None = None,
) -> DestinationView:
    checked_concurrency(max_concurrency)
    check(rt, kind, config)
    destination_id = db.new_id("dst")
    row = db.Destination(
        id=destination_id,
        org_id=org.id,
        template_id=template_id,
        kind=kind,
        name=name,
        sealed_config=rt.vault.seal_config(org.id, org.wrapped_key, destination_id, config),
        max_concurrency=max_concurrency,
        created_at=db.utcnow(),
    )
    with rt.sessions.begin() as session:
        templates.live_template(session, org.id, template_id)
        session.add(row)
        session.flush()
        _audit(
            session,
            "destination.created",
            row,
            actor,
            address,
            {"kind": kind, "template_id": template_id},
        )
    return _view(rt, org, row)


def get_destination(rt: Runtime, org: db.Organisation, destination_id: str) -> DestinationView:
    with rt.sessions() as session:
        row = _owned(session, org.id, destination_id)
    return _view(rt, org, row)


def list_destinations(
    rt: Runtime,
    org: db.Organisation,
    limit: int,
    cursor: str | None,
    include_deleted: bool = False,
) -> templates.Page:
    query = select(db.Destination).where(db.Destination.org_id == org.id)
    if not include_deleted:
        query = query.where(db.Destination.deleted_at.is_(None))
    with rt.sessions() as session:
        page = templates.paginate(session, query, db.Destination, limit, cursor)
    return templates.Page([_view(rt, org, row) for row in page.items], page.next_cursor)


def update_destination(
    rt: Runtime,
    org: db.Organisation,
    destination_id: str,
    *,
    name: str | None = None,
    enabled: bool | None = None,
    config: dict[str, Any] | None = None,
    max_concurrency: int | None = None,
    actor: str = "cli",
    address: str | None = None,
) -> DestinationView:
    """Change what was sent; settings are merged into the stored ones (a secret not sent
    is kept; a setting sent as null is removed) and checked again."""
    if max_concurrency is not None:
        checked_concurrency(max_concurrency)
    with rt.sessions.begin() as session:
        row = _owned(session, org.id, destination_id)
        if row.deleted_at is not None:
            raise Conflict(f"Destination {destination_id} is deleted; restore it first.")
        changed: list[str] = []
        if config is not None:
            stored = rt.vault.open_config(org.id, org.wrapped_key, row.id, row.sealed_config)
            merged = {**stored, **config}
            merged = {k: v for k, v in merged.items() if v is not None}
            check(rt, row.kind, merged)
            row.sealed_config = rt.vault.seal_config(org.id, org.wrapped_key, row.id, merged)
            changed += sorted(
                k for k in set(stored) | set(merged) if stored.get(k) != merged.get(k)
            )
        if name is not None and name != row.name:
            row.name = name
            changed.append("name")
        if enabled is not None and enabled != row.enabled:
            row.enabled = enabled
            row.disabled_reason = None if enabled else "disabled over the management API"
            changed.append("enabled")
        if max_concurrency is not None and max_concurrency != row.max_concurrency:
            row.max_concurrency = max_concurrency
            changed.append("max_concurrency")
        if changed:
            _audit(session, "destination.updated", row, actor, address, {"changed": changed})
    return _view(rt, org, row)


def check_destination(
    rt: Runtime,
    org: db.Organisation,
    destination_id: str,
    *,
    actor: str = "cli",
    address: str | None = None,
) -> str:
    """Test the stored settings: the kind's check(), then its probe() (connect as a
    delivery would, write no rows); what was found. The outcome is audited, a failure
    re-raised with what to change."""
    with rt.sessions() as session:
        row = _owned(session, org.id, destination_id)
    config = rt.vault.open_config(org.id, org.wrapped_key, row.id, row.sealed_config)
    try:
        found = check(rt, row.kind, config, connect=True)
    except Invalid as exc:
        with rt.sessions.begin() as session:
            _audit(
                session, "destination.tested", row, actor, address, {"ok": False, "code": exc.code}
            )
        raise
    with rt.sessions.begin() as session:
        _audit(session, "destination.tested", row, actor, address, {"ok": True})
    return found


def delete_destination(
    rt: Runtime,
    org: db.Organisation,
    destination_id: str,
    *,
    actor: str = "cli",
    address: str | None = None,
) -> DestinationView:
    """Soft: nothing more is delivered to it (it is disabled) until it is restored."""
    with rt.sessions.begin() as session:
        row = _owned(session, org.id, destination_id)
        if row.deleted_at is None:
            row.deleted_at = db.utcnow()
            if row.enabled:
                row.enabled, row.disabled_reason = False, DELETED_REASON
            _audit(session, "destination.deleted", row, actor, address)
    return _view(rt, org, row)


def restore_destination(
    rt: Runtime,
    org: db.Organisation,
    destination_id: str,
    *,
    actor: str = "cli",
    address: str | None = None,
) -> DestinationView:
    with rt.sessions.begin() as session:
        row = _owned(session, org.id, destination_id)
        templates.restorable(row.deleted_at, f"Destination {destination_id}")
        if row.deleted_at is not None:
            row.deleted_at = None
            if row.disabled_reason == DELETED_REASON:
                row.enabled, row.disabled_reason = True, None
            _audit(session, "destination.restored", row, actor, address)
    return _view(rt, org, row)


def kind_list() -> list[kinds.DestinationSpec[Any]]:
    return [kinds.spec(kind) for kind in kinds.kinds()]
