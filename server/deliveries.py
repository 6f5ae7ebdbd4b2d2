"""Deliveries: one (batch, destination) record each, its attempts, retries and the sweeper.

An attempt starts by claiming its row in one UPDATE (pending and due -> sending,
attempts + 1), so two jobs for one delivery cannot both send, and an attempt whose
worker dies is still counted. The sweeper (every minute, from `loadbay cron`) puts a
claim whose worker died back to pending and enqueues every due delivery that has no job:
deliveries created while Redis was down, retries whose job was lost.

Job ids are `delivery-<id>-<attempt>`: enqueuing one attempt twice makes one job.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import traceback
from dataclasses import dataclass
from typing import Any, cast

from rq.job import JobStatus
from rq.timeouts import JobTimeoutException
from sqlalchemy import CursorResult, Executable, and_, or_, select, update
from sqlalchemy.orm import Session

import destinations
from destinations import DeliveryBatch
from destinations.errors import (
    DeliveryError,
    EndpointGoneError,
    RetryableDeliveryError,
)
from server import db
from server.batches import load_batch
from server.errors import NotFound
from server.queue import LIVE, REDIS_ERRORS
from server.runtime import Runtime

log = logging.getLogger("loadbay.deliveries")

DeliveryStatus = db.Delivery.Status
DELIVER = "server.jobs.deliver"

# Svix's schedule after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
JITTER = 0.1
# RQ schedules by whole seconds: a job may start a moment before its delivery is due.
EARLY = dt.timedelta(seconds=2)
SWEEP_LIMIT = 5000
OVERDUE = 60  # seconds a scheduled retry may be late before the sweeper moves it


class QueueUnavailable(Exception):
    """Redis cannot be reached; the deliveries are recorded and the sweeper enqueues them."""


@dataclass(frozen=True)
class SweepReport:
    released: int
    failed: int
    enqueued: int

    def to_dict(self) -> dict[str, int]:
        return {"released": self.released, "failed": self.failed, "enqueued": self.enqueued}


def job_id(delivery_id: int, attempt: int) -> str:
    return f"delivery-{delivery_id}-{attempt}"


def next_delay(attempts: int, retry_after: float | None, rng: random.Random) -> float | None:
    """Seconds until the next attempt after `attempts` failures; None once the schedule is spent."""
    if attempts > len(RETRY_SCHEDULE):
        return None
    base = RETRY_SCHEDULE[attempts - 1]
    delay = base * (1 + rng.uniform(-JITTER, JITTER))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def _changed(session: Session, statement: Executable) -> int:
    """Rows an UPDATE changed."""
    return cast(CursorResult[Any], session.execute(statement)).rowcount


# --- enqueuing ----------------------------------------------------------------------------------


def enqueue_all(rt: Runtime, delivery_ids: list[int]) -> int:
    """Enqueue the next attempt of each pending delivery (the submit route calls this, and
    may call it again on a replay: nothing is enqueued twice). Returns how many jobs were
    new. Raises QueueUnavailable when Redis cannot be reached."""
    if not delivery_ids:
        return 0
    with rt.sessions() as session:
        rows = session.execute(
            select(db.Delivery.id, db.Delivery.attempts, db.Delivery.next_attempt_at).where(
                db.Delivery.id.in_(delivery_ids), db.Delivery.status == DeliveryStatus.PENDING
            )
        ).all()
    now = db.utcnow()
    try:
        return sum(
            _enqueue(rt, row.id, row.attempts, _seconds_until(row.next_attempt_at, now))
            for row in rows
        )
    except REDIS_ERRORS as exc:
        raise QueueUnavailable(f"The job queue cannot be reached: {exc}") from exc


def _enqueue(rt: Runtime, delivery_id: int, attempts: int, delay: float = 0) -> bool:
    return rt.queue.enqueue(
        DELIVER,
        delivery_id,
        job_id=job_id(delivery_id, attempts + 1),
        delay=delay,
        retry=attempts > 0,
    )


def _seconds_until(moment: dt.datetime | None, now: dt.datetime) -> float:
    return 0.0 if moment is None else max(0.0, (moment - now).total_seconds())


# --- one attempt --------------------------------------------------------------------------------


def claim(rt: Runtime, delivery_id: int, now: dt.datetime | None = None) -> int | None:
    """Take the delivery for one attempt if it is pending and due; its attempt number, or
    None when another attempt has it, it is finished, or it is not due yet."""
    moment = now or db.utcnow()
    with rt.sessions.begin() as session:
        changed = _changed(
            session,
            update(db.Delivery)
            .where(
                db.Delivery.id == delivery_id,
                db.Delivery.status == DeliveryStatus.PENDING,
                or_(
                    db.Delivery.next_attempt_at.is_(None),
                    db.Delivery.next_attempt_at <= moment + EARLY,
                ),
            )
            .values(
                status=DeliveryStatus.SENDING,
                attempts=db.Delivery.attempts + 1,
                claimed_at=moment,
            )
            .execution_options(synchronize_session=False),
        )
        if changed != 1:
            return None
        attempts: int = session.scalars(
            select(db.Delivery.attempts).where(db.Delivery.id == delivery_id)
        ).one()
        return attempts


def deliver(rt: Runtime, delivery_id: int) -> str:
    """One attempt at one delivery. Whatever goes wrong is recorded on the delivery (the
    attempt counted, a safe message) and ends in a scheduled retry or `failed`."""
    attempt = claim(rt, delivery_id)
    if attempt is None:
        return "skipped"
    destination_id: str | None = None
    try:
        kind, config, batch, destination_id = _prepare(rt, delivery_id)
        destinations.create(kind, config, rt.destination_context).write(batch)
    except RetryableDeliveryError as exc:
        return _failed(rt, delivery_id, attempt, str(exc), retry_after=exc.retry_after)
    except EndpointGoneError as exc:
        if destination_id is not None:
            _disable(rt, destination_id, str(exc))
        return _failed(rt, delivery_id, attempt, str(exc), final=True)
    except DeliveryError as exc:  # fatal: bad configuration, refused address, 4xx
        return _failed(rt, delivery_id, attempt, str(exc), final=True)
    except NotFound as exc:  # the batch, import or destination is gone: retrying cannot help
        return _failed(rt, delivery_id, attempt, exc.message, final=True)
    except JobTimeoutException:
        timeout = rt.queue.timings.job_timeout
        return _failed(rt, delivery_id, attempt, f"The attempt took longer than {timeout} s.")
    except Exception as exc:  # noqa: BLE001 - the job boundary: a bug must not strand a delivery
        # The exception's text may quote data (a cell, a key): only its type and where.
        where = "".join(traceback.format_tb(exc.__traceback__))
        log.error(
            "delivery %s attempt %s: unexpected %s\n%s",
            delivery_id,
            attempt,
            type(exc).__name__,
            where,
        )
        message = f"Internal error ({type(exc).__name__}) in loadbay; it will be retried."
        return _failed(rt, delivery_id, attempt, message)
    with rt.sessions.begin() as session:
        _changed(
            session,
            update(db.Delivery)
            .where(
                db.Delivery.id == delivery_id,
                db.Delivery.status.in_([DeliveryStatus.SENDING, DeliveryStatus.PENDING]),
            )
            .values(
                status=DeliveryStatus.DELIVERED,
                delivered_at=db.utcnow(),
                last_error=None,
                claimed_at=None,
                next_attempt_at=None,
            )
            .execution_options(synchronize_session=False),
        )
    log.info(
        "delivered batch %s of %s to %s (attempt %s)",
        batch.seq,
        batch.import_id,
        destination_id,
        attempt,
    )
    return "delivered"


def _prepare(rt: Runtime, delivery_id: int) -> tuple[str, dict[str, Any], DeliveryBatch, str]:
    with rt.sessions() as session:
        delivery = session.get(db.Delivery, delivery_id)
        if delivery is None:
            raise NotFound(f"Delivery {delivery_id} does not exist.")
        imp = session.get(db.Import, delivery.import_id)
        row = session.get(db.Destination, delivery.destination_id)
        if imp is None or row is None:
            raise NotFound(f"The import or destination of delivery {delivery_id} is gone.")
        org = session.get(db.Organisation, imp.org_id)
        template = session.get(db.Template, imp.template_id)
        if org is None or template is None:
            raise NotFound(f"The organisation or template of delivery {delivery_id} is gone.")
        config = rt.vault.open_config(org.id, org.wrapped_key, row.id, row.sealed_config)
        batch = DeliveryBatch(
            import_id=imp.id,
            seq=delivery.seq,
            batch_count=imp.batch_count,
            template=template.name,
            table=load_batch(rt, session, imp, delivery.seq),
        )
        return row.kind, config, batch, row.id


def _failed(
    rt: Runtime,
    delivery_id: int,
    attempt: int,
    message: str,
    *,
    retry_after: float | None = None,
    final: bool = False,
) -> str:
    delay = None if final else next_delay(attempt, retry_after, random.Random())  # noqa: S311 - jitter
    now = db.utcnow()
    values: dict[str, Any] = {"last_error": message[:1000], "claimed_at": None}
    if delay is None:
        values |= {"status": DeliveryStatus.FAILED, "next_attempt_at": None}
    else:
        values |= {
            "status": DeliveryStatus.PENDING,
            "next_attempt_at": now + dt.timedelta(seconds=delay),
        }
    with rt.sessions.begin() as session:
        changed = _changed(
            session,
            update(db.Delivery)
            .where(
                db.Delivery.id == delivery_id,
                db.Delivery.status == DeliveryStatus.SENDING,
                db.Delivery.attempts == attempt,
            )
            .values(**values)
            .execution_options(synchronize_session=False),
        )
    log.warning("delivery %s attempt %s failed: %s", delivery_id, attempt, message)
    if changed != 1:  # the sweeper took this claim back as stale; a newer attempt decides
        return "stale"
    if delay is None:
        return "failed"
    try:
        _enqueue(rt, delivery_id, attempt, delay)
    except REDIS_ERRORS as exc:  # the sweeper enqueues it once it is due
        log.warning("delivery %s: retry not enqueued (%s); the sweeper will", delivery_id, exc)
    return f"retry in {delay:.0f}s"


def _disable(rt: Runtime, destination_id: str, reason: str) -> None:
    with rt.sessions.begin() as session:
        row = session.get(db.Destination, destination_id)
        if row is not None:
            row.enabled = False
            row.disabled_reason = reason[:500]
        _changed(
            session,
            update(db.Delivery)
            .where(
                db.Delivery.destination_id == destination_id,
                db.Delivery.status == DeliveryStatus.PENDING,
            )
            .values(status=DeliveryStatus.FAILED, last_error=reason[:500], next_attempt_at=None)
            .execution_options(synchronize_session=False),
        )


# --- the sweeper --------------------------------------------------------------------------------


def sweep(rt: Runtime, now: dt.datetime | None = None) -> SweepReport:
    """Release claims whose worker died and enqueue every due delivery without a job."""
    moment = now or db.utcnow()
    timings = rt.queue.timings
    stale = and_(
        db.Delivery.status == DeliveryStatus.SENDING,
        db.Delivery.claimed_at < moment - dt.timedelta(seconds=timings.stale_after),
    )
    lost = f"The attempt did not finish within {timings.job_timeout} s (its worker stopped)."
    with rt.sessions.begin() as session:
        failed = _changed(
            session,
            update(db.Delivery)
            .where(stale, db.Delivery.attempts > len(RETRY_SCHEDULE))
            .values(status=DeliveryStatus.FAILED, claimed_at=None, last_error=lost)
            .execution_options(synchronize_session=False),
        )
        released = _changed(
            session,
            update(db.Delivery)
            .where(stale)
            .values(
                status=DeliveryStatus.PENDING,
                claimed_at=None,
                next_attempt_at=moment,
                last_error=f"{lost} Retrying.",
            )
            .execution_options(synchronize_session=False),
        )
    with rt.sessions() as session:
        due = session.execute(
            select(db.Delivery.id, db.Delivery.attempts, db.Delivery.next_attempt_at)
            .where(
                db.Delivery.status == DeliveryStatus.PENDING,
                or_(db.Delivery.next_attempt_at.is_(None), db.Delivery.next_attempt_at <= moment),
            )
            .order_by(db.Delivery.next_attempt_at, db.Delivery.id)
            .limit(SWEEP_LIMIT)
        ).all()
    statuses = rt.queue.statuses([job_id(row.id, row.attempts + 1) for row in due])
    enqueued = sum(
        _enqueue(rt, row.id, row.attempts)
        for row, status in zip(due, statuses, strict=True)
        if status not in LIVE
    )
    # A retry still scheduled long after it was due: no worker runs a scheduler (one that
    # died holds the lock for a minute); move it to the retry queue ourselves.
    overdue = moment - dt.timedelta(seconds=OVERDUE)
    enqueued += sum(
        rt.queue.promote(job_id(row.id, row.attempts + 1))
        for row, status in zip(due, statuses, strict=True)
        if status == JobStatus.SCHEDULED
        and row.next_attempt_at is not None
        and row.next_attempt_at < overdue
    )
    if released or failed or enqueued:
        log.info("sweep: %s released, %s failed, %s enqueued", released, failed, enqueued)
    return SweepReport(released, failed, enqueued)
