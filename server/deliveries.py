"""Deliveries: one (batch, destination) record each, claiming and running an attempt, retries.

An attempt starts by claiming its row in one UPDATE (pending and due -> sending,
attempts + 1), so two jobs for one delivery cannot both send, and an attempt whose
worker dies is still counted. The sweeper (every minute, from `loadbay cron`) puts a
claim whose worker died back to pending and enqueues every due delivery that has no job
(`server/sweeper.py`):
deliveries created while Redis was down, retries whose job was lost.

Job ids are `delivery-<id>-<attempt>`: enqueuing one attempt twice makes one job.

A destination is sent at most `max_concurrency` batches at once (a client's database is
not hit by every worker together): an attempt first takes one of its destination's places
(`JobQueue.take_slot`); when all are held it waits in the destination's waiting set
without claiming, and the attempt that gives a place back enqueues it again (the sweeper
wakes waiters whose holders died). A duplicate job is harmless: only one claim succeeds.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
import uuid
from typing import Any, cast

import pyarrow as pa
from rq.timeouts import JobTimeoutException
from sqlalchemy import CursorResult, Executable, or_, select, update
from sqlalchemy.orm import Session

import destinations
from destinations import DeliveryBatch
from destinations.base import NOTHING_SAID
from destinations.errors import (
    DeliveryError,
    EndpointGoneError,
    RetryableDeliveryError,
)
from pipeline.template import parse_template
from server import attempts, db, logs, passthrough, settle
from server.batches import load_batch
from server.errors import Conflict, Gone, NotFound, Unavailable
from server.handoff import relayed_kinds
from server.queue import REDIS_ERRORS, SMALL_IMPORT_ROWS
from server.runtime import Runtime

log = logging.getLogger("loadbay.deliveries")

DeliveryStatus = db.Delivery.Status
Outcome = attempts.Outcome
DELIVER = "server.jobs.deliver"

# Svix's schedule after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
JITTER = 0.1
# RQ schedules by whole seconds: a job may start a moment before its delivery is due.
EARLY = dt.timedelta(seconds=2)


class QueueUnavailable(Exception):
    """Redis cannot be reached; the deliveries are recorded and the sweeper enqueues them."""


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


def rows_changed(session: Session, statement: Executable) -> int:
    """Rows an UPDATE changed."""
    return cast(CursorResult[Any], session.execute(statement)).rowcount


# --- enqueuing ----------------------------------------------------------------------------------


def enqueue_all(rt: Runtime, delivery_ids: list[int]) -> int:
    """Enqueue the next attempt of each pending delivery (the submit route calls this, and
    may call it again on a replay: nothing is enqueued twice). Returns how many jobs were
    new. Raises QueueUnavailable when Redis cannot be reached.

    A relayed kind's deliveries (the host page) get no job: the importer page hands the
    rows over and the page's acknowledgement settles them (server/handoff.py); a worker
    could only find them unacknowledged and retry them."""
    if not delivery_ids:
        return 0
    with rt.sessions() as session:
        rows = session.execute(
            select(
                db.Delivery.id,
                db.Delivery.attempts,
                db.Delivery.next_attempt_at,
                db.Import.row_count,
            )
            .join(db.Import, db.Import.id == db.Delivery.import_id)
            .join(db.Destination, db.Destination.id == db.Delivery.destination_id)
            .where(
                db.Delivery.id.in_(delivery_ids),
                db.Delivery.status == DeliveryStatus.PENDING,
                db.Destination.kind.not_in(relayed_kinds()),
            )
        ).all()
    now = db.utcnow()
    try:
        return sum(
            enqueue_attempt(
                rt,
                row.id,
                row.attempts,
                _seconds_until(row.next_attempt_at, now),
                small=row.row_count <= SMALL_IMPORT_ROWS,
            )
            for row in rows
        )
    except REDIS_ERRORS as exc:
        raise QueueUnavailable(f"The job queue cannot be reached: {exc}") from exc


def enqueue_attempt(
    rt: Runtime, delivery_id: int, attempts: int, delay: float = 0, *, small: bool = False
) -> bool:
    """First attempts go to the small or the big imports' queue, retries to the retry queue."""
    return rt.queue.enqueue(
        DELIVER,
        delivery_id,
        job_id=job_id(delivery_id, attempts + 1),
        delay=delay,
        retry=attempts > 0,
        small=small,
    )


# --- a destination's places ---------------------------------------------------------------------


def _place_of(rt: Runtime, delivery_id: int) -> tuple[str, int] | None:
    """The destination of a pending delivery and how many attempts it takes at once."""
    with rt.sessions() as session:
        row = session.execute(
            select(db.Destination.id, db.Destination.max_concurrency)
            .join(db.Delivery, db.Delivery.destination_id == db.Destination.id)
            .where(db.Delivery.id == delivery_id, db.Delivery.status == DeliveryStatus.PENDING)
        ).first()
    return None if row is None else (row.id, row.max_concurrency)


