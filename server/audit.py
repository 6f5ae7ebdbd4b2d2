"""The audit log: append-only and hash-chained.

Every entry carries the hash of the entry before it; its own hash is SHA-256 over the
canonical JSON (sorted keys, no spaces, UTF-8) of all its fields, that previous hash
included. `verify()` recomputes the chain and names the first entry that was changed,
deleted or moved; the head row (the newest entry's number and hash) catches a deleted
tail. An entry is written in the transaction of what it records.

Entries hold ids, actors (`user:<id>`, `api-key:<id>`, `cli`, `retention`), the client
address and metadata: never a cell value, a password, a code or a token. The older
`events` table (import deletions and expiries) is recorded here too: server.events
appends an audit entry beside each event, in the same transaction.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline.formulas import escape_text
from server import db
from server.errors import Invalid
from server.models.accounts import AuditEntry, AuditHead
from server.runtime import Runtime

GENESIS = "0" * 64
HEAD_ID = 1
EXPORT_LIMIT = 100_000
FIELDS = ("seq", "at", "org_id", "actor", "action", "target", "address", "detail")


@dataclass(frozen=True)
class Entry:
    seq: int
    at: dt.datetime
    org_id: str | None
    actor: str
    action: str
    target: str | None
    address: str | None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "org_id": self.org_id,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "address": self.address,
            "detail": self.detail,
        }


def entry_hash(entry: Entry, prev_hash: str) -> str:
    body = {**entry.as_json(), "prev_hash": prev_hash}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    session: Session,
    *,
    action: str,
    actor: str,
    org_id: str | None = None,
    target: str | None = None,
    address: str | None = None,
    detail: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> Entry:
    """Append an entry in `session`'s transaction. Taking the head row's lock first (an
    UPDATE) makes concurrent writers queue, so numbers have no gaps and each entry names
    the true previous hash, on SQLite and PostgreSQL alike."""
    moved = session.execute(
        update(AuditHead).where(AuditHead.id == HEAD_ID).values(seq=AuditHead.seq + 1)
    )
    if not getattr(moved, "rowcount", 1) and not _new_head(session):
        # Another writer made the head meanwhile: queue behind it as usual.
        session.execute(
            update(AuditHead).where(AuditHead.id == HEAD_ID).values(seq=AuditHead.seq + 1)
        )
    seq, prev_hash = session.execute(
        select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == HEAD_ID)
    ).one()
    moment = (at or db.utcnow()).astimezone(dt.UTC)
    entry = Entry(seq, moment, org_id, actor[:120], action, target, address, dict(detail or {}))
    digest = entry_hash(entry, prev_hash)
    session.add(
        AuditEntry(
            seq=seq,
            at=moment,
            org_id=org_id,
            actor=entry.actor,
            action=action,
            target=target,
            address=address,
            detail=entry.detail,
            prev_hash=prev_hash,
            hash=digest,
        )
    )
    session.execute(update(AuditHead).where(AuditHead.id == HEAD_ID).values(hash=digest))
    session.flush()
    return entry


def _new_head(session: Session) -> bool:
    """The head row is made by the migration; should it be gone (a database emptied by
    hand), the chain goes on from its newest entry, numbered after it. False when a
    concurrent writer made it first (two receivers' first entries at once)."""
    last = session.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
    seq, digest = (last.seq, last.hash) if last else (0, GENESIS)
    try:
        with session.begin_nested():
            session.add(AuditHead(id=HEAD_ID, seq=seq + 1, hash=digest))
            session.flush()
    except IntegrityError:
        return False
    return True


def write(rt: Runtime, **values: Any) -> Entry:
    """An entry on its own (what is recorded changed nothing in the database: a failed
    sign-in, an export)."""
    with rt.sessions.begin() as session:
        return record(session, **values)


def _entry(row: AuditEntry) -> Entry:
    return Entry(
        row.seq,
        row.at,
        row.org_id,
        row.actor,
        row.action,
        row.target,
        row.address,
        dict(row.detail),
    )


@dataclass(frozen=True)
class Filters:
    action: str | None = None
    actor: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    @classmethod
    def parse(cls, query: dict[str, str]) -> Filters:
        def moment(name: str) -> dt.datetime | None:
            raw = (query.get(name) or "").strip()
            if not raw:
                return None
            try:
                value = dt.datetime.fromisoformat(raw[:40])
            except ValueError:
                raise Invalid(
                    f"{name} is a date or time such as 2026-12-01 or 2026-12-01T13:00."
                ) from None
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)

        return cls(
            action=(query.get("action") or "").strip()[:60] or None,
            actor=(query.get("actor") or "").strip()[:120] or None,
            since=moment("since"),
            until=moment("until"),
        )


