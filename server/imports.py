"""An import's life on the server: created, batches received, submitted, delivered.

Every batch is re-validated with the same `pipeline` code the browser ran (the
browser is not a trust boundary), typed, sealed with the import's data key and stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import zlib
from dataclasses import dataclass
from typing import Any

import arro3.core as ac
import pyarrow as pa
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline.errors import MappingError
from pipeline.session import ROW_COLUMN
from pipeline.template import Template
from pipeline.validation import EarlierBatches, coerce, validate
from server import crypto, db
from server.errors import Conflict, Invalid, NotFound, TooLarge, Unauthorized
from server.runtime import Runtime


@dataclass(frozen=True)
class CreatedImport:
    import_id: str
    upload_token: str


@dataclass(frozen=True)
class ImportStatus:
    import_id: str
    status: str
    rows: int
    batches: int
    deliveries: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.import_id,
            "status": self.status,
            "rows": self.rows,
            "batches": self.batches,
            "deliveries": self.deliveries,
        }


def create_import(
    rt: Runtime, org: db.Organisation, template_id: str, file_name: str
) -> CreatedImport:
    with rt.sessions.begin() as session:
        template = session.get(db.Template, template_id)
        if template is None or template.org_id != org.id:
            raise NotFound(f"Template {template_id} does not exist.")
        import_id = db.new_id("imp")
        token = secrets.token_urlsafe(32)
        now = db.utcnow()
        session.add(
            db.Import(
                id=import_id,
                org_id=org.id,
                template_id=template.id,
                file_name=file_name[:300],
                token_hash=_hash(token),
                wrapped_data_key=rt.vault.new_data_key(org.id, org.wrapped_key, import_id),
                created_at=now,
                expires_at=now + dt.timedelta(days=rt.settings.retention_days),
            )
        )
    return CreatedImport(import_id, token)


def authorise(session: Session, import_id: str, token: str) -> db.Import:
    imp = session.get(db.Import, import_id)
    if imp is None or not hmac.compare_digest(imp.token_hash, _hash(token)):
        raise Unauthorized("This upload link is not valid. Start the import again.")
    return imp


def inflate(body: bytes, limit: int) -> bytes:
    """gunzip a request body, stopping at `limit` bytes: a gzip bomb costs us nothing."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise Invalid(f"The batch is not valid gzip: {exc}.") from exc
    if len(data) > limit or inflater.unconsumed_tail:
        raise TooLarge(f"A batch may hold at most {limit} bytes uncompressed.")
    if not inflater.eof:
        raise Invalid("The batch's gzip stream is truncated.")
    if inflater.unused_data:  # a second gzip member or junk: refused, never silently dropped
        raise Invalid("The batch has data after its gzip stream.")
    return data


def receive_batch(
    rt: Runtime, import_id: str, token: str, seq: int, first_row: int, body: bytes
) -> int:
    """Store one batch; returns its row count. Re-sending the same batch is harmless."""
    if len(body) > rt.settings.max_batch_bytes:
        raise TooLarge(f"A batch may hold at most {rt.settings.max_batch_bytes} bytes.")
    digest = hashlib.sha256(body).hexdigest()
    with rt.sessions.begin() as session:
        imp = authorise(session, import_id, token)
        if imp.status != "uploading":
            raise Conflict(f"Import {import_id} was already submitted.")
        existing = session.scalar(
            select(db.Batch).where(db.Batch.import_id == import_id, db.Batch.seq == seq)
        )
        if existing is not None:
            if existing.sha256 != digest:
                raise Conflict(f"Batch {seq} was already received with different content.")
            return existing.row_count
        template_row = session.get(db.Template, imp.template_id)
        org = session.get(db.Organisation, imp.org_id)
        assert template_row is not None and org is not None  # noqa: S101 - foreign keys
        template = Template.from_dict(template_row.schema)
        key = rt.vault.data_key(org.id, org.wrapped_key, imp.id, _required(imp.wrapped_data_key))
        earlier = SeenValues(session, imp.id, key)
        typed = _checked_typed_batch(body, template, first_row, earlier)
        plaintext = _ipc(typed)
        blob_key = f"{org.id}/{imp.id}/{seq}.arrow.sealed"
        rt.blobs.put(blob_key, crypto.seal(key, plaintext, crypto.batch_aad(org.id, imp.id, seq)))
        session.add(
            db.Batch(
                import_id=imp.id,
                seq=seq,
                first_row=first_row,
                row_count=typed.num_rows,
                sha256=digest,
                blob_key=blob_key,
            )
        )
        earlier.record()
        try:
            session.flush()
        except IntegrityError as exc:  # a concurrent batch of the same import got there first
            raise Conflict(f"Batch {seq} met another batch of this import; send it again.") from exc
        return int(typed.num_rows)


