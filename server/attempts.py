"""The attempt log: one row per attempt at a delivery (time, outcome, the receiver's status
code and answer, the safe error), what the deliveries endpoint shows. Metadata only: an
answer that quotes a value loadbay sent is not kept."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select
from sqlalchemy.orm import Session

from destinations.base import WriteResult
from destinations.errors import ANSWER_LIMIT, DeliveryError
from server import db
from server.errors import NotFound
from server.runtime import Runtime

Outcome = db.DeliveryAttempt.Outcome


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
    duration_ms: int | None  # how long the destination took; None when it was not reached


@dataclass(frozen=True)
class Said:
    """What the receiver said about one attempt (nothing, when it said nothing), and how
    long the destination took."""

    status_code: int | None = None
    answer: str | None = None
    duration_ms: int | None = None


NOTHING_SAID = Said()
# Shorter values are too common to tell an echo from the receiver's own words.
MIN_ECHO = 3
ECHOED = "(not kept: the answer quoted values loadbay had sent)"


def record(
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
            duration_ms=said.duration_ms,
            error=error[:1000] if error is not None else None,
        )
    )


def said(
    exc: DeliveryError | WriteResult, table: pa.Table | None, duration_ms: int | None = None
) -> Said:
    """The receiver's status code and answer (from a failure or a successful write), the
    answer cut to ANSWER_LIMIT characters and dropped when it quotes a value of the batch
    (a receiver echoing the rows back; what the destination passed on, up to ANSWER_READ
    characters, is searched, so a value cut at the limit is found whole)."""
    answer = exc.answer
    if answer and (table is None or echoes(answer, table)):
        answer = ECHOED if table is not None else None
    return Said(exc.status_code, answer[:ANSWER_LIMIT] if answer else None, duration_ms)


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
                duration_ms=row.duration_ms,
            )
        )
    return out