def entries(
    rt: Runtime,
    org_id: str,
    filters: Filters = Filters(),
    *,
    before: int | None = None,
    limit: int = 100,
) -> list[Entry]:
    """An organisation's entries, newest first; `before` is a cursor (an entry number)."""
    query = select(AuditEntry).where(AuditEntry.org_id == org_id)
    if filters.action:
        query = query.where(AuditEntry.action == filters.action)
    if filters.actor:
        query = query.where(AuditEntry.actor == filters.actor)
    if filters.since:
        query = query.where(AuditEntry.at >= filters.since)
    if filters.until:
        query = query.where(AuditEntry.at < filters.until)
    if before is not None:
        query = query.where(AuditEntry.seq < before)
    query = query.order_by(AuditEntry.seq.desc()).limit(max(1, min(limit, EXPORT_LIMIT)))
    with rt.sessions() as session:
        return [_entry(row) for row in session.scalars(query)]


def export(found: Iterable[Entry], fmt: str) -> bytes:
    """CSV (formulas neutralised, as every CSV loadbay writes) or JSON."""
    if fmt == "json":
        return json.dumps([e.as_json() for e in found], ensure_ascii=False, indent=1).encode()
    if fmt != "csv":
        raise Invalid("The audit log exports as csv or json.")

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(FIELDS)
    for e in found:
        row = e.as_json()
        row["detail"] = json.dumps(e.detail, sort_keys=True, ensure_ascii=False)
        writer.writerow(escape_text("" if row[f] is None else str(row[f])) for f in FIELDS)
    return out.getvalue().encode()


@dataclass(frozen=True)
class Verdict:
    checked: int
    problems: tuple[str, ...]

    @property
    def intact(self) -> bool:
        return not self.problems


def verify(rt: Runtime) -> Verdict:
    """Walk the whole chain in order; each problem names its entry."""
    problems: list[str] = []
    with rt.sessions() as session:
        head = session.get(AuditHead, HEAD_ID)
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).yield_per(1000)
        checked, last_seq, last_hash = _walk(rows, problems)
        if head is None:
            problems.append("The audit head row is missing.")
        elif head.seq != last_seq or head.hash != last_hash:
            problems.append(
                f"Entries after {last_seq} were deleted: the log's head says entry "
                f"{head.seq} was the last."
                if head.seq > last_seq
                else f"Entry {last_seq} does not match the log's head (entry {head.seq})."
            )
    return Verdict(checked, tuple(problems))


def _walk(rows: Iterator[AuditEntry], problems: list[str]) -> tuple[int, int, str]:
    checked, expected_seq, prev_hash = 0, 1, GENESIS
    for row in rows:
        checked += 1
        if row.seq != expected_seq:
            problems.append(
                f"Entry {expected_seq} is missing (deleted): entry {row.seq} follows entry "
                f"{expected_seq - 1}."
            )
        if row.prev_hash != prev_hash:
            problems.append(
                f"Entry {row.seq} does not follow the entry before it (its previous hash "
                "differs): an entry was deleted, inserted or moved."
            )
        if entry_hash(_entry(row), row.prev_hash) != row.hash:
            problems.append(f"Entry {row.seq} was changed: its content does not match its hash.")
        expected_seq, prev_hash = row.seq + 1, row.hash
    return checked, expected_seq - 1, prev_hash