def submit(rt: Runtime, import_id: str, token: str, batch_count: int, row_count: int) -> list[int]:
    """Close the upload and create one delivery per batch and destination; returns their ids."""
    with rt.sessions.begin() as session:
        imp = authorise(session, import_id, token)
        batches = session.scalars(select(db.Batch).where(db.Batch.import_id == import_id)).all()
        if imp.status != "uploading":
            return list(
                session.scalars(select(db.Delivery.id).where(db.Delivery.import_id == import_id))
            )
        seqs = sorted(b.seq for b in batches)
        if seqs != list(range(batch_count)):
            missing = sorted(set(range(batch_count)) - set(seqs))
            raise Invalid(f"Batches {missing} have not arrived; upload them before submitting.")
        received = sum(b.row_count for b in batches)
        if received != row_count:
            raise Invalid(f"The server received {received} rows, not {row_count}.")
        destinations = session.scalars(
            select(db.Destination).where(
                db.Destination.template_id == imp.template_id, db.Destination.enabled.is_(True)
            )
        ).all()
        deliveries = [
            db.Delivery(import_id=imp.id, seq=b.seq, destination_id=d.id)
            for b in sorted(batches, key=lambda b: b.seq)
            for d in destinations
        ]
        session.add_all(deliveries)
        imp.row_count = received
        imp.batch_count = batch_count
        imp.status = "delivering" if deliveries else "complete"
        session.flush()
        return [d.id for d in deliveries]


def claim_mapping_memory(session: Session, import_id: str, token: str, template_id: str) -> None:
    """One submitted import may teach its template one mapping: a publishable key alone,
    which is public, cannot fill a template's memory with mappings nobody confirmed."""
    imp = authorise(session, import_id, token)
    if imp.template_id != template_id:
        raise NotFound(f"Import {import_id} is not an import of template {template_id}.")
    if imp.status == "uploading":
        raise Conflict("Submit the import before remembering its mapping.")
    if imp.mapping_remembered:
        raise Conflict(f"The mapping of import {import_id} was already remembered.")
    imp.mapping_remembered = True


def status(rt: Runtime, import_id: str, token: str) -> ImportStatus:
    with rt.sessions() as session:
        imp = authorise(session, import_id, token)
        return import_status(session, imp)


def import_status(session: Session, imp: db.Import) -> ImportStatus:
    counts: dict[str, int] = {"pending": 0, "delivered": 0, "failed": 0}
    for delivery in session.scalars(select(db.Delivery).where(db.Delivery.import_id == imp.id)):
        counts[delivery.status] = counts.get(delivery.status, 0) + 1
    state = imp.status
    if state == "delivering":
        if counts["failed"]:
            state = "failed"
        elif counts["pending"] == 0:
            state = "delivered"
    return ImportStatus(imp.id, state, imp.row_count, imp.batch_count, counts)


def load_batch(rt: Runtime, session: Session, imp: db.Import, seq: int) -> pa.Table:
    """Decrypt one stored batch back to its typed rows."""
    batch = session.scalar(
        select(db.Batch).where(db.Batch.import_id == imp.id, db.Batch.seq == seq)
    )
    org = session.get(db.Organisation, imp.org_id)
    if batch is None or org is None or imp.wrapped_data_key is None:
        raise NotFound(f"Batch {seq} of import {imp.id} is no longer stored.")
    key = rt.vault.data_key(org.id, org.wrapped_key, imp.id, imp.wrapped_data_key)
    sealed = rt.blobs.get(batch.blob_key)
    plaintext = crypto.open_sealed(key, sealed, crypto.batch_aad(org.id, imp.id, seq))
    return pa.ipc.open_stream(plaintext).read_all()


