"""What the management API shows of an organisation's imports: lists with filters, one
import's detail (counts, template version, timings), the server's rejections counted by
code and field, and when, why and by whom an import's rows were shredded.

The lifecycle itself (create, submit, status) is `server.imports`."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server import db, events, imports
from server.errors import NotFound
from server.imports import ImportState, ImportStatus, import_status, statuses
from server.runtime import Runtime
from server.templates import paginate

MAX_REJECTIONS = 100  # rejected batches recorded per import: a hostile page cannot grow more


@dataclass(frozen=True)
class ErrorCount:
    code: str
    field: str | None  # None: an error of the whole row (a repeated primary key)
    constraint: str | None  # which rule, for a constraint-error (required, enum, ...)
    count: int


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
    gone: imports.DataGone | None


@dataclass(frozen=True)
class ImportFilter:
    template_id: str | None = None
    status: ImportStatus | None = None
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None
    search: str | None = None  # an import id exactly, or part of the file's or end user's name


@dataclass(frozen=True)
class DeliveryRow:
    """One batch's delivery to one destination, as the dashboard lists it."""

    id: int
    seq: int
    destination_id: str
    destination_name: str
    status: str
    attempts: int
    last_error: str | None
    delivered_at: dt.datetime | None


def list_imports(
    rt: Runtime, org_id: str, limit: int, cursor: str | None, where: ImportFilter
) -> tuple[list[ImportView], str | None]:
    """An organisation's imports, newest first, a page at a time (an opaque cursor)."""
    query = select(db.Import).where(db.Import.org_id == org_id)
    if where.template_id is not None:
        query = query.where(db.Import.template_id == where.template_id)
    if where.status is not None:
        query = query.where(status_clause(where.status))
    if where.created_after is not None:
        query = query.where(db.Import.created_at > where.created_after)
    if where.created_before is not None:
        query = query.where(db.Import.created_at < where.created_before)
    if where.search:
        escaped = where.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(
            (db.Import.id == where.search)
            | db.Import.file_name.ilike(pattern, escape="\\")
            | db.Import.identity["user"].as_string().ilike(pattern, escape="\\")
        )
    with rt.sessions() as session:
        page = paginate(session, query, db.Import, limit, cursor, newest_first=True)
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
            gone=imports.data_state(session, imp),
        )


def count_errors(found: Iterable[tuple[str, str | None, str | None]]) -> list[ErrorCount]:
    """(code, field, constraint) counted, in that order."""
    return [ErrorCount(c, f, r, n) for (c, f, r), n in sorted(Counter(found).items(), key=_order)]


def _order(item: tuple[tuple[str, str | None, str | None], int]) -> tuple[str, str, str]:
    (code, field, constraint), _ = item
    return code, field or "", constraint or ""


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


def deliveries_of(rt: Runtime, org_id: str, import_id: str) -> list[DeliveryRow]:
    """Every delivery of an import (one per batch and destination), by destination then
    batch; NotFound for another organisation's import."""
    with rt.sessions() as session:
        owned(session, org_id, import_id)
        rows = session.execute(
            select(db.Delivery, db.Destination.name)
            .join(db.Destination, db.Destination.id == db.Delivery.destination_id)
            .where(db.Delivery.import_id == import_id)
            .order_by(db.Destination.name, db.Delivery.destination_id, db.Delivery.seq)
        ).all()
    return [
        DeliveryRow(
            d.id, d.seq, d.destination_id, name, d.status, d.attempts, d.last_error, d.delivered_at
        )
        for d, name in rows
    ]


def last_upload_at(rt: Runtime, import_id: str) -> dt.datetime | None:
    """When the import's last batch arrived (None before any did)."""
    with rt.sessions() as session:
        return session.scalar(
            select(func.max(db.Batch.created_at)).where(db.Batch.import_id == import_id)
        )
