"""Retention: stored rows are deleted when an import expires, or at once on request.

Deleting an import removes its sealed blobs and its wrapped data key (crypto-shredding:
any copy of a blob left elsewhere can no longer be decrypted). The import's metadata
(file name, row and batch counts, delivery outcomes) stays: it holds no cell values.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import delete, select, update

from server import db
from server.runtime import Runtime

log = logging.getLogger("loadbay.retention")

PURGE_EVERY = dt.timedelta(hours=1)


def delete_import_data(rt: Runtime, import_id: str, reason: str = "deleted") -> bool:
    """Shred one import's data; False when it was already gone."""
    with rt.sessions.begin() as session:
        imp = session.get(db.Import, import_id)
        if imp is None or imp.wrapped_data_key is None:
            return False
        rt.blobs.delete_prefix(f"{imp.org_id}/{imp.id}/")
        session.execute(delete(db.Batch).where(db.Batch.import_id == imp.id))
        session.execute(delete(db.UniqueValue).where(db.UniqueValue.import_id == imp.id))
        session.execute(
            update(db.Delivery)
            .where(db.Delivery.import_id == imp.id, db.Delivery.status == "pending")
            .values(status="failed", last_error=f"import data {reason} before delivery")
        )
        imp.wrapped_data_key = None
        imp.status = reason
    log.info("import %s: data %s", import_id, reason)
    return True


def purge_expired(rt: Runtime, now: dt.datetime | None = None) -> list[str]:
    """Shred every import whose retention has passed; returns their ids."""
    moment = now or db.utcnow()
    with rt.sessions() as session:
        expired = list(
            session.scalars(
                select(db.Import.id).where(
                    db.Import.expires_at <= moment, db.Import.wrapped_data_key.is_not(None)
                )
            )
        )
    return [i for i in expired if delete_import_data(rt, i, reason="expired")]
