"""An import's lifecycle: created, uploading, submitted, delivered; and its status.

Receiving batches is `server.uploads`; storing them is `server.batches`; pushing them to
destinations is `server.deliveries`.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server import db
from server.errors import Conflict, Invalid, NotFound, Unauthorized
from server.runtime import Runtime

MISSING_LISTED = 10  # how many missing batch numbers an answer names


class ImportStatus(enum.StrEnum):
    UPLOADING = "uploading"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    COMPLETE = "complete"  # submitted, with no destination to deliver to
    FAILED = "failed"
    DELETED = "deleted"
    EXPIRED = "expired"

    @property
    def final(self) -> bool:
        """Nothing more will happen to the import: a page may stop asking."""
        return self not in (ImportStatus.UPLOADING, ImportStatus.DELIVERING)


@dataclass(frozen=True)
class CreatedImport:
    import_id: str
    upload_token: str


@dataclass(frozen=True)
class ImportState:
    import_id: str
    status: ImportStatus
    rows: int
    batches: int
    deliveries: dict[str, int]
    left_out: int = 0  # invalid rows left out under the valid-only policy

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.import_id,
            "status": self.status.value,
            "final": self.status.final,
            "rows": self.rows,
            "batches": self.batches,
            "left_out": self.left_out,
            "deliveries": self.deliveries,
        }


def create_import(
    rt: Runtime, org: db.Organisation, template_id: str, file_name: str
) -> CreatedImport:
    with rt.sessions.begin() as session:
        template = session.get(db.Template, template_id)
        if template is None or template.org_id != org.id or template.deleted_at is not None:
            raise NotFound(f"Template {template_id} does not exist.")
        import_id = db.new_id("imp")
        token = secrets.token_urlsafe(32)
        now = db.utcnow()
        session.add(
            db.Import(
                id=import_id,
                org_id=org.id,
                template_id=template.id,
                template_version=template.version,  # the schema this import is checked by
                file_name=file_name[:300],
                token_hash=_hash(token),
                wrapped_data_key=rt.vault.new_data_key(org.id, org.wrapped_key, import_id),
                created_at=now,
                expires_at=now + dt.timedelta(days=rt.settings.retention_days),
            )
        )
    return CreatedImport(import_id, token)


def authorise(session: Session, import_id: str, token: str) -> db.Import:
    imp = session.get(db.Import, import_id)
    if imp is None or not hmac.compare_digest(imp.token_hash, _hash(token)):
        raise Unauthorized("This upload link is not valid. Start the import again.")
    return imp


def submit(rt: Runtime, import_id: str, token: str, batch_count: int, row_count: int) -> list[int]:
    """Close the upload and create one delivery per batch and destination; returns their ids.

    Idempotent: submitting again (a lost answer, a retry after 503) creates nothing and
    returns the same deliveries. The client's counts are checked against what is stored,
    never used to allocate anything.
    """
    with rt.sessions.begin() as session:
        imp = authorise(session, import_id, token)
        if imp.status != ImportStatus.UPLOADING:
            return list(
                session.scalars(
                    select(db.Delivery.id)
                    .where(db.Delivery.import_id == import_id)
                    .order_by(db.Delivery.id)
                )
            )
        stored, received, top = session.execute(
            select(
                func.count(db.Batch.id),
                func.coalesce(func.sum(db.Batch.row_count), 0),
                func.coalesce(func.max(db.Batch.seq), -1),
            ).where(db.Batch.import_id == import_id)
        ).one()
        if batch_count != stored or top != stored - 1:
            raise Invalid(_missing_message(session, import_id, batch_count, stored))
        if received != row_count:
            raise Invalid(f"The server received {received} rows, not {row_count}.")
        destinations = session.scalars(
            select(db.Destination).where(
                db.Destination.template_id == imp.template_id, db.Destination.enabled.is_(True)
            )
        ).all()
        seqs = session.scalars(
            select(db.Batch.seq).where(db.Batch.import_id == import_id).order_by(db.Batch.seq)
        ).all()
        deliveries = [
            db.Delivery(import_id=imp.id, seq=seq, destination_id=d.id)
            for seq in seqs
            for d in destinations
        ]
        session.add_all(deliveries)
        imp.row_count = int(received)
        imp.batch_count = int(stored)
        imp.status = ImportStatus.DELIVERING if deliveries else ImportStatus.COMPLETE
        session.flush()
        return [d.id for d in deliveries]


def _missing_message(session: Session, import_id: str, claimed: int, stored: int) -> str:
    """Which batches are missing, naming a few: the claim is the client's word, so nothing
    here is sized by it."""
    if claimed < stored:
        return f"The server holds {stored} batches, more than the {claimed} submitted."
    held = set(
        session.scalars(
            select(db.Batch.seq).where(
                db.Batch.import_id == import_id, db.Batch.seq < stored + MISSING_LISTED
            )
        )
    )
    missing: list[int] = []
    seq = 0
    while len(missing) < MISSING_LISTED and seq < claimed:
        if seq not in held:
            missing.append(seq)
        seq += 1
    count = claimed - stored
    more = f" and {count - len(missing)} more" if count > len(missing) else ""
    return (
        f"{count} batch(es) have not arrived (numbers {', '.join(map(str, missing))}{more}); "
        "upload them before submitting."
    )


def claim_mapping_memory(session: Session, import_id: str, token: str, template_id: str) -> None:
    """One submitted import may teach its template one mapping: a publishable key alone,
    which is public, cannot fill a template's memory with mappings nobody confirmed."""
    imp = authorise(session, import_id, token)
    if imp.template_id != template_id:
        raise NotFound(f"Import {import_id} is not an import of template {template_id}.")
    if imp.status == ImportStatus.UPLOADING:
        raise Conflict("Submit the import before remembering its mapping.")
    if imp.mapping_remembered:
        raise Conflict(f"The mapping of import {import_id} was already remembered.")
    imp.mapping_remembered = True


def status(rt: Runtime, import_id: str, token: str) -> ImportState:
    with rt.sessions() as session:
        imp = authorise(session, import_id, token)
        return import_status(session, imp)


def import_status(session: Session, imp: db.Import) -> ImportState:
    counts: dict[str, int] = {"pending": 0, "delivered": 0, "failed": 0}
    for state, n in session.execute(
        select(db.Delivery.status, func.count())
        .where(db.Delivery.import_id == imp.id)
        .group_by(db.Delivery.status)
    ):
        key = "pending" if state == "sending" else str(state)  # an attempt in flight is pending
        counts[key] = counts.get(key, 0) + int(n)
    state = ImportStatus(imp.status)
    if state == ImportStatus.DELIVERING:
        unfinished = sum(n for k, n in counts.items() if k not in ("delivered", "failed"))
        if counts["failed"]:
            state = ImportStatus.FAILED  # one batch lost to a destination fails the import
        elif unfinished == 0:
            state = ImportStatus.DELIVERED
    left_out = session.scalar(
        select(func.coalesce(func.sum(db.Batch.left_out), 0)).where(db.Batch.import_id == imp.id)
    )
    return ImportState(imp.id, state, imp.row_count, imp.batch_count, counts, int(left_out or 0))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
