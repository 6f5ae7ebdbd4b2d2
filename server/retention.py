"""Retention: stored rows are deleted when an import expires, or at once on request.

Deleting an import removes its sealed blobs and its wrapped data key (crypto-shredding:
any copy of a blob left elsewhere can no longer be decrypted). The import's metadata
(file name, row and batch counts, delivery outcomes) stays: it holds no cell values.
Remembered column mappings nobody confirmed for the retention period are deleted too.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from server import batches, db, events, import_views, imports, passthrough, templates
from server.deliveries import DeliveryStatus
from server.errors import Gone
from server.runtime import Runtime

log = logging.getLogger("loadbay.retention")

PURGE_EVERY = dt.timedelta(hours=1)
REASONS = {"deleted": events.IMPORT_DELETED, "expired": events.IMPORT_EXPIRED}
RETENTION_ACTOR = "retention"


def delete_import_data(
    rt: Runtime,
    import_id: str,
    reason: str = "deleted",
    *,
    actor: str = "cli",
    address: str | None = None,
) -> bool:
    """Shred one import's data and record it as an event (`import.deleted` or
    `import.expired`, by `actor`) in the same transaction; False when it was already gone."""
    if reason not in REASONS:
        raise ValueError(f"reason must be one of {', '.join(REASONS)}, not {reason!r}")
    with rt.sessions.begin() as session:
        imp = session.get(db.Import, import_id)
        if imp is None or (imp.wrapped_data_key is None and not passthrough.in_flight(imp)):
            return False
        in_redis = shred(rt, session, imp, f"import data {reason} before delivery")
        imp.status = reason
        events.record(
            session,
            org_id=imp.org_id,
            import_id=imp.id,
            kind=REASONS[reason],
            actor=actor,
            detail={"rows": imp.row_count, "batches": imp.batch_count},
            address=address,
        )
    if in_redis:
        passthrough.forget(rt, import_id)
    log.info("import %s: data %s by %s", import_id, reason, actor)
    return True


def shred(rt: Runtime, session: Session, imp: db.Import, why: str) -> bool:
    """Delete an import's stored rows in `session`'s transaction: its blobs, batch records,
    unique-value digests and wrapped data key; its pending deliveries fail saying `why`.
    True when Redis holds its rows (passthrough): `passthrough.forget` them after commit."""
    rt.blobs.delete_prefix(batches.blob_prefix(imp.org_id, imp.id))
    session.execute(delete(db.Batch).where(db.Batch.import_id == imp.id))
    session.execute(delete(db.UniqueValue).where(db.UniqueValue.import_id == imp.id))
    session.execute(delete(db.UniqueSet).where(db.UniqueSet.import_id == imp.id))
    session.execute(
        update(db.Delivery)
        .where(db.Delivery.import_id == imp.id, db.Delivery.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.FAILED, last_error=why)
    )
    imp.wrapped_data_key = None
    return passthrough.is_passthrough(imp)


def delete_import(
    rt: Runtime, org_id: str, import_id: str, actor: str, address: str | None = None
) -> events.Event:
    """Shred an import of `org_id` now (the management API's DELETE); returns the deletion
    event. NotFound for another organisation's; Gone, saying when and why, if its data is
    no longer stored."""
    with rt.sessions() as session:
        imp = import_views.owned(session, org_id, import_id)
        gone = imports.data_state(session, imp)
        if gone is not None:
            raise gone.error()
    if not delete_import_data(rt, import_id, "deleted", actor=actor, address=address):
        with rt.sessions() as session:  # deleted by another request in between
            found = imports.data_state(session, import_views.owned(session, org_id, import_id))
            raise (found.error() if found else Gone(f"Import {import_id} holds no data."))
    with rt.sessions() as session:
        row = events.last_for_import(session, import_id, (events.IMPORT_DELETED,))
        assert row is not None  # noqa: S101 - recorded with the deletion
        return events.view(row)


def purge_expired(rt: Runtime, now: dt.datetime | None = None) -> list[str]:
    """Shred every import whose retention has passed, and forget the mapping memories not
    confirmed within it; returns the shredded imports' ids."""
    moment = now or db.utcnow()
    forget_mapping_memories(rt, moment)
    with rt.sessions() as session:
        expired = list(
            session.scalars(
                select(db.Import.id).where(
                    db.Import.expires_at <= moment, db.Import.wrapped_data_key.is_not(None)
                )
            )
        )
    return [
        i for i in expired if delete_import_data(rt, i, reason="expired", actor=RETENTION_ACTOR)
    ]


def forget_mapping_memories(rt: Runtime, now: dt.datetime) -> int:
    """Delete the mapping memories nobody confirmed for their template's retention (its
    own `retentionDays`, else the organisation's, else the operator's): a memory is kept no
    longer than the imports that taught it. A no-store template's are kept until the next
    purge only, as its imports are."""
    count = 0
    with rt.sessions.begin() as session:
        taught = session.execute(
            select(db.Template, db.Organisation)
            .join(db.Organisation, db.Organisation.id == db.Template.org_id)
            .where(
                db.Template.id.in_(select(db.MappingMemory.template_id).distinct()),
            )
        ).all()
        for template, org in taught:
            days = templates.retention_days(rt, org, template.schema)
            gone = session.execute(
                delete(db.MappingMemory).where(
                    db.MappingMemory.template_id == template.id,
                    db.MappingMemory.confirmed_at <= now - dt.timedelta(days=days),
                )
            )
            if forgotten := int(getattr(gone, "rowcount", 0) or 0):
                count += forgotten
                log.info(
                    "mapping memory of %s: %d confirmation(s) not renewed in %d days deleted",
                    template.id,
                    forgotten,
                    days,
                )
    return count