def wake(rt: Runtime, destination_id: str, limit: int, holder: str = "") -> int:
    """Give `holder`'s place back (none: only wake) and enqueue the waiters that may go now,
    on the retry queue (they have waited already). How many were enqueued."""
    woken = rt.queue.give_slot(destination_id, holder, limit)
    stamp = time.monotonic_ns()
    for waiter in woken:
        # Its own job id: the job that made it wait may not have finished yet.
        rt.queue.enqueue(
            DELIVER, int(waiter), job_id=f"delivery-{waiter}-woken-{stamp}", retry=True
        )
    return len(woken)


def _seconds_until(moment: dt.datetime | None, now: dt.datetime) -> float:
    return 0.0 if moment is None else max(0.0, (moment - now).total_seconds())


# --- one attempt --------------------------------------------------------------------------------


def claim(rt: Runtime, delivery_id: int, now: dt.datetime | None = None) -> int | None:
    """Take the delivery for one attempt if it is pending and due; its attempt number, or
    None when another attempt has it, it is finished, or it is not due yet."""
    moment = now or db.utcnow()
    with rt.sessions.begin() as session:
        changed = rows_changed(
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
    attempt counted, a safe message) and ends in a scheduled retry or `failed`; every
    attempt leaves a `delivery_attempts` row."""
    place = _place_of(rt, delivery_id)
    if place is None:
        return "skipped"
    destination_id, limit = place
    holder = f"{delivery_id}-{uuid.uuid4().hex}"
    if not rt.queue.take_slot(destination_id, holder, limit, str(delivery_id)):
        return "waiting"
    try:
        return _attempt(rt, delivery_id)
    finally:
        try:
            wake(rt, destination_id, limit, holder)
        except REDIS_ERRORS as exc:  # the place frees itself; the sweeper wakes the waiters
            log.warning("delivery %s: place not given back (%s)", delivery_id, exc)


def _attempt(rt: Runtime, delivery_id: int) -> str:
    started = db.utcnow()
    attempt = claim(rt, delivery_id, started)
    if attempt is None:
        return "skipped"
    destination_id: str | None = None
    table: pa.Table | None = None
    watch = settle.Stopwatch()
    try:
        kind, config, batch, destination_id = _prepare(rt, delivery_id)
        table = batch.table
        destination = destinations.create(kind, config, rt.destination_context)
        watch.start()
        # A plugin written before WriteResult and finish() returns None and has no finish.
        result = destination.write(batch) or NOTHING_SAID
        done = settle.unless_last(rt, delivery_id, started, attempts.said(result, table, watch.ms))
        finish = getattr(destination, "finish", None)
        if done is not None and finish is not None:  # the import's last batch here: finish it
            result = finish(done) or result
    except RetryableDeliveryError as exc:
        said = attempts.said(exc, table, watch.ms)
        return _failed(
            rt,
            delivery_id,
            attempt,
            str(exc),
            retry_after=exc.retry_after,
            started=started,
            said=said,
        )
    except EndpointGoneError as exc:
        if destination_id is not None:
            _disable(rt, destination_id, str(exc))
        said = attempts.said(exc, table, watch.ms)
        return _failed(
            rt,
            delivery_id,
            attempt,
            str(exc),
            final=True,
            started=started,
            said=said,
            outcome=Outcome.DISABLED,
        )
    except DeliveryError as exc:  # fatal: bad configuration, refused address, 4xx
        said = attempts.said(exc, table, watch.ms)
        return _failed(rt, delivery_id, attempt, str(exc), final=True, started=started, said=said)
    except NotFound as exc:  # the batch, import or destination is gone: retrying cannot help
        return _failed(rt, delivery_id, attempt, exc.message, final=True, started=started)
    except Unavailable as exc:  # e.g. the organisation's KMS key refused: retried on schedule
        return _failed(rt, delivery_id, attempt, exc.message, started=started)
    except JobTimeoutException:
        timeout = rt.queue.timings.job_timeout
        message = f"The attempt took longer than {timeout} s."
        return _failed(rt, delivery_id, attempt, message, started=started)
    except Exception as exc:  # noqa: BLE001 - the job boundary: a bug must not strand a delivery
        # The exception's text may quote data (a cell, a key): only its type and where.
        log.error(
            "delivery %s attempt %s: unexpected %s\n%s",
            delivery_id,
            attempt,
            type(exc).__name__,
            logs.describe(exc),
        )
        message = f"Internal error ({type(exc).__name__}) in loadbay; it will be retried."
        return _failed(rt, delivery_id, attempt, message, started=started)
    if done is not None:
        with rt.sessions.begin() as session:
            settle.delivered(session, delivery_id, started, attempts.said(result, table, watch.ms))
    try:
        passthrough.acknowledged(rt, delivery_id)
    except REDIS_ERRORS as exc:  # its Redis keys expire with the passthrough window
        log.warning("delivery %s: passthrough batch not deleted now (%s)", delivery_id, exc)
    log.info(
        "delivered batch %s of %s to %s (attempt %s): %s",
        batch.seq,
        batch.import_id,
        destination_id,
        attempt,
        result.detail,
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
        stored = session.execute(
            select(db.Batch.created_at, db.Batch.left_out).where(
                db.Batch.import_id == imp.id, db.Batch.seq == delivery.seq
            )
        ).first()
        if stored is None:
            raise NotFound(f"Batch {delivery.seq} of import {imp.id} is no longer stored.")
        sealed_at, left_out = stored
        batch = DeliveryBatch(
            import_id=imp.id,
            seq=delivery.seq,
            batch_count=imp.batch_count,
            template=template.name,
            table=load_batch(rt, session, imp, delivery.seq),
            occurred_at=sealed_at,
            destination_id=row.id,
            org_id=org.id,
            primary_key=_primary_key(session, imp, template),
            imported_at=imp.created_at,
            left_out=left_out or 0,
        )
        return row.kind, config, batch, row.id


def _primary_key(session: Session, imp: db.Import, template: db.Template) -> tuple[str, ...]:
    """The primaryKey of the template version the import used."""
    schema = template.schema
    if imp.template_version is not None:
        version = session.scalar(
            select(db.TemplateVersion.schema).where(
                db.TemplateVersion.template_id == template.id,
                db.TemplateVersion.version == imp.template_version,
            )
        )
        schema = version if version is not None else schema
    return parse_template(schema).primary_key


def _failed(
    rt: Runtime,
    delivery_id: int,
    attempt: int,
    message: str,
    *,
    retry_after: float | None = None,
    final: bool = False,
    started: dt.datetime | None = None,
    said: attempts.Said = attempts.NOTHING_SAID,
    outcome: str | None = None,
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
        changed = rows_changed(
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
        if changed == 1:
            ended = outcome or (Outcome.FAILED if delay is None else Outcome.RETRY)
            attempts.record(
                session, delivery_id, started or now, ended, error=message, said=said, finished=now
            )
    log.warning("delivery %s attempt %s failed: %s", delivery_id, attempt, message)
    if changed != 1:  # the sweeper took this claim back as stale (and recorded it)
        return "stale"
    if delay is None:
        return "failed"
    try:
        enqueue_attempt(rt, delivery_id, attempt, delay)
    except REDIS_ERRORS as exc:  # the sweeper enqueues it once it is due
        log.warning("delivery %s: retry not enqueued (%s); the sweeper will", delivery_id, exc)
    return f"retry in {delay:.0f}s"


def _disable(rt: Runtime, destination_id: str, reason: str) -> None:
    with rt.sessions.begin() as session:
        row = session.get(db.Destination, destination_id)
        if row is not None:
            row.enabled = False
            row.disabled_reason = reason[:500]
        rows_changed(
            session,
            update(db.Delivery)
            .where(
                db.Delivery.destination_id == destination_id,
                db.Delivery.status == DeliveryStatus.PENDING,
            )
            .values(status=DeliveryStatus.FAILED, last_error=reason[:500], next_attempt_at=None)
            .execution_options(synchronize_session=False),
        )


# --- what the management API shows and does -----------------------------------------------------


def retry(rt: Runtime, delivery_id: int, *, org_id: str | None = None) -> bool:
    """Send a failed delivery again: back to pending with its retry schedule restarted,
    and enqueued (False when Redis is down: the sweeper enqueues it). A delivered, pending
    or sending delivery is a Conflict; one whose import data is gone is Gone; with
    `org_id`, a delivery of another organisation is NotFound."""
    with rt.sessions.begin() as session:
        delivery = session.get(db.Delivery, delivery_id, with_for_update=True)
        imp = session.get(db.Import, delivery.import_id) if delivery is not None else None
        if delivery is None or imp is None or (org_id is not None and imp.org_id != org_id):
            raise NotFound(f"Delivery {delivery_id} does not exist.")
        if delivery.status == DeliveryStatus.DELIVERED:
            raise Conflict(f"Delivery {delivery_id} was delivered already; it is not sent again.")
        if delivery.status != DeliveryStatus.FAILED:
            raise Conflict(
                f"Delivery {delivery_id} is {delivery.status}: only a failed delivery is retried."
            )
        if imp.wrapped_data_key is None and not passthrough.in_flight(imp):
            raise Gone(
                f"Delivery {delivery_id} cannot be retried: the data of import {imp.id} was "
                f"{imp.status}.",
                details={"import_id": imp.id, "reason": imp.status},
            )
        destination = session.get(db.Destination, delivery.destination_id)
        if destination is None or not destination.enabled:
            raise Conflict(
                f"Delivery {delivery_id} cannot be retried: its destination is disabled."
            )
        if destination.kind in relayed_kinds():
            raise Conflict(
                f"Delivery {delivery_id} cannot be retried from here: the end user's page "
                "receives host-page rows from the importer; the user imports the file again."
            )
        delivery.status = DeliveryStatus.PENDING
        delivery.attempts = 0  # the schedule starts again; delivery_attempts keeps the past
        delivery.next_attempt_at = None
        delivery.claimed_at = None
        small = imp.row_count <= SMALL_IMPORT_ROWS
    try:
        enqueue_attempt(rt, delivery_id, 0, small=small)
    except REDIS_ERRORS as exc:
        log.warning("delivery %s: retry not enqueued (%s); the sweeper will", delivery_id, exc)
        return False
    return True
