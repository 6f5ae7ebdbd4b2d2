"""The no-store path: an import under retention 0 never writes a row to disk.

Its data key (wrapped by the organisation key) and each sealed batch live in Redis only,
under keys that expire `LOADBAY_PASSTHROUGH_TTL` seconds (3600) after the import was
created. A batch's Redis record goes once every destination has acknowledged it, the data
key once every batch has; after the window, whatever was not delivered is failed with a
reason the end user (the importer's status) and the client (an `import.expired` event and
the delivery's `last_error`) both read. The metadata database keeps counts and timings:
the batch rows hold the Redis key's name and row counts, never a digest of their content,
and the digests that check `unique` fields and primary keys across batches are in Redis
too, expiring with the batches.

Every Redis command carries ciphertext or names; loadbay logs neither.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets

from sqlalchemy import func, select, update

from server import db, events
from server.errors import Conflict, Gone, NotFound, Unavailable
from server.queue import REDIS_ERRORS
from server.runtime import Runtime

log = logging.getLogger("loadbay.passthrough")

DeliveryStatus = db.Delivery.Status
WINDOW_REASON = "passthrough-window"
ACTOR = "passthrough"
_SEALED, _DIGEST = b"sealed", b"digest"


def is_passthrough(imp: db.Import) -> bool:
    return imp.retention_days == 0


def in_flight(imp: db.Import) -> bool:
    """A passthrough import whose rows may still be in Redis."""
    return is_passthrough(imp) and imp.status in ("uploading", "delivering")


def window_text(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def undelivered_message(rt: Runtime) -> str:
    return (
        f"Not delivered within the {window_text(rt.settings.passthrough_ttl)} passthrough "
        "window; loadbay kept no copy of the rows, so the file must be imported again."
    )


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _prefix(rt: Runtime, import_id: str) -> str:
    return f"loadbay:{rt.settings.queue_name}:passthrough:{import_id}:"


def _data_key_name(rt: Runtime, import_id: str) -> str:
    return _prefix(rt, import_id) + "key"


def open_window(rt: Runtime, org: db.Organisation, import_id: str, now: dt.datetime) -> dt.datetime:
    """Create the import's data key in Redis only; returns when the window closes."""
    wrapped = rt.vault.new_data_key(org.id, org.wrapped_key, import_id)
    try:
        rt.queue.connection.set(
            _data_key_name(rt, import_id), wrapped, ex=rt.settings.passthrough_ttl
        )
    except REDIS_ERRORS as exc:
        raise Unavailable(
            "This import passes rows straight through without storing them, and the "
            "queue that holds them in transit cannot be reached; try again in a moment.",
            retry_after=5,
        ) from exc
    return now + dt.timedelta(seconds=rt.settings.passthrough_ttl)


def data_key(rt: Runtime, org: db.Organisation, imp: db.Import) -> bytes:
    """The import's data key, while its window lasts; Gone after it."""
    wrapped = rt.queue.connection.get(_data_key_name(rt, imp.id))
    if wrapped is None:
        raise Gone(
            f"Import {imp.id} passed its {window_text(rt.settings.passthrough_ttl)} "
            f"passthrough window at {imp.expires_at.isoformat()}; nothing of it is kept. "
            "Start the import again.",
            details={
                "import_id": imp.id,
                "reason": WINDOW_REASON,
                "at": imp.expires_at.isoformat(),
            },
        )
    return rt.vault.data_key(org.id, org.wrapped_key, imp.id, _bytes(wrapped))


def put(rt: Runtime, imp: db.Import, seq: int, sealed: bytes, digest: str) -> str:
    """Hold one sealed batch (and the digest spotting a re-send) in Redis until the window
    closes; returns its Redis key, a name of its own per upload attempt."""
    name = f"{_prefix(rt, imp.id)}batch:{seq}.{secrets.token_hex(8)}"
    left = _left_ms(imp)
    with rt.queue.connection.pipeline(transaction=True) as pipe:
        pipe.hset(name, mapping={_SEALED: sealed, _DIGEST: digest})
        pipe.pexpire(name, left)
        pipe.execute()
    return name


def _left_ms(imp: db.Import) -> int:
    left = int((imp.expires_at - db.utcnow()).total_seconds() * 1000)
    if left <= 0:
        raise Gone(f"Import {imp.id} passed its passthrough window; start the import again.")
    return left


def seen_rows(rt: Runtime, imp: db.Import, digests: list[bytes]) -> dict[bytes, int]:
    """The first rows of the unique values (as keyed digests) earlier batches held."""
    if not digests:
        return {}
    rows = rt.queue.connection.hmget(_prefix(rt, imp.id) + "seen", digests)
    return {d: int(r) for d, r in zip(digests, rows, strict=True) if r is not None}


def record_seen(rt: Runtime, imp: db.Import, pending: dict[bytes, int]) -> list[bytes]:
    """Add a batch's unique-value digests; returns those it added. A digest another upload
    added meanwhile is a Conflict, and this batch's additions are taken back."""
    name = _prefix(rt, imp.id) + "seen"
    items = list(pending.items())
    with rt.queue.connection.pipeline(transaction=True) as pipe:
        for digest, row in items:
            pipe.hsetnx(name, digest, row)
        pipe.pexpire(name, _left_ms(imp))
        added = pipe.execute()[: len(items)]
    mine = [d for (d, _), new in zip(items, added, strict=True) if new]
    if len(mine) != len(items):
        forget_seen(rt, imp, mine)
        raise Conflict(
            "A value of this batch met another batch's upload at the same moment; send it again."
        )
    return mine