class SeenValues:
    """`EarlierBatches` for one import, kept in the metadata database as keyed digests.

    A value is stored as HMAC-SHA256 (truncated to 128 bits) under a key derived from the
    import's data key, with the target ("unique:<field>" or "primaryKey") inside, and the
    row it first appeared in; never the value. What a batch adds is written by `record`,
    only once the batch has passed.
    """

    def __init__(self, session: Session, import_id: str, data_key: bytes) -> None:
        self._session = session
        self._import_id = import_id
        self._key = hmac.new(data_key, b"loadbay/unique-values", hashlib.sha256).digest()
        self._pending: dict[bytes, int] = {}

    def first_rows(self, target: str, values: list[str], rows: list[int]) -> list[int | None]:
        digests = [self._digest(target, v) for v in values]
        stored: dict[bytes, int] = {}
        for start in range(0, len(digests), _LOOKUP_CHUNK):
            chunk = digests[start : start + _LOOKUP_CHUNK]
            stored.update(
                self._session.execute(
                    select(db.UniqueValue.digest, db.UniqueValue.first_row).where(
                        db.UniqueValue.import_id == self._import_id,
                        db.UniqueValue.digest.in_(chunk),
                    )
                ).all()
            )
        found = [stored.get(d) for d in digests]
        new = zip(digests, rows, found, strict=True)
        self._pending.update((d, r) for d, r, f in new if f is None)
        return found

    def record(self) -> None:
        if self._pending:
            self._session.execute(
                insert(db.UniqueValue),
                [
                    {"import_id": self._import_id, "digest": d, "first_row": r}
                    for d, r in self._pending.items()
                ],
            )
            self._pending = {}

    def _digest(self, target: str, value: str) -> bytes:
        message = json.dumps([target, value], ensure_ascii=False).encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()[:16]


_LOOKUP_CHUNK = 500


def _checked_typed_batch(
    body: bytes, template: Template, first_row: int, earlier: EarlierBatches | None = None
) -> pa.Table:
    """Prepare, validate and type one batch, as the browser did (missing values, transforms)."""
    try:
        received = pa.ipc.open_stream(pa.py_buffer(body)).read_all()
    except (pa.ArrowInvalid, pa.ArrowException) as exc:
        raise Invalid(f"The batch is not an Arrow IPC stream: {exc}") from exc
    rows: int | list[int] = first_row
    if ROW_COLUMN in received.column_names:
        rows = _row_numbers(received.column(ROW_COLUMN))
        received = received.drop_columns([ROW_COLUMN])
    for field in received.schema:
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            raise Invalid(f'Column "{field.name}" must hold text, not {field.type}.')
    strings = received.cast(pa.schema([(f.name, pa.string()) for f in received.schema]))
    # `validate` and `coerce` prepare the cells first: missing values ("" by default) are
    # null, so a crafted batch cannot pass "" for a required field.
    table = ac.Table.from_arrow(strings)
    try:
        errors = validate(table, template, rows, earlier)
    except MappingError as exc:
        raise Invalid(str(exc)) from exc
    if errors:
        raise Invalid(
            f"{len(errors)} cell(s) do not pass the template's rules.",
            details=[e.to_dict() for e in errors[:100]],
        )
    return pa.table(coerce(table, template))


def _row_numbers(column: pa.ChunkedArray) -> list[int]:
    """The browser's row numbers (rows the user deleted leave gaps): positive, increasing."""
    if not pa.types.is_integer(column.type) or column.null_count:
        raise Invalid(f"Column {ROW_COLUMN} must hold whole row numbers.")
    numbers: list[int] = column.to_pylist()
    if any(n < 1 for n in numbers) or any(
        b <= a for a, b in zip(numbers, numbers[1:], strict=False)
    ):
        raise Invalid(f"Column {ROW_COLUMN} must hold increasing row numbers.")
    return numbers


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(
        sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")
    ) as w:
        w.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _required(value: bytes | None) -> bytes:
    if value is None:
        raise NotFound("This import's data has been deleted.")
    return value
