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
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server import db, events
from server.errors import Conflict, Gone, Invalid, NotFound, Unauthorized
from server.runtime import Runtime
from server.templates import paginate

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.import_id,
            "status": self.status.value,
            "final": self.status.final,
            "rows": self.rows,
            "batches": self.batches,
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
        events.record(
            session,
            org_id=imp.org_id,
            import_id=imp.id,
            kind=events.IMPORT_SUBMITTED,
            actor=events.IMPORTER_ACTOR,
            detail={"rows": imp.row_count, "batches": imp.batch_count},
        )
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
    return {
        i.id: ImportState(
            i.id, derived_status(i.status, counts[i.id]), i.row_count, i.batch_count, counts[i.id]
        )
        for i in imps
    }


def derived_status(stored: str, counts: dict[str, int]) -> ImportStatus:
    """An import delivering is delivered once every delivery is, failed once one failed
    (one batch lost to a destination fails the import). `query.status_clause` is this
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


# --- what the management API shows (a secret key's view of its organisation's imports) -------

MAX_REJECTIONS = 100  # rejected batches recorded per import: a hostile page cannot grow more


@dataclass(frozen=True)
class ErrorCount:
    code: str
    field: str
    constraint: str | None  # which rule, for a constraint-error (required, enum, ...)
    count: int


@dataclass(frozen=True)
class DataGone:
    """Why an import's rows are no longer stored: `deleted` (by `actor`) or `expired`."""

    reason: str
    at: dt.datetime | None
    actor: str | None
    retention_days: int


@dataclass(frozen=True)
class ImportView:
    row: db.Import
    state: ImportState


@dataclass(frozen=True)
class ImportDetail:
    row: db.Import
    state: ImportState
    submitted_at: dt.datetime | None
    delivered_at: dt.datetime | None
    rejected_batches: int
    errors: list[ErrorCount]
    gone: DataGone | None


@dataclass(frozen=True)
class ImportFilter:
    template_id: str | None = None
    status: ImportStatus | None = None
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None


def list_imports(
    rt: Runtime, org_id: str, limit: int, cursor: str | None, where: ImportFilter
) -> tuple[list[ImportView], str | None]:
    """An organisation's imports in creation order, a page at a time (an opaque cursor)."""
    query = select(db.Import).where(db.Import.org_id == org_id)
    if where.template_id is not None:
        query = query.where(db.Import.template_id == where.template_id)
    if where.status is not None:
        query = query.where(status_clause(where.status))
    if where.created_after is not None:
        query = query.where(db.Import.created_at > where.created_after)
    if where.created_before is not None:
        query = query.where(db.Import.created_at < where.created_before)
    with rt.sessions() as session:
        page = paginate(session, query, db.Import, limit, cursor)
        rows: list[db.Import] = list(page.items)
        found = statuses(session, rows)
    return [ImportView(r, found[r.id]) for r in rows], page.next_cursor


def status_clause(status: ImportStatus) -> Any:
    """`derived_status` in SQL: which imports stand at `status` now."""
    delivery = select(db.Delivery.id).where(db.Delivery.import_id == db.Import.id)
    failed = delivery.where(db.Delivery.status == "failed").exists()
    unfinished = delivery.where(db.Delivery.status.in_(("pending", "sending"))).exists()
    delivering = db.Import.status == ImportStatus.DELIVERING.value
    if status == ImportStatus.DELIVERING:
        return delivering & ~failed & unfinished
    if status == ImportStatus.DELIVERED:
        return delivering & ~failed & ~unfinished
    if status == ImportStatus.FAILED:
        return (db.Import.status == status.value) | (delivering & failed)
    return db.Import.status == status.value


def owned(session: Session, org_id: str, import_id: str) -> db.Import:
    imp = session.get(db.Import, import_id)
    if imp is None or imp.org_id != org_id:
        raise NotFound(f"Import {import_id} does not exist.")
    return imp