def forget_seen(rt: Runtime, imp: db.Import, digests: list[bytes]) -> None:
    if digests:
        rt.queue.connection.hdel(_prefix(rt, imp.id) + "seen", *digests)


def digest_of(rt: Runtime, name: str) -> str:
    raw = rt.queue.connection.hget(name, _DIGEST)
    return _bytes(raw).decode() if raw is not None else ""


def get(rt: Runtime, imp: db.Import, seq: int, name: str) -> tuple[bytes, bytes]:
    """(wrapped data key, sealed batch), or NotFound once the window has closed."""
    connection = rt.queue.connection
    wrapped, sealed = connection.get(_data_key_name(rt, imp.id)), connection.hget(name, _SEALED)
    if wrapped is None or sealed is None:
        raise NotFound(
            f"Batch {seq} of import {imp.id} is no longer held. {undelivered_message(rt)}"
        )
    return _bytes(wrapped), _bytes(sealed)


def discard(rt: Runtime, name: str) -> None:
    rt.queue.connection.delete(name)


def forget(rt: Runtime, import_id: str) -> int:
    """Delete everything Redis holds for the import; how many keys went."""
    connection = rt.queue.connection
    names = list(connection.scan_iter(match=_prefix(rt, import_id) + "*", count=500))
    return int(connection.delete(*names)) if names else 0


def acknowledged(rt: Runtime, delivery_id: int) -> None:
    """A destination took a batch: once every destination has it, its Redis record goes;
    once every batch is delivered, everything Redis holds for the import goes."""
    with rt.sessions() as session:
        delivery = session.get(db.Delivery, delivery_id)
        imp = session.get(db.Import, delivery.import_id) if delivery is not None else None
        if delivery is None or imp is None or not is_passthrough(imp):
            return
        open_for = select(func.count()).where(
            db.Delivery.import_id == imp.id, db.Delivery.status != DeliveryStatus.DELIVERED
        )
        finished = session.scalar(open_for) == 0
        if not finished:
            batch_open = session.scalar(open_for.where(db.Delivery.seq == delivery.seq))
            name = session.scalar(
                select(db.Batch.blob_key).where(
                    db.Batch.import_id == imp.id, db.Batch.seq == delivery.seq
                )
            )
    if finished:
        forget(rt, imp.id)
    elif batch_open == 0 and name is not None:
        discard(rt, name)


def finished_without_deliveries(rt: Runtime, import_id: str) -> None:
    """Submitted with no destination: nothing will read the batches, so they go now."""
    forget(rt, import_id)


def expire_overdue(rt: Runtime, now: dt.datetime | None = None) -> list[str]:
    """Close every passthrough window that has passed: pending deliveries fail with the
    reason, an import not delivered in full is `expired` (with an `import.expired` event
    for the client), and anything Redis still holds for it goes. Returns the expired ids."""
    moment = now or db.utcnow()
    with rt.sessions() as session:
        overdue = list(
            session.scalars(
                select(db.Import.id).where(
                    db.Import.retention_days == 0,
                    db.Import.expires_at <= moment,
                    db.Import.status.in_(["uploading", "delivering"]),
                )
            )
        )
    expired: list[str] = []
    for import_id in overdue:
        if _expire(rt, import_id):
            expired.append(import_id)
        try:
            forget(rt, import_id)
        except REDIS_ERRORS as exc:  # its keys expire by themselves
            log.warning("import %s: passthrough keys not deleted now (%s)", import_id, exc)
    return expired


def _expire(rt: Runtime, import_id: str) -> bool:
    message = undelivered_message(rt)
    with rt.sessions.begin() as session:
        imp = session.get(db.Import, import_id, with_for_update=True)
        if imp is None or imp.status not in ("uploading", "delivering"):
            return False
        failed = session.execute(
            update(db.Delivery)
            .where(db.Delivery.import_id == imp.id, db.Delivery.status == DeliveryStatus.PENDING)
            .values(status=DeliveryStatus.FAILED, last_error=message, next_attempt_at=None)
            .execution_options(synchronize_session=False)
        )
        undelivered = session.scalar(
            select(func.count()).where(
                db.Delivery.import_id == imp.id, db.Delivery.status != DeliveryStatus.DELIVERED
            )
        )
        if imp.status == "delivering" and not undelivered:
            return False  # delivered in full: nothing was lost
        imp.status = "expired"
        events.record(
            session,
            org_id=imp.org_id,
            import_id=imp.id,
            kind=events.IMPORT_EXPIRED,
            actor=ACTOR,
            detail={
                "reason": WINDOW_REASON,
                "rows": imp.row_count,
                "batches": imp.batch_count,
                "undelivered": int(undelivered or 0),
                "failed_now": int(getattr(failed, "rowcount", 0) or 0),
            },
        )
    log.warning("import %s: passthrough window passed before delivery", import_id)
    return True
