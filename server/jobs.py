"""RQ jobs. They take ids, never payloads: rows are read from the sealed blob store."""

from __future__ import annotations

import functools
import logging
import random

from sqlalchemy import select

import destinations
from destinations import DeliveryBatch
from destinations.errors import (
    DeliveryError,
    EndpointGoneError,
    FatalDeliveryError,
    RetryableDeliveryError,
)
from server import db, retention
from server.imports import load_batch
from server.queue import connect, delivery_queue, enqueue_delivery, next_delay
from server.runtime import Runtime
from server.settings import Settings

log = logging.getLogger("loadbay.jobs")


@functools.cache
def _runtime() -> Runtime:
    return Runtime.from_settings(Settings.from_env())


def deliver(delivery_id: int) -> str:
    """One attempt at one (batch, destination) delivery; schedules the next on failure."""
    rt = _runtime()
    with rt.sessions() as session:
        delivery = session.get(db.Delivery, delivery_id)
        if delivery is None or delivery.status != "pending":
            return "skipped"
        imp = session.get(db.Import, delivery.import_id)
        row = session.get(db.Destination, delivery.destination_id)
        assert imp is not None and row is not None  # noqa: S101 - foreign keys
        org = session.get(db.Organisation, imp.org_id)
        template = session.get(db.Template, imp.template_id)
        assert org is not None and template is not None  # noqa: S101 - foreign keys
        config = rt.vault.open_config(org.id, org.wrapped_key, row.sealed_config)
        batch = DeliveryBatch(
            import_id=imp.id,
            seq=delivery.seq,
            batch_count=imp.batch_count,
            template=template.name,
            table=load_batch(rt, session, imp, delivery.seq),
        )
        destination_id = row.id
    try:
        destinations.create(row.kind, config, rt.destination_context).write(batch)
    except RetryableDeliveryError as exc:
        return _failed_attempt(rt, delivery_id, exc, retry_after=exc.retry_after)
    except EndpointGoneError as exc:
        _disable(rt, destination_id, str(exc))
        return _failed_attempt(rt, delivery_id, exc, final=True)
    except FatalDeliveryError as exc:
        return _failed_attempt(rt, delivery_id, exc, final=True)
    with rt.sessions.begin() as session:
        delivery = session.get(db.Delivery, delivery_id)
        assert delivery is not None  # noqa: S101 - read above
        delivery.status = "delivered"
        delivery.attempts += 1
        delivery.delivered_at = db.utcnow()
        delivery.last_error = None
    log.info("delivered batch %s of %s to %s", batch.seq, batch.import_id, destination_id)
    return "delivered"


def purge_expired() -> list[str]:
    """Hourly (see `loadbay cron`): shred every import past its retention."""
    return retention.purge_expired(_runtime())


def _failed_attempt(
    rt: Runtime,
    delivery_id: int,
    exc: DeliveryError,
    *,
    retry_after: float | None = None,
    final: bool = False,
) -> str:
    with rt.sessions.begin() as session:
        delivery = session.get(db.Delivery, delivery_id)
        assert delivery is not None  # noqa: S101 - read above
        delivery.attempts += 1
        delivery.last_error = str(exc)[:1000]
        delay = None if final else next_delay(delivery.attempts, retry_after, random.Random())  # noqa: S311 - jitter, not secrecy
        if delay is None:
            delivery.status = "failed"
        attempts = delivery.attempts
    log.warning("delivery %s attempt %s failed: %s", delivery_id, attempts, exc)
    if delay is None:
        return "failed"
    enqueue_delivery(delivery_queue(rt.settings, connect(rt.settings)), delivery_id, delay)
    return f"retry in {delay:.0f}s"


def _disable(rt: Runtime, destination_id: str, reason: str) -> None:
    with rt.sessions.begin() as session:
        row = session.get(db.Destination, destination_id)
        if row is not None:
            row.enabled = False
            row.disabled_reason = reason[:500]
        pending = session.scalars(
            select(db.Delivery).where(
                db.Delivery.destination_id == destination_id, db.Delivery.status == "pending"
            )
        )
        for delivery in pending:
            delivery.status = "failed"
            delivery.last_error = reason[:500]
