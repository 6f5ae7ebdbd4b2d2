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
import json
import logging
import random
import traceback
from dataclasses import dataclass
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc
from rq.job import JobStatus
from rq.timeouts import JobTimeoutException
from sqlalchemy import CursorResult, Executable, and_, or_, select, update
from sqlalchemy.orm import Session

import destinations
from destinations import DeliveryBatch
from destinations.errors import (
    ANSWER_LIMIT,
    DeliveryError,
    EndpointGoneError,
    RetryableDeliveryError,
)
from server import db
from server.batches import load_batch
from server.errors import Conflict, Gone, NotFound
from server.queue import LIVE, REDIS_ERRORS
from server.runtime import Runtime

log = logging.getLogger("loadbay.deliveries")

DeliveryStatus = db.Delivery.Status
Outcome = db.DeliveryAttempt.Outcome
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


@dataclass(frozen=True)
class Attempt:
    """One attempt at one delivery, as the deliveries endpoint shows it: metadata only."""

    id: int
    delivery_id: int
    seq: int
    destination_id: str
    number: int  # 1 for a delivery's first attempt
    started_at: dt.datetime
    finished_at: dt.datetime
    outcome: str
    status_code: int | None
    answer: str | None
    error: str | None


@dataclass(frozen=True)
class Said:
    """What the receiver said about one attempt (nothing, when it said nothing)."""

    status_code: int | None = None
    answer: str | None = None