def import_detail(rt: Runtime, org_id: str, import_id: str) -> ImportDetail:
    """One import as its organisation sees it: where it stands, its counts, the template
    version it used, the server's rejections by code and field, and its timings."""
    with rt.sessions() as session:
        imp = owned(session, org_id, import_id)
        state = import_status(session, imp)
        submitted = events.last_for_import(session, imp.id, (events.IMPORT_SUBMITTED,))
        delivered_at: dt.datetime | None = None
        if state.status == ImportStatus.DELIVERED:
            delivered_at = session.scalar(
                select(func.max(db.Delivery.delivered_at)).where(db.Delivery.import_id == imp.id)
            )
        errors: dict[tuple[str, str, str | None], int] = {}
        rejected = 0
        for event in session.scalars(
            select(db.Event)
            .where(db.Event.import_id == imp.id, db.Event.kind == events.BATCH_REJECTED)
            .order_by(db.Event.id)
        ):
            rejected += 1
            for entry in event.detail.get("errors", []):
                key = (str(entry["code"]), str(entry["field"]), entry.get("constraint"))
                errors[key] = errors.get(key, 0) + int(entry["count"])
        return ImportDetail(
            row=imp,
            state=state,
            submitted_at=submitted.at if submitted is not None else None,
            delivered_at=delivered_at,
            rejected_batches=rejected,
            errors=[ErrorCount(c, f, r, n) for (c, f, r), n in sorted(errors.items(), key=_order)],
            gone=data_gone(session, imp),
        )


def data_gone(session: Session, imp: db.Import) -> DataGone | None:
    """When, why and by whom an import's rows were shredded; None while they are stored."""
    if imp.wrapped_data_key is not None:
        return None
    days = max(0, round((imp.expires_at - imp.created_at) / dt.timedelta(days=1)))
    event = events.last_for_import(session, imp.id, (events.IMPORT_DELETED, events.IMPORT_EXPIRED))
    if event is not None:
        reason = "expired" if event.kind == events.IMPORT_EXPIRED else "deleted"
        return DataGone(reason, event.at, event.actor, days)
    # Shredded before events were recorded.
    if imp.status == ImportStatus.EXPIRED:
        return DataGone("expired", imp.expires_at, None, days)
    return DataGone("deleted", None, None, days)


def count_errors(found: Iterable[tuple[str, str, str | None]]) -> list[ErrorCount]:
    """(code, field, constraint) counted, in that order."""
    return [ErrorCount(c, f, r, n) for (c, f, r), n in sorted(Counter(found).items(), key=_order)]


def _order(item: tuple[tuple[str, str, str | None], int]) -> tuple[str, str, str]:
    (code, field, constraint), _ = item
    return code, field, constraint or ""


def record_rejection(rt: Runtime, import_id: str, seq: int, found: list[ErrorCount]) -> None:
    """Note that the server's re-validation refused batch `seq` of an import (counts by
    code and field, never a value): the error summary the management API shows."""
    with rt.sessions.begin() as session:
        imp = session.get(db.Import, import_id)
        recorded = session.scalar(
            select(func.count(db.Event.id)).where(
                db.Event.import_id == import_id, db.Event.kind == events.BATCH_REJECTED
            )
        )
        if imp is None or (recorded or 0) >= MAX_REJECTIONS:
            return
        events.record(
            session,
            org_id=imp.org_id,
            import_id=imp.id,
            kind=events.BATCH_REJECTED,
            actor=events.IMPORTER_ACTOR,
            detail={
                "seq": seq,
                "errors": [
                    {"code": e.code, "field": e.field, "constraint": e.constraint, "count": e.count}
                    for e in found
                ],
            },
        )


def gone_error(session: Session, imp: db.Import) -> Gone:
    """The error for an import whose data is no longer stored: when, why and by whom
    ("expired after 30 days retention", "deleted by api-key:key_... on ...")."""
    found = data_gone(session, imp)
    assert found is not None  # noqa: S101 - called for a shredded import only
    if found.reason == "expired":
        why = f"expired after {found.retention_days} days retention"
    else:
        why = "deleted" + (f" by {found.actor}" if found.actor else "")
    on = f" on {found.at:%Y-%m-%d at %H:%M} UTC" if found.at is not None else ""
    return Gone(
        f"The data of import {imp.id} was {why}{on}; its rows are no longer stored.",
        details={
            "import_id": imp.id,
            "reason": found.reason,
            "at": found.at.isoformat() if found.at is not None else None,
            "actor": found.actor,
        },
    )
