"""Settling an attempt whose write() succeeded: the delivery is delivered, and when it is
the last of its import to its destination, the destination's finish() runs first (an S3
manifest, a PostgreSQL table swap). Kept out of deliveries.py, which claims, runs attempts
and retries."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from destinations.base import FinishedImport
from server import attempts, db
from server.errors import NotFound
from server.runtime import Runtime

DeliveryStatus = db.Delivery.Status
Outcome = attempts.Outcome


class Stopwatch:
    """Milliseconds since start(); None until then (the destination was never reached)."""

    def __init__(self) -> None:
        self._began: float | None = None

    def start(self) -> None:
        self._began = time.monotonic()

    @property
    def ms(self) -> int | None:
        return None if self._began is None else round((time.monotonic() - self._began) * 1000)


def unless_last(
    rt: Runtime, delivery_id: int, started: dt.datetime, said: attempts.Said
) -> FinishedImport | None:
    """Mark the delivery delivered, unless it is the last of its import to this destination:
    then what finish() needs, and the caller settles it once finish() succeeded (a failed
    finish is retried with the batch; write() is idempotent). The import's row is written
    first, so two last-but-one deliveries settling at once are serialised (a row lock in
    PostgreSQL, the write lock in SQLite) and exactly one of them sees itself last."""
    with rt.sessions.begin() as session:
        delivery = session.get(db.Delivery, delivery_id)
        if delivery is None:
            raise NotFound(f"Delivery {delivery_id} does not exist.")
        session.execute(
            update(db.Import)
            .where(db.Import.id == delivery.import_id)
            .values(status=db.Import.status)
            .execution_options(synchronize_session=False)
        )
        others = session.scalar(
            select(func.count(db.Delivery.id)).where(
                db.Delivery.import_id == delivery.import_id,
                db.Delivery.destination_id == delivery.destination_id,
                db.Delivery.id != delivery_id,
                db.Delivery.status != DeliveryStatus.DELIVERED,
            )
        )
        if others:
            delivered(session, delivery_id, started, said)
            return None
        imp = session.get(db.Import, delivery.import_id)
        template = session.get(db.Template, imp.template_id) if imp is not None else None
        if imp is None or template is None:
            raise NotFound(f"The import of delivery {delivery_id} is gone.")
        counts = session.scalars(
            select(db.Batch.row_count).where(db.Batch.import_id == imp.id).order_by(db.Batch.seq)
        ).all()
        return FinishedImport(
            import_id=imp.id,
            template=template.name,
            destination_id=delivery.destination_id,
            org_id=imp.org_id,
            row_counts=tuple(counts),
            imported_at=imp.created_at,
        )


def delivered(
    session: Session, delivery_id: int, started: dt.datetime, said: attempts.Said
) -> None:
    finished = db.utcnow()
    changed = cast(
        CursorResult[Any],
        session.execute(
            update(db.Delivery)
            .where(
                db.Delivery.id == delivery_id,
                db.Delivery.status.in_([DeliveryStatus.SENDING, DeliveryStatus.PENDING]),
            )
            .values(
                status=DeliveryStatus.DELIVERED,
                delivered_at=finished,
                last_error=None,
                claimed_at=None,
                next_attempt_at=None,
            )
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    if changed == 1:
        attempts.record(
            session, delivery_id, started, Outcome.DELIVERED, said=said, finished=finished
        )
