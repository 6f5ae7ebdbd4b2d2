"""Events: what happened to an organisation's data, who did it and when (metadata only).

An event is written in the transaction of what it records (a deletion and its event
commit together). Kinds so far: `import.submitted`, `import.batch-rejected` (the server's
re-validation refused a batch: counts of errors by code and field, never a value),
`import.deleted` and `import.expired`; actors: `cli`, `retention`, `importer` (the upload
token's holder), `api-key:<key id>`. Each event is also appended to the hash-chained audit
log (server.audit) in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server import audit, db
from server.runtime import Runtime

IMPORT_SUBMITTED = "import.submitted"
BATCH_REJECTED = "import.batch-rejected"
IMPORT_DELETED = "import.deleted"
IMPORT_EXPIRED = "import.expired"
IMPORTER_ACTOR = "importer"


@dataclass(frozen=True)
class Event:
    id: int
    org_id: str
    import_id: str | None
    kind: str
    actor: str
    at: dt.datetime
    detail: dict[str, Any] = field(default_factory=dict)


def record(
    session: Session,
    *,
    org_id: str,
    kind: str,
    actor: str,
    import_id: str | None = None,
    detail: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
    address: str | None = None,
) -> db.Event:
    """Add an event to `session`'s transaction (the caller commits it with its change)."""
    row = db.Event(
        org_id=org_id,
        import_id=import_id,
        kind=kind,
        actor=actor,
        at=at or db.utcnow(),
        detail=dict(detail or {}),
    )
    session.add(row)
    audit.record(
        session,
        action=kind,
        actor=actor,
        org_id=org_id,
        target=import_id,
        address=address,
        detail=row.detail,
        at=row.at,
    )
    return row


def list_for(
    rt: Runtime,
    org_id: str,
    *,
    import_id: str | None = None,
    kind: str | None = None,
    after: int | None = None,
    limit: int = 100,
) -> list[Event]:
    """An organisation's events, oldest first; `after` is the id of the last event already
    seen (a cursor), `import_id` and `kind` narrow the list."""
    query = select(db.Event).where(db.Event.org_id == org_id)
    if import_id is not None:
        query = query.where(db.Event.import_id == import_id)
    if kind is not None:
        query = query.where(db.Event.kind == kind)
    if after is not None:
        query = query.where(db.Event.id > after)
    query = query.order_by(db.Event.id).limit(max(1, min(limit, 1000)))
    with rt.sessions() as session:
        return [view(r) for r in session.scalars(query)]


def view(row: db.Event) -> Event:
    return Event(row.id, row.org_id, row.import_id, row.kind, row.actor, row.at, dict(row.detail))


def last_for_import(session: Session, import_id: str, kinds: tuple[str, ...]) -> db.Event | None:
    """The newest event of one of `kinds` about an import."""
    return session.scalar(
        select(db.Event)
        .where(db.Event.import_id == import_id, db.Event.kind.in_(kinds))
        .order_by(db.Event.id.desc())
        .limit(1)
    )