NOTHING_SAID = Said()
# Shorter values are too common to tell an echo from the receiver's own words.
MIN_ECHO = 3
ECHOED = "(not kept: the answer quoted values loadbay had sent)"


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
    attempt counted, a safe message) and ends in a scheduled retry or `failed`; every
    attempt leaves a `delivery_attempts` row."""
    started = db.utcnow()
    attempt = claim(rt, delivery_id, started)
    if attempt is None:
        return "skipped"
    destination_id: str | None = None
    table: pa.Table | None = None
    try:
        kind, config, batch, destination_id = _prepare(rt, delivery_id)
        table = batch.table
        destinations.create(kind, config, rt.destination_context).write(batch)
    except RetryableDeliveryError as exc:
        said = _said(exc, table)
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
        said = _said(exc, table)
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
        said = _said(exc, table)
        return _failed(rt, delivery_id, attempt, str(exc), final=True, started=started, said=said)
    except NotFound as exc:  # the batch, import or destination is gone: retrying cannot help
        return _failed(rt, delivery_id, attempt, exc.message, final=True, started=started)
    except JobTimeoutException:
        timeout = rt.queue.timings.job_timeout
        message = f"The attempt took longer than {timeout} s."
        return _failed(rt, delivery_id, attempt, message, started=started)
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
        return _failed(rt, delivery_id, attempt, message, started=started)
    with rt.sessions.begin() as session:
        finished = db.utcnow()
        changed = _changed(
            session,
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
            .execution_options(synchronize_session=False),
        )
        if changed == 1:
            _record(session, delivery_id, started, Outcome.DELIVERED, finished=finished)
    log.info(
        "delivered batch %s of %s to %s (attempt %s)",
        batch.seq,
        batch.import_id,
        destination_id,
        attempt,
    )
    return "delivered"


def _record(
    session: Session,
    delivery_id: int,
    started: dt.datetime,
    outcome: str,
    *,
    error: str | None = None,
    said: Said = NOTHING_SAID,
    finished: dt.datetime | None = None,
) -> None:
    """One `delivery_attempts` row, in the transaction that settles the attempt."""
    session.add(
        db.DeliveryAttempt(
            delivery_id=delivery_id,
            started_at=started,
            finished_at=finished or db.utcnow(),
            outcome=str(outcome),
            status_code=said.status_code,
            answer=said.answer,
            error=error[:1000] if error is not None else None,
        )
    )


def _said(exc: DeliveryError, table: pa.Table | None) -> Said:
    """The receiver's status code and answer, the answer cut to ANSWER_LIMIT characters and
    dropped when it quotes a value of the batch (a receiver echoing the rows back; what
    the destination passed on, up to ANSWER_READ characters, is searched, so a value cut
    at the limit is found whole)."""
    answer = exc.answer
    if answer and (table is None or echoes(answer, table)):
        answer = ECHOED if table is not None else None
    return Said(exc.status_code, answer[:ANSWER_LIMIT] if answer else None)


def echoes(answer: str, table: pa.Table) -> bool:
    """Whether `answer` contains a cell value of `table` (as text or as its JSON escape);
    values shorter than MIN_ECHO characters and booleans are not looked for.

    Vectorised: every substring of the answer of a length some value has is one set, and
    the values are looked up in it (a 64k-row, 20-column batch takes a fraction of a
    second); only values JSON would escape are also looked for one by one, escaped."""
    if len(answer) < MIN_ECHO:
        return False
    pieces: dict[int, set[str]] = {}
    for column in table.itercolumns():
        if pa.types.is_boolean(column.type) or pa.types.is_null(column.type):
            continue
        try:
            text = pc.cast(column, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            text = pa.chunked_array(
                [pa.array([None if v is None else str(v) for v in column.to_pylist()])],
                pa.string(),
            )
        lengths = pc.utf8_length(text)
        fits = pc.and_(pc.greater_equal(lengths, MIN_ECHO), pc.less_equal(lengths, len(answer)))
        candidates = pc.unique(pc.filter(text, fits))
        if len(candidates) == 0:
            continue
        wanted: set[str] = set()
        for size in pc.unique(pc.utf8_length(candidates)).to_pylist():
            if size not in pieces:
                pieces[size] = {answer[i : i + size] for i in range(len(answer) - size + 1)}
            wanted |= pieces[size]
        if pc.any(pc.is_in(candidates, value_set=pa.array(list(wanted), pa.string()))).as_py():
            return True
        escaped = pc.filter(candidates, pc.match_substring_regex(candidates, _JSON_ESCAPED))
        if any(json.dumps(value)[1:-1] in answer for value in escaped.to_pylist()):
            return True
    return False


_JSON_ESCAPED = r'["\\\x00-\x1f\x7f]|[^\x00-\x7f]'  # what json.dumps writes otherwise


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
    started: dt.datetime | None = None,
    said: Said = NOTHING_SAID,
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
        if changed == 1:
            ended = outcome or (Outcome.FAILED if delay is None else Outcome.RETRY)
            _record(
                session, delivery_id, started or now, ended, error=message, said=said, finished=now
            )
    log.warning("delivery %s attempt %s failed: %s", delivery_id, attempt, message)
    if changed != 1:  # the sweeper took this claim back as stale (and recorded it)
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
        spent = db.Delivery.attempts > len(RETRY_SCHEDULE)
        failed = _release(
            session,
            and_(stale, spent),
            {"status": DeliveryStatus.FAILED, "claimed_at": None, "last_error": lost},
            Outcome.FAILED,
            moment,
        )
        released = _release(
            session,
            stale,
            {
                "status": DeliveryStatus.PENDING,
                "claimed_at": None,
                "next_attempt_at": moment,
                "last_error": f"{lost} Retrying.",
            },
            Outcome.RETRY,
            moment,
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


def _release(
    session: Session, where: Any, values: dict[str, Any], outcome: str, now: dt.datetime
) -> int:
    """Settle the stale claims matching `where` with `values`, one attempt row each."""
    claims = session.execute(
        select(db.Delivery.id, db.Delivery.claimed_at).where(where).with_for_update()
    ).all()
    if not claims:
        return 0
    started = {row.id: row.claimed_at for row in claims}
    changed = session.execute(
        update(db.Delivery)
        .where(where, db.Delivery.id.in_(started))
        .values(**values)
        .returning(db.Delivery.id)
        .execution_options(synchronize_session=False)
    ).scalars()
    ids = list(changed)
    for delivery_id in ids:
        _record(
            session,
            delivery_id,
            started[delivery_id] or now,
            outcome,
            error=values["last_error"],
            finished=now,
        )
    return len(ids)


# --- what the management API shows and does -----------------------------------------------------


def attempts_of(rt: Runtime, import_id: str, *, org_id: str | None = None) -> list[Attempt]:
    """Every attempt at every delivery of an import, oldest first (by batch, destination,
    then time). With `org_id`, an import of another organisation is NotFound."""
    with rt.sessions() as session:
        imp = session.get(db.Import, import_id)
        if imp is None or (org_id is not None and imp.org_id != org_id):
            raise NotFound(f"Import {import_id} does not exist.")
        rows = session.execute(
            select(db.DeliveryAttempt, db.Delivery.seq, db.Delivery.destination_id)
            .join(db.Delivery, db.Delivery.id == db.DeliveryAttempt.delivery_id)
            .where(db.Delivery.import_id == import_id)
            .order_by(
                db.Delivery.seq,
                db.Delivery.destination_id,
                db.DeliveryAttempt.started_at,
                db.DeliveryAttempt.id,
            )
        ).all()
    numbers: dict[int, int] = {}
    out: list[Attempt] = []
    for row, seq, destination_id in rows:
        numbers[row.delivery_id] = numbers.get(row.delivery_id, 0) + 1
        out.append(
            Attempt(
                id=row.id,
                delivery_id=row.delivery_id,
                seq=seq,
                destination_id=destination_id,
                number=numbers[row.delivery_id],
                started_at=row.started_at,
                finished_at=row.finished_at,
                outcome=row.outcome,
                status_code=row.status_code,
                answer=row.answer,
                error=row.error,
            )
        )
    return out


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
        if imp.wrapped_data_key is None:
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
        delivery.status = DeliveryStatus.PENDING
        delivery.attempts = 0  # the schedule starts again; delivery_attempts keeps the past
        delivery.next_attempt_at = None
        delivery.claimed_at = None
    try:
        _enqueue(rt, delivery_id, 0)
    except REDIS_ERRORS as exc:
        log.warning("delivery %s: retry not enqueued (%s); the sweeper will", delivery_id, exc)
        return False
    return True
