"""The stale-delivery sweeper, run every minute by `loadbay cron`: a claim whose worker
died goes back to pending (its attempt counted) or to failed once the schedule is spent;
a due delivery with no queued, scheduled or started job is enqueued (deliveries created
while Redis was down, retries whose job was lost), and so is one whose job Redis calls
started long ago although nobody claimed the delivery (its work horse died first); a
retry no scheduler picked up is moved onto the retry queue; deliveries waiting for a
destination's place whose holder died are woken. A relayed kind's deliveries (the host
page) are never enqueued: the page's acknowledgement settles them."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from rq.job import JobStatus
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from server import attempts, db, deliveries
from server.deliveries import RETRY_SCHEDULE, DeliveryStatus, Outcome
from server.handoff import relayed_kinds
from server.queue import LIVE
from server.runtime import Runtime

SWEEP_LIMIT = 5000
log = logging.getLogger("loadbay.sweeper")

OVERDUE = 60  # seconds a scheduled retry may be late before the sweeper moves it


@dataclass(frozen=True)
class SweepReport:
    released: int
    failed: int
    enqueued: int

    def to_dict(self) -> dict[str, int]:
        return {"released": self.released, "failed": self.failed, "enqueued": self.enqueued}


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
            .join(db.Destination, db.Destination.id == db.Delivery.destination_id)
            .where(
                db.Delivery.status == DeliveryStatus.PENDING,
                db.Destination.kind.not_in(relayed_kinds()),  # the page's ack settles those
                or_(db.Delivery.next_attempt_at.is_(None), db.Delivery.next_attempt_at <= moment),
            )
            .order_by(db.Delivery.next_attempt_at, db.Delivery.id)
            .limit(SWEEP_LIMIT)
        ).all()
    statuses = rt.queue.statuses([deliveries.job_id(row.id, row.attempts + 1) for row in due])
    slots = rt.queue.waiting_slots()  # read once a sweep, for both uses below
    waiting = rt.queue.waiters(slots)  # woken by whoever gives a place back, or below
    enqueued = sum(
        deliveries.enqueue_attempt(rt, row.id, row.attempts)
        for row, status in zip(due, statuses, strict=True)
        if status not in LIVE and str(row.id) not in waiting
    )
    # A retry still scheduled long after it was due: no worker runs a scheduler (one that
    # died holds the lock for a minute); move it to the retry queue ourselves.
    overdue = moment - dt.timedelta(seconds=OVERDUE)
    enqueued += sum(
        rt.queue.promote(deliveries.job_id(row.id, row.attempts + 1))
        for row, status in zip(due, statuses, strict=True)
        if status == JobStatus.SCHEDULED
        and row.next_attempt_at is not None
        and row.next_attempt_at < overdue
    )
    enqueued += _run_again_what_died_unclaimed(rt, due, statuses, moment)
    enqueued += _wake_waiters(rt, slots)
    if released or failed or enqueued:
        log.info("sweep: %s released, %s failed, %s enqueued", released, failed, enqueued)
    return SweepReport(released, failed, enqueued)


def _run_again_what_died_unclaimed(
    rt: Runtime, due: Any, statuses: list[JobStatus | None], moment: dt.datetime
) -> int:
    """Jobs Redis remembers wrongly after it went away and came back from its AOF, for a
    due delivery nobody claimed: one it calls started long ago (its work horse died before
    claiming: a live attempt claims within milliseconds of starting), or one it calls
    queued that no queue holds (taken off the queue just before Redis died, its start not
    written). Each is run again, under an id of its own (the stale record keeps the
    first; a duplicate job finds the claim taken)."""
    stale = moment - dt.timedelta(seconds=rt.queue.timings.stale_after)
    queued = rt.queue.queued_ids() if JobStatus.QUEUED in statuses else set()
    again = 0
    for row, status in zip(due, statuses, strict=True):
        name = deliveries.job_id(row.id, row.attempts + 1)
        if status == JobStatus.QUEUED:
            if name in queued:
                continue
        elif status == JobStatus.STARTED:
            started = rt.queue.started_at(name)
            if started is not None and started > stale:
                continue
        else:
            continue
        stamp = int(moment.timestamp())
        job = f"{name}-again-{stamp}"
        again += rt.queue.enqueue(deliveries.DELIVER, row.id, job_id=job, retry=True)
    if again:
        log.warning("sweep: %s attempt(s) that died before claiming run again", again)
    return again


def _wake_waiters(rt: Runtime, names: list[str]) -> int:
    """Waiters of destinations whose holders died (their places expired) go again."""
    if not names:
        return 0
    with rt.sessions() as session:
        rows = session.execute(
            select(db.Destination.id, db.Destination.max_concurrency).where(
                db.Destination.id.in_(names)
            )
        ).all()
    limits = {row.id: row.max_concurrency for row in rows}
    return sum(deliveries.wake(rt, name, limits.get(name, 1)) for name in names)


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
        attempts.record(
            session,
            delivery_id,
            started[delivery_id] or now,
            outcome,
            error=values["last_error"],
            finished=now,
        )
    return len(ids)
