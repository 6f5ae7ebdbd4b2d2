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

from server import db, events, passthrough, templates
from server.errors import Conflict, Gone, Invalid, NotFound, Unauthorized
from server.identity import Identity
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
class DataGone:
    """An import's rows are no longer kept: when, why (`deleted`, `expired`, or
    `passthrough-window` for a passthrough import not delivered in time) and by whom."""

    import_id: str
    at: dt.datetime | None
    reason: str
    actor: str | None = None
    retention_days: int | None = None

    @property
    def message(self) -> str:
        on = f" on {self.at:%Y-%m-%d at %H:%M} UTC" if self.at is not None else ""
        if self.reason == passthrough.WINDOW_REASON:
            why = f"not delivered before its passthrough window closed{on}"
        elif self.reason == ImportStatus.EXPIRED:
            why = f"expired after {self.retention_days} days retention{on}"
        else:
            why = "deleted" + (f" by {self.actor}" if self.actor else "") + on
        return f"The data of import {self.import_id} was {why}; its rows are no longer stored."

    def to_dict(self) -> dict[str, Any]:
        """What the importer's status answer shows the end user."""
        return {
            "at": self.at.isoformat() if self.at is not None else None,
            "reason": self.reason,
            "message": self.message,
        }

    def error(self) -> Gone:
        at = self.at.isoformat() if self.at is not None else None
        details = {"import_id": self.import_id, "reason": self.reason, "at": at}
        return Gone(self.message, details=details | {"actor": self.actor})


@dataclass(frozen=True)
class ImportState:
    import_id: str
    status: ImportStatus
    rows: int
    batches: int
    deliveries: dict[str, int]
    gone: DataGone | None = None
    left_out: int = 0  # invalid rows left out under the valid-only policy

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.import_id,
            "status": self.status.value,
            "final": self.status.final,
            "rows": self.rows,
            "batches": self.batches,
            "left_out": self.left_out,
            "deliveries": self.deliveries,
        }
        if self.gone is not None:
            out["dataGone"] = self.gone.to_dict()
        return out


def data_state(session: Session, imp: db.Import, now: dt.datetime | None = None) -> DataGone | None:
    """None while the import's data may be served; otherwise when, why and by whom it went.
    The importer's routes and the management API answer 410 with this (one rule)."""
    moment = now or db.utcnow()
    days = imp.retention_days  # what it was created under; older imports: from their dates
    if days is None:
        days = max(0, round((imp.expires_at - imp.created_at) / dt.timedelta(days=1)))
    if passthrough.is_passthrough(imp):
        if imp.status == ImportStatus.DELETED:
            pass  # recorded below, like a stored import's deletion
        elif imp.status == ImportStatus.EXPIRED or (
            imp.status == ImportStatus.UPLOADING and imp.expires_at <= moment
        ):
            return DataGone(imp.id, imp.expires_at, passthrough.WINDOW_REASON, "retention", 0)
        else:
            return None
    elif imp.wrapped_data_key is not None:
        return None
    event = events.last_for_import(session, imp.id, (events.IMPORT_DELETED, events.IMPORT_EXPIRED))
    if event is not None:
        reason = "expired" if event.kind == events.IMPORT_EXPIRED else "deleted"
        return DataGone(imp.id, event.at, reason, event.actor, days)
    # Shredded before events were recorded.
    if imp.status == ImportStatus.EXPIRED:
        return DataGone(imp.id, imp.expires_at, "expired", None, days)
    return DataGone(imp.id, None, "deleted", None, days)


def create_import(
    rt: Runtime,
    org: db.Organisation,
    template_id: str,
    file_name: str,
    identity: Identity | None = None,
) -> CreatedImport:
    with rt.sessions.begin() as session:
        template = session.get(db.Template, template_id)
        if template is None or template.org_id != org.id or template.deleted_at is not None:
            raise NotFound(f"Template {template_id} does not exist.")
        import_id = db.new_id("imp")
        token = secrets.token_urlsafe(32)
        now = db.utcnow()
        days = templates.retention_days(
            rt, session.get(db.Organisation, org.id) or org, template.schema
        )
        if days == 0:  # passthrough: the data key lives in Redis only
            wrapped, expires = None, passthrough.open_window(rt, org, import_id, now)
        else:
            wrapped = rt.vault.new_data_key(
                org.id, org.wrapped_key, import_id, kms_key_arn=org.kms_key_arn
            )
            expires = now + dt.timedelta(days=days)
        session.add(
            db.Import(
                id=import_id,
                org_id=org.id,
                template_id=template.id,
                template_version=template.version,  # the schema this import is checked by
                file_name=file_name[:300],
                token_hash=_hash(token),
                wrapped_data_key=wrapped,
                created_at=now,
                expires_at=expires,
                retention_days=days,
                identity=identity.to_dict() if identity is not None else None,
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
        gone = data_state(session, imp)
        if gone is not None:
            raise gone.error()
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
        events.record(
            session,
            org_id=imp.org_id,
            import_id=imp.id,
            kind=events.IMPORT_SUBMITTED,
            actor=events.IMPORTER_ACTOR,
            detail={"rows": imp.row_count, "batches": imp.batch_count},
        )
        session.flush()
        ids = [d.id for d in deliveries]
        unread = passthrough.is_passthrough(imp) and not ids
    if unread:
        passthrough.finished_without_deliveries(rt, import_id)
    return ids


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
    return statuses(session, [imp])[imp.id]


def statuses(session: Session, imps: list[db.Import]) -> dict[str, ImportState]:
    """Where each import stands, from one query over their deliveries."""
    counts: dict[str, dict[str, int]] = {
        i.id: {"pending": 0, "delivered": 0, "failed": 0} for i in imps
    }
    if imps:
        for import_id, state, n in session.execute(
            select(db.Delivery.import_id, db.Delivery.status, func.count())
            .where(db.Delivery.import_id.in_(list(counts)))
            .group_by(db.Delivery.import_id, db.Delivery.status)
        ):
            key = "pending" if state == "sending" else str(state)  # in flight is pending
            counts[import_id][key] = counts[import_id].get(key, 0) + int(n)
    left_out: dict[str, int] = {}
    if imps:
        left_out = dict(
            session.execute(
                select(db.Batch.import_id, func.coalesce(func.sum(db.Batch.left_out), 0))
                .where(db.Batch.import_id.in_(list(counts)))
                .group_by(db.Batch.import_id)
            ).all()
        )
    found: dict[str, ImportState] = {}
    for i in imps:
        state = derived_status(i.status, counts[i.id])
        gone = data_state(session, i)
        if gone is not None and state == ImportStatus.UPLOADING:
            state = ImportStatus.EXPIRED  # a passthrough window closed before submit
        found[i.id] = ImportState(
            i.id,
            state,
            i.row_count,
            i.batch_count,
            counts[i.id],
            gone,
            int(left_out.get(i.id, 0)),
        )
    return found


def derived_status(stored: str, counts: dict[str, int]) -> ImportStatus:
    """An import delivering is delivered once every delivery is, failed once one failed
    (one batch lost to a destination fails the import). `import_views.status_clause` is this
    rule in SQL."""
    state = ImportStatus(stored)
    if state == ImportStatus.DELIVERING:
        unfinished = sum(n for k, n in counts.items() if k not in ("delivered", "failed"))
        if counts.get("failed"):
            return ImportStatus.FAILED
        if unfinished == 0:
            return ImportStatus.DELIVERED
    return state


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
